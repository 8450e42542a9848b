// A thread-safe LRU memoizer for any callable, like Python's functools.lru_cache, with the fallback
// PyTorch's caching utilities add (arguments that cannot be hashed are passed straight to the
// function, uncached) and without their flaws.
//
//   pickle::LruCache<std::string(const pickle::Value&)> cached_dumps(
//       [](const pickle::Value& v) { return pickle::dumps(v); });
//   std::string bytes = cached_dumps(key);      // a miss, then hits for keys equal to `key`
//   pickle::CacheInfo info = cached_dumps.cache_info();
//
// Keys. The arguments, decayed, form the key (a std::string_view is stored as a std::string; a
// pointer is keyed by its address, as std::hash does). A C++ argument type is cacheable when
// std::hash and operator== exist for it; a signature with any other argument type is never cached
// (decided at compile time, `LruCache<...>::cacheable`). Arguments of type pickle::Value are decided
// at run time by Python's rules, through Value::hash(): list, dict, set and bytearray are
// unhashable, a tuple is hashable when all its items are, a frozenset always; globals hash by name,
// inert objects and buffers by identity. A call with an unhashable argument is passed to the
// function and counted neither as a hit nor a miss (as in CPython, where hashing the key fails
// before the lookup).
//
// typed (default true) distinguishes types all the way down: (True,) and (1,), 1 and 1.0, 0.0 and
// -0.0 are different keys, and so are (s, s) with one shared str and (s, t) with two equal strs
// (pickle writes them differently). Two Values are the same key when pickle::same_graph holds:
// their object graphs are isomorphic, atoms equal and of the same kind (floats bit for bit), set
// items in the same order — so a cached result always equals the result of calling the function
// on the argument given. (Inert objects and buffers hash by identity, as in Python, so in practice
// only the same object finds their entry.) typed=false uses Python's == instead (1 == 1.0 ==
// True), like functools.lru_cache(typed=False). For C++ types the static type is part of the
// signature, so typed has no further effect on them.
//
// Exceptions. Hashability is decided before the function is called, so an exception thrown by the
// function itself always propagates unchanged (the call counts as a miss and nothing is stored).
//
// Concurrency. The cache is split into shards by key hash, each with its own mutex, LRU list and
// miss counter. maxsize bounds the whole cache: when it is full, a new entry replaces the least
// recently used entry of its own shard (of another shard if its own is empty). With shards = 1 the
// eviction order is exactly functools'; with more shards it is LRU within each shard.
//
// Hits do not take a lock. Each thread keeps a small direct-mapped front of the entries it found
// (copies of key and result), valid while the entry's shard has lost no entry since (a per-shard
// generation, bumped on every eviction and clear, read without writing). A hit in the front
// writes only the thread's own memory and a hit counter striped across cache lines; the recency it
// implies is replayed into the shared LRU lists every 1024 front hits and before the thread's next
// locked operation, so one thread's calls keep functools' exact order, and another thread's hits
// reach the order at most 1024 of its hits late (concurrent calls have no order to keep anyway). As in CPython, two threads missing on the same key at once both call
// the function; the first result stored is kept. A lookup borrows the caller's Value arguments, so a
// hit copies no handle. Every operation is O(1) plus hashing and comparing the key. The function
// may be called concurrently from several threads.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pickle/value.hpp"

namespace pickle {

struct LruOptions {
  // Largest number of entries; 0 disables caching (every call is a miss); nullopt is unbounded.
  std::optional<std::size_t> maxsize = 64;
  bool typed = true;
  // Number of independently locked parts (at least 1; 1 gives functools' exact eviction order).
  std::size_t shards = 8;
};

struct CacheInfo {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::optional<std::size_t> maxsize;  // nullopt: unbounded
  std::size_t currsize = 0;
  friend bool operator==(const CacheInfo&, const CacheInfo&) = default;
};

namespace lru_detail {

// The key an argument of type pickle::Value contributes: Python's hash, computed once when the key
// is made (`hashable` is false when Value::hash() refuses), and equality by pickle::same_graph when
// typed, Python's == otherwise.
struct ValueKey {
  // Borrowed from the caller's argument while looking up, so that a hit copies no handle (a copy
  // would touch the reference count every thread hitting the entry shares); owned once stored.
  const Value* borrowed = nullptr;
  Value owned;
  std::size_t hash = 0;
  bool typed = true;
  bool hashable = false;

