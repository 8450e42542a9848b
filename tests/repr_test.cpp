// pickle::repr / pickle::ascii against CPython 3.11's repr() / ascii(), on the values
// tests/gen_repr_dis_cases.py recorded: built directly with the Value API from the recorded
// notation, and loaded from the recorded pickles at every protocol.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "pickle/reader.hpp"
#include "pickle/repr.hpp"
#include "repr_dis_jsonl.hpp"

namespace {

using pickle::Value;
using repr_dis_test::from_hex;
using repr_dis_test::read_rows;
using repr_dis_test::Row;

const std::vector<Row>& cases() {
  static const std::vector<Row> rows = read_rows("repr_cases.jsonl");
  return rows;
}

const Row& case_named(const std::string& name) {
  for (const Row& row : cases()) {
    if (row.at("name") == name) return row;
  }
  throw std::runtime_error("no case " + name);
}

// The value of the generator's prefix notation (see gen_repr_dis_cases.py), built bottom-up with an
// explicit stack.
Value build(const std::string& notation) {
  struct Pending {
    char kind;
    std::size_t remaining;
    std::vector<Value> items;
  };
  std::vector<Pending> stack;
  std::istringstream tokens(notation);
  std::string token;
  Value done;
  auto finish = [](Pending& p) -> Value {
    switch (p.kind) {
      case 't':
        return Value::tuple(std::span<const Value>(p.items));
      case 'l':
        return Value::list(std::span<const Value>(p.items));
      case 'd': {
        Value d = Value::dict();
        for (std::size_t i = 0; i + 1 < p.items.size(); i += 2) d.set_item(p.items[i], p.items[i + 1]);
        return d;
      }
      case 'S': {
        Value s = Value::set();
        for (const Value& item : p.items) s.add(item);
        return s;
      }
      default:
        return Value::frozenset(std::span<const Value>(p.items));
    }
  };
  while (tokens >> token) {
    const char tag = token[0];
    const std::string rest = token.substr(1);
    Value leaf;
    bool container = false;
    switch (tag) {
      case 'N': break;
      case 'T': leaf = Value(true); break;
      case 'F': leaf = Value(false); break;
      case 'i': leaf = Value(pickle::BigInt(rest)); break;
      case 'f': {
        const std::uint64_t bits = std::stoull(rest, nullptr, 16);
        double d;
        std::memcpy(&d, &bits, sizeof d);
        leaf = Value(d);
        break;
      }
      case 's': leaf = Value(from_hex(rest)); break;
      case 'b': leaf = Value::bytes(from_hex(rest)); break;
      case 'B': leaf = Value::bytearray(from_hex(rest)); break;
      default: {
        std::size_t n = std::stoul(rest);
        if (tag == 'd') n *= 2;
        stack.push_back({tag, n, {}});
        container = true;
      }
    }
    if (!container) {
      if (stack.empty()) return leaf;
      stack.back().items.push_back(leaf);
      --stack.back().remaining;
    }
    while (!stack.empty() && stack.back().remaining == 0) {
      Value made = finish(stack.back());
      stack.pop_back();
      if (stack.empty()) return made;
      stack.back().items.push_back(made);
      --stack.back().remaining;
    }
  }
  return done;
}

// The highest protocol a case has a repr for (all loads of one value print alike).
std::string expected_repr(const Row& row) {
  for (int proto = 5; proto >= 0; --proto) {
    const auto it = row.find("r" + std::to_string(proto));
    if (it != row.end()) return it->second;
  }
  return {};
}

TEST(Repr, ValuesBuiltDirectlyMatchPython) {
  std::size_t checked = 0, failures = 0;
  for (const Row& row : cases()) {
    if (row.at("build").empty() || row.at("order") != "fixed") continue;
    const std::string want = expected_repr(row);
    if (want.rfind("!ValueError", 0) == 0) continue;  // beyond Python's int→str digit limit
    ++checked;
    const Value v = build(row.at("build"));
    const std::string got = pickle::repr(v);
    if (got != want && ++failures <= 15) {
      ADD_FAILURE() << row.at("name") << "\n  expected: " << want.substr(0, 2000)
                    << "\n  actual:   " << got.substr(0, 2000);
    }
    if (pickle::ascii(v) != row.at("ascii") && ++failures <= 15) {
      ADD_FAILURE() << row.at("name") << " ascii\n  expected: " << row.at("ascii").substr(0, 500)
                    << "\n  actual:   " << pickle::ascii(v).substr(0, 500);
    }
  }
  EXPECT_GT(checked, 200u);
  EXPECT_EQ(failures, 0u) << "of " << checked << " cases";
}

// Where CPython's set order depends on per-process hashes, the library prints insertion order: the
// same items, so the text has the same length and the same multiset of characters.
TEST(Repr, UnreproducibleSetOrdersStillListTheSameItems) {
  std::size_t checked = 0;
  for (const Row& row : cases()) {
    if (row.at("build").empty() || row.at("order") != "varies") continue;
    ++checked;
    std::string want = expected_repr(row);
    std::string got = pickle::repr(build(row.at("build")));
    std::sort(want.begin(), want.end());
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, want) << row.at("name");
  }
  EXPECT_GT(checked, 0u);
}

