// Tests of pickle::Value and its private layer (value_impl.hpp, unicode.hpp).
//
// Expected hashes and UTF-8 verdicts come from CPython through tests/gen_value_hash_cases.py and
// tests/gen_utf8_cases.py (outputs committed under tests/data/).
#include <bit>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "pickle/value.hpp"
#include "unicode.hpp"
#include "value_impl.hpp"

namespace {

using pickle::BigInt;
using pickle::Kind;
using pickle::Value;

std::string data_path(const std::string& name) {
  const char* root = std::getenv("PICKLE_TEST_DATA");
  return std::string(root != nullptr ? root : "tests") + "/data/" + name;
}

std::vector<std::string> read_lines(const std::string& name) {
  std::ifstream in(data_path(name));
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

std::vector<std::string> split(const std::string& line, char separator) {
  std::vector<std::string> fields;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, separator)) fields.push_back(field);
  return fields;
}

std::string from_hex(const std::string& hex) {
  std::string bytes;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return bytes;
}

BigInt big(const std::string& decimal) { return BigInt(decimal); }

// --- UTF-8 --------------------------------------------------------------------------------------

TEST(Utf8, MatchesCPythonSurrogatepassDecoder) {
  const auto lines = read_lines("utf8_cases.txt");
  ASSERT_GT(lines.size(), 1000u) << "missing " << data_path("utf8_cases.txt");
  for (const auto& line : lines) {
    const auto fields = split(line, '\t');
    const std::string input = fields.size() > 0 && fields[0] != "ok" ? from_hex(fields[0]) : "";
    const auto error = pickle::detail::check_utf8(input);
    if (fields.back() == "ok") {
      EXPECT_FALSE(error.has_value()) << line;
      EXPECT_NO_THROW(Value{input}) << line;
      continue;
    }
    ASSERT_EQ(fields.size(), 5u) << line;
    ASSERT_TRUE(error.has_value()) << line;
    EXPECT_EQ(error->start, std::stoul(fields[1])) << line;
    EXPECT_EQ(error->end, std::stoul(fields[2])) << line;
    EXPECT_STREQ(error->reason, fields[3].c_str()) << line;
    EXPECT_EQ(pickle::detail::utf8_error_message(input, *error), fields[4]) << line;
    try {
      Value str{input};
      ADD_FAILURE() << "accepted invalid UTF-8: " << line;
    } catch (const pickle::Error& e) {
      EXPECT_EQ(e.python_class(), pickle::PyExc::UnicodeDecodeError);
      EXPECT_EQ(std::string(e.what()), fields[4]);
    }
  }
}

TEST(Utf8, CodecNameInMessage) {
  const std::string data = "\xff";
  const auto error = pickle::detail::check_utf8(data);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(pickle::detail::utf8_error_message(data, *error, "ascii").rfind("'ascii' codec", 0), 0u);
}

TEST(Utf8, ErrorAfterLongAsciiRun) {
  std::string data(1000, 'a');
  data += "\xe2\x82";
  const auto error = pickle::detail::check_utf8(data);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->start, 1000u);
  EXPECT_EQ(error->end, 1002u);
}

TEST(Utf8, DecodeAndEncodeRoundTrip) {
  const std::vector<char32_t> code_points = {0x0, 0x41, 0x7F, 0x80, 0x7FF, 0x800, 0xD800, 0xDBFF,
                                             0xDC00, 0xDFFF, 0xFFFF, 0x10000, 0x1F600, 0x10FFFF};
  std::string text;
  for (char32_t cp : code_points) pickle::detail::append_utf8(text, cp);
  EXPECT_FALSE(pickle::detail::check_utf8(text).has_value());
  EXPECT_EQ(pickle::detail::code_point_count(text), code_points.size());
  std::size_t pos = 0;
  for (char32_t cp : code_points) EXPECT_EQ(pickle::detail::next_code_point(text, pos), cp);
  EXPECT_EQ(pos, text.size());
  // Encodings known from the Unicode standard (U+20AC is E2 82 AC; U+D800 surrogatepass ED A0 80).
  std::string euro;
  pickle::detail::append_utf8(euro, 0x20AC);
  EXPECT_EQ(euro, "\xe2\x82\xac");
  std::string surrogate;
  pickle::detail::append_utf8(surrogate, 0xD800);
  EXPECT_EQ(surrogate, "\xed\xa0\x80");
}

TEST(Utf8, IsAscii) {
  EXPECT_TRUE(pickle::detail::is_ascii(""));
  EXPECT_TRUE(pickle::detail::is_ascii("plain text, longer than a machine word"));
  EXPECT_FALSE(pickle::detail::is_ascii("plain text, longer than a machine word\x80"));
  EXPECT_FALSE(pickle::detail::is_ascii("\xc3\xa9"));
}

// --- hashes -------------------------------------------------------------------------------------

// Parses the prefix notation of gen_value_hash_cases.py with an explicit stack.
Value parse_hash_case(const std::vector<std::string>& tokens) {
  struct Frame {
    bool frozenset;
    std::vector<Value> items;
  };
  std::vector<Frame> stack(1);
  for (const auto& token : tokens) {
    if (token == "(" || token == "{{") {
      stack.push_back({token == "{{", {}});
    } else if (token == ")" || token == "}}") {
      Frame frame = std::move(stack.back());
      stack.pop_back();
      stack.back().items.push_back(frame.frozenset ? Value::frozenset(frame.items)
                                                   : Value::tuple(frame.items));
    } else if (token.rfind("i:", 0) == 0) {
      stack.back().items.push_back(Value(BigInt(token.substr(2))));
    } else if (token.rfind("f:", 0) == 0) {
      stack.back().items.push_back(Value(std::strtod(token.substr(2).c_str(), nullptr)));
    } else if (token.rfind("b:", 0) == 0) {
      stack.back().items.push_back(Value(token == "b:1"));
    } else {
      ADD_FAILURE() << "bad token " << token;
    }
  }
  EXPECT_EQ(stack.size(), 1u);
  EXPECT_EQ(stack[0].items.size(), 1u);
  return stack[0].items.at(0);
}

