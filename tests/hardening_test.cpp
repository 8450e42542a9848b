// The reader against hostile inputs (shared/reference/hardening.md §1.3): deep nesting, shared-
// reference amplification, memo abuse, lengths larger than the input, and the configured limits.
// Every load here must finish quickly, in bounded memory, with a value or a typed error.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <sstream>
#include <string>

#include "pickle/errors.hpp"
#include "pickle/reader.hpp"
#include "pickle/value.hpp"

namespace {

using namespace std::string_literals;
using Clock = std::chrono::steady_clock;

// A hang guard, generous enough for sanitizer builds on a loaded machine: the plain build takes
// milliseconds for everything here but the million-deep list (about a second, page faults included).
constexpr double time_budget_seconds = 10.0;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string le(std::uint64_t v, int bytes) {
  std::string out;
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  return out;
}

// Runs a load expected to fail and returns the error.
template <class Load>
pickle::UnpicklingError expect_failure(Load&& load) {
  try {
    load();
  } catch (const pickle::UnpicklingError& e) {
    return e;
  }
  ADD_FAILURE() << "the load did not fail";
  return pickle::UnpicklingError(pickle::PyExc::UnpicklingError, "");
}

TEST(Hardening, MillionDeepNestedListLoadsComparesAndIsDestroyed) {
  constexpr std::size_t depth = 1'000'000;
  std::string data = "\x80\x02";
  data.append(depth, ']');
  data.append(depth - 1, 'a');
  data.push_back('.');
  const auto start = Clock::now();
  {
    pickle::Value a = pickle::loads(data);
    pickle::Value b = pickle::loads(data);
    EXPECT_TRUE(a == b);
    EXPECT_FALSE(a.is(b));
    pickle::Value walk = a;
    std::size_t levels = 1;
    while (walk.size() == 1) {
      walk = walk[0];
      ++levels;
    }
    EXPECT_EQ(levels, depth);
    EXPECT_EQ(walk.kind(), pickle::Kind::list);
    EXPECT_EQ(walk.size(), 0u);
  }
  EXPECT_LT(seconds_since(start), time_budget_seconds);
}

std::string memo_doubling_bomb(int doublings) {
  std::string data = "\x80\x02Nq\x00"s;
  for (int i = 0; i < doublings; ++i) data += "0h\x00h\x00\x86q\x00"s;
  return data;
}

TEST(Hardening, MemoDoublingBombLoadsQuickly) {
  const std::string data = memo_doubling_bomb(40) + ".";
  EXPECT_LT(data.size(), 400u);
  const auto start = Clock::now();
  pickle::Value v = pickle::loads(data);
  // 2**40 logical leaves, 41 nodes: every level is one tuple holding the level below twice.
  pickle::Value level = v;
  for (int i = 0; i < 40; ++i) {
    ASSERT_EQ(level.kind(), pickle::Kind::tuple);
    ASSERT_EQ(level.size(), 2u);
    EXPECT_TRUE(level[0].is(level[1]));
    level = level[0];
  }
  EXPECT_TRUE(level.is_none());
  EXPECT_TRUE(same_graph(v, pickle::loads(data)));
  EXPECT_LT(seconds_since(start), time_budget_seconds);
}

TEST(Hardening, MemoDoublingTupleAsDictKeyDoesNotHang) {
  // {bomb: None}, then the same key again through a second SETITEM: hashing and comparing the
  // shared DAG must be linear in its nodes.
  const std::string data = memo_doubling_bomb(40) + "0}h\x00Ns"s + memo_doubling_bomb(40).substr(2) +
                           "0h\x00K\x01s."s;
  const auto start = Clock::now();
  pickle::Value d = pickle::loads(data);
  ASSERT_EQ(d.kind(), pickle::Kind::dict);
  // The second bomb is a distinct but equal tuple: it replaces the value of the same key.
  EXPECT_EQ(d.size(), 1u);
  EXPECT_EQ(d.dict_items()[0].second.as_int64(), 1);
  EXPECT_LT(seconds_since(start), time_budget_seconds);
}

TEST(Hardening, BillionLaughsLoadsQuickly) {
  // Ten levels, each a list of ten references to the level below: 10**10 logical leaves.
  std::string data = "\x80\x04\x8c\x03lol\x94";
  for (int level = 1; level <= 10; ++level) {
    data += "(";
    for (int i = 0; i < 10; ++i) data += "h" + std::string(1, static_cast<char>(level - 1));
    data += "l\x94";
  }
  data += ".";
  EXPECT_LT(data.size(), 300u);
  const auto start = Clock::now();
  pickle::Value v = pickle::loads(data);
  pickle::Value level = v;
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(level.kind(), pickle::Kind::list);
    ASSERT_EQ(level.size(), 10u);
    EXPECT_TRUE(level[0].is(level[9]));
    level = level[0];
  }
  EXPECT_EQ(level.as_str(), "lol");
  EXPECT_TRUE(v == pickle::loads(data));
  EXPECT_LT(seconds_since(start), time_budget_seconds);
}

