// Zero-copy loads (pickle::loads(data, owner)): large bytes and str payloads are views into the
// input, the value keeps the input alive, and nothing else about the value changes.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "pickle/reader.hpp"
#include "pickle/value.hpp"
#include "pickle/writer.hpp"

namespace {

using pickle::Value;

bool points_into(std::string_view part, const std::string& whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

std::shared_ptr<const std::string> pickled(const Value& value, int protocol) {
  pickle::WriteOptions options;
  options.protocol = protocol;
  return std::make_shared<const std::string>(pickle::dumps(value, options));
}

std::string repeated(std::string_view piece, std::size_t times) {
  std::string out;
  for (std::size_t i = 0; i < times; ++i) out += piece;
  return out;
}

Value sample() {
  return Value::list({Value::bytes(std::string(5000, '\xab')), Value(std::string(6000, 's')),
                      Value::bytes("tiny"), Value("small"), Value::bytearray(std::string(7000, 'b')),
                      Value(repeated("\xc3\xa9", 2100))});
}

TEST(ZeroCopy, LargePayloadsAreViewsOfTheInputSmallOnesCopies) {
  for (int protocol : {3, 4, 5}) {
    SCOPED_TRACE(protocol);
    const auto input = pickled(sample(), protocol);
    const Value value = pickle::loads(*input, input);
    EXPECT_TRUE(points_into(value[0].as_bytes(), *input));
    EXPECT_TRUE(points_into(value[1].as_str(), *input));
    EXPECT_FALSE(points_into(value[2].as_bytes(), *input));
    EXPECT_FALSE(points_into(value[3].as_str(), *input));
    EXPECT_FALSE(points_into(value[4].as_bytes(), *input));  // bytearray: mutable, so copied
    EXPECT_TRUE(points_into(value[5].as_str(), *input));
  }
}

TEST(ZeroCopy, SameValueAndSameBytesWrittenBack) {
  for (int protocol : {2, 3, 4, 5}) {
    SCOPED_TRACE(protocol);
    const auto input = pickled(sample(), protocol);
    const Value copied = pickle::loads(*input);
    const Value viewed = pickle::loads(*input, input);
    EXPECT_TRUE(copied == viewed);
    EXPECT_TRUE(same_graph(copied, viewed));
    EXPECT_EQ(repr(copied), repr(viewed));
    EXPECT_EQ(copied[1].hash(), viewed[1].hash());
    EXPECT_EQ(*pickled(viewed, protocol), *input);
  }
}

TEST(ZeroCopy, TheValueKeepsTheInputAlive) {
  auto input = pickled(sample(), 5);
  const std::weak_ptr<const std::string> watch = input;
  Value part;
  {
    const Value value = pickle::loads(*input, input);
    part = value[1];
  }
  input.reset();
  EXPECT_FALSE(watch.expired());
  EXPECT_EQ(part.as_str(), std::string(6000, 's'));
  part = Value();
  EXPECT_TRUE(watch.expired());
}

TEST(ZeroCopy, ThresholdIsAnOptionAndNoOwnerMeansCopies) {
  const auto input = pickled(sample(), 5);
  pickle::ReadOptions options;
  options.zero_copy_min_bytes = 1;
  const Value value = pickle::loads(*input, input, options);
  EXPECT_TRUE(points_into(value[2].as_bytes(), *input));
  EXPECT_TRUE(points_into(value[3].as_str(), *input));
  const Value without_owner = pickle::loads(*input, nullptr, options);
  EXPECT_FALSE(points_into(without_owner[0].as_bytes(), *input));
}

TEST(ZeroCopy, InvalidUtf8IsStillRejected) {
  // BINUNICODE of 5000 bytes of 0xFF: the view is made only after validation.
  std::string data = "\x80\x04X";
  const std::uint32_t n = 5000;
  for (int i = 0; i < 4; ++i) data += static_cast<char>(n >> (8 * i));
  data += std::string(n, '\xff') + ".";
  const auto input = std::make_shared<const std::string>(data);
  EXPECT_THROW(pickle::loads(*input, input), pickle::UnpicklingError);
}

}  // namespace