TEST(Hash, MatchesCPython) {
  const auto lines = read_lines("value_hash_cases.txt");
  ASSERT_GT(lines.size(), 200u) << "missing " << data_path("value_hash_cases.txt");
  for (const auto& line : lines) {
    auto tokens = split(line, ' ');
    const std::int64_t expected = std::stoll(tokens.back());
    tokens.pop_back();
    const Value value = parse_hash_case(tokens);
    EXPECT_EQ(static_cast<std::int64_t>(value.hash()), expected) << line;
    // Hash twice: the second time comes from the node caches.
    EXPECT_EQ(static_cast<std::int64_t>(value.hash()), expected) << line;
  }
}

TEST(Hash, EqualValuesHashEqual) {
  const std::vector<std::pair<Value, Value>> pairs = {
      {Value(1), Value(1.0)},
      {Value(true), Value(1)},
      {Value(false), Value(0.0)},
      {Value(-0.0), Value(0)},
      {Value(big("1267650600228229401496703205376")), Value(std::ldexp(1.0, 100))},
      {Value::tuple({1, 2}), Value::tuple({1.0, true + 1})},
      {Value("text"), Value(std::string("te") + "xt")},
      {Value::bytes("abc"), Value::bytes(std::string("abc"))},
      {Value::frozenset({1, 2, 3}), Value::frozenset({3.0, 2, true})},
      {Value::global("os", "path"), Value::global("os", "path")},
      {Value::tuple({Value("a"), Value::frozenset({Value::tuple({})})}),
       Value::tuple({Value("a"), Value::frozenset({Value::tuple({})})})},
  };
  for (const auto& [a, b] : pairs) {
    ASSERT_TRUE(a == b);
    EXPECT_EQ(a.hash(), b.hash());
  }
}

TEST(Hash, StrAndBytesHashesAreStableWithinProcessAndSpread) {
  EXPECT_EQ(Value("").hash(), 0u);
  EXPECT_EQ(Value::bytes("").hash(), 0u);
  std::vector<std::size_t> hashes;
  for (int i = 0; i < 1000; ++i) hashes.push_back(Value("key" + std::to_string(i)).hash());
  std::sort(hashes.begin(), hashes.end());
  EXPECT_EQ(std::unique(hashes.begin(), hashes.end()), hashes.end());
}

TEST(Hash, Unhashable) {
  struct Case {
    Value value;
    const char* message;
  };
  const std::vector<Case> cases = {
      {Value::list(), "unhashable type: 'list'"},
      {Value::dict(), "unhashable type: 'dict'"},
      {Value::set(), "unhashable type: 'set'"},
      {Value::bytearray("x"), "unhashable type: 'bytearray'"},
      {Value::tuple({1, Value::tuple({2, Value::list({})})}), "unhashable type: 'list'"},
      {Value::tuple({Value::dict(), Value::list()}), "unhashable type: 'dict'"},
  };
  for (const auto& c : cases) {
    EXPECT_FALSE(c.value.hashable()) << c.message;
    for (int attempt = 0; attempt < 2; ++attempt) {  // the second time, with cached verdicts
      try {
        (void)c.value.hash();
        ADD_FAILURE() << "hashed " << c.message;
      } catch (const pickle::UnhashableError& e) {
        EXPECT_EQ(std::string(e.what()), c.message);
        EXPECT_EQ(e.python_class(), pickle::PyExc::TypeError);
      }
    }
  }
  EXPECT_TRUE(Value::tuple({1, Value::tuple({2})}).hashable());
  EXPECT_TRUE(Value::object(pickle::ObjectForm::reduce, Value::global("m", "f"), Value::tuple())
                  .hashable());
  Value d = Value::dict();
  EXPECT_THROW(d.set_item(Value::list(), 1), pickle::UnhashableError);
  EXPECT_THROW(d.set_item(Value::tuple({Value::set()}), 1), pickle::UnhashableError);
  EXPECT_EQ(d.size(), 0u);
  Value s = Value::set();
  EXPECT_THROW(s.add(Value::dict()), pickle::UnhashableError);
  EXPECT_THROW((void)d.get(Value::list()), pickle::UnhashableError);
  EXPECT_THROW((void)Value::set({Value::list()}), pickle::UnhashableError);
}

// --- equality ------------------------------------------------------------------------------------