bool reader_available() {
  try {
    return pickle::loads(std::string_view("N.")).is_none();
  } catch (const std::exception&) {
    return false;
  }
}

TEST(Repr, LoadedPicklesMatchPythonAtEveryProtocol) {
  if (!reader_available()) GTEST_SKIP() << "pickle::loads is not implemented yet";
  std::size_t checked = 0, failures = 0;
  for (const Row& row : cases()) {
    if (row.at("order") != "fixed") continue;
    for (int proto = 0; proto <= 5; ++proto) {
      const auto pickled = row.find("p" + std::to_string(proto));
      if (pickled == row.end()) continue;
      const std::string want = row.at("r" + std::to_string(proto));
      if (want.rfind("!ValueError", 0) == 0) continue;
      ++checked;
      std::string got;
      try {
        got = pickle::repr(pickle::loads(from_hex(pickled->second)));
      } catch (const std::exception& e) {
        got = std::string("exception: ") + e.what();
      }
      if (got != want && ++failures <= 15) {
        ADD_FAILURE() << row.at("name") << " protocol " << proto << "\n  expected: "
                      << want.substr(0, 1000) << "\n  actual:   " << got.substr(0, 1000);
      }
    }
  }
  EXPECT_GT(checked, 500u);
  EXPECT_EQ(failures, 0u) << "of " << checked << " loads";
}

// Recursive containers cannot be written in the build notation: make them by hand and compare with
// what Python printed for the same structure.
TEST(Repr, RecursiveContainersPrintPythonsMarkers) {
  Value l = Value::list();
  l.append(l);
  EXPECT_EQ(pickle::repr(l), expected_repr(case_named("recursive list")));

  Value d = Value::dict();
  d.set_item("a", d);
  EXPECT_EQ(pickle::repr(d), expected_repr(case_named("recursive dict")));

  Value inner = Value::list();
  Value t = Value::tuple({inner});
  inner.append(t);
  EXPECT_EQ(pickle::repr(t), expected_repr(case_named("recursive tuple")));

  Value l2 = Value::list();
  Value d2 = Value::dict();
  d2.set_item("x", l2);
  d2.set_item("y", Value::tuple({l2}));
  l2.append(d2);
  EXPECT_EQ(pickle::repr(l2), expected_repr(case_named("recursive mixed")));

  Value d3 = Value::dict();
  d3.set_item(1, Value::list({d3, d3}));
  EXPECT_EQ(pickle::repr(d3), expected_repr(case_named("recursive dict twice")));

  Value a = Value::list({1});
  EXPECT_EQ(pickle::repr(Value::list({a, a})), expected_repr(case_named("shared list")));
}

TEST(Repr, MillionDeepListDoesNotRecurse) {
  const std::size_t depth = 1'000'000;
  Value root = Value::list();
  Value cur = root;
  for (std::size_t i = 1; i < depth; ++i) {
    Value next = Value::list();
    cur.append(next);
    cur = next;
  }
  const std::string text = pickle::repr(root);
  ASSERT_EQ(text.size(), 2 * depth);
  EXPECT_EQ(text.find_first_not_of('['), depth);
  EXPECT_EQ(text.find_first_of(']'), depth);
}

