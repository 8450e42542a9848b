// Properties of the writer.
//
// 1. Round trip: random value graphs (sharing, cycles through lists, dicts and object state,
//    every kind) written at protocols 0–5 load back as the same graph (same_graph: same structure
//    and the same sharing).
// 2. Differential (when PICKLE_PYTHON or PICKLE_PYTHONS is set): a random graph is written by us
//    and, from a description that keeps its identities (tests/writer/describe.py), rebuilt and
//    written by CPython; the bytes must be equal. PICKLE_PYTHONS lists interpreters separated by
//    ':' (e.g. /root/.pyenv/versions/3.8.18/bin/python3.8:…); each runs with target_minor set to its
//    own version.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <unistd.h>
#include <vector>

#include "pickle/reader.hpp"
#include "pickle/writer.hpp"
#include "writer/description.hpp"

namespace {

using pickle::Value;

// Builds a value graph from a list of choices (RapidCheck shrinks the list).
class GraphBuilder {
 public:
  GraphBuilder(const std::vector<std::uint32_t>& choices, bool differential)
      : choices_(choices), differential_(differential) {}

  Value build() {
    std::size_t count = 1 + next(30);
    for (std::size_t i = 0; i < count; ++i) pool_.push_back(make_node());
    // Cycles: lists and dicts get items that may lead back to themselves.
    std::size_t patches = next(4);
    for (std::size_t i = 0; i < patches; ++i) {
      Value target = pick();
      if (target.kind() == pickle::Kind::list) {
        target.append(pick());
      } else if (target.kind() == pickle::Kind::dict) {
        target.set_item(Value("cycle"), pick());
      }
    }
    std::size_t top_items = next(4);
    if (top_items == 0) return pool_.back();
    std::vector<Value> items;
    for (std::size_t i = 0; i < top_items; ++i) items.push_back(pick());
    return Value::list(std::span<const Value>(items));
  }

 private:
  std::uint32_t next(std::uint32_t bound) {
    if (bound == 0) return 0;
    std::uint32_t v = pos_ < choices_.size() ? choices_[pos_] : 0;
    ++pos_;
    return v % bound;
  }
  // The empty tuple is never memoized (CPython shares one empty tuple), so its identity is not
  // kept by a pickle: every use gets its own.
  Value pick() {
    if (pool_.empty()) return Value(next(300));
    Value v = pool_[next(static_cast<std::uint32_t>(pool_.size()))];
    if (v.kind() == pickle::Kind::tuple && v.size() == 0) return Value::tuple({});
    return v;
  }
  Value pick_hashable() {
    for (int attempt = 0; attempt < 3 && !pool_.empty(); ++attempt) {
      Value v = pick();
      if (v.hashable() && v.kind() != pickle::Kind::object && v.kind() != pickle::Kind::global &&
          !(v.is_float() && v.as_float() != v.as_float()))
        return v;
    }
    return atom();
  }
  Value atom() {
    switch (next(6)) {
      case 0: return Value();
      case 1: return Value(next(2) == 1);
      case 2: {
        static constexpr std::array<std::int64_t, 10> ints = {0, 1, 255, 256, 65535, 65536, -1,
                                                             -2147483648LL, 2147483648LL, INT64_MIN};
        return Value(ints[next(ints.size())] + static_cast<std::int64_t>(next(3)));
      }
      case 3: {
        pickle::BigInt big = pickle::BigInt(1) << (60 + next(300));
        return Value(next(2) == 1 ? pickle::BigInt(-big) : big);
      }
      case 4: {
        static constexpr std::array<double, 6> floats = {0.0, -0.0, 1.5, 1e300, -2.5e-310, 1e16};
        return Value(floats[next(floats.size())]);
      }
      default: {
        static const std::array<std::string, 8> strs = {"", "a", "\xc3\xa9", "ab", "latin1",
                                                        "\xe2\x82\xac", "\xed\xa0\x80", "builtins"};
        return Value::str(strs[next(strs.size())]);
      }
    }
  }
  Value make_node() {
    switch (next(14)) {
      case 0:
      case 1:
        return atom();
      case 2: {
        static const std::array<std::string, 5> data = {"", "a", "\xe9", "xyz", std::string(300, 'q')};
        return Value::bytes(std::string_view(data[next(data.size())]));
      }
      case 3:
        return Value::bytearray(next(2) == 0 ? "" : "ba");
      case 4:
      case 5: {
        std::vector<Value> items;
        for (std::size_t n = next(5); n > 0; --n) items.push_back(pick());
        return Value::tuple(std::span<const Value>(items));
      }
      case 6:
      case 7: {
        Value list = Value::list();
        for (std::size_t n = next(5); n > 0; --n) list.append(pick());
        return list;
      }
      case 8: {
        Value dict = Value::dict();
        for (std::size_t n = next(4); n > 0; --n) dict.set_item(pick_hashable(), pick());
        return dict;
      }
      case 9: {
        // CPython orders sets by hash; the differential keeps them to one element.
        Value set = Value::set();
        for (std::size_t n = differential_ ? next(2) : next(4); n > 0; --n) set.add(pick_hashable());
        return set;
      }
      case 10: {
        std::vector<Value> items;
        for (std::size_t n = differential_ ? next(2) : next(4); n > 0; --n) items.push_back(pick_hashable());
        return Value::frozenset(std::span<const Value>(items));
      }
      case 11: {
        static constexpr std::array<const char*, 6> names = {"int", "str", "print", "dict", "list", "len"};
        return global(names[next(names.size())]);
      }
      default: {
        // callable(*args), then list items, dict items and state, in CPython's order.
        // Not set, frozenset, bytes, bytearray: the reader folds those calls into the values they make.
        static constexpr std::array<const char*, 4> callables = {"print", "dict", "list", "len"};
        Value callable = global(callables[next(callables.size())]);
        std::vector<Value> args;
        for (std::size_t n = next(3); n > 0; --n) args.push_back(pick());
        Value object = Value::object(pickle::ObjectForm::reduce, callable,
                                     Value::tuple(std::span<const Value>(args)));
        pool_.push_back(object);  // its state may refer to it
        for (std::size_t n = next(3); n > 0; --n) object.add_object_op(pickle::ObjectOp::append, pick());
        for (std::size_t n = next(3); n > 0; --n)
          object.add_object_op(pickle::ObjectOp::setitem, pick_hashable(), pick());
        if (next(2) == 1) {
          Value state = pick();
          if (!state.is_none()) object.add_object_op(pickle::ObjectOp::build, state);
        }
        pool_.pop_back();
        return object;
      }
    }
  }