TEST(Equality, PythonRules) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const BigInt two_53_plus_1 = big("9007199254740993");
  struct Case {
    Value a;
    Value b;
    bool equal;
    const char* what;
  };
  const Value shared = Value::list({1});
  const std::vector<Case> cases = {
      {Value(), Value(), true, "None == None"},
      {Value(), Value(0), false, "None != 0"},
      {Value(1), Value(1.0), true, "1 == 1.0"},
      {Value(true), Value(1), true, "True == 1"},
      {Value(true), Value(1.0), true, "True == 1.0"},
      {Value(false), Value(0), true, "False == 0"},
      {Value(true), Value(2), false, "True != 2"},
      {Value(0.0), Value(-0.0), true, "0.0 == -0.0"},
      {Value(nan), Value(nan), false, "nan != nan"},
      {Value(inf), Value(inf), true, "inf == inf"},
      {Value(inf), Value(big("1" + std::string(400, '0'))), false, "inf != 10**400"},
      {Value(two_53_plus_1), Value(std::ldexp(1.0, 53)), false, "2**53+1 != 2.0**53"},
      {Value(BigInt(two_53_plus_1 - 1)), Value(std::ldexp(1.0, 53)), true, "2**53 == 2.0**53"},
      {Value(big("1267650600228229401496703205376")), Value(std::ldexp(1.0, 100)), true,
       "2**100 == 2.0**100"},
      {Value(big("1267650600228229401496703205377")), Value(std::ldexp(1.0, 100)), false,
       "2**100+1 != 2.0**100"},
      {Value(big("-1267650600228229401496703205376")), Value(-std::ldexp(1.0, 100)), true,
       "-2**100 == -2.0**100"},
      {Value(INT64_MAX), Value(std::ldexp(1.0, 63)), false, "2**63-1 != 2.0**63"},
      {Value(big("9223372036854775808")), Value(std::ldexp(1.0, 63)), true, "2**63 == 2.0**63"},
      {Value(INT64_MIN), Value(-std::ldexp(1.0, 63)), true, "-2**63 == -2.0**63"},
      {Value(1), Value(1.5), false, "1 != 1.5"},
      {Value(big("100000000000000000000")), Value(big("100000000000000000000")), true, "big"},
      {Value(big("100000000000000000000")), Value(big("-100000000000000000000")), false, "sign"},
      {Value("a"), Value("a"), true, "str"},
      {Value("a"), Value::bytes("a"), false, "'a' != b'a'"},
      {Value::bytes("a"), Value::bytearray("a"), true, "b'a' == bytearray(b'a')"},
      {Value::bytes("a"), Value::bytes("b"), false, "b'a' != b'b'"},
      {Value::tuple({1, 2}), Value::list({1, 2}), false, "(1, 2) != [1, 2]"},
      {Value::tuple({1, 2}), Value::tuple({1.0, 2}), true, "(1, 2) == (1.0, 2)"},
      {Value::tuple({1, 2}), Value::tuple({1, 2, 3}), false, "lengths"},
      {Value::list({Value::list({nan})}), Value::list({Value::list({nan})}), false, "[[nan]]"},
      {Value::list({shared, shared}), Value::list({Value::list({1}), Value::list({1.0})}), true,
       "sharing is not part of =="},
      {Value::dict({{1, "a"}, {2, "b"}}), Value::dict({{2, "b"}, {1, "a"}}), true,
       "dict order"},
      {Value::dict({{1, "a"}}), Value::dict({{1, "b"}}), false, "dict values"},
      {Value::dict({{1, "a"}}), Value::dict({{2, "a"}}), false, "dict keys"},
      {Value::dict({{1, "a"}}), Value::dict({{true, "a"}}), true, "{1: 'a'} == {True: 'a'}"},
      {Value::set({1, 2}), Value::frozenset({2, 1}), true, "set == frozenset"},
      {Value::set({1, 2}), Value::frozenset({2, 3}), false, "different sets"},
      {Value::set({}), Value::dict({}), false, "set() != {}"},
      {Value::global("os", "path"), Value::global("os", "path"), true, "global"},
      {Value::global("os", "path"), Value::global("os", "sep"), false, "global name"},
      {Value::global("os", "path"), Value("os.path"), false, "global vs str"},
      {Value::object(pickle::ObjectForm::reduce, Value::global("m", "f"), Value::tuple()),
       Value::object(pickle::ObjectForm::reduce, Value::global("m", "f"), Value::tuple()), false,
       "objects compare by identity"},
      {Value::buffer("x", 0, true), Value::buffer("x", 0, true), false, "buffers by identity"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(c.a == c.b, c.equal) << c.what;
    EXPECT_EQ(c.b == c.a, c.equal) << c.what << " (reversed)";
    EXPECT_TRUE(c.a == c.a || c.what == std::string("nan != nan")) << c.what;
  }
  const Value object = Value::object(pickle::ObjectForm::reduce, Value::global("m", "f"), Value::tuple());
  EXPECT_TRUE(object == Value(object));
}

TEST(Equality, Cycles) {
  Value a = Value::list();
  a.append(a);
  Value b = Value::list();
  b.append(b);
  EXPECT_TRUE(a == a);
  EXPECT_TRUE(a == b);  // bisimilar: no difference can ever be found
  Value c = Value::list();
  c.append(c);
  c.append(1);
  EXPECT_FALSE(a == c);
  Value d = Value::dict();
  d.set_item("self", d);
  Value e = Value::dict();
  e.set_item("self", e);
  EXPECT_TRUE(d == e);
  e.set_item("other", 1);
  EXPECT_FALSE(d == e);
}

TEST(Equality, SharedDagIsLinear) {
  // x(n) = [x(n-1), x(n-1)]: 2**60 paths, 60 distinct nodes.
  Value x = Value::list({0});
  Value y = Value::list({0});
  for (int i = 0; i < 60; ++i) {
    x = Value::list({x, x});
    y = Value::list({y, y});
  }
  EXPECT_TRUE(x == y);
  EXPECT_TRUE(same_graph(x, y));
  Value t = Value::tuple({0});
  for (int i = 0; i < 60; ++i) t = Value::tuple({t, t});
  EXPECT_TRUE(t.hashable());
}