// Ints up to 2**131072 print in decimal (cross-checked against BigInt's own conversion); larger ones
// as a hex literal of the same value, in linear time.
TEST(Repr, HugeIntsPrintExactly) {
  const pickle::BigInt below = (pickle::BigInt(1) << 131071) + 12345;
  EXPECT_EQ(pickle::repr(Value(below)), below.str());
  EXPECT_EQ(pickle::repr(Value(pickle::BigInt(-below))), "-" + below.str());
  const pickle::BigInt above = (pickle::BigInt(1) << 8'000'000) + 0xabc;
  const std::string text = pickle::repr(Value(pickle::BigInt(-above)));
  ASSERT_EQ(text.size(), 3 + 8'000'000 / 4 + 1);
  EXPECT_EQ(text.substr(0, 4), "-0x1");
  EXPECT_EQ(text.substr(text.size() - 4), "0abc");
  EXPECT_EQ(pickle::BigInt(text.substr(1)), above);  // cpp_int reads 0x literals
}

// Every code point against str.isprintable() of Python 3.11 (recorded as ranges): printable ones
// are shown as themselves, the others escaped.
TEST(Repr, PrintabilityOfEveryCodePointMatchesPython) {
  const char* dir = std::getenv("PICKLE_TEST_DATA");
  std::ifstream in(std::string(dir ? dir : "tests") + "/data/unprintable_ranges.txt");
  ASSERT_TRUE(in);
  std::vector<bool> unprintable(0x110000, false);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    unsigned long first = 0, last = 0;
    ASSERT_EQ(std::sscanf(line.c_str(), "%lx %lx", &first, &last), 2);
    for (unsigned long cp = first; cp <= last; ++cp) unprintable[cp] = true;
  }
  std::size_t mismatches = 0;
  for (char32_t cp = 0x20; cp < 0x110000; ++cp) {
    if (cp == '\'' || cp == '\\') continue;
    std::string utf8;
    repr_dis_test::append_utf8(utf8, cp);  // surrogates too: their 3-byte form, as the library stores them
    const std::string text = pickle::repr(Value(utf8));
    const bool shown_as_is = text == "'" + utf8 + "'";
    if (shown_as_is == unprintable[cp] && ++mismatches <= 10) {
      ADD_FAILURE() << std::hex << "U+" << static_cast<unsigned long>(cp) << " printed as " << text
                    << " but Python's isprintable() is " << !unprintable[cp];
    }
  }
  EXPECT_EQ(mismatches, 0u);
}

// The generic object form, which objects pickle/types.hpp recognises (datetime.date, OrderedDict, …)
// also have when ReprOptions::typed_objects is off.
std::string generic_repr(const Value& value) {
  pickle::ReprOptions options;
  options.typed_objects = false;
  return pickle::repr(value, options);
}

// The forms of values Python cannot print without running code (documented in pickle/repr.hpp).
TEST(Repr, ObjectForms) {
  using pickle::ObjectForm;
  using pickle::ObjectOp;
  const Value od = Value::global("collections", "OrderedDict");
  EXPECT_EQ(generic_repr(od), "collections.OrderedDict");
  EXPECT_EQ(generic_repr(Value::global("a b", "c")), "global('a b', 'c')");
  EXPECT_EQ(generic_repr(Value::object(ObjectForm::reduce, od, Value::tuple())), "collections.OrderedDict()");
  EXPECT_EQ(generic_repr(Value::object(ObjectForm::reduce, Value::global("datetime", "date"),
                                       Value::tuple({Value::bytes("\x07\xbc\x05\x07")}))),
            "datetime.date(b'\\x07\\xbc\\x05\\x07')");
  const Value cls = Value::global("mod", "C");
  EXPECT_EQ(generic_repr(Value::object(ObjectForm::newobj, cls, Value::tuple({1, "x"}))),
            "mod.C.__new__(mod.C, 1, 'x')");
  Value kwargs = Value::dict();
  kwargs.set_item("k", 3);
  EXPECT_EQ(generic_repr(Value::object(ObjectForm::newobj_ex, cls, Value::tuple({1}), kwargs)),
            "mod.C.__new__(mod.C, 1, **{'k': 3})");
  EXPECT_EQ(generic_repr(Value::object(ObjectForm::newobj_ex, cls, Value::tuple(), Value::dict())),
            "mod.C.__new__(mod.C)");

  Value with_ops = Value::object(ObjectForm::reduce, od, Value::tuple());
  with_ops.add_object_op(ObjectOp::setitem, 1, 2);
  with_ops.add_object_op(ObjectOp::append, "a");
  with_ops.add_object_op(ObjectOp::additem, 3.5);
  Value state = Value::dict();
  state.set_item("self", with_ops);  // a cycle through the state
  with_ops.add_object_op(ObjectOp::build, state);
  EXPECT_EQ(generic_repr(with_ops),
            "<collections.OrderedDict() [1]=2 .append('a') .add(3.5) .__setstate__({'self': <...>})>");

  EXPECT_EQ(generic_repr(Value::object(ObjectForm::binpersid, Value(), Value::tuple({"bpid", 1}))),
            "persistent_load(('bpid', 1))");
  EXPECT_EQ(generic_repr(Value::buffer("ro", 0, true)), "PickleBuffer(b'ro', readonly=True)");
  EXPECT_EQ(generic_repr(Value::buffer("rw", 1, false)), "PickleBuffer(b'rw')");
  EXPECT_EQ(pickle::ascii(Value::list({Value::global("m", "f"), "\xc3\xa9"})), "[m.f, '\\xe9']");
}

