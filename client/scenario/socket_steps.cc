// The step kinds that are one socket-API call each (socket, bind, ...,
// list_sockets), on the Agent and Socket client calls.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/address.h"
#include "client/scenario/model.h"
#include "client/scenario/step_kinds.h"
#include "client/vocab/quantities.h"
#include "client/vocab/socket_options.h"
#include "client/vocab/words.h"

namespace sockagent::scenario {
namespace {

// Largest single SendAll; bigger data goes in pieces (the agent's default
// max_send_bytes is 4 MiB).
constexpr size_t kSendPiece = 1 << 20;

Outcome CreateSocket(const StepCall& call) {
  Outcome out;
  v1::Family family = v1::FAMILY_INET;
  v1::SocketType type = v1::SOCKET_TYPE_STREAM;
  uint64_t protocol = 0;
  if (call.Has("family")) {
    absl::StatusOr<v1::Family> f = vocab::ParseFamily(call.Arg("family"));
    if (!f.ok()) return StepCall::Bad("family", f.status());
    family = *f;
  }
  if (call.Has("type")) {
    absl::StatusOr<v1::SocketType> t = vocab::ParseSocketType(call.Arg("type"));
    if (!t.ok()) return StepCall::Bad("type", t.status());
    type = *t;
  }
  if (call.Has("protocol")) {
    absl::StatusOr<uint64_t> p = ParseUint(call.Arg("protocol"));
    if (!p.ok()) return StepCall::Bad("protocol", p.status());
    protocol = *p;
  }
  absl::StatusOr<Socket> made =
      call.agent->CreateSocket(family, type, static_cast<int>(protocol));
  out.status = made.status();
  if (made.ok()) {
    std::string h = made->Release();
    out.new_socket = h;
    out.fields[""] = h;
    out.fields["handle"] = h;
    out.fields["agent"] = call.agent_name;
  }
  return out;
}

Outcome Listen(const StepCall& call) {
  Outcome out;
  absl::StatusOr<uint64_t> backlog = ParseUint(call.Arg("backlog", "128"));
  if (!backlog.ok()) return StepCall::Bad("backlog", backlog.status());
  out.status = call.socket.Listen(static_cast<int>(*backlog));
  return out;
}

Outcome Accept(const StepCall& call) {
  Outcome out;
  absl::StatusOr<AcceptResult> accepted = call.socket.Accept(call.deadline);
  out.status = accepted.status();
  if (accepted.ok()) {
    std::string h = accepted->socket.Release();
    out.new_socket = h;
    out.fields["handle"] = h;
    out.fields["agent"] = call.agent_name;
    AddressFields(accepted->peer, "peer", &out.fields);
    out.fields[""] = out.fields["peer"];
  }
  return out;
}

Outcome Send(const StepCall& call) {
  Outcome out;
  absl::StatusOr<size_t> sent = call.socket.Send(call.data, 0, call.deadline);
  out.status = sent.status();
  if (sent.ok()) {
    DataFields(absl::string_view(call.data).substr(0, *sent), &out.fields);
    out.fields[""] = out.fields["bytes"];
  }
  return out;
}

Outcome SendAll(const StepCall& call) {
  Outcome out;
  for (size_t offset = 0; offset < call.data.size() && out.status.ok();
       offset += kSendPiece) {
    out.status = call.socket.SendAll(
        absl::string_view(call.data).substr(offset, kSendPiece), 0,
        call.deadline);
  }
  if (out.status.ok()) {
    DataFields(call.data, &out.fields);
    out.fields[""] = out.fields["bytes"];
  }
  return out;
}

Outcome Recv(const StepCall& call) {
  Outcome out;
  absl::StatusOr<uint64_t> max = ParseSize(call.Arg("max", "65536"));
  if (!max.ok() || *max == 0) {
    return StepCall::Bad(
        "max", max.ok() ? absl::InvalidArgumentError("must be at least 1")
                        : max.status());
  }
  absl::StatusOr<int> flags = ParseRecvFlags(call.Arg("flags"));
  if (!flags.ok()) return StepCall::Bad("flags", flags.status());
  absl::StatusOr<std::string> received =
      call.socket.Recv(*max, *flags, call.deadline);
  out.status = received.status();
  if (received.ok()) {
    out.data = *std::move(received);
    out.has_data = true;
    DataFields(out.data, &out.fields);
    out.fields["eof"] = out.data.empty() ? "true" : "false";
  }
  return out;
}

Outcome RecvStream(const StepCall& call) {
  Outcome out;
  absl::StatusOr<uint64_t> limit = ParseSize(call.Arg("bytes", "0"));
  if (!limit.ok()) return StepCall::Bad("bytes", limit.status());
  absl::StatusOr<uint64_t> chunk = ParseSize(call.Arg("chunk", "0"));
  if (!chunk.ok()) return StepCall::Bad("chunk", chunk.status());
  out.status = call.socket.RecvStream(
      [&out](absl::string_view piece) {
        out.data.append(piece.data(), piece.size());
        return true;
      },
      *limit, static_cast<uint32_t>(*chunk), call.deadline);
  out.has_data = true;
  DataFields(out.data, &out.fields);
  out.fields["eof"] =
      out.status.ok() && (*limit == 0 || out.data.size() < *limit) ? "true"
                                                                   : "false";
  return out;
}

Outcome RecvFrom(const StepCall& call) {
  Outcome out;
  absl::StatusOr<uint64_t> max = ParseSize(call.Arg("max", "65536"));
  if (!max.ok() || *max == 0) {
    return StepCall::Bad(
        "max", max.ok() ? absl::InvalidArgumentError("must be at least 1")
                        : max.status());
  }
  absl::StatusOr<Datagram> datagram =
      call.socket.RecvFrom(*max, 0, call.deadline);
  out.status = datagram.status();
  if (datagram.ok()) {
    out.data = std::move(datagram->data);
    out.has_data = true;
    DataFields(out.data, &out.fields);
    AddressFields(datagram->address, "from", &out.fields);
  }
  return out;
}

Outcome Shutdown(const StepCall& call) {
  Outcome out;
  absl::StatusOr<v1::ShutdownHow> how =
      vocab::ParseShutdownHow(call.Arg("how"));
  if (!how.ok()) return StepCall::Bad("how", how.status());
  out.status = call.socket.Shutdown(*how);
  return out;
}

Outcome Close(const StepCall& call) {
  Outcome out;
  out.status = call.socket.Close();
  out.closed_socket = out.status.ok();
  return out;
}

Outcome SetTimeout(const StepCall& call) {
  Outcome out;
  absl::StatusOr<std::optional<absl::Duration>> timeout =
      vocab::ParseTimeout(call.Arg("timeout"));
  if (!timeout.ok()) return StepCall::Bad("timeout", timeout.status());
  out.status = call.socket.SetTimeout(*timeout);
  return out;
}

Outcome GetTimeout(const StepCall& call) {
  Outcome out;
  absl::StatusOr<std::optional<absl::Duration>> timeout =
      call.socket.GetTimeout();
  out.status = timeout.status();
  if (timeout.ok()) {
    out.fields[""] =
        timeout->has_value() ? vocab::DurationText(**timeout) : "none";
    out.fields["value"] = out.fields[""];
  }
  return out;
}

Outcome GetHostname(const StepCall& call) {
  Outcome out;
  absl::StatusOr<std::string> name = call.agent->GetHostname();
  out.status = name.status();
  if (name.ok()) out.fields[""] = out.fields["value"] = *name;
  return out;
}

Outcome GetAddrInfo(const StepCall& call) {
  Outcome out;
  v1::Family family = v1::FAMILY_UNSPECIFIED;
  v1::SocketType type = v1::SOCKET_TYPE_UNSPECIFIED;
  if (call.Has("family")) {
    absl::StatusOr<v1::Family> f = vocab::ParseFamily(call.Arg("family"));
    if (!f.ok()) return StepCall::Bad("family", f.status());
    family = *f;
  }
  if (call.Has("type")) {
    absl::StatusOr<v1::SocketType> t = vocab::ParseSocketType(call.Arg("type"));
    if (!t.ok()) return StepCall::Bad("type", t.status());
    type = *t;
  }
  absl::StatusOr<std::vector<v1::AddrInfo>> infos =
      call.agent->GetAddrInfo(call.Arg("host"), call.Arg("port"), family, type);
  out.status = infos.status();
  if (infos.ok()) {
    std::vector<std::string> addresses;
    for (const v1::AddrInfo& info : *infos) {
      addresses.push_back(FormatAddress(info.address()));
    }
    out.fields["count"] = absl::StrCat(addresses.size());
    out.fields["addresses"] = absl::StrJoin(addresses, ",");
    if (!infos->empty()) {
      AddressFields(infos->front().address(), "", &out.fields);
    }
    out.fields[""] = out.fields["addresses"];
  }
  return out;
}

Outcome ListSockets(const StepCall& call) {
  Outcome out;
  absl::StatusOr<std::vector<v1::SocketInfo>> sockets =
      call.agent->ListSockets();
  out.status = sockets.status();
  if (sockets.ok()) {
    std::vector<std::string> handles;
    for (const v1::SocketInfo& info : *sockets) {
      handles.push_back(info.handle());
    }
    out.fields[""] = out.fields["count"] = absl::StrCat(handles.size());
    out.fields["handles"] = absl::StrJoin(handles, ",");
  }
  return out;
}

// bind and connect: the local address (connect also the peer's).
Outcome BindOrConnect(const StepCall& call, bool connect) {
  Outcome out;
  absl::StatusOr<v1::Address> address = ParseAddress(call.Arg("address"));
  if (!address.ok()) return StepCall::Bad("address", address.status());
  absl::StatusOr<v1::Address> local =
      connect ? call.socket.Connect(*address, call.deadline)
              : call.socket.Bind(*address);
  out.status = local.status();
  if (local.ok()) {
    AddressFields(*local, "", &out.fields);
    out.fields[""] = out.fields["address"];
    out.socket_updates = out.fields;
    if (connect) {
      AddressFields(*address, "peer", &out.socket_updates);
      out.fields["peer"] = out.socket_updates["peer"];
    }
  }
  return out;
}

Outcome Bind(const StepCall& call) { return BindOrConnect(call, false); }
Outcome Connect(const StepCall& call) { return BindOrConnect(call, true); }

Outcome SendTo(const StepCall& call) {
  Outcome out;
  absl::StatusOr<v1::Address> address = ParseAddress(call.Arg("address"));
  if (!address.ok()) return StepCall::Bad("address", address.status());
  absl::StatusOr<size_t> sent =
      call.socket.SendTo(call.data, *address, 0, call.deadline);
  out.status = sent.status();
  if (sent.ok()) {
    DataFields(absl::string_view(call.data).substr(0, *sent), &out.fields);
    out.fields[""] = out.fields["bytes"];
  }
  return out;
}

Outcome SetSockOpt(const StepCall& call) {
  absl::StatusOr<vocab::OptionSpec> option =
      vocab::ParseOptionName(call.Arg("option"));
  if (!option.ok()) return StepCall::Bad("option", option.status());
  absl::StatusOr<v1::OptionValue> value =
      vocab::ParseOptionValue(option->kind, call.Arg("value"));
  if (!value.ok()) return StepCall::Bad("value", value.status());
  Outcome out;
  out.status = call.socket.SetSockOpt(option->option, *value);
  return out;
}

Outcome GetSockOpt(const StepCall& call) {
  absl::StatusOr<vocab::OptionSpec> option =
      vocab::ParseOptionName(call.Arg("option"));
  if (!option.ok()) return StepCall::Bad("option", option.status());
  Outcome out;
  absl::StatusOr<v1::OptionValue> value =
      call.socket.GetSockOpt(option->option);
  out.status = value.status();
  if (value.ok()) out.fields[""] = vocab::FormatOptionValue(*value);
  if (value.ok()) out.fields["value"] = out.fields[""];
  return out;
}

Outcome SockName(const StepCall& call, bool peer) {
  Outcome out;
  absl::StatusOr<v1::Address> address =
      peer ? call.socket.GetPeerName() : call.socket.GetSockName();
  out.status = address.status();
  if (address.ok()) {
    AddressFields(*address, "", &out.fields);
    out.fields[""] = out.fields["address"];
    AddressFields(*address, peer ? "peer" : "", &out.socket_updates);
  }
  return out;
}

Outcome GetSockName(const StepCall& call) { return SockName(call, false); }
Outcome GetPeerName(const StepCall& call) { return SockName(call, true); }

}  // namespace

void AddSocketSteps(std::vector<StepKind>* kinds) {
  using T = ArgType;
  kinds->push_back(StepKind("socket", CreateSocket)
                       .Optional("family", T::kFamily)
                       .Optional("type", T::kSocketType)
                       .Optional("protocol", T::kUint)
                       .MakesSocket()
                       .NeedsAgent()
                       .NeedsSaveAs());
  kinds->push_back(
      StepKind("bind", Bind).Required("address", T::kAddress).OnSocket());
  kinds->push_back(StepKind("listen", Listen)
                       .Optional("backlog", T::kUint)
                       .Shorthand("socket")
                       .OnSocket());
  kinds->push_back(
      StepKind("accept", Accept).Shorthand("socket").OnSocket().MakesSocket());
  kinds->push_back(
      StepKind("connect", Connect).Required("address", T::kAddress).OnSocket());
  kinds->push_back(StepKind("send", Send).TakesData().OnSocket().Sends());
  kinds->push_back(StepKind("sendall", SendAll).TakesData().OnSocket().Sends());
  kinds->push_back(StepKind("recv", Recv)
                       .Optional("max", T::kSize)
                       .Optional("flags", T::kFlags)
                       .Shorthand("socket")
                       .OnSocket()
                       .Receives());
  kinds->push_back(StepKind("recv_stream", RecvStream)
                       .Optional("bytes", T::kSize)
                       .Optional("chunk", T::kSize)
                       .Shorthand("socket")
                       .OnSocket()
                       .Receives());
  kinds->push_back(StepKind("sendto", SendTo)
                       .Required("address", T::kAddress)
                       .TakesData()
                       .OnSocket()
                       .Sends());
  kinds->push_back(StepKind("recvfrom", RecvFrom)
                       .Optional("max", T::kSize)
                       .Shorthand("socket")
                       .OnSocket()
                       .Receives());
  kinds->push_back(
      StepKind("shutdown", Shutdown).Required("how", T::kHow).OnSocket());
  kinds->push_back(StepKind("close", Close).Shorthand("socket").OnSocket());
  kinds->push_back(StepKind("setsockopt", SetSockOpt)
                       .Required("option", T::kOption)
                       .Required("value", T::kOptionValue)
                       .OnSocket());
  kinds->push_back(StepKind("getsockopt", GetSockOpt)
                       .Required("option", T::kOption)
                       .OnSocket());
  kinds->push_back(
      StepKind("getsockname", GetSockName).Shorthand("socket").OnSocket());
  kinds->push_back(
      StepKind("getpeername", GetPeerName).Shorthand("socket").OnSocket());
  kinds->push_back(StepKind("settimeout", SetTimeout)
                       .Required("timeout", T::kTimeout)
                       .OnSocket());
  kinds->push_back(
      StepKind("gettimeout", GetTimeout).Shorthand("socket").OnSocket());
  kinds->push_back(StepKind("gethostname", GetHostname).NeedsAgent());
  kinds->push_back(StepKind("getaddrinfo", GetAddrInfo)
                       .Required("host", T::kString)
                       .Optional("port", T::kString)
                       .Optional("family", T::kFamily)
                       .Optional("type", T::kSocketType)
                       .Shorthand("host")
                       .NeedsAgent());
  kinds->push_back(StepKind("list_sockets", ListSockets).NeedsAgent());
}

}  // namespace sockagent::scenario
