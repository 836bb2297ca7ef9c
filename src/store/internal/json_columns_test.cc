#include "store/internal/json_columns.h"

#include <gtest/gtest.h>

namespace sked::store::store_internal {
namespace {

TEST(JsonColumnsTest, MapsAndListsComeBackAsTheyWent) {
  const std::map<std::string, std::string> env = {{"A", "1"}, {"QUOTE", "say \"hi\"\n"},
                                                  {"", "empty key"}, {"uni", "\u00e9t\u00e9"}};
  auto m = DecodeStringMap(EncodeStringMap(env));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(*m, env);

  const std::vector<std::string> command = {"sh", "-c", "echo \"$A\" \\ done", ""};
  auto l = DecodeStringList(EncodeStringList(command));
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(*l, command);
}

TEST(JsonColumnsTest, BytesThatAreNotUtf8AreReadBackUnchanged) {
  // A row some other writer filled must stay readable, byte for byte.
  auto m = DecodeStringMap("{\"k\":\"a\xff\xfe" "b\"}");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->at("k"), "a\xff\xfe" "b");
}

TEST(JsonColumnsTest, PairsKeepRepeatedKeysInOrder) {
  EXPECT_EQ(EncodeStringPairs({{"team", "a"}, {"team", "b"}}), R"([["team","a"],["team","b"]])");
  EXPECT_EQ(EncodeStringPairs({}), "[]");
}

TEST(JsonColumnsTest, AStoredValueOfAnotherShapeIsAnInternalError) {
  for (const char* text : {"[]", "{\"k\":1}", "not json", ""}) {
    auto m = DecodeStringMap(text);
    ASSERT_FALSE(m.ok()) << text;
    EXPECT_EQ(m.status().code(), core::StatusCode::kInternal) << text;
  }
  for (const char* text : {"{}", "[\"a\",null]", "[1]"}) {
    auto l = DecodeStringList(text);
    ASSERT_FALSE(l.ok()) << text;
    EXPECT_EQ(l.status().code(), core::StatusCode::kInternal) << text;
  }
}

}  // namespace
}  // namespace sked::store::store_internal
