#include "client/cli/help_text.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace sockagent {
namespace cli {

absl::string_view Summary(absl::string_view help) {
  int depth = 0;
  for (size_t i = 0; i < help.size(); ++i) {
    const char c = help[i];
    if (c == '(') ++depth;
    if (c == ')' && depth > 0) --depth;
    if (c == '\n' ||
        (depth == 0 && c == '.' &&
         (i + 1 == help.size() || help[i + 1] == ' ' || help[i + 1] == '\n'))) {
      return help.substr(0, i);
    }
  }
  return help;
}

std::string Wrap(absl::string_view text) {
  std::string out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line.front() == ' ') {
      absl::StrAppend(&out, line, "\n");
      continue;
    }
    size_t column = 0;
    for (absl::string_view word :
         absl::StrSplit(line, ' ', absl::SkipEmpty())) {
      if (column > 0 && column + 1 + word.size() > 78) {
        out += "\n";
        column = 0;
      } else if (column > 0) {
        out += " ";
        ++column;
      }
      absl::StrAppend(&out, word);
      column += word.size();
    }
    out += "\n";
  }
  return out;
}

}  // namespace cli
}  // namespace sockagent
