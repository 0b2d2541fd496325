#include "client/cli/did_you_mean.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "proto/edit_distance.h"

namespace sockagent {
namespace cli {

std::string UnknownSubcommand(const CLI::App& app,
                              const std::vector<char*>& args) {
  const CLI::App* current = &app;
  for (size_t i = 1; i < args.size(); ++i) {
    const absl::string_view word = args[i];
    if (absl::StartsWith(word, "-")) {
      if (absl::StrContains(word, "=")) continue;
      const CLI::Option* option = nullptr;
      for (const CLI::App* a = current; a != nullptr && option == nullptr;
           a = a->get_parent()) {
        option = a->get_option_no_throw(std::string(word));
      }
      if (option != nullptr && option->get_items_expected_max() > 0) ++i;
      continue;
    }
    const std::vector<const CLI::App*> subcommands =
        current->get_subcommands({});
    if (subcommands.empty()) return "";  // a leaf's positional argument
    const CLI::App* next = nullptr;
    std::vector<std::string> close;
    for (const CLI::App* sub : subcommands) {
      const std::string& name = sub->get_name();
      if (name == word) next = sub;
      const bool contains =
          word.size() >= 3 && name.size() >= 3 &&
          (absl::StrContains(name, word) || absl::StrContains(word, name));
      if ((contains || EditDistance(name, word) <= 2) && close.size() < 4) {
        close.push_back(name);
      }
    }
    if (next != nullptr) {
      current = next;
      continue;
    }
    std::string message = absl::StrCat("unknown subcommand '", word, "'");
    if (current != &app) absl::StrAppend(&message, " of ", current->get_name());
    if (!close.empty()) {
      absl::StrAppend(&message, " (did you mean ", absl::StrJoin(close, ", "),
                      "?)");
    }
    absl::StrAppend(&message, "; `sockctl ",
                    current == &app ? "" : current->get_name() + " ",
                    "--help` lists them");
    return message;
  }
  return "";
}

}  // namespace cli
}  // namespace sockagent