// Objects loaded from CPython's pickles (recorded in dis_cases.jsonl) print in the documented form.
TEST(Repr, LoadedObjectsPrintTheDocumentedForm) {
  if (!reader_available()) GTEST_SKIP() << "pickle::loads is not implemented yet";
  std::map<std::string, std::string> data;
  for (const Row& row : read_rows("dis_cases.jsonl")) data[row.at("name")] = from_hex(row.at("data"));
  const std::vector<std::pair<std::string, std::string>> expectations{
      {"obj ordereddict/p2", "<collections.OrderedDict() [1]=2 ['a']=[3]>"},
      {"obj date/p3", "datetime.date(b'\\x07\\xbc\\x05\\x07')"},
      {"obj plain/p4", "<__main__.Plain.__new__(__main__.Plain) .__setstate__({'x': 1, 'y': [2, 3]})>"},
      {"obj plain/p0",
       "<copyreg._reconstructor(__main__.Plain, builtins.object, None) .__setstate__({'x': 1, 'y': [2, 3]})>"},
      {"obj list subclass/p2", "<__main__.ListSub.__new__(__main__.ListSub) .append(1) .append(2)>"},
      {"obj newargs_ex/p4",
       "<__main__.WithNewArgsEx.__new__(__main__.WithNewArgsEx, 1, 2, **{'k': 3}) .__setstate__({'args': ()})>"},
      {"obj global function/p0", "builtins.len"},
      {"persid/p0", "[persistent_load('abc'), persistent_load(\"('bpid', 1)\"), 'plain']"},
      {"persid/p1", "[persistent_load('abc'), persistent_load(('bpid', 1)), 'plain']"},
      {"py2 old_instance/cPickle/p1", "<__main__.Old() .__setstate__({'a': 1})>"},
  };
  for (const auto& [name, want] : expectations) {
    ASSERT_TRUE(data.count(name)) << name;
    EXPECT_EQ(generic_repr(pickle::loads(data[name])), want) << name;
  }
}

// ReprOptions::max_size refuses exactly the texts longer than it: the lower bound computed before
// printing never exceeds the real length, for every recorded value (cycles, sharing and objects
// included), typed or generic.
TEST(Repr, MaxSizeRefusesExactlyTheLongerTexts) {
  if (!reader_available()) GTEST_SKIP() << "pickle::loads is not implemented yet";
  std::vector<Value> values;
  for (const Row& row : cases()) {
    for (int proto = 0; proto <= 5; ++proto) {
      const auto pickled = row.find("p" + std::to_string(proto));
      if (pickled == row.end()) continue;
      try {
        values.push_back(pickle::loads(from_hex(pickled->second)));
      } catch (const pickle::Error&) {
      }
    }
  }
  for (const Row& row : read_rows("dis_cases.jsonl")) {
    try {
      values.push_back(pickle::loads(from_hex(row.at("data"))));
    } catch (const pickle::Error&) {
    }
  }
  Value cycle = Value::list();
  Value holder = Value::dict();
  holder.set_item("self", holder);
  holder.set_item("list", cycle);
  cycle.append(holder);
  cycle.append(cycle);
  values.push_back(Value::list({cycle, holder, cycle}));
  ASSERT_GT(values.size(), 1000u);
  std::size_t checked = 0;
  for (const bool typed : {true, false}) {
    for (const Value& value : values) {
      const std::string text = pickle::repr(value, pickle::ReprOptions{.typed_objects = typed});
      pickle::ReprOptions exact{.max_size = text.size(), .typed_objects = typed};
      std::string bounded;
      EXPECT_NO_THROW(bounded = pickle::repr(value, exact)) << text.substr(0, 200);
      EXPECT_EQ(bounded, text);
      pickle::ReprOptions shorter{.max_size = text.size() - 1, .typed_objects = typed};
      EXPECT_THROW((void)pickle::repr(value, shorter), pickle::Error) << text.substr(0, 200);
      ++checked;
    }
  }
  EXPECT_GT(checked, 2000u);
}

