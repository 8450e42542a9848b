// Properties of the LRU memoizer, for random call sequences (hashable and unhashable arguments,
// maxsize 0, 1, small and unbounded): cached results equal uncached ones, and with one shard the
// counts equal those of a plain model of functools.lru_cache.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <bit>
#include <list>
#include <sstream>
#include <string>
#include <vector>

#include "pickle/lru.hpp"
#include "pickle/value.hpp"
#include "pickle/writer.hpp"

namespace {

using pickle::CacheInfo;
using pickle::LruCache;
using pickle::LruOptions;
using pickle::Value;

// --- random arguments, as text ------------------------------------------------------------------
//
// An argument is described by a notation string (printable in counterexamples, and a canonical
// typed key for the model): space-separated tokens in prefix order.
//   N T F i<decimal> f<16 hex digits of the double> s<text> b<text> B<text> (bytearray)
//   t<n> l<n> z<n> (tuple, list, frozenset of the next n) d1 (a dict of the next two)
//   x<text>  a 2-tuple holding one str node twice (shared), unlike t2 s<text> s<text>

const std::vector<std::string> kAtoms = {
    "N", "T", "F", "i0", "i1", "i2", "i-1", "i1180591620717411303424",
    "f0000000000000000", "f8000000000000000", "f3ff0000000000000", "f7ff8000000000000",
    "sa", "sb", "s", "ba", "b",
};

// Draws one argument; must run inside a property.
std::string random_argument(int depth) {
  const int choice = *rc::gen::inRange(0, depth > 0 ? 10 : 5);
  if (choice < 5) return kAtoms[*rc::gen::inRange<std::size_t>(0, kAtoms.size())];
  switch (choice) {
    case 5:
    case 6: {  // tuple
      const int n = *rc::gen::inRange(0, 3);
      std::string out = "t" + std::to_string(n);
      for (int i = 0; i < n; ++i) out += " " + random_argument(depth - 1);
      return out;
    }
    case 7: {  // unhashable, directly or inside
      switch (*rc::gen::inRange(0, 4)) {
        case 0: return "l1 " + random_argument(depth - 1);
        case 1: return "d1 sa " + random_argument(depth - 1);
        case 2: return "Ba";
        default: return "t2 i0 l0";
      }
    }
    case 8: {  // frozenset of distinct ints in a fixed order
      std::vector<int> ints = *rc::gen::container<std::vector<int>>(rc::gen::inRange(0, 4));
      std::sort(ints.begin(), ints.end());
      ints.erase(std::unique(ints.begin(), ints.end()), ints.end());
      std::string out = "z" + std::to_string(ints.size());
      for (int i : ints) out += " i" + std::to_string(i);
      return out;
    }
    default:
      return *rc::gen::element<std::string>("xa", "t2 sa sa");
  }
}

std::vector<std::string> random_calls() {
  const std::size_t count = *rc::gen::inRange<std::size_t>(0, 60);
  std::vector<std::string> calls;
  for (std::size_t i = 0; i < count; ++i) {
    // Reuse earlier arguments often, so that hits and evictions happen.
    if (!calls.empty() && *rc::gen::inRange(0, 3) > 0)
      calls.push_back(calls[*rc::gen::inRange<std::size_t>(0, calls.size())]);
    else
      calls.push_back(random_argument(2));
  }
  return calls;
}

bool unhashable(const std::string& notation) {
  for (const std::string& token : [&] {
         std::vector<std::string> tokens;
         std::istringstream in(notation);
         for (std::string t; in >> t;) tokens.push_back(t);
         return tokens;
       }()) {
    if (token[0] == 'l' || token[0] == 'd' || token[0] == 'B') return true;
  }
  return false;
}

// Builds a fresh Value from its notation, without recursion.
Value build(const std::string& notation) {
  struct Frame {
    char kind;
    std::size_t wanted;
    std::vector<Value> items;
  };
  std::vector<Frame> open;
  Value result;
  std::istringstream in(notation);
  for (std::string token; in >> token;) {
    const std::string rest = token.substr(1);
    std::optional<Value> done;
    switch (token[0]) {
      case 'N': done = Value::none(); break;
      case 'T': done = Value(true); break;
      case 'F': done = Value(false); break;
      case 'i': done = Value(pickle::BigInt(rest)); break;
      case 'f': done = Value(std::bit_cast<double>(std::stoull(rest, nullptr, 16))); break;
      case 's': done = Value::str(rest); break;
      case 'b': done = Value::bytes(rest); break;
      case 'B': done = Value::bytearray(rest); break;
      case 'x': {
        Value shared = Value::str(rest);
        done = Value::tuple({shared, shared});
        break;
      }
      case 'd': open.push_back(Frame{'d', 2, {}}); break;
      default: open.push_back(Frame{token[0], std::stoul(rest), {}}); break;
    }
    for (;;) {
      if (!done) {
        if (open.empty() || open.back().items.size() < open.back().wanted) break;
        Frame frame = std::move(open.back());
        open.pop_back();
        if (frame.kind == 't') done = Value::tuple(std::span<const Value>(frame.items));
        if (frame.kind == 'l') done = Value::list(std::span<const Value>(frame.items));
        if (frame.kind == 'z') done = Value::frozenset(std::span<const Value>(frame.items));
        if (frame.kind == 'd') done = Value::dict({{frame.items[0], frame.items[1]}});
      }
      if (open.empty()) {
        result = *done;
        break;
      }
      open.back().items.push_back(*done);
      done.reset();
    }
  }
  return result;
}

// What a function sees of its argument, kind by kind and bit by bit (independent of the cache).
std::string fingerprint(const Value& root) {
  std::string out;
  std::vector<Value> pending{root};
  while (!pending.empty()) {
    Value v = pending.back();
    pending.pop_back();
    out += std::string(v.type_name()) + ":";
    switch (v.kind()) {
      case pickle::Kind::boolean: out += v.as_bool() ? "T" : "F"; break;
      case pickle::Kind::integer: out += v.as_bigint().str(); break;
      case pickle::Kind::floating: out += std::to_string(std::bit_cast<std::uint64_t>(v.as_float())); break;
      case pickle::Kind::str: out += std::string(v.as_str()); break;
      case pickle::Kind::bytes:
      case pickle::Kind::bytearray: out += std::string(v.as_bytes()); break;
      case pickle::Kind::tuple:
      case pickle::Kind::list:
      case pickle::Kind::frozenset: {
        auto items = v.items();
        out += std::to_string(items.size());
        for (auto it = items.rbegin(); it != items.rend(); ++it) pending.push_back(*it);
        break;
      }
      case pickle::Kind::dict:
        for (const auto& [key, value] : v.dict_items()) {
          pending.push_back(value);
          pending.push_back(key);
        }
        break;
      default: break;
    }
    out += " ";
  }
  return out;
}

// functools.lru_cache's bookkeeping, keyed by the notation (a typed, sharing-aware key).
class LruModel {
 public:
  explicit LruModel(std::optional<std::size_t> maxsize) : maxsize_(maxsize) {}