  // One object per name, as in Python (the writer memoizes globals by name).
  Value global(const std::string& name) {
    auto it = globals_.find(name);
    if (it != globals_.end()) return it->second;
    return globals_.emplace(name, Value::global("builtins", name)).first->second;
  }

  std::map<std::string, Value> globals_;
  const std::vector<std::uint32_t>& choices_;
  bool differential_;
  std::size_t pos_ = 0;
  std::vector<Value> pool_;
};

RC_GTEST_PROP(WriterProperty, RoundTripKeepsTheGraph, (const std::vector<std::uint32_t>& choices)) {
  Value value = GraphBuilder(choices, false).build();
  for (int protocol = 0; protocol <= 5; ++protocol) {
    pickle::WriteOptions options;
    options.protocol = protocol;
    std::string bytes = pickle::dumps(value, options);
    Value back = pickle::loads(bytes);
    if (!same_graph(value, back))
      RC_FAIL("protocol " + std::to_string(protocol) + ": " + pickle::testing::describe_value(value) +
              "\n pickle " + pickle::testing::to_hex(bytes) + "\n loaded " + repr(back));
    // Writing what was read gives the same bytes again.
    RC_ASSERT(pickle::dumps(back, options) == bytes);
  }
}

// --- differential ---------------------------------------------------------------------------

struct Interpreter {
  std::string path;
  int minor;
};

std::vector<Interpreter> interpreters() {
  std::vector<std::string> paths;
  if (const char* list = std::getenv("PICKLE_PYTHONS")) {
    std::string s(list);
    std::size_t start = 0;
    for (;;) {
      std::size_t colon = s.find(':', start);
      std::string p = s.substr(start, colon - start);
      if (!p.empty()) paths.push_back(p);
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
  } else if (const char* one = std::getenv("PICKLE_PYTHON")) {
    paths.push_back(one);
  }
  std::vector<Interpreter> out;
  for (const std::string& p : paths) {
    std::string cmd = "'" + p + "' -c 'import sys; print(sys.version_info[1])' 2>/dev/null";
    FILE* f = popen(cmd.c_str(), "r");
    if (f == nullptr) continue;
    int minor = 0;
    if (std::fscanf(f, "%d", &minor) == 1 && minor >= 8) out.push_back({p, minor});
    pclose(f);
  }
  return out;
}

// Runs the descriptions through CPython; one output line per input line.
std::vector<std::string> cpython_dumps(const Interpreter& python,
                                       const std::vector<std::pair<int, std::string>>& cases) {
  char in_path[] = "/tmp/writer_diff_inXXXXXX";
  int fd = mkstemp(in_path);
  if (fd < 0) return {};
  close(fd);
  {
    std::ofstream in(in_path);
    for (const auto& [protocol, text] : cases) in << protocol << ' ' << text << '\n';
  }
  const char* data = std::getenv("PICKLE_TEST_DATA");
  std::string script = std::string(data != nullptr ? data : "tests") + "/writer/dump_descriptions.py";
  std::string cmd = "'" + python.path + "' '" + script + "' < " + in_path;
  std::vector<std::string> lines;
  if (FILE* f = popen(cmd.c_str(), "r")) {
    std::string line;
    int c;
    while ((c = std::fgetc(f)) != EOF) {
      if (c == '\n') {
        lines.push_back(line);
        line.clear();
      } else {
        line += static_cast<char>(c);
      }
    }
    pclose(f);
  }
  std::remove(in_path);
  return lines;
}

TEST(WriterDifferential, MatchesCPythonOnRandomGraphs) {
  std::vector<Interpreter> pythons = interpreters();
  if (pythons.empty()) GTEST_SKIP() << "PICKLE_PYTHON / PICKLE_PYTHONS not set";
  // Each property run costs a CPython process: PICKLE_DIFFERENTIAL_RUNS (default 20) runs do the
  // work, the others pass at once.
  const char* runs_env = std::getenv("PICKLE_DIFFERENTIAL_RUNS");
  const int max_runs = runs_env != nullptr ? std::atoi(runs_env) : 20;
  for (const Interpreter& python : pythons) {
    int runs = 0;
    int batches = 0;
    int calls = 0;
    int mismatches = 0;
    // RapidCheck generates the graphs; each property run checks a batch of them with one CPython
    // process, at every protocol.
    bool ok = rc::check("differential 3." + std::to_string(python.minor), [&](const std::vector<std::vector<std::uint32_t>>& batch) {
      // Work on every fifth run, so that the batches checked span RapidCheck's growing sizes.
      if (calls++ % 5 != 4 || batches >= max_runs) RC_SUCCEED("not checked with CPython");
      ++batches;
      std::vector<std::pair<int, std::string>> cases;
      std::vector<std::string> ours;
      for (const auto& choices : batch) {
        Value value = GraphBuilder(choices, true).build();
        std::string text = pickle::testing::describe_value(value);
        // Rebuild from the description, as CPython will.
        Value rebuilt = pickle::testing::build_description(text);
        for (int protocol = 0; protocol <= 5; ++protocol) {
          pickle::WriteOptions options;
          options.protocol = protocol;
          options.target_minor = python.minor;
          options.identities = pickle::Identities::cpython;
          std::string bytes;
          try {
            bytes = pickle::testing::to_hex(pickle::dumps(rebuilt, options));
          } catch (const pickle::Error& e) {
            bytes = "!" + std::string(e.python_class_name()) + ": " + e.what();
          }
          cases.emplace_back(protocol, text);
          ours.push_back(bytes);
        }
      }
      std::vector<std::string> theirs = cpython_dumps(python, cases);
      RC_ASSERT(theirs.size() == ours.size());
      for (std::size_t i = 0; i < ours.size(); ++i) {
        ++runs;
        if (ours[i] != theirs[i]) {
          ++mismatches;
          // RapidCheck reports only the last (shrunk) run, whose batch may not be checked: print
          // the mismatch itself.
          std::fprintf(stderr, "MISMATCH protocol %d %s\n ours    %s\n cpython %s\n", cases[i].first,
                       cases[i].second.c_str(), ours[i].c_str(), theirs[i].c_str());
          RC_FAIL("protocol " + std::to_string(cases[i].first) + " " + cases[i].second + "\n ours   " +
                  ours[i].substr(0, 400) + "\n cpython " + theirs[i].substr(0, 400));
        }
      }
    });
    std::printf("[differential 3.%d] %d property runs, %d pickles compared, %d mismatches\n", python.minor,
                batches, runs, mismatches);
    EXPECT_TRUE(ok) << "3." << python.minor;
  }
}

}  // namespace
