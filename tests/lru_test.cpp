// The LRU memoizer: functools.lru_cache's counting and eviction, the fallback for unhashable
// arguments, typed keys all the way down, exceptions, and concurrent use.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "pickle/lru.hpp"
#include "pickle/value.hpp"

namespace {

using pickle::CacheInfo;
using pickle::LruCache;
using pickle::LruOptions;
using pickle::Value;

CacheInfo stats(std::uint64_t hits, std::uint64_t misses, std::optional<std::size_t> maxsize,
               std::size_t currsize) {
  return CacheInfo{hits, misses, maxsize, currsize};
}

// A function that counts its calls and returns a value derived from its argument.
struct CountingSquare {
  std::atomic<int>* calls;
  long operator()(int x) const {
    ++*calls;
    return static_cast<long>(x) * x;
  }
};

// --- counting and eviction, as functools.lru_cache ------------------------------------------

// Each row: maxsize, the calls, then the cache_info functools reports after them and how often
// the function ran (worked out by hand from functools' documented LRU rules).
struct SequenceCase {
  const char* name;
  std::optional<std::size_t> maxsize;
  std::vector<int> calls;
  CacheInfo expected;
  int function_calls;
};

class LruSequence : public ::testing::TestWithParam<SequenceCase> {};

TEST_P(LruSequence, CountsAndEvictsLikeFunctools) {
  const SequenceCase& c = GetParam();
  std::atomic<int> calls{0};
  LruCache<long(int)> cached(CountingSquare{&calls}, LruOptions{.maxsize = c.maxsize, .shards = 1});
  for (int x : c.calls) EXPECT_EQ(cached(x), static_cast<long>(x) * x);
  EXPECT_EQ(cached.cache_info(), c.expected);
  EXPECT_EQ(calls.load(), c.function_calls);
}

INSTANTIATE_TEST_SUITE_P(
    Table, LruSequence,
    ::testing::Values(
        SequenceCase{"repeat", 64, {1, 1, 1}, stats(2, 1, 64, 1), 1},
        SequenceCase{"distinct", 64, {1, 2, 3}, stats(0, 3, 64, 3), 3},
        // maxsize 2: 1 2 1 3 → 3 evicts 2 (1 was used more recently); 2 misses again, evicting 1.
        SequenceCase{"lru_order", 2, {1, 2, 1, 3, 2, 1}, stats(1, 5, 2, 2), 5},
        SequenceCase{"lru_keeps_recent", 2, {1, 2, 1, 3, 1, 3}, stats(3, 3, 2, 2), 3},
        SequenceCase{"maxsize_one", 1, {1, 1, 2, 1, 1}, stats(2, 3, 1, 1), 3},
        // maxsize 0: nothing is stored, every call is a miss.
        SequenceCase{"maxsize_zero", 0, {1, 1, 1}, stats(0, 3, 0, 0), 3},
        SequenceCase{"unbounded", std::nullopt, {1, 2, 3, 4, 1, 2, 3, 4}, stats(4, 4, std::nullopt, 4), 4}),
    [](const auto& info_) { return std::string(info_.param.name); });

TEST(Lru, DefaultsAreThoseOfThePytorchHelper) {
  LruCache<int(int)> cached([](int x) { return x; });
  EXPECT_EQ(cached.options().maxsize, std::optional<std::size_t>(64));
  EXPECT_TRUE(cached.options().typed);
  EXPECT_EQ(cached.cache_info(), stats(0, 0, 64, 0));
}

TEST(Lru, ClearEmptiesTheCacheAndResetsTheCounts) {
  std::atomic<int> calls{0};
  LruCache<long(int)> cached(CountingSquare{&calls});
  cached(1);
  cached(1);
  cached(2);
  cached.cache_clear();
  EXPECT_EQ(cached.cache_info(), stats(0, 0, 64, 0));
  cached(1);
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(cached.cache_info(), stats(0, 1, 64, 1));
}

TEST(Lru, MaxsizeBoundsTheWholeCacheWhateverTheShards) {
  for (std::size_t maxsize : {1u, 2u, 3u, 7u}) {
    LruCache<int(int)> cached([](int x) { return x + 1; }, LruOptions{.maxsize = maxsize, .shards = 8});
    for (int x = 0; x < 200; ++x) {
      EXPECT_EQ(cached(x), x + 1);
      EXPECT_LE(cached.cache_info().currsize, maxsize);
    }
    EXPECT_EQ(cached.cache_info().currsize, maxsize);
    EXPECT_EQ(cached.cache_info().misses, 200u);
    // The entry just stored is the most recent of its shard: calling again is a hit.
    cached(199);
    EXPECT_EQ(cached.cache_info().hits, 1u);
  }
}

TEST(Lru, LambdasAndFunctionPointersDeduceTheirSignature) {
  auto cached = pickle::lru_cache([](const std::string& s, int n) { return s.size() * n; });
  EXPECT_EQ(cached(std::string("abc"), 2), 6u);
  EXPECT_EQ(cached(std::string("abc"), 2), 6u);
  EXPECT_EQ(cached.cache_info().hits, 1u);
  static_assert(std::is_same_v<decltype(cached), LruCache<std::size_t(const std::string&, int)>>);
}

TEST(Lru, StringViewArgumentsAreStoredByContent) {
  std::atomic<int> calls{0};
  LruCache<std::size_t(std::string_view)> cached([&](std::string_view s) {
    ++calls;
    return s.size();
  });
  {
    std::string temporary = "some text";
    EXPECT_EQ(cached(temporary), 9u);
  }  // the key must not refer to the destroyed string
  std::string other = "some text";
  EXPECT_EQ(cached(other), 9u);
  EXPECT_EQ(calls.load(), 1);
}

// --- the fallback -------------------------------------------------------------------------

TEST(LruFallback, ArgumentTypesWithoutHashAreNeverCached) {
  std::atomic<int> calls{0};
  LruCache<std::size_t(const std::vector<int>&)> cached([&](const std::vector<int>& v) {
    ++calls;
    return v.size();
  });
  static_assert(!decltype(cached)::cacheable);
  static_assert(LruCache<int(int, std::string)>::cacheable);
  EXPECT_EQ(cached(std::vector<int>{1, 2}), 2u);
  EXPECT_EQ(cached(std::vector<int>{1, 2}), 2u);
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(cached.cache_info(), stats(0, 0, 64, 0));
}

// A fingerprint of a Value that says which object the function saw, kind by kind (a test helper,
// independent of the cache's own key code).
std::string describe(const Value& v) {
  std::string out = std::string(v.type_name()) + ":";
  switch (v.kind()) {
    case pickle::Kind::boolean: return out + (v.as_bool() ? "T" : "F");
    case pickle::Kind::integer: return out + v.as_bigint().str();
    case pickle::Kind::floating: {
      double f = v.as_float();
      return out + std::to_string(f) + (std::signbit(f) ? "-" : "+");
    }
    case pickle::Kind::str: return out + std::string(v.as_str());
    case pickle::Kind::bytes: return out + std::string(v.as_bytes());
    case pickle::Kind::tuple:
    case pickle::Kind::list:
    case pickle::Kind::frozenset: {
      for (const Value& item : v.items()) out += "(" + describe(item) + ")";
      return out;
    }
    default: return out;
  }
}

TEST(LruFallback, UnhashableValuesGoStraightToTheFunctionUncounted) {
  std::atomic<int> calls{0};
  LruCache<std::string(const Value&)> cached([&](const Value& v) {
    ++calls;
    return describe(v);
  });
  const std::vector<Value> unhashable = {
      Value::list({1, 2}), Value::dict({{1, 2}}), Value::set({1}), Value::bytearray("x"),
      Value::tuple({1, Value::list()}), Value::tuple({Value::tuple({Value::dict()})})};
  for (const Value& v : unhashable) {
    EXPECT_EQ(cached(v), describe(v));
    EXPECT_EQ(cached(v), describe(v));
  }
  EXPECT_EQ(calls.load(), 2 * static_cast<int>(unhashable.size()));
  EXPECT_EQ(cached.cache_info(), stats(0, 0, 64, 0));
  // Hashable containers are cached.
  cached(Value::tuple({1, Value::tuple({2}), Value::frozenset({3})}));
  cached(Value::tuple({1, Value::tuple({2}), Value::frozenset({3})}));
  EXPECT_EQ(cached.cache_info(), stats(1, 1, 64, 1));
}

TEST(LruFallback, MaxsizeZeroCountsEveryCallAsAMissEvenUnhashable) {
  // functools' uncached wrapper never hashes: lru_cache(maxsize=0)(f)([1]) is one miss.
  LruCache<std::string(const Value&)> cached(&describe, LruOptions{.maxsize = 0});
  cached(Value::list({1}));
  cached(Value(1));
  EXPECT_EQ(cached.cache_info(), stats(0, 2, 0, 0));
}

// --- exceptions ------------------------------------------------------------------------------

TEST(LruExceptions, AnExceptionFromTheFunctionPropagatesOnceAndIsNotCached) {
  std::atomic<int> calls{0};
  LruCache<int(const Value&)> cached([&](const Value& v) -> int {
    ++calls;
    // The exception PyTorch's wrapper mistakes for an unhashable argument (a TypeError) and
    // answers by calling the function a second time.
    throw pickle::UnhashableError(v.type_name());
  });
  EXPECT_THROW(cached(Value(1)), pickle::UnhashableError);
  EXPECT_EQ(calls.load(), 1);
  EXPECT_THROW(cached(Value(1)), pickle::UnhashableError);
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(cached.cache_info(), stats(0, 2, 64, 0));  // as functools: a miss, nothing stored
}

TEST(LruExceptions, UnhashableArgumentAndThrowingFunctionAreTellApart) {
  std::atomic<int> calls{0};
  LruCache<int(const Value&)> cached([&](const Value&) -> int {
    ++calls;
    throw std::invalid_argument("from the function");
  });
  EXPECT_THROW(cached(Value::list()), std::invalid_argument);
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(cached.cache_info(), stats(0, 0, 64, 0));
}

// --- typed keys ----------------------------------------------------------------------------

TEST(LruTyped, TypesAreDistinguishedAllTheWayDown) {
  LruCache<std::string(const Value&)> cached(&describe);
  // Pairs Python's lru_cache(typed=True) confuses, because they are equal and hash equal.
  const std::vector<std::pair<Value, Value>> pairs = {
      {Value::tuple({1}), Value::tuple({true})},
      {Value::tuple({1}), Value::tuple({1.0})},
      {Value::tuple({Value::tuple({0})}), Value::tuple({Value::tuple({false})})},
      {Value::frozenset({1}), Value::frozenset({true})},
      {Value(0.0), Value(-0.0)},
      {Value::tuple({0.0}), Value::tuple({-0.0})},
      {Value(1), Value(true)},
      {Value(1), Value(1.0)},
  };
  for (const auto& [first, second] : pairs) {
    cached.cache_clear();
    ASSERT_EQ(cached(first), describe(first));
    EXPECT_EQ(cached(second), describe(second)) << describe(first) << " vs " << describe(second);
    EXPECT_EQ(cached.cache_info().hits, 0u);
  }
}

TEST(LruTyped, EqualValuesOfTheSameTypesHit) {
  LruCache<std::string(const Value&)> cached(&describe);
  cached(Value::tuple({1, "a", Value::tuple({2.5, Value::none()}), Value::bytes("b")}));
  cached(Value::tuple({1, "a", Value::tuple({2.5, Value::none()}), Value::bytes("b")}));
  cached(Value(std::numeric_limits<double>::quiet_NaN()));
  cached(Value(std::numeric_limits<double>::quiet_NaN()));  // the same bits: the same key
  cached(Value(pickle::BigInt(1) << 100));
  cached(Value(pickle::BigInt(1) << 100));
  cached(Value::global("collections", "OrderedDict"));
  cached(Value::global("collections", "OrderedDict"));
  EXPECT_EQ(cached.cache_info(), stats(4, 4, 64, 4));
}

TEST(LruTyped, SharingIsPartOfTheKey) {
  // (s, s) with one str pickles as the str then a memo fetch; (s, t) with two equal strs pickles
  // both. They must not share a cache entry.
  std::atomic<int> calls{0};
  LruCache<int(const Value&)> cached([&](const Value&) { return ++calls; });
  Value s = Value::str("shared");
  Value t = Value::str("shared");
  const int shared = cached(Value::tuple({s, s}));
  const int distinct = cached(Value::tuple({s, t}));
  EXPECT_NE(shared, distinct);
  EXPECT_EQ(cached(Value::tuple({t, t})), shared);  // same shape of sharing: the same key
  EXPECT_EQ(cached(Value::tuple({t, s})), distinct);
}

TEST(LruTyped, ValueArgumentsTakenByValueAreKeyedByWhatWasPassed) {
  // The argument is moved into the function; the stored key must still be the argument.
  LruCache<std::string(Value)> cached([](Value v) { return describe(v); });
  EXPECT_EQ(cached(Value::tuple({1, "a"})), describe(Value::tuple({1, "a"})));
  EXPECT_EQ(cached(Value::none()), describe(Value::none()));
  EXPECT_EQ(cached(Value::tuple({1, "a"})), describe(Value::tuple({1, "a"})));
  EXPECT_EQ(cached.cache_info(), stats(1, 2, 64, 2));
}

TEST(LruTyped, UntypedUsesPythonEquality) {
  LruCache<std::string(const Value&)> cached(&describe, LruOptions{.typed = false});
  cached(Value(1));
  cached(Value(1.0));
  cached(Value(true));
  cached(Value::tuple({1}));
  cached(Value::tuple({true}));
  EXPECT_EQ(cached.cache_info(), stats(3, 2, 64, 2));
}

TEST(LruTyped, DeepKeysNeedNoRecursion) {
  Value deep = Value::tuple();
  for (int i = 0; i < 200000; ++i) deep = Value::tuple({deep});
  Value deep_too = Value::tuple();
  for (int i = 0; i < 200000; ++i) deep_too = Value::tuple({deep_too});
  LruCache<int(const Value&)> cached([](const Value&) { return 7; });
  EXPECT_EQ(cached(deep), 7);
  EXPECT_EQ(cached(deep_too), 7);
  EXPECT_EQ(cached.cache_info(), stats(1, 1, 64, 1));
}

// --- concurrency -----------------------------------------------------------------------------

TEST(LruConcurrency, ManyThreadsGetCorrectResultsAndExactCounts) {
  for (std::optional<std::size_t> maxsize : {std::optional<std::size_t>(8), std::optional<std::size_t>(64),
                                             std::optional<std::size_t>()}) {
    std::atomic<int> calls{0};
    LruCache<long(int)> cached(CountingSquare{&calls}, LruOptions{.maxsize = maxsize});
    constexpr int threads = 4;
    constexpr int per_thread = 5000;
    std::atomic<int> wrong{0};
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        unsigned state = 12345u + static_cast<unsigned>(t);
        for (int i = 0; i < per_thread; ++i) {
          state = state * 1103515245u + 12345u;
          const int x = static_cast<int>((state >> 16) % 40);
          if (cached(x) != static_cast<long>(x) * x) ++wrong;
          if (i % 997 == 0) (void)cached.cache_info();
        }
      });
    }
    for (auto& w : workers) w.join();
    EXPECT_EQ(wrong.load(), 0);
    const CacheInfo after = cached.cache_info();
    EXPECT_EQ(after.hits + after.misses, static_cast<std::uint64_t>(threads * per_thread));
    EXPECT_EQ(after.misses, static_cast<std::uint64_t>(calls.load()));
    if (maxsize) {
      EXPECT_LE(after.currsize, *maxsize);
    }
    EXPECT_LE(after.currsize, 40u);
  }
}

TEST(LruConcurrency, ValueKeysAndClearFromSeveralThreads) {
  LruCache<std::string(const Value&)> cached(&describe, LruOptions{.maxsize = 16});
  std::atomic<int> wrong{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < 3; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < 3000; ++i) {
        const int n = (i * 7 + t) % 24;
        const Value key = (n % 3 == 0) ? Value::list({n}) : Value::tuple({n, std::to_string(n)});
        if (cached(key) != describe(key)) ++wrong;
        if (t == 0 && i % 500 == 0) cached.cache_clear();
      }
    });
  }
  for (auto& w : workers) w.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_LE(cached.cache_info().currsize, 16u);
}

}  // namespace