  void call(const std::string& key) {
    if (maxsize_ && *maxsize_ == 0) {
      ++misses_;
      return;
    }
    if (unhashable(key)) return;
    auto it = std::find(order_.begin(), order_.end(), key);
    if (it != order_.end()) {
      ++hits_;
      order_.splice(order_.begin(), order_, it);
      return;
    }
    ++misses_;
    order_.push_front(key);
    if (maxsize_ && order_.size() > *maxsize_) order_.pop_back();
  }

  CacheInfo info() const { return CacheInfo{hits_, misses_, maxsize_, order_.size()}; }

 private:
  std::optional<std::size_t> maxsize_;
  std::list<std::string> order_;
  std::uint64_t hits_ = 0;
  std::uint64_t misses_ = 0;
};

std::optional<std::size_t> random_maxsize() {
  switch (*rc::gen::inRange(0, 5)) {
    case 0: return 0;
    case 1: return 1;
    case 2: return std::nullopt;
    default: return *rc::gen::inRange<std::size_t>(2, 8);
  }
}

RC_GTEST_PROP(LruProperty, OneShardBehavesLikeFunctools, ()) {
  const std::optional<std::size_t> maxsize = random_maxsize();
  const std::vector<std::string> calls = random_calls();
  int function_calls = 0;
  LruCache<std::string(const Value&)> cached(
      [&](const Value& v) {
        ++function_calls;
        return fingerprint(v);
      },
      LruOptions{.maxsize = maxsize, .shards = 1});
  LruModel model(maxsize);
  int unhashable_calls = 0;
  for (const std::string& call : calls) {
    const Value argument = build(call);
    RC_ASSERT(cached(argument) == fingerprint(argument));
    model.call(call);
    if (unhashable(call) && maxsize != std::optional<std::size_t>(0)) ++unhashable_calls;
    RC_ASSERT(cached.cache_info() == model.info());
  }
  RC_ASSERT(static_cast<std::uint64_t>(function_calls) == model.info().misses + unhashable_calls);
}

RC_GTEST_PROP(LruProperty, ShardedCacheReturnsUncachedResultsAndExactCounts, ()) {
  const std::optional<std::size_t> maxsize = random_maxsize();
  const std::size_t shards = *rc::gen::inRange<std::size_t>(2, 9);
  const std::vector<std::string> calls = random_calls();
  int function_calls = 0;
  LruCache<std::string(const Value&)> cached(
      [&](const Value& v) {
        ++function_calls;
        return fingerprint(v);
      },
      LruOptions{.maxsize = maxsize, .shards = shards});
  std::uint64_t counted = 0;
  std::vector<std::string> distinct;
  for (const std::string& call : calls) {
    const Value argument = build(call);
    RC_ASSERT(cached(argument) == fingerprint(argument));
    const bool zero = maxsize == std::optional<std::size_t>(0);
    if (zero || !unhashable(call)) ++counted;
    if (!zero && !unhashable(call) && std::find(distinct.begin(), distinct.end(), call) == distinct.end())
      distinct.push_back(call);
    const CacheInfo info = cached.cache_info();
    RC_ASSERT(info.hits + info.misses == counted);
    RC_ASSERT(info.currsize <= distinct.size());
    if (maxsize) RC_ASSERT(info.currsize <= *maxsize);
    if (!maxsize) RC_ASSERT(info.currsize == distinct.size());
  }
  const CacheInfo info = cached.cache_info();
  const std::uint64_t unhashable_calls =
      maxsize == std::optional<std::size_t>(0)
          ? 0
          : static_cast<std::uint64_t>(std::count_if(calls.begin(), calls.end(), unhashable));
  RC_ASSERT(static_cast<std::uint64_t>(function_calls) == info.misses + unhashable_calls);
}

RC_GTEST_PROP(LruProperty, CachedPicklesEqualUncachedPickles, ()) {
  // With pickle::dumps as the function, a cached result must be the exact bytes of the argument at
  // hand: types, float signs and the sharing of str nodes all change the bytes.
  LruCache<std::string(const Value&)> cached(
      [](const Value& v) { return pickle::dumps(v); },
      LruOptions{.maxsize = random_maxsize(), .shards = *rc::gen::inRange<std::size_t>(1, 9)});
  for (const std::string& call : random_calls()) {
    const Value argument = build(call);
    RC_ASSERT(cached(argument) == pickle::dumps(argument));
  }
}

RC_GTEST_PROP(LruProperty, NativeArgumentsBehaveLikeFunctools, ()) {
  const std::optional<std::size_t> maxsize = random_maxsize();
  const auto calls = *rc::gen::container<std::vector<std::pair<int, std::string>>>(
      rc::gen::pair(rc::gen::inRange(0, 6), rc::gen::element<std::string>("", "a", "bb")));
  LruCache<std::string(int, const std::string&)> cached(
      [](int n, const std::string& s) { return std::to_string(n) + "/" + s; },
      LruOptions{.maxsize = maxsize, .shards = 1});
  LruModel model(maxsize);
  for (const auto& [n, s] : calls) {
    RC_ASSERT(cached(n, s) == std::to_string(n) + "/" + s);
    model.call("i" + std::to_string(n) + " s" + s);
  }
  RC_ASSERT(cached.cache_info() == model.info());
}

}  // namespace