// Shared references make the text exponential in the pickle's size; a bounded repr refuses it
// before printing (its message gives the lower bound), however the sharing is built.
TEST(Repr, ExponentialTextsAreRefusedUpFront) {
  Value tuples = Value::tuple({1, 2});
  Value lists = Value::list({1});
  for (int i = 0; i < 200; ++i) {
    tuples = Value::tuple({tuples, tuples});
    lists = Value::list({lists, lists, Value::list({lists})});
  }
  // x = f(x, x), 200 times: objects whose arguments share.
  auto bytes = [](const auto& literal) { return std::string(literal, sizeof(literal) - 1); };
  std::string bomb = bytes("\x80\x02" "cmod\nf\nq\x00K\x01");
  for (int i = 0; i < 200; ++i) bomb += bytes("q\x01" "0h\x00h\x01h\x01\x86R");
  bomb += '.';
  const Value object_bomb = pickle::loads(bomb);
  for (const Value& value : {tuples, lists, object_bomb}) {
    for (const bool typed : {true, false}) {
      try {
        (void)pickle::repr(value, pickle::ReprOptions{.max_size = std::size_t(1) << 30, .typed_objects = typed});
        ADD_FAILURE() << "no error";
      } catch (const pickle::Error& error) {
        EXPECT_EQ(error.python_class(), pickle::PyExc::MemoryError);
        EXPECT_NE(std::string(error.what()).find("at least"), std::string::npos) << error.what();
      }
    }
  }
}

// CPython's set order, checked live on random sets when an interpreter is available (the recorded
// cases cover the same ground without one).
TEST(Repr, SetOrderMatchesLivePython) {
  const char* python = std::getenv("PICKLE_PYTHON");
  if (python == nullptr) GTEST_SKIP() << "PICKLE_PYTHON is not set";
  std::mt19937_64 rng(12345);
  std::vector<std::vector<long long>> sets;
  std::string script = "import sys\nfor line in sys.stdin:\n    print(repr(set(int(x) for x in line.split())))\n";
  std::string input;
  for (int n = 0; n < 300; ++n) {
    std::vector<long long> items;
    // Mostly small sets; then large ones, the last past 50,000 items, where CPython grows its table
    // by 2x instead of 4x.
    const std::size_t size = n == 299 ? 120000 : rng() % (n < 250 ? 60 : 3000);
    const long long spread = n % 3 == 0 ? 100 : n % 3 == 1 ? 1LL << 40 : 1LL << 62;
    for (std::size_t i = 0; i < size; ++i) {
      items.push_back(static_cast<long long>(rng() % static_cast<unsigned long long>(spread)) - spread / 2);
    }
    for (long long x : items) input += std::to_string(x) + " ";
    input += "\n";
    sets.push_back(items);
  }
  char in_path[] = "/tmp/repr_test_in_XXXXXX";
  const int fd = mkstemp(in_path);
  ASSERT_GE(fd, 0);
  FILE* f = fdopen(fd, "w");
  std::fwrite(input.data(), 1, input.size(), f);
  std::fclose(f);
  const std::string command = std::string(python) + " -c '" + script + "' < " + in_path;
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[65536];
  std::size_t got;
  while ((got = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, got);
  pclose(pipe);
  std::remove(in_path);
  std::istringstream lines(output);
  std::string want;
  std::size_t index = 0;
  while (std::getline(lines, want)) {
    ASSERT_LT(index, sets.size());
    Value s = Value::set();
    for (long long x : sets[index]) s.add(x);  // set(generator): added in order, like set(list)
    EXPECT_EQ(pickle::repr(s), want) << "set " << index;
    ++index;
  }
  EXPECT_EQ(index, sets.size());
}

}  // namespace