TEST(Equality, DeepFrozensetNestsCompareWithoutRecursion) {
  auto build = [] {
    Value v = Value::frozenset({0});
    for (int i = 0; i < 100000; ++i) v = Value::frozenset({v, Value(i)});
    return v;
  };
  const Value a = build();
  const Value b = build();
  EXPECT_TRUE(a == b);
  EXPECT_EQ(a.hash(), b.hash());
  Value set = Value::set({a});
  set.add(b);  // equal: compared while inserting
  EXPECT_EQ(set.size(), 1u);
  Value dict = Value::dict({{Value::tuple({a}), 1}});
  EXPECT_EQ(dict.get(Value::tuple({b}))->as_int64(), 1);
}

// hash(-1) == hash(-2) in Python, so these frozensets collide at every level of the nest:
// level(k) = ({level(k-1), other(k-1), -1}), other(k) = ({level(k-1), other(k-1), -2}).
std::pair<Value, Value> colliding_nest(int depth) {
  Value level = Value::frozenset({-1});
  Value other = Value::frozenset({-2});
  for (int i = 0; i < depth; ++i) {
    Value next_level = Value::frozenset({level, other, Value(-1)});
    Value next_other = Value::frozenset({level, other, Value(-2)});
    level = next_level;
    other = next_other;
  }
  return {level, other};
}

TEST(Equality, CollidingHashesAtEveryLevelStayCheap) {
  const auto [level, other] = colliding_nest(60);
  const auto [level2, other2] = colliding_nest(60);
  EXPECT_EQ(level.hash(), other.hash());
  EXPECT_TRUE(level == level2);
  EXPECT_TRUE(other == other2);
  EXPECT_FALSE(level == other2);
  Value set = Value::set({level, other});
  set.add(level2);
  set.add(other2);
  EXPECT_EQ(set.size(), 2u);
}

TEST(Equality, TooDeeplyNestedComparisonsRaiseRecursionError) {
  const auto [level, other] = colliding_nest(1500);
  const auto [level2, other2] = colliding_nest(1500);
  try {
    (void)(level == level2);
    ADD_FAILURE() << "expected RecursionError";
  } catch (const pickle::Error& e) {
    EXPECT_EQ(e.python_class(), pickle::PyExc::RecursionError);
    EXPECT_EQ(std::string(e.what()), "maximum recursion depth exceeded in comparison");
  }
  const auto [small, small_other] = colliding_nest(3);
  const auto [small2, small_other2] = colliding_nest(3);
  EXPECT_TRUE(small == small2);  // the failed comparison left nothing behind
  EXPECT_FALSE(small == small_other2);
}

// --- dicts and sets -------------------------------------------------------------------------------

TEST(Dict, KeyUnificationKeepsFirstKeyAndPosition) {
  Value d = Value::dict();
  d.set_item(1, "int");
  d.set_item("x", "str");
  d.set_item(1.0, "float");
  d.set_item(true, "bool");
  ASSERT_EQ(d.size(), 2u);
  const auto items = d.dict_items();
  EXPECT_EQ(items[0].first.kind(), Kind::integer);  // the first key object stays
  EXPECT_EQ(items[0].second.as_str(), "bool");      // the last value wins
  EXPECT_EQ(items[1].first.as_str(), "x");
  EXPECT_EQ(d.get(1.0)->as_str(), "bool");
  EXPECT_EQ(d.get(true)->as_str(), "bool");
  EXPECT_FALSE(d.get(2).has_value());
  EXPECT_TRUE(d.contains(Value("x")));
  EXPECT_FALSE(d.contains(Value("y")));

  Value s = Value::set({true, 1, 1.0, 0, false});
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s.items()[0].kind(), Kind::boolean);
  EXPECT_TRUE(s.contains(1.0));
  EXPECT_TRUE(s.contains(0));
}

TEST(Dict, ManyKeysKeepInsertionOrder) {
  Value d = Value::dict();
  constexpr int count = 100000;
  for (int i = 0; i < count; ++i) d.set_item(Value("k" + std::to_string(i)), i);
  for (int i = 0; i < count; i += 3) d.set_item(i * 2, i);  // int keys mixed in
  for (int i = 0; i < count; i += 7) d.set_item(Value("k" + std::to_string(i)), -i);  // overwrite
  const auto items = d.dict_items();
  ASSERT_EQ(items.size(), static_cast<std::size_t>(count + (count + 2) / 3));
  for (int i = 0; i < count; ++i) {
    ASSERT_EQ(items[static_cast<std::size_t>(i)].first.as_str(), "k" + std::to_string(i));
    ASSERT_EQ(*items[static_cast<std::size_t>(i)].second.as_int64(), i % 7 == 0 ? -i : i);
  }
  for (int i = 0; i < count; i += 3) ASSERT_EQ(*d.get(i * 2)->as_int64(), i);
  EXPECT_FALSE(d.get(-1).has_value());
}

TEST(Dict, TupleAndFrozensetKeys) {
  Value d = Value::dict();
  d.set_item(Value::tuple({1, Value("a")}), "t");
  d.set_item(Value::frozenset({1, 2}), "f");
  EXPECT_EQ(d.get(Value::tuple({1.0, Value("a")}))->as_str(), "t");
  EXPECT_EQ(d.get(Value::frozenset({2, 1}))->as_str(), "f");
  EXPECT_FALSE(d.get(Value::tuple({1, Value("b")})).has_value());
}

TEST(Dict, NanKeysAreDistinct) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Value d = Value::dict();
  d.set_item(nan, 1);
  d.set_item(nan, 2);
  EXPECT_EQ(d.size(), 2u);  // float('nan') twice: two objects, never equal
}

// --- accessors -------------------------------------------------------------------------------------

