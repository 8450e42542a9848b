// The LRU memoizer's hit path on 1 and 2 threads: the sharded cache against one lock around the
// whole cache (the same cache with one shard) and against a plain std::mutex + std::unordered_map.
//
//   ninja -C build lru_bench && build/bench/lru_bench --benchmark_min_time=0.5
//
// Every benchmark looks up the same 64 keys (the default maxsize), all already cached, so each
// iteration is one hit; items/s counts the hits of all threads per second of wall time.
#include <benchmark/benchmark.h>

#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "pickle/lru.hpp"
#include "pickle/value.hpp"

namespace {

constexpr int kKeys = 64;

long compute(int x) { return static_cast<long>(x) * x + 1; }

// The baseline: what a memoizer with one global lock and no recency list costs at least.
class MutexMapMemo {
 public:
  long operator()(int x) {
    std::lock_guard lock(mutex_);
    auto [it, inserted] = map_.try_emplace(x, 0);
    if (inserted) it->second = compute(x);
    return it->second;
  }

 private:
  std::mutex mutex_;
  std::unordered_map<int, long> map_;
};

template <class Memo>
void run_hits(benchmark::State& state, Memo& memo) {
  if (state.thread_index() == 0) {
    for (int x = 0; x < kKeys; ++x) benchmark::DoNotOptimize(memo(x));
  }
  // Threads start at different keys, as independent callers would.
  int x = static_cast<int>(state.thread_index()) * 17 % kKeys;
  for (auto _ : state) {
    benchmark::DoNotOptimize(memo(x));
    x = (x + 1) % kKeys;
  }
  state.SetItemsProcessed(state.iterations());
}

pickle::LruCache<long(int)>& sharded_cache() {
  static pickle::LruCache<long(int)> cache(&compute, pickle::LruOptions{.maxsize = 64, .shards = 8});
  return cache;
}

pickle::LruCache<long(int)>& one_lock_cache() {
  static pickle::LruCache<long(int)> cache(&compute, pickle::LruOptions{.maxsize = 64, .shards = 1});
  return cache;
}

void BM_ShardedLruHit(benchmark::State& state) { run_hits(state, sharded_cache()); }
void BM_OneLockLruHit(benchmark::State& state) { run_hits(state, one_lock_cache()); }
void BM_MutexMapHit(benchmark::State& state) {
  static MutexMapMemo memo;
  run_hits(state, memo);
}

// Hits with pickle::Value keys, as try_pickle_key sees them: a small tuple, hashed by Python's rule
// (cached in the node) and compared kind by kind (pickle::same_graph) unless it is the very object
// stored.
std::vector<pickle::Value> value_keys() {
  std::vector<pickle::Value> keys;
  for (int i = 0; i < kKeys; ++i)
    keys.push_back(pickle::Value::tuple({i, "shape", pickle::Value::tuple({2, 3})}));
  return keys;
}

pickle::LruCache<long(const pickle::Value&)>& value_cache() {
  static pickle::LruCache<long(const pickle::Value&)> cache(
      [](const pickle::Value& v) { return static_cast<long>(v.size()); });
  return cache;
}

const std::vector<pickle::Value>& stored_value_keys() {
  static const std::vector<pickle::Value> keys = [] {
    auto made = value_keys();
    for (const auto& key : made) value_cache()(key);
    return made;
  }();
  return keys;
}

void run_value_hits(benchmark::State& state, const std::vector<pickle::Value>& keys) {
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 17 % keys.size();
  for (auto _ : state) {
    benchmark::DoNotOptimize(value_cache()(keys[i]));
    i = (i + 1) % keys.size();
  }
  state.SetItemsProcessed(state.iterations());
}

// The caller passes the stored object again.
void BM_ShardedLruValueKeySameObjectHit(benchmark::State& state) {
  run_value_hits(state, stored_value_keys());
}

// The caller builds an equal key of its own (the usual case): a structural comparison per hit.
void BM_ShardedLruValueKeyEqualObjectHit(benchmark::State& state) {
  stored_value_keys();
  const std::vector<pickle::Value> own = value_keys();
  run_value_hits(state, own);
}

BENCHMARK(BM_ShardedLruHit)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_OneLockLruHit)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_MutexMapHit)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_ShardedLruValueKeySameObjectHit)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_ShardedLruValueKeyEqualObjectHit)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