  ValueKey(const Value& v, bool typed_key);
  const Value& value() const noexcept { return borrowed ? *borrowed : owned; }
  void own() {
    if (borrowed) {
      owned = *borrowed;
      borrowed = nullptr;
    }
  }
  friend bool operator==(const ValueKey& a, const ValueKey& b);
};

template <class T>
concept NativeKey = requires(const T& a, const T& b) {
  { std::hash<T>{}(a) } -> std::convertible_to<std::size_t>;
  { a == b } -> std::convertible_to<bool>;
} && std::copy_constructible<T>;

template <class Arg>
struct KeyPart {
  using Type = std::remove_cvref_t<Arg>;
  static constexpr bool cacheable = NativeKey<Type>;
  static const Type& make(const Type& argument, bool) { return argument; }
  static bool hashable(const Type&) { return true; }
  static std::size_t hash(const Type& part) { return std::hash<Type>{}(part); }
  static void own(Type&) noexcept {}
};

// A view argument is keyed by the text it shows, which the cache must own.
template <class Arg>
  requires std::same_as<std::remove_cvref_t<Arg>, std::string_view>
struct KeyPart<Arg> {
  using Type = std::string;
  static constexpr bool cacheable = true;
  static std::string make(std::string_view argument, bool) { return std::string(argument); }
  static bool hashable(const std::string&) { return true; }
  static std::size_t hash(const std::string& part) { return std::hash<std::string>{}(part); }
  static void own(std::string&) noexcept {}
};

template <class Arg>
  requires std::same_as<std::remove_cvref_t<Arg>, Value>
struct KeyPart<Arg> {
  using Type = ValueKey;
  static constexpr bool cacheable = true;
  static ValueKey make(const Value& argument, bool typed) { return ValueKey(argument, typed); }
  static bool hashable(const ValueKey& part) { return part.hashable; }
  static std::size_t hash(const ValueKey& part) { return part.hash; }
  static void own(ValueKey& part) { part.own(); }
};

inline std::size_t combine_hashes(std::size_t seed, std::size_t h) noexcept {
  return seed ^ (h + 0x9e3779b97f4a7c15ull + (seed << 6) + (seed >> 2));
}

// A key with its hash, computed once and used both to pick the shard and inside the shard's map.
template <class Key>
struct HashedKey {
  Key key;
  std::size_t hash;
  friend bool operator==(const HashedKey& a, const HashedKey& b) {
    return a.hash == b.hash && a.key == b.key;
  }
};

template <class Key>
struct HashedKeyHash {
  std::size_t operator()(const HashedKey<Key>& k) const noexcept { return k.hash; }
};

// The sharded LRU store: a map per shard whose entries are threaded on an intrusive recency list.
template <class Key, class Result>
class ShardedLruStore {
 public:
  ShardedLruStore(std::optional<std::size_t> maxsize, std::size_t shard_count)
      : maxsize_(maxsize), shards_(shard_count == 0 ? 1 : shard_count) {}