TEST(Accessors, KindsAndTypeNames) {
  struct Case {
    Value value;
    Kind kind;
    const char* name;
  };
  const std::vector<Case> cases = {
      {Value(), Kind::none, "NoneType"},
      {Value(false), Kind::boolean, "bool"},
      {Value(3), Kind::integer, "int"},
      {Value(big("100000000000000000000")), Kind::integer, "int"},
      {Value(1.5), Kind::floating, "float"},
      {Value("s"), Kind::str, "str"},
      {Value::bytes("b"), Kind::bytes, "bytes"},
      {Value::bytearray("b"), Kind::bytearray, "bytearray"},
      {Value::tuple(), Kind::tuple, "tuple"},
      {Value::list(), Kind::list, "list"},
      {Value::dict(), Kind::dict, "dict"},
      {Value::set(), Kind::set, "set"},
      {Value::frozenset(), Kind::frozenset, "frozenset"},
      {Value::global("m", "n"), Kind::global, "type"},
      {Value::object(pickle::ObjectForm::newobj, Value::global("m", "C"), Value::tuple()),
       Kind::object, "object"},
      {Value::buffer("data", 0, false), Kind::buffer, "PickleBuffer"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(c.value.kind(), c.kind) << c.name;
    EXPECT_EQ(c.value.type_name(), c.name);
  }
}

TEST(Accessors, MismatchesThrowWithPythonTypeNames) {
  try {
    (void)Value(1).as_str();
    ADD_FAILURE();
  } catch (const pickle::TypeMismatch& e) {
    EXPECT_EQ(std::string(e.what()), "expected str, got int");
  }
  EXPECT_THROW((void)Value("x").as_float(), pickle::TypeMismatch);
  EXPECT_THROW((void)Value(1).as_bool(), pickle::TypeMismatch);
  EXPECT_THROW((void)Value(1.0).as_int64(), pickle::TypeMismatch);
  EXPECT_THROW((void)Value("x").as_bytes(), pickle::TypeMismatch);
  EXPECT_THROW((void)Value(1).size(), pickle::TypeMismatch);
  EXPECT_THROW((void)Value(1)[0], pickle::TypeMismatch);
  EXPECT_THROW((void)Value::list().module(), pickle::TypeMismatch);
  EXPECT_THROW((void)Value::list().args(), pickle::TypeMismatch);
  EXPECT_THROW((void)Value::list().buffer_index(), pickle::TypeMismatch);
  EXPECT_THROW(Value::tuple().append(1), pickle::TypeMismatch);
  EXPECT_THROW(Value::frozenset().add(1), pickle::TypeMismatch);
  EXPECT_THROW(Value::list().set_item(1, 2), pickle::TypeMismatch);
  EXPECT_THROW((void)Value::list().get(1), pickle::TypeMismatch);
  EXPECT_THROW((void)Value::list().dict_items(), pickle::TypeMismatch);
  EXPECT_THROW((void)Value(2).items(), pickle::TypeMismatch);
  EXPECT_THROW((void)Value::list({1})[1], std::out_of_range);
  EXPECT_THROW(Value::list({1}).set_list_item(1, 2), std::out_of_range);
}

TEST(Accessors, Numbers) {
  EXPECT_EQ(Value(true).as_int64(), 1);
  EXPECT_EQ(Value(-7).as_int64(), -7);
  EXPECT_EQ(Value(true).as_bigint(), 1);
  EXPECT_TRUE(Value(true).as_bool());
  const BigInt huge = big("-340282366920938463463374607431768211457");
  EXPECT_EQ(Value(huge).as_bigint(), huge);
  EXPECT_FALSE(Value(huge).as_int64().has_value());
  // Ints that fit int64 are always small, however they were made.
  EXPECT_EQ(Value(BigInt(INT64_MIN)).slot().tag, pickle::detail::Tag::small_int);
  EXPECT_EQ(Value(BigInt(INT64_MAX)).as_int64(), INT64_MAX);
  EXPECT_EQ(Value(BigInt(INT64_MAX) + 1).slot().tag, pickle::detail::Tag::big_int);
  EXPECT_EQ(Value(std::uint64_t{18446744073709551615u}).as_bigint(), big("18446744073709551615"));
  EXPECT_TRUE(Value(std::uint64_t{18446744073709551615u}) == Value(big("18446744073709551615")));
  EXPECT_EQ(Value(2.5).as_float(), 2.5);
  EXPECT_EQ(Value(3).identity(), nullptr);
  EXPECT_EQ(Value(3).heap(), nullptr);
  EXPECT_EQ(Value(2.5).heap(), nullptr);
}

TEST(Accessors, StringsAndBytes) {
  const Value s("h\xc3\xa9llo \xf0\x9f\x98\x80 \xed\xa0\x80");
  EXPECT_EQ(s.size(), 9u);  // code points
  EXPECT_EQ(s.as_str(), "h\xc3\xa9llo \xf0\x9f\x98\x80 \xed\xa0\x80");
  const Value b = Value::bytes(std::string("a\0b", 3));
  EXPECT_EQ(b.size(), 3u);
  EXPECT_EQ(b.as_bytes(), std::string_view("a\0b", 3));
  const std::byte raw[] = {std::byte{1}, std::byte{2}};
  EXPECT_EQ(Value::bytes(std::span<const std::byte>(raw)).as_bytes(), "\x01\x02");
  EXPECT_EQ(Value::bytearray("xy").as_bytes(), "xy");
  const Value buffer = Value::buffer("buf", 3, true);
  EXPECT_EQ(buffer.as_bytes(), "buf");
  EXPECT_EQ(buffer.size(), 3u);
  EXPECT_EQ(buffer.buffer_index(), 3u);
  EXPECT_TRUE(buffer.buffer_readonly());
}

TEST(Accessors, ContainersAndObjects) {
  Value list = Value::list({1, "two"});
  list.append(3.0);
  list.set_list_item(0, Value::tuple({}));
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].kind(), Kind::tuple);
  EXPECT_EQ(list[1].as_str(), "two");
  EXPECT_EQ(list.at(2).as_float(), 3.0);
  EXPECT_EQ(list.items().size(), 3u);

  const Value global = Value::global("collections", "OrderedDict");
  EXPECT_EQ(global.module(), "collections");
  EXPECT_EQ(global.qualname(), "OrderedDict");

  Value object = Value::object(pickle::ObjectForm::newobj_ex, global, Value::tuple({1}),
                               Value::dict({{"k", 2}}));
  EXPECT_EQ(object.object_form(), pickle::ObjectForm::newobj_ex);
  EXPECT_TRUE(object.callable().is(global));
  EXPECT_EQ(object.args()[0].as_int64(), 1);
  EXPECT_EQ(object.kwargs().get("k")->as_int64(), 2);
  EXPECT_EQ(object.ext_code(), 0);
  EXPECT_TRUE(object.state().is_none());
  object.add_object_op(pickle::ObjectOp::build, Value::dict({{"a", 1}}));
  object.add_object_op(pickle::ObjectOp::setitem, "key", "value");
  object.add_object_op(pickle::ObjectOp::build, Value::dict({{"b", 2}}));
  const auto ops = object.object_ops();
  ASSERT_EQ(ops.size(), 3u);
  EXPECT_EQ(std::get<0>(ops[1]), pickle::ObjectOp::setitem);
  EXPECT_EQ(std::get<1>(ops[1]).as_str(), "key");
  EXPECT_EQ(std::get<2>(ops[1]).as_str(), "value");
  EXPECT_TRUE(std::get<2>(ops[0]).is_none());
  EXPECT_TRUE(object.state().contains("b"));
}

