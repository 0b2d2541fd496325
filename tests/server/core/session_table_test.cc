// Tests for server/core/session_table.h. Time is injected: no test waits.

#include "server/core/session_table.h"

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/closed_handles.h"

namespace sockagent {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::StartsWith;
using ::testing::UnorderedElementsAre;

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

class SessionTableTest : public ::testing::Test {
 protected:
  SessionTable::Options DefaultOptions() {
    SessionTable::Options options;
    options.default_ttl = absl::Seconds(5);
    options.max_ttl = absl::Seconds(60);
    options.max_sessions = 3;
    return options;
  }

  std::shared_ptr<Session> MustCreate(SessionTable& table, absl::Duration ttl,
                                      absl::Time now) {
    absl::StatusOr<std::shared_ptr<Session>> session =
        table.Create(ttl, "test", now);
    EXPECT_TRUE(session.ok()) << session.status();
    return session.ok() ? *session : nullptr;
  }

  IdIssuer ids_{0x5e55105e55105e55ULL};
};

std::shared_ptr<ManagedSocket> SocketNamed(const std::string& handle) {
  // The table only files sockets by handle; no descriptor is needed.
  return std::make_shared<ManagedSocket>(handle, nullptr);
}

TEST_F(SessionTableTest, CreatedSessionsHaveDistinctWellFormedIds) {
  SessionTable table(DefaultOptions(), &ids_);
  std::set<std::string> seen;
  for (int i = 0; i < 3; ++i) {
    std::shared_ptr<Session> session = MustCreate(table, absl::Seconds(5), kT0);
    ASSERT_NE(session, nullptr);
    EXPECT_TRUE(ids_.Check(session->id(), "session").ok()) << session->id();
    EXPECT_TRUE(seen.insert(session->id()).second) << session->id();
  }
  EXPECT_EQ(table.size(), 3u);
}

TEST_F(SessionTableTest, RenewWithinTheLeaseExtendsIt) {
  SessionTable table(DefaultOptions(), &ids_);
  std::shared_ptr<Session> session = MustCreate(table, absl::Seconds(5), kT0);
  ASSERT_NE(session, nullptr);

  absl::StatusOr<std::shared_ptr<Session>> renewed =
      table.Renew(session->id(), kT0 + absl::Seconds(4));
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(*renewed, session);
  EXPECT_EQ(session->expiry(), kT0 + absl::Seconds(9));

  EXPECT_THAT(table.TakeExpired(kT0 + absl::Milliseconds(8900)), IsEmpty());
  EXPECT_EQ(table.size(), 1u);
  std::vector<std::shared_ptr<Session>> expired =
      table.TakeExpired(kT0 + absl::Seconds(9));
  ASSERT_THAT(expired, SizeIs(1));
  EXPECT_EQ(expired[0], session);
  EXPECT_EQ(table.size(), 0u);
}

TEST_F(SessionTableTest, LeaseEndsExactlyAtItsTtlWithoutRenewal) {
  SessionTable table(DefaultOptions(), &ids_);
  std::shared_ptr<Session> session = MustCreate(table, absl::Seconds(5), kT0);
  ASSERT_NE(session, nullptr);
  EXPECT_THAT(table.TakeExpired(kT0 + absl::Seconds(5) - absl::Nanoseconds(1)),
              IsEmpty());
  EXPECT_THAT(table.TakeExpired(kT0 + absl::Seconds(5)), SizeIs(1));
}

TEST_F(SessionTableTest, TakeExpiredReturnsOnlyLapsedSessions) {
  SessionTable table(DefaultOptions(), &ids_);
  std::shared_ptr<Session> short_lived =
      MustCreate(table, absl::Seconds(1), kT0);
  std::shared_ptr<Session> long_lived =
      MustCreate(table, absl::Seconds(10), kT0);

  EXPECT_THAT(table.TakeExpired(kT0 + absl::Seconds(2)),
              UnorderedElementsAre(short_lived));
  EXPECT_THAT(table.TakeExpired(kT0 + absl::Seconds(2)), IsEmpty());
  EXPECT_TRUE(table.Renew(long_lived->id(), kT0 + absl::Seconds(2)).ok());
}

TEST_F(SessionTableTest, RenewingEarlierNeverShortensTheLease) {
  SessionTable table(DefaultOptions(), &ids_);
  std::shared_ptr<Session> session = MustCreate(table, absl::Seconds(5), kT0);
  ASSERT_TRUE(table.Renew(session->id(), kT0 + absl::Seconds(4)).ok());
  // A call stamped earlier (another thread's clock read) arrives late.
  ASSERT_TRUE(table.Renew(session->id(), kT0 + absl::Seconds(1)).ok());
  EXPECT_EQ(session->expiry(), kT0 + absl::Seconds(9));
}

TEST_F(SessionTableTest, RenewOfAnExpiredSessionIsNotFoundEvenBeforeReaping) {
  SessionTable table(DefaultOptions(), &ids_);
  std::shared_ptr<Session> session = MustCreate(table, absl::Seconds(5), kT0);

  absl::StatusOr<std::shared_ptr<Session>> renewed =
      table.Renew(session->id(), kT0 + absl::Seconds(5));

  EXPECT_EQ(renewed.status().code(), absl::StatusCode::kNotFound)
      << renewed.status();
  EXPECT_THAT(std::string(renewed.status().message()), StartsWith("session: "));
  // The failed renewal did not revive it.
  EXPECT_EQ(session->expiry(), kT0 + absl::Seconds(5));
  EXPECT_THAT(table.TakeExpired(kT0 + absl::Seconds(5)), SizeIs(1));
}

TEST_F(SessionTableTest, RenewOfUnknownIdIsNotFound) {
  SessionTable table(DefaultOptions(), &ids_);
  absl::StatusOr<std::shared_ptr<Session>> renewed =
      table.Renew(ids_.Next(), kT0);
  EXPECT_EQ(renewed.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(renewed.status().message()),
              HasSubstr("CreateSession"));
}

TEST_F(SessionTableTest, RenewOfMalformedIdIsInvalidArgumentNamingSession) {
  SessionTable table(DefaultOptions(), &ids_);
  for (const char* bad : {"", "not-an-id", "5e55105e.1"}) {
    absl::StatusOr<std::shared_ptr<Session>> renewed = table.Renew(bad, kT0);
    EXPECT_EQ(renewed.status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
    EXPECT_THAT(std::string(renewed.status().message()),
                StartsWith("session: "))
        << bad;
  }
}

TEST_F(SessionTableTest, RenewOfAnEarlierIncarnationsIdSaysTheAgentRestarted) {
  IdIssuer earlier(0x0123456789abcdefULL);
  SessionTable table(DefaultOptions(), &ids_);
  absl::StatusOr<std::shared_ptr<Session>> renewed =
      table.Renew(earlier.Next(), kT0);
  EXPECT_EQ(renewed.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(renewed.status().message()), HasSubstr("restarted"));
}

TEST_F(SessionTableTest, CreatingPastMaxSessionsIsResourceExhausted) {
  SessionTable table(DefaultOptions(), &ids_);  // max_sessions = 3
  std::vector<std::shared_ptr<Session>> sessions;
  for (int i = 0; i < 3; ++i) {
    sessions.push_back(MustCreate(table, absl::ZeroDuration(), kT0));
  }

  absl::StatusOr<std::shared_ptr<Session>> fourth =
      table.Create(absl::ZeroDuration(), "one too many", kT0);

  EXPECT_EQ(fourth.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(fourth.status().message()),
              HasSubstr("max_sessions"));
  EXPECT_EQ(table.size(), 3u);

  // Room again once one is gone.
  ASSERT_NE(table.Remove(sessions[0]->id()), nullptr);
  EXPECT_TRUE(table.Create(absl::ZeroDuration(), "", kT0).ok());
}

TEST_F(SessionTableTest, ZeroTtlMeansTheDefault) {
  SessionTable table(DefaultOptions(), &ids_);
  std::shared_ptr<Session> session =
      MustCreate(table, absl::ZeroDuration(), kT0);
  ASSERT_NE(session, nullptr);
  EXPECT_EQ(session->ttl(), absl::Seconds(5));
  EXPECT_EQ(session->expiry(), kT0 + absl::Seconds(5));
}

TEST_F(SessionTableTest, TtlAboveTheMaximumIsClamped) {
  SessionTable table(DefaultOptions(), &ids_);  // max_ttl = 60 s
  std::shared_ptr<Session> session = MustCreate(table, absl::Hours(2), kT0);
  ASSERT_NE(session, nullptr);
  EXPECT_EQ(session->ttl(), absl::Seconds(60));
  EXPECT_EQ(session->expiry(), kT0 + absl::Seconds(60));
  EXPECT_THAT(table.TakeExpired(kT0 + absl::Seconds(60)), SizeIs(1));
}

TEST_F(SessionTableTest, NegativeTtlIsInvalidArgumentNamingTtl) {
  SessionTable table(DefaultOptions(), &ids_);
  absl::StatusOr<std::shared_ptr<Session>> session =
      table.Create(-absl::Seconds(1), "", kT0);
  EXPECT_EQ(session.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(session.status().message()), StartsWith("ttl: "));
  EXPECT_EQ(table.size(), 0u);
}

TEST_F(SessionTableTest, OverlongLabelIsInvalidArgumentNamingLabel) {
  SessionTable table(DefaultOptions(), &ids_);
  EXPECT_TRUE(
      table.Create(absl::ZeroDuration(), std::string(256, 'l'), kT0).ok());
  absl::StatusOr<std::shared_ptr<Session>> session =
      table.Create(absl::ZeroDuration(), std::string(257, 'l'), kT0);
  EXPECT_EQ(session.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(session.status().message()), StartsWith("label: "));
}

TEST_F(SessionTableTest, RemoveReturnsTheSessionOnceThenNull) {
  SessionTable table(DefaultOptions(), &ids_);
  std::shared_ptr<Session> session = MustCreate(table, absl::Seconds(5), kT0);
  EXPECT_EQ(table.Remove(session->id()), session);
  EXPECT_EQ(table.Remove(session->id()), nullptr);
  EXPECT_EQ(table.Renew(session->id(), kT0).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SessionTableTest, TakeAllEmptiesTheTable) {
  SessionTable table(DefaultOptions(), &ids_);
  std::shared_ptr<Session> a = MustCreate(table, absl::Seconds(5), kT0);
  std::shared_ptr<Session> b = MustCreate(table, absl::Seconds(50), kT0);
  EXPECT_THAT(table.TakeAll(), UnorderedElementsAre(a, b));
  EXPECT_EQ(table.size(), 0u);
  EXPECT_THAT(table.TakeAll(), IsEmpty());
}

TEST_F(SessionTableTest, AWaitingCallKeepsItsSessionPastTheLease) {
  SessionTable table(DefaultOptions(), &ids_);
  std::shared_ptr<Session> session = MustCreate(table, absl::Seconds(5), kT0);
  absl::StatusOr<uint64_t> call = session->BeginCall(kT0 + absl::Seconds(1));
  ASSERT_TRUE(call.ok()) << call.status();

  // Long past the lease: neither reaped nor unknown.
  const absl::Time later = kT0 + absl::Minutes(10);
  EXPECT_THAT(table.TakeExpired(later), IsEmpty());
  EXPECT_TRUE(table.Renew(session->id(), later, /*renew=*/false).ok());
  EXPECT_EQ(session->waiting_calls(), 1u);

  // The lease restarts when the call ends.
  session->EndCall(*call, later);
  EXPECT_EQ(session->expiry(), later + absl::Seconds(5));
  EXPECT_THAT(table.TakeExpired(later + absl::Seconds(4)), IsEmpty());
  EXPECT_THAT(table.TakeExpired(later + absl::Seconds(5)), SizeIs(1));
}

TEST_F(SessionTableTest, TheLeaseRestartsOnlyWhenTheLastWaitingCallEnds) {
  SessionTable table(DefaultOptions(), &ids_);
  std::shared_ptr<Session> session = MustCreate(table, absl::Seconds(5), kT0);
  absl::StatusOr<uint64_t> first = session->BeginCall(kT0);
  absl::StatusOr<uint64_t> second = session->BeginCall(kT0);
  ASSERT_TRUE(first.ok() && second.ok());
  session->EndCall(*first, kT0 + absl::Seconds(20));
  EXPECT_THAT(table.TakeExpired(kT0 + absl::Seconds(60)), IsEmpty());
  session->EndCall(*second, kT0 + absl::Seconds(60));
  EXPECT_THAT(table.TakeExpired(kT0 + absl::Seconds(64)), IsEmpty());
  EXPECT_THAT(table.TakeExpired(kT0 + absl::Seconds(65)), SizeIs(1));
}

TEST_F(SessionTableTest, ALapsedOrClosedSessionTakesNoWaitingCall) {
  SessionTable table(DefaultOptions(), &ids_);
  std::shared_ptr<Session> lapsed = MustCreate(table, absl::Seconds(5), kT0);
  EXPECT_EQ(lapsed->BeginCall(kT0 + absl::Seconds(5)).status().code(),
            absl::StatusCode::kAborted);
  std::shared_ptr<Session> closed = MustCreate(table, absl::Seconds(5), kT0);
  closed->Close();
  EXPECT_EQ(closed->BeginCall(kT0).status().code(), absl::StatusCode::kAborted);
}

TEST_F(SessionTableTest, SkipsRenewalWhenAskedTo) {
  SessionTable table(DefaultOptions(), &ids_);
  std::shared_ptr<Session> session = MustCreate(table, absl::Seconds(5), kT0);
  ASSERT_TRUE(
      table.Renew(session->id(), kT0 + absl::Seconds(4), /*renew=*/false).ok());
  EXPECT_EQ(session->expiry(), kT0 + absl::Seconds(5));
}

TEST(SessionTest, CloseHandsTheWaitingCallsEndCallbacksOver) {
  Session session("s", "", absl::Seconds(5), kT0);
  int ended = 0;
  ASSERT_TRUE(session.BeginCall(kT0, [&](absl::Status) { ++ended; }).ok());
  ASSERT_TRUE(session.BeginCall(kT0).ok());  // without a callback
  absl::StatusOr<uint64_t> finished =
      session.BeginCall(kT0, [&](absl::Status) { ended += 100; });
  ASSERT_TRUE(finished.ok());
  session.EndCall(*finished, kT0);  // its callback never runs

  session.Close();
  std::vector<SessionEndCallback> callbacks = session.TakeEndCallbacks();
  ASSERT_THAT(callbacks, SizeIs(1));
  callbacks[0](absl::AbortedError("closed"));
  EXPECT_EQ(ended, 1);
  EXPECT_THAT(session.TakeEndCallbacks(), IsEmpty());
}

TEST(SessionTest, OnlyASessionCreatedToBeBoundBindsAndOnlyToOneCall) {
  Session lease_only("a", "", absl::Seconds(5), kT0);
  absl::StatusOr<uint64_t> call = lease_only.BeginCall(kT0);
  ASSERT_TRUE(call.ok());
  absl::Status refused = lease_only.Bind(*call);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("bind_to_connection"));

  Session bindable("b", "", absl::Seconds(5), kT0, /*bind_to_connection=*/true);
  absl::StatusOr<uint64_t> first = bindable.BeginCall(kT0);
  absl::StatusOr<uint64_t> second = bindable.BeginCall(kT0);
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_TRUE(bindable.Bind(*first).ok());
  EXPECT_TRUE(bindable.bound());
  EXPECT_TRUE(bindable.BoundTo(*first));
  EXPECT_EQ(bindable.Bind(*second).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_FALSE(bindable.Unbind(*second));
  EXPECT_TRUE(bindable.Unbind(*first));
  EXPECT_FALSE(bindable.bound());
  ASSERT_TRUE(bindable.Bind(*second).ok());
  bindable.EndCall(*second, kT0);  // the binding call ended
  EXPECT_FALSE(bindable.bound());
}

TEST(SessionTest, AddFindRemoveAndList) {
  Session session("s", "label", absl::Seconds(5), kT0);
  std::shared_ptr<ManagedSocket> a = SocketNamed("a");
  std::shared_ptr<ManagedSocket> b = SocketNamed("b");
  ASSERT_TRUE(session.Add(a, 10).ok());
  ASSERT_TRUE(session.Add(b, 10).ok());

  EXPECT_EQ(session.Find("a"), a);
  EXPECT_EQ(session.Find("c"), nullptr);
  EXPECT_THAT(session.List(), UnorderedElementsAre(a, b));
  EXPECT_EQ(session.Remove("a"), a);
  EXPECT_EQ(session.Remove("a"), nullptr);
  EXPECT_EQ(session.Find("a"), nullptr);
  EXPECT_EQ(session.size(), 1u);
}

TEST(SessionTest, AddBeyondThePerSessionQuotaIsResourceExhausted) {
  Session session("s", "", absl::Seconds(5), kT0);
  ASSERT_TRUE(session.Add(SocketNamed("a"), 2).ok());
  ASSERT_TRUE(session.Add(SocketNamed("b"), 2).ok());

  absl::Status third = session.Add(SocketNamed("c"), 2);

  EXPECT_EQ(third.code(), absl::StatusCode::kResourceExhausted) << third;
  EXPECT_THAT(std::string(third.message()),
              HasSubstr("max_sockets_per_session"));
  EXPECT_EQ(session.size(), 2u);
  EXPECT_EQ(session.Find("c"), nullptr);
}

TEST(SessionTest, CloseReturnsEverySocketAndLaterAddIsAborted) {
  Session session("s", "", absl::Seconds(5), kT0);
  std::shared_ptr<ManagedSocket> a = SocketNamed("a");
  ASSERT_TRUE(session.Add(a, 10).ok());

  EXPECT_THAT(session.Close(), UnorderedElementsAre(a));
  EXPECT_EQ(session.size(), 0u);

  absl::Status added = session.Add(SocketNamed("b"), 10);
  EXPECT_EQ(added.code(), absl::StatusCode::kAborted) << added;
  EXPECT_EQ(session.size(), 0u);
  EXPECT_THAT(session.Close(), IsEmpty());
}

TEST(SessionTest, RemovedHandlesAreRememberedAsClosed) {
  Session session("s", "", absl::Seconds(5), kT0);
  ASSERT_TRUE(session.Add(SocketNamed("a"), 10).ok());
  EXPECT_FALSE(session.WasClosed("a"));
  ASSERT_NE(session.Remove("a"), nullptr);
  EXPECT_TRUE(session.WasClosed("a"));
  EXPECT_FALSE(session.WasClosed("b")) << "never held";
}

TEST(ClosedHandlesTest, KeepsOnlyTheLastCapacityHandles) {
  ClosedHandles closed(3);
  for (const char* handle : {"a", "b", "c", "d"}) closed.Add(handle);
  EXPECT_EQ(closed.size(), 3u);
  EXPECT_FALSE(closed.Contains("a")) << "the oldest is forgotten";
  EXPECT_TRUE(closed.Contains("b"));
  EXPECT_TRUE(closed.Contains("d"));
  closed.Add("d");  // already there: no growth, nothing evicted
  EXPECT_EQ(closed.size(), 3u);
  EXPECT_TRUE(closed.Contains("b"));
  for (int i = 0; i < 10000; ++i) closed.Add(std::to_string(i));
  EXPECT_EQ(closed.size(), 3u);
  EXPECT_TRUE(closed.Contains("9999"));
}

TEST(ManagedSocketTest, StartsOpenBlockingAndUncounted) {
  ManagedSocket socket("h", nullptr);
  EXPECT_EQ(socket.handle(), "h");
  EXPECT_EQ(socket.state(), v1::SOCKET_STATE_OPEN);
  EXPECT_FALSE(socket.timeout().has_value());
  EXPECT_EQ(socket.bytes_sent.load(), 0u);
  socket.set_timeout(absl::ZeroDuration());
  socket.set_state(v1::SOCKET_STATE_BOUND);
  EXPECT_EQ(socket.timeout(), absl::ZeroDuration());
  EXPECT_EQ(socket.state(), v1::SOCKET_STATE_BOUND);
}

}  // namespace
}  // namespace sockagent