TEST(Hardening, FarAwayMemoIndicesUseConstantMemory) {
  const auto start = Clock::now();
  // ]r\xff\xff\xff\xff. : a PUT at 2**32-1 loads (CPython 3.11 runs out of memory).
  pickle::Value v = pickle::loads(std::string("]r\xff\xff\xff\xff.", 7));
  EXPECT_EQ(v.kind(), pickle::Kind::list);
  // ]replace. : LONG_BINPUT at 0x616c7065, then a GLOBAL line that never ends.
  const auto error = expect_failure([] { pickle::loads("]replace."); });
  EXPECT_STREQ(error.what(), "pickle data was truncated");
  // Many sparse indices, read back through LONG_BINGET.
  std::string data = "(";
  for (std::uint64_t i = 0; i < 20000; ++i) {
    data += "K" + std::string(1, static_cast<char>(i % 200)) + "r" + le(0xFFFFFFFFu - i * 7919, 4) + "0";
  }
  for (std::uint64_t i = 0; i < 20000; i += 997) data += "j" + le(0xFFFFFFFFu - i * 7919, 4);
  data += "t.";
  pickle::Value t = pickle::loads(data);
  ASSERT_EQ(t.size(), 21u);
  for (std::size_t k = 0; k < t.size(); ++k) EXPECT_EQ(t[k].as_int64(), static_cast<std::int64_t>((k * 997) % 200));
  EXPECT_LT(seconds_since(start), time_budget_seconds);
}

TEST(Hardening, DeclaredLengthsBeyondTheInputFailWithoutAllocating) {
  const std::string cases[] = {
      std::string("X\xff\xff\xff\xff", 5) + "abc.",                    // BINUNICODE 2**32-1
      "\x8e" + le(std::uint64_t{1} << 62, 8) + "abc.",                 // BINBYTES8 2**62
      "\x8d" + le(std::uint64_t{1} << 62, 8) + "abc.",                 // BINUNICODE8
      "\x96" + le(std::uint64_t{1} << 62, 8) + "abc.",                 // BYTEARRAY8
      "\x95" + le(std::uint64_t{1} << 62, 8) + "N.",                   // FRAME
      std::string("\x8b\xff\xff\xff\x7f", 5) + "abc.",                 // LONG4 2**31-1
      std::string("T\xff\xff\xff\xff", 5) + "abc.",                    // BINSTRING "negative"
      std::string("T\x00\x00\x00\x80", 5) + "abc.",
      std::string("B\xff\xff\xff\xff", 5) + "abc.",                    // BINBYTES
  };
  const auto start = Clock::now();
  for (const std::string& data : cases) {
    const auto error = expect_failure([&] { pickle::loads(data); });
    EXPECT_EQ(error.python_class(), pickle::PyExc::UnpicklingError) << data;
    EXPECT_STREQ(error.what(), "pickle data was truncated");
    EXPECT_EQ(error.offset(), 0u);
    // The same through a stream, which reads in bounded chunks as data arrives.
    std::istringstream stream(data);
    pickle::Unpickler unpickler(stream);
    const auto stream_error = expect_failure([&] { unpickler.load(); });
    EXPECT_STREQ(stream_error.what(), "pickle data was truncated");
  }
  // LONG4 with a negative count is refused outright.
  const auto negative = expect_failure([] { pickle::loads(std::string("\x8b\xff\xff\xff\xff.", 6)); });
  EXPECT_STREQ(negative.what(), "LONG pickle has negative byte count");
  EXPECT_LT(seconds_since(start), time_budget_seconds);
}

