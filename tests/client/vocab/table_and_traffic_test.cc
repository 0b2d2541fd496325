#include "client/vocab/table.h"
#include "client/vocab/traffic.h"
#include "gtest/gtest.h"

namespace sockagent::vocab {
namespace {

TEST(TableTest, ColumnsArePaddedToTheWidestCellPlusTwo) {
  EXPECT_EQ(FormatTable({{"A", "BB"}, {"CCC", "D"}}), "A    BB\nCCC  D\n");
}

TEST(TrafficTest, ResultPrintsTheSameKeysAsTextAndJson) {
  v1::TrafficResponse response;
  response.set_bytes_received(1024);
  response.set_bytes_sent(2048);
  response.mutable_elapsed()->set_nanos(500000000);
  response.set_bytes_per_second(6144);
  response.set_checksum("0123456789abcdef");
  response.set_end(v1::TRAFFIC_END_EOF);
  EXPECT_EQ(FormatTraffic(response),
            "end=eof bytes_received=1024 bytes_sent=2048 datagrams_received=0 "
            "datagrams_sent=0 elapsed=500ms bytes_per_second=6144 "
            "checksum=0123456789abcdef");
  EXPECT_EQ(TrafficJson(response),
            "{\"end\":\"eof\",\"bytes_received\":1024,\"bytes_sent\":2048,"
            "\"datagrams_received\":0,\"datagrams_sent\":0,"
            "\"elapsed_s\":0.5,\"bytes_per_second\":6144,"
            "\"checksum\":\"0123456789abcdef\"}");
}

}  // namespace
}  // namespace sockagent::vocab
