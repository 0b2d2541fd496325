#ifndef SOCKAGENT_CLIENT_VOCAB_TABLE_H_
#define SOCKAGENT_CLIENT_VOCAB_TABLE_H_

// Text tables as sockctl (ls, session list, getaddrinfo) and `sockctl run`'s
// summary print them. Pure function; thread-safe.

#include <string>
#include <vector>

namespace sockagent {
namespace vocab {

// A right-padded text table: each column as wide as its widest cell plus two
// spaces, the last column unpadded, one line per row.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows);

}  // namespace vocab
}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_VOCAB_TABLE_H_