TEST(Hardening, LargeStreamPayloadArrivesInChunks) {
  const std::string payload(5 << 20, 'z');
  std::string data = "\x8e" + le(payload.size(), 8) + payload + "." + "K\x07.";
  std::istringstream stream(data);
  pickle::Unpickler unpickler(stream);
  pickle::Value v = unpickler.load();
  EXPECT_EQ(v.as_bytes().size(), payload.size());
  EXPECT_EQ(unpickler.position(), 9 + payload.size() + 1);
  EXPECT_EQ(unpickler.load().as_int64(), 7);
  EXPECT_TRUE(unpickler.at_end());
}

TEST(Hardening, ManyAppendsToABytearrayStayLinear) {
  std::string data = "\x80\x05\x96"s + le(0, 8);
  for (int i = 0; i < 300000; ++i) data += "K\x41" "a";
  data += ".";
  const auto start = Clock::now();
  const pickle::Value v = pickle::loads(data);
  EXPECT_EQ(v.kind(), pickle::Kind::bytearray);
  EXPECT_EQ(v.as_bytes(), std::string(300000, 'A'));
  EXPECT_LT(seconds_since(start), time_budget_seconds);
}

// --- limits ------------------------------------------------------------------------------------

pickle::ReadOptions with_limits(void (*configure)(pickle::Limits&)) {
  pickle::ReadOptions options;
  configure(options.limits);
  return options;
}

std::string expect_limit(const std::string& data, const pickle::ReadOptions& options) {
  try {
    pickle::loads(data, options);
  } catch (const pickle::LimitError& e) {
    return e.limit();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a LimitError: " << e.what();
    return {};
  }
  ADD_FAILURE() << "no LimitError";
  return {};
}

TEST(Limits, EachLimitIsEnforcedAndNamed) {
  EXPECT_EQ(expect_limit(std::string(100, 'N') + ".",
                         with_limits([](pickle::Limits& l) { l.max_stack = 50; })),
            "max_stack");
  EXPECT_EQ(expect_limit(std::string(100, '(') + ".",
                         with_limits([](pickle::Limits& l) { l.max_stack = 50; })),
            "max_stack");
  EXPECT_EQ(expect_limit(std::string(100, ']') + ".",
                         with_limits([](pickle::Limits& l) { l.max_depth = 10; })),
            "max_depth");
  EXPECT_EQ(expect_limit("Nq\x01q\x02q\x03.", with_limits([](pickle::Limits& l) { l.max_memo_entries = 2; })),
            "max_memo_entries");
  EXPECT_EQ(expect_limit(std::string("Nr\x00\x00\x01\x00.", 7),
                         with_limits([](pickle::Limits& l) { l.max_memo_index = 0xFFFF; })),
            "max_memo_index");
  EXPECT_EQ(expect_limit("Vaa\np99999999999\n.", pickle::ReadOptions{}), "max_memo_index");
  EXPECT_EQ(expect_limit("(]]]]]]]]]]l.", with_limits([](pickle::Limits& l) { l.max_nodes = 5; })),
            "max_nodes");
  EXPECT_EQ(expect_limit("N" + std::string(100, 'N') + ".",
                         with_limits([](pickle::Limits& l) { l.max_input_bytes = 10; })),
            "max_input_bytes");
  EXPECT_EQ(expect_limit("L" + std::string(50, '7') + "L\n.",
                         with_limits([](pickle::Limits& l) { l.max_text_int_digits = 40; })),
            "max_text_int_digits");
  // DUP turns each input byte into a 16-byte tuple slot: eight times the allowed ratio of 2.
  const std::string amplify = "(N" + std::string(std::size_t{1} << 20, '2') + "t.";
  EXPECT_EQ(expect_limit(amplify, with_limits([](pickle::Limits& l) { l.max_alloc_ratio = 2; })),
            "max_alloc_ratio");
}