TEST(Identity, IsAndCopies) {
  Value a = Value::list();
  Value b = a;
  b.append(1);
  EXPECT_EQ(a.size(), 1u);
  EXPECT_TRUE(a.is(b));
  EXPECT_FALSE(a.is(Value::list({1})));
  EXPECT_TRUE(Value(1).is(Value(1)));
  EXPECT_FALSE(Value(1).is(Value(true)));
  EXPECT_FALSE(Value(1).is(Value(1.0)));
  EXPECT_TRUE(Value().is(Value()));
  Value moved = std::move(b);
  EXPECT_TRUE(moved.is(a));
  a = a;  // self-assignment keeps the value alive
  EXPECT_EQ(a.size(), 1u);
  a = std::move(moved);
  EXPECT_EQ(a.size(), 1u);
}

// --- same_graph ------------------------------------------------------------------------------------

TEST(SameGraph, KindsSharingAndBits) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Value s1 = Value::list({1});
  const Value s2 = Value::list({1});
  struct Case {
    Value a;
    Value b;
    bool same;
    const char* what;
  };
  const std::vector<Case> cases = {
      {Value(1), Value(1), true, "1 vs 1"},
      {Value(1), Value(true), false, "1 vs True"},
      {Value(1), Value(1.0), false, "1 vs 1.0"},
      {Value(0.0), Value(-0.0), false, "0.0 vs -0.0"},
      {Value(nan), Value(nan), true, "same NaN bits"},
      {Value(nan), Value(-nan), false, "NaN sign"},
      {Value(big("100000000000000000000")), Value(big("100000000000000000000")), true, "big"},
      {Value::list({s1, s1}), Value::list({s2, s2}), true, "same sharing"},
      {Value::list({s1, s1}), Value::list({s1, s2}), false, "shared vs distinct"},
      {Value::list({s1, s2}), Value::list({s2, s2}), false, "distinct vs shared"},
      {Value::tuple({1}), Value::list({1}), false, "tuple vs list"},
      {Value::set({1}), Value::frozenset({1}), false, "set vs frozenset"},
      {Value::dict({{1, 2}, {3, 4}}), Value::dict({{3, 4}, {1, 2}}), false, "dict order"},
      {Value::bytes("a"), Value::bytearray("a"), false, "bytes vs bytearray"},
      {Value::global("a", "b"), Value::global("a", "b"), true, "globals by name"},
      {Value::object(pickle::ObjectForm::reduce, Value::global("m", "f"), Value::tuple({1})),
       Value::object(pickle::ObjectForm::reduce, Value::global("m", "f"), Value::tuple({1})), true,
       "objects structurally"},
      {Value::object(pickle::ObjectForm::reduce, Value::global("m", "f"), Value::tuple({1})),
       Value::object(pickle::ObjectForm::newobj, Value::global("m", "f"), Value::tuple({1})), false,
       "object forms"},
      {Value::buffer("x", 1, true), Value::buffer("x", 1, true), true, "buffers"},
      {Value::buffer("x", 1, true), Value::buffer("x", 1, false), false, "buffer readonly"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(same_graph(c.a, c.b), c.same) << c.what;
    EXPECT_EQ(same_graph(c.b, c.a), c.same) << c.what << " (reversed)";
  }
  Value a = Value::list();
  a.append(a);
  Value b = Value::list();
  b.append(b);
  Value c = Value::list();
  c.append(Value::list({c}));
  EXPECT_TRUE(same_graph(a, b));
  EXPECT_FALSE(same_graph(a, c));
  EXPECT_TRUE(a == c);  // == cannot tell them apart
}

// --- lifetime, regions, depth ----------------------------------------------------------------------

TEST(Regions, CyclesAreFreed) {
  {
    Value l = Value::list();
    l.append(l);
    Value d = Value::dict();
    d.set_item("self", d);
    d.set_item("list", l);
    l.append(d);
  }
  // LeakSanitizer (the ASan build) reports anything left behind.
  SUCCEED();
}