  // Returns the stored result and marks it most recently used (a hit), or counts a miss.
  std::optional<Result> find(const HashedKey<Key>& key) {
    const std::size_t index = shard_index(key.hash);
    Front& front = front_for(id_);
    FrontSlot* const ways = &front.slots[front_set(key.hash) * front_ways];
    const std::uint64_t generation = generations_[index].value.load(std::memory_order_acquire);
    FrontSlot* victim = ways;
    for (std::size_t way = 0; way < front_ways; ++way) {
      FrontSlot& slot = ways[way];
      if (slot.key && slot.shard == index && slot.generation == generation && *slot.key == key) {
        count_hit();
        slot.last_hit = ++front.clock;
        slot.pending = true;
        if (++front.hits_since_replay >= replay_interval) replay(front);
        return *slot.result;
      }
      if (victim->key && (!slot.key || slot.last_hit < victim->last_hit)) victim = &slot;
    }
    FrontSlot& slot = *victim;
    replay(front);
    Shard& shard = shards_[index];
    std::lock_guard lock(shard.mutex);
    auto it = shard.map.find(key);
    if (it == shard.map.end()) {
      ++shard.misses;
      return std::nullopt;
    }
    count_hit();
    shard.move_to_front(&*it);
    remember(slot, *it, index);
    slot.last_hit = ++front.clock;
    return it->second.result;
  }

  // Stores a result computed after a miss, unless another thread stored one for the key meanwhile.
  void insert(HashedKey<Key>&& key, const Result& result) {
    const std::size_t home = shard_index(key.hash);
    for (;;) {
      Shard& shard = shards_[home];
      std::unique_lock lock(shard.mutex);
      if (shard.map.contains(key)) return;
      if (!maxsize_ || reserve_slot()) {
        if (!maxsize_) size_.fetch_add(1, std::memory_order_relaxed);
        try {
          shard.emplace_front(std::move(key), result);
        } catch (...) {
          size_.fetch_sub(1, std::memory_order_relaxed);
          throw;
        }
        return;
      }
      if (!shard.empty()) {  // full: replace this shard's least recently used entry
        shard.erase_back();
        bump_generation(home);
        shard.emplace_front(std::move(key), result);
        return;
      }
      lock.unlock();
      evict_elsewhere(home);
    }
  }

  CacheInfo info() {
    CacheInfo info;
    info.maxsize = maxsize_;
    for (Shard& shard : shards_) {
      std::lock_guard lock(shard.mutex);
      info.misses += shard.misses;
    }
    for (const PaddedCounter& stripe : hit_stripes_) info.hits += stripe.value.load(std::memory_order_relaxed);
    info.currsize = size_.load(std::memory_order_relaxed);
    return info;
  }

  void clear() {
    for (std::size_t i = 0; i < shards_.size(); ++i) {
      std::lock_guard lock(shards_[i].mutex);
      size_.fetch_sub(shards_[i].map.size(), std::memory_order_relaxed);
      shards_[i].clear();
      bump_generation(i);
    }
    for (PaddedCounter& stripe : hit_stripes_) stripe.value.store(0, std::memory_order_relaxed);
  }

 private:
  struct Entry;
  using Item = std::pair<const HashedKey<Key>, Entry>;  // the map's value_type

  struct Entry {
    Result result;
    Item* newer = nullptr;
    Item* older = nullptr;
    explicit Entry(const Result& r) : result(r) {}
  };
  using Map = std::unordered_map<HashedKey<Key>, Entry, HashedKeyHash<Key>>;
  static_assert(std::is_same_v<Item, typename Map::value_type>);

  // Each shard on its own cache lines, so that two threads hitting different shards do not share
  // a line through the mutex or the counters.
  struct alignas(64) Shard {
    std::mutex mutex;
    Map map;
    Item* newest = nullptr;
    Item* oldest = nullptr;
    std::uint64_t misses = 0;

    bool empty() const noexcept { return map.empty(); }