// LONG1 of a non-negative int (minimal two's complement, little-endian).
std::string long1(pickle::BigInt value) {
  std::string bytes;
  while (value != 0) {
    bytes += static_cast<char>(static_cast<unsigned>(value & 0xFF));
    value >>= 8;
  }
  if (bytes.empty() || (static_cast<unsigned char>(bytes.back()) & 0x80) != 0) bytes += '\0';
  return "\x8a"s + static_cast<char>(bytes.size()) + bytes;
}

// Every multiple of 2**61 - 1 has Python's hash 0, so n such keys cost n*n/2 probes to insert; the
// load stops at the work budget, which grows with the input (a few hundred KB here).
TEST(Limits, HashCollisionFloodsStopAtTheWorkBudget) {
  const pickle::BigInt modulus = (pickle::BigInt(1) << 61) - 1;
  std::string keys;
  for (unsigned i = 0; i < 20'000; ++i) keys += long1(modulus * i);
  std::string tuple_keys;
  for (unsigned i = 0; i < 20'000; ++i) tuple_keys += long1(modulus * i) + "\x85";  // TUPLE1
  const std::vector<std::pair<std::string, std::string>> floods{
      {"set", "\x80\x04\x8f(" + keys + "\x90."},
      {"frozenset", "\x80\x04(" + keys + "\x91."},
      {"set of 1-tuples", "\x80\x04\x8f(" + tuple_keys + "\x90."},
  };
  std::string dict_items;
  for (unsigned i = 0; i < 20'000; ++i) dict_items += long1(modulus * i) + "N";
  for (const auto& [name, data] : floods) {
    SCOPED_TRACE(name);
    EXPECT_EQ(expect_limit(data, pickle::ReadOptions{}), "hash_work_budget");
  }
  EXPECT_EQ(expect_limit("\x80\x04}(" + dict_items + "u.", pickle::ReadOptions{}), "hash_work_budget");
  // The same keys without collisions load; so do the colliding ones with a budget large enough.
  std::string distinct;
  for (unsigned i = 0; i < 20'000; ++i) distinct += long1((modulus + 1) * i);
  EXPECT_EQ(pickle::loads("\x80\x04\x8f(" + distinct + "\x90.").size(), 20'000u);
  pickle::ReadOptions generous;
  generous.limits.hash_work_budget = std::size_t(1) << 30;
  std::string few;
  for (unsigned i = 0; i < 3'000; ++i) few += long1(modulus * i);
  EXPECT_EQ(pickle::loads("\x80\x04\x8f(" + few + "\x90.", generous).size(), 3'000u);
}

TEST(Limits, TextIntegerLimitKeepsCPythonsClassAndMessage) {
  try {
    pickle::loads("L" + std::string(5000, '1') + "\n.");
    FAIL() << "no error";
  } catch (const pickle::LimitError& e) {
    EXPECT_EQ(e.python_class(), pickle::PyExc::ValueError);
    EXPECT_EQ(e.limit(), "max_text_int_digits");
  }
}

TEST(Limits, DefaultsLoadOrdinaryPickles) {
  EXPECT_NO_THROW(pickle::loads("\x80\x04\x95\x06\x00\x00\x00\x00\x00\x00\x00]\x94K\x01" "a."s));
}

}  // namespace