TEST(Regions, LinkedBothWaysThenDropped) {
  Value a = Value::list({Value("in a")});
  Value b = Value::dict({{Value("in b"), Value::bytes("payload")}});
  EXPECT_NE(a.heap(), b.heap());
  a.append(b);
  b.set_item("a", a);
  EXPECT_EQ(a.heap()->root(), b.heap()->root());
  Value element = a[0];
  a = Value();
  b = Value();
  EXPECT_EQ(element.as_str(), "in a");
}

TEST(Regions, ValuesOutliveTheirContainers) {
  Value s("kept");
  Value inner;
  {
    Value list = Value::list();
    for (int i = 0; i < 1000; ++i) list.append(Value("filler " + std::to_string(i)));  // larger region
    list.append(s);
    inner = list[3];
  }
  EXPECT_EQ(s.as_str(), "kept");
  EXPECT_EQ(inner.as_str(), "filler 3");
  // And the reverse: the container outlives the handle of a value merged into it.
  Value list = Value::list();
  {
    Value big_region = Value::list();
    for (int i = 0; i < 1000; ++i) big_region.append(Value::bytes(std::string(100, 'x')));
    list.append(big_region);
  }
  EXPECT_EQ(list[0][999].as_bytes(), std::string(100, 'x'));
}

TEST(Regions, ManyRegionsMergedInChains) {
  Value acc = Value::list();
  for (int i = 0; i < 2000; ++i) {
    Value next = Value::list({Value(std::to_string(i))});
    next.append(acc);  // acc's region is merged into ever new regions
    acc = next;
  }
  Value walk = acc;
  for (int i = 1999; i >= 0; --i) {
    ASSERT_EQ(walk[0].as_str(), std::to_string(i));
    walk = walk[1];
  }
}

TEST(Deep, MillionDeepList) {
  constexpr int depth = 1000000;
  auto build = [] {
    Value v = Value::list();
    for (int i = 0; i < depth; ++i) v = Value::list({v});
    return v;
  };
  Value a = build();
  Value b = build();
  EXPECT_TRUE(a == b);
  EXPECT_TRUE(same_graph(a, b));
  b = Value();
  Value c = Value::list();
  for (int i = 0; i < depth; ++i) c = Value::list({c, i == 0 ? Value(1) : Value()});
  EXPECT_FALSE(a == c);
  EXPECT_FALSE(a.hashable());
}

TEST(Deep, MillionDeepTupleHashes) {
  constexpr int depth = 1000000;
  Value t = Value::tuple();
  Value u = Value::tuple();
  for (int i = 0; i < depth; ++i) {
    t = Value::tuple({t});
    u = Value::tuple({u});
  }
  EXPECT_EQ(t.hash(), u.hash());
  EXPECT_TRUE(t == u);
  Value with_list = Value::tuple({Value::list()});
  for (int i = 0; i < depth; ++i) with_list = Value::tuple({with_list});
  EXPECT_THROW((void)with_list.hash(), pickle::UnhashableError);
}

TEST(Deep, MillionDeepDictChain) {
  Value d = Value::dict();
  Value top = d;
  for (int i = 0; i < 1000000; ++i) {
    Value next = Value::dict();
    d.set_item("next", next);
    d = next;
  }
  d = Value();
  top = Value();
  SUCCEED();
}

// --- the private node layer -----------------------------------------------------------------------

namespace detail = pickle::detail;

detail::Slot int_slot(std::int64_t v) {
  detail::Slot slot;
  slot.tag = detail::Tag::small_int;
  slot.i = v;
  return slot;
}

TEST(Nodes, SequencesGrowAndKeepItems) {
  detail::Heap* heap = detail::Heap::create();
  const detail::Slot three[] = {int_slot(1), int_slot(2), int_slot(3)};
  const detail::Slot list = detail::make_seq(*heap, detail::Tag::list, three, 3);
  auto& seq = detail::node<detail::SeqNode>(list);
  for (int i = 0; i < 1000; ++i) detail::seq_append(*heap, seq, int_slot(i));
  detail::seq_extend(*heap, seq, three, 3);
  ASSERT_EQ(seq.size, 1006u);
  EXPECT_EQ(detail::load(seq.items[2]).i, 3);
  EXPECT_EQ(detail::load(seq.items[3 + 999]).i, 999);
  EXPECT_EQ(detail::load(seq.items[1005]).i, 3);
  const detail::Slot blank = detail::make_seq(*heap, detail::Tag::tuple, nullptr, 2);
  EXPECT_EQ(detail::load(detail::node<detail::SeqNode>(blank).items[1]).tag, detail::Tag::none);
  const Value value(list, heap);
  detail::release(heap);  // the handle keeps the region
  EXPECT_EQ(value.size(), 1006u);
  EXPECT_TRUE(value[1005] == Value(3));
}