    void unlink(Item* item) noexcept {
      Entry& e = item->second;
      (e.newer ? e.newer->second.older : newest) = e.older;
      (e.older ? e.older->second.newer : oldest) = e.newer;
      e.newer = e.older = nullptr;
    }
    void link_front(Item* item) noexcept {
      item->second.older = newest;
      item->second.newer = nullptr;
      (newest ? newest->second.newer : oldest) = item;
      newest = item;
    }
    void move_to_front(Item* item) noexcept {
      if (item == newest) return;
      unlink(item);
      link_front(item);
    }
    void emplace_front(HashedKey<Key>&& key, const Result& result) {
      auto [it, inserted] = map.try_emplace(std::move(key), result);
      if (inserted) link_front(&*it);
    }
    void erase_back() {
      Item* victim = oldest;
      unlink(victim);
      map.erase(victim->first);
    }
    void clear() {
      map.clear();
      newest = oldest = nullptr;
      misses = 0;
    }
  };

  std::size_t shard_index(std::size_t hash) const noexcept {
    // std::hash of an integer is the integer itself: mix before reducing to a shard index.
    const std::uint64_t mixed = static_cast<std::uint64_t>(hash) * 0x9e3779b97f4a7c15ull;
    return static_cast<std::size_t>((mixed >> 32) % shards_.size());
  }
  Shard& shard_for(std::size_t hash) { return shards_[shard_index(hash)]; }

  bool reserve_slot() noexcept {
    std::size_t size = size_.load(std::memory_order_relaxed);
    while (size < *maxsize_) {
      if (size_.compare_exchange_weak(size, size + 1, std::memory_order_relaxed)) return true;
    }
    return false;
  }

  // The home shard is empty but the cache is full: free a slot in another shard. Only one shard
  // lock is held at a time, so there is no lock order to respect.
  void evict_elsewhere(std::size_t home) {
    for (std::size_t step = 1; step < shards_.size(); ++step) {
      Shard& shard = shards_[(home + step) % shards_.size()];
      std::lock_guard lock(shard.mutex);
      if (!shard.empty()) {
        shard.erase_back();
        bump_generation((home + step) % shards_.size());
        size_.fetch_sub(1, std::memory_order_relaxed);
        return;
      }
    }
  }

  // --- the lock-free hit path -----------------------------------------------------------------

  struct alignas(64) PaddedCounter {
    std::atomic<std::uint64_t> value{0};
  };

  // 4-way set associative, so that the default 64 entries fit in one front.
  static constexpr std::size_t front_sets = 64;
  static constexpr std::size_t front_ways = 4;
  static constexpr std::uint32_t replay_interval = 1024;

  struct FrontSlot {
    std::optional<HashedKey<Key>> key;  // owned copy; set last, so a key means a usable slot
    std::optional<Result> result;
    std::uint64_t generation = 0;  // of the shard, when the entry was copied
    std::size_t shard = 0;
    std::uint64_t last_hit = 0;
    bool pending = false;  // hit in the front since its recency was last replayed
  };

  struct Front {
    explicit Front(std::uint64_t id) : store_id(id) {}
    std::uint64_t store_id;
    std::vector<FrontSlot> slots = std::vector<FrontSlot>(front_sets * front_ways);
    std::uint64_t clock = 0;
    std::uint32_t hits_since_replay = 0;
  };

  static std::uint64_t next_store_id() {
    static std::atomic<std::uint64_t> counter{0};
    return counter.fetch_add(1, std::memory_order_relaxed) + 1;
  }

  // This thread's front for the store `id`. A thread keeps the fronts of the few stores it used
  // last; a store is only ever reached through its own calls, so a front never outlives its use.
  static Front& front_for(std::uint64_t id) {
    constexpr std::size_t kept = 8;
    thread_local std::vector<std::unique_ptr<Front>> fronts;
    if (!fronts.empty() && fronts.front()->store_id == id) return *fronts.front();
    for (std::size_t i = 1; i < fronts.size(); ++i) {
      if (fronts[i]->store_id == id) {
        std::swap(fronts[0], fronts[i]);
        return *fronts.front();
      }
    }
    if (fronts.size() == kept) fronts.pop_back();  // its pending recency is dropped
    fronts.insert(fronts.begin(), std::make_unique<Front>(id));
    return *fronts.front();
  }

  static std::size_t front_set(std::size_t hash) noexcept {
    // Integer keys hash to themselves: mix all the bits (murmur3's finalizer) before taking a few.
    auto h = static_cast<std::uint64_t>(hash);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return static_cast<std::size_t>(h % front_sets);
  }

  void count_hit() noexcept {
    thread_local const std::size_t stripe =
        std::hash<std::thread::id>{}(std::this_thread::get_id()) % stripe_count;
    hit_stripes_[stripe].value.fetch_add(1, std::memory_order_relaxed);
  }

  // Called with the shard locked: removals are what make a front copy stale.
  void bump_generation(std::size_t shard) noexcept {
    generations_[shard].value.fetch_add(1, std::memory_order_release);
  }

  // Called with the shard locked, after a hit there: copy the entry into the thread's front.
  void remember(FrontSlot& slot, const Item& item, std::size_t shard) noexcept {
    slot.key.reset();
    slot.result.reset();
    slot.pending = false;
    try {
      slot.result.emplace(item.second.result);
      HashedKey<Key> copy = item.first;  // the stored key owns its parts
      slot.key.emplace(std::move(copy));
    } catch (...) {  // the front is an optimization: without memory, just don't keep the copy
      slot.result.reset();
      return;
    }
    slot.generation = generations_[shard].value.load(std::memory_order_relaxed);
    slot.shard = shard;
  }

  // Applies the recency of the front's hits to the shared lists, oldest hit first.
  void replay(Front& front) {
    front.hits_since_replay = 0;
    std::vector<FrontSlot*> pending;
    for (FrontSlot& slot : front.slots) {
      if (slot.pending) pending.push_back(&slot);
    }
    if (pending.empty()) return;
    std::sort(pending.begin(), pending.end(),
              [](const FrontSlot* a, const FrontSlot* b) { return a->last_hit < b->last_hit; });
    for (FrontSlot* slot : pending) {
      slot->pending = false;
      Shard& shard = shards_[slot->shard];
      std::lock_guard lock(shard.mutex);
      if (slot->generation != generations_[slot->shard].value.load(std::memory_order_relaxed)) continue;
      auto it = shard.map.find(*slot->key);
      if (it != shard.map.end()) shard.move_to_front(&*it);
    }
  }

  static constexpr std::size_t stripe_count = 16;

  std::optional<std::size_t> maxsize_;
  std::vector<Shard> shards_;
  std::vector<PaddedCounter> generations_ = std::vector<PaddedCounter>(shards_.size());
  std::array<PaddedCounter, stripe_count> hit_stripes_;
  const std::uint64_t id_ = next_store_id();
  alignas(64) std::atomic<std::size_t> size_{0};
};

template <class F>
struct SignatureOf : SignatureOf<decltype(&F::operator())> {};
template <class R, class... A>
struct SignatureOf<R (*)(A...)> { using type = R(A...); };
template <class R, class... A>
struct SignatureOf<R(A...)> { using type = R(A...); };
template <class C, class R, class... A>
struct SignatureOf<R (C::*)(A...)> { using type = R(A...); };
template <class C, class R, class... A>
struct SignatureOf<R (C::*)(A...) const> { using type = R(A...); };
template <class C, class R, class... A>
struct SignatureOf<R (C::*)(A...) noexcept> { using type = R(A...); };
template <class C, class R, class... A>
struct SignatureOf<R (C::*)(A...) const noexcept> { using type = R(A...); };

}  // namespace lru_detail

template <class Signature>
class LruCache;

template <class R, class... Args>
class LruCache<R(Args...)> {
 public:
  using Result = std::remove_cvref_t<R>;
  // False when some argument type has no std::hash / operator==: every call then goes straight to
  // the function.
  static constexpr bool cacheable = (lru_detail::KeyPart<Args>::cacheable && ...);