// What a container stores is what it gives back: atoms inline, floats and ints too wide for the
// 56-bit payload boxed, nodes by address, at the payload's edges and beyond.
TEST(Nodes, CellsGiveBackTheSlotTheyStore) {
  detail::Heap* heap = detail::Heap::create();
  auto float_slot = [](double f) {
    detail::Slot slot;
    slot.tag = detail::Tag::floating;
    slot.f = f;
    return slot;
  };
  auto bool_slot = [](bool b) {
    detail::Slot slot;
    slot.tag = detail::Tag::boolean;
    slot.b = b;
    return slot;
  };
  const std::int64_t edge = detail::Cell::max_inline_int;
  const std::vector<std::pair<detail::Slot, bool>> cases = {  // slot, boxed
      {detail::Slot(), false},
      {bool_slot(false), false},
      {bool_slot(true), false},
      {int_slot(0), false},
      {int_slot(-1), false},
      {int_slot(edge), false},
      {int_slot(-edge - 1), false},
      {int_slot(edge + 1), true},
      {int_slot(-edge - 2), true},
      {int_slot(std::numeric_limits<std::int64_t>::max()), true},
      {int_slot(std::numeric_limits<std::int64_t>::min()), true},
      {float_slot(0.0), true},
      {float_slot(-0.0), true},
      {float_slot(std::numeric_limits<double>::quiet_NaN()), true},
      {float_slot(std::bit_cast<double>(std::uint64_t{0xFFF8DEADBEEF0001})), true},  // NaN payload
      {float_slot(1e308), true},
      {detail::make_str(*heap, "node"), false},
  };
  for (const auto& [slot, boxed] : cases) {
    const detail::Cell cell = detail::pack(*heap, slot);
    const detail::Slot back = detail::load(cell);
    EXPECT_EQ(back.tag, slot.tag);
    EXPECT_EQ(back.i, slot.i) << "tag " << static_cast<int>(slot.tag);  // every payload's bits
    EXPECT_EQ(cell.tag() == detail::boxed_int || cell.tag() == detail::boxed_float, boxed)
        << "tag " << static_cast<int>(slot.tag) << " bits " << slot.i;
  }
  detail::release(heap);
}

TEST(Nodes, AllocationsAreAlignedAndLargeOnesWork) {
  detail::Heap* heap = detail::Heap::create();
  for (std::size_t size : {1u, 7u, 100u, 5000u, 1u << 22, 3u}) {
    for (std::size_t align : {1u, 8u, 16u, 64u}) {
      void* p = heap->allocate(size, align);
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % align, 0u);
      std::memset(p, 0xAB, size);  // AddressSanitizer checks the whole block is ours
    }
  }
  EXPECT_GT(heap->allocated_bytes, std::size_t{4} << 22);
  detail::release(heap);
}

TEST(Nodes, ZeroCopyStringsKeepTheirInputAlive) {
  auto input = std::make_shared<std::string>("zero-copy text");
  Value list = Value::list();
  {
    detail::Heap* heap = detail::Heap::create();
    heap->keepalive.push_back(input);
    const detail::Slot str = detail::make_string_view(*heap, input->data(), 9, detail::Tag::str);
    const detail::Slot tuple = detail::make_seq(*heap, detail::Tag::tuple, &str, 1);
    list.append(Value(tuple, heap));  // merges the regions: the keepalive moves with the chunks
    detail::release(heap);
  }
  std::weak_ptr<std::string> watch = input;
  input.reset();
  EXPECT_FALSE(watch.expired());
  EXPECT_EQ(list[0][0].as_str(), "zero-copy");
  EXPECT_EQ(list[0][0].hash(), Value("zero-copy").hash());
  list = Value();
  EXPECT_TRUE(watch.expired());
}

TEST(Nodes, DictTablesAndLookups) {
  detail::Heap* heap = detail::Heap::create();
  const detail::Slot dict = detail::make_dict(*heap, detail::Tag::dict, 3);
  auto& table = detail::node<detail::DictNode>(dict);
  const detail::Slot key = detail::make_str(*heap, "key");
  const detail::Slot same_key = detail::make_str(*heap, "key");
  detail::dict_set(*heap, table, key, int_slot(1));
  detail::dict_set(*heap, table, same_key, int_slot(2));
  ASSERT_EQ(table.size, 1u);
  EXPECT_EQ(detail::load(table.entries[0].key).p, key.p);  // first key object kept
  EXPECT_EQ(detail::load(table.entries[0].value).i, 2);
  // The entry holds no hash: the str caches the one it was inserted with.
  EXPECT_EQ(detail::node<detail::StringNode>(key).hash, detail::slot_hash(key));
  ASSERT_NE(detail::dict_find(table, same_key), nullptr);
  EXPECT_EQ(detail::dict_find(table, int_slot(7)), nullptr);
  const detail::Slot list = detail::make_seq(*heap, detail::Tag::list, nullptr, 0);
  EXPECT_THROW(detail::dict_find(table, list), pickle::UnhashableError);
  EXPECT_FALSE(detail::slot_hashable(list));
  EXPECT_TRUE(detail::slot_hashable(key));
  const detail::Slot set = detail::make_dict(*heap, detail::Tag::frozenset);
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 100; ++i) detail::set_add(*heap, detail::node<detail::DictNode>(set), int_slot(i));
  }
  EXPECT_EQ(detail::node<detail::DictNode>(set).size, 100u);
  EXPECT_EQ(detail::utf8_length("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), 4u);
  detail::release(heap);
}

TEST(Nodes, BigIntLimbs) {
  detail::Heap* heap = detail::Heap::create();
  const BigInt value = (BigInt(1) << 130) + (BigInt(5) << 64) + 9;
  const detail::Slot slot = detail::make_int(*heap, -value);
  ASSERT_EQ(slot.tag, detail::Tag::big_int);
  const auto& node = detail::node<detail::BigIntNode>(slot);
  EXPECT_TRUE(node.negative);
  ASSERT_EQ(node.limb_count, 3u);
  EXPECT_EQ(node.limbs[0], 9u);
  EXPECT_EQ(node.limbs[1], 5u);
  EXPECT_EQ(node.limbs[2], 4u);
  EXPECT_EQ(detail::to_bigint(node), -value);
  EXPECT_EQ(detail::make_int(*heap, BigInt(-5)).tag, detail::Tag::small_int);
  detail::release(heap);
}

}  // namespace