  static_assert(!std::is_void_v<R>, "a memoized function must return a value");
  static_assert(!std::is_reference_v<R>, "a memoized function must return by value");
  static_assert(std::is_copy_constructible_v<Result>, "cached results are returned by copy");

  // `keep`, when given, decides which results are stored: a result it rejects is returned but not
  // cached (the next equal call is a miss again). Used to avoid handing out one mutable object to
  // several callers.
  template <class F>
    requires std::is_invocable_r_v<R, F&, Args...>
  explicit LruCache(F fn, LruOptions options = {}, std::function<bool(const Result&)> keep = {})
      : function_(std::move(fn)),
        options_(options),
        keep_(std::move(keep)),
        state_(std::make_unique<State>(options)) {}

  R operator()(Args... args) const {
    if constexpr (!cacheable) {
      return function_(std::forward<Args>(args)...);
    } else {
      if (options_.maxsize && *options_.maxsize == 0) {
        state_->uncached_misses.fetch_add(1, std::memory_order_relaxed);
        return function_(std::forward<Args>(args)...);
      }
      std::optional<lru_detail::HashedKey<Key>> key = make_key(args...);
      if (!key) return function_(std::forward<Args>(args)...);  // unhashable: the fallback
      if (std::optional<Result> hit = state_->store.find(*key)) return std::move(*hit);
      // Own the borrowed parts before the call: an argument taken by value is moved into it.
      std::apply([](auto&... parts) { (lru_detail::KeyPart<Args>::own(parts), ...); }, key->key);
      Result result = function_(std::forward<Args>(args)...);
      if (!keep_ || keep_(result)) state_->store.insert(std::move(*key), result);
      return result;
    }
  }

  CacheInfo cache_info() const {
    CacheInfo info = state_->store.info();
    info.misses += state_->uncached_misses.load(std::memory_order_relaxed);
    return info;
  }

  // Empties the cache and resets the statistics, like functools' cache_clear().
  void cache_clear() {
    state_->store.clear();
    state_->uncached_misses.store(0, std::memory_order_relaxed);
  }

  const LruOptions& options() const noexcept { return options_; }

 private:
  using Key = std::tuple<typename lru_detail::KeyPart<Args>::Type...>;

  struct State {
    explicit State(const LruOptions& options) : store(options.maxsize, options.shards) {}
    lru_detail::ShardedLruStore<Key, Result> store;
    std::atomic<std::uint64_t> uncached_misses{0};
  };

  std::optional<lru_detail::HashedKey<Key>> make_key(const std::remove_cvref_t<Args>&... args) const {
    Key key(lru_detail::KeyPart<Args>::make(args, options_.typed)...);
    bool hashable = true;
    std::size_t hash = 0;
    std::apply(
        [&](const auto&... parts) {
          ((hashable = hashable && lru_detail::KeyPart<Args>::hashable(parts)), ...);
          if (hashable) {
            ((hash = lru_detail::combine_hashes(hash, lru_detail::KeyPart<Args>::hash(parts))), ...);
          }
        },
        key);
    if (!hashable) return std::nullopt;
    return lru_detail::HashedKey<Key>{std::move(key), hash};
  }

  std::function<R(Args...)> function_;
  LruOptions options_;
  std::function<bool(const Result&)> keep_;
  std::unique_ptr<State> state_;
};

template <class F>
LruCache(F, LruOptions = {}) -> LruCache<typename lru_detail::SignatureOf<std::decay_t<F>>::type>;

// functools.lru_cache as a function: lru_cache(fn) memoizes fn with maxsize 64, typed.
template <class F>
auto lru_cache(F fn, LruOptions options = {}) {
  return LruCache<typename lru_detail::SignatureOf<std::decay_t<F>>::type>(std::move(fn), options);
}

}  // namespace pickle
