#include "set_order.hpp"

#include <cmath>
#include <unordered_map>

namespace pickle::detail {

namespace {

// --- CPython's hashes, where they are the same in every process ---------------------------------
//
// The numeric hash is the value modulo the Mersenne prime 2**61 - 1 (sys.hash_info); tuples and
// frozensets combine their items' hashes. str/bytes (seeded SipHash, except the empty ones, which
// hash to 0), None (its address, before 3.12), nan (its address since 3.10), objects and globals
// differ from process to process, so a set holding them has no reproducible order.

constexpr std::uint64_t hash_modulus = (std::uint64_t{1} << 61) - 1;
constexpr unsigned hash_bits = 61;

std::uint64_t signed_hash(bool negative, std::uint64_t magnitude) {
  std::uint64_t h = negative ? std::uint64_t{0} - magnitude : magnitude;
  if (h == static_cast<std::uint64_t>(-1)) h = static_cast<std::uint64_t>(-2);
  return h;
}

std::uint64_t mod_mersenne(std::uint64_t x) {
  x = (x & hash_modulus) + (x >> hash_bits);
  if (x >= hash_modulus) x -= hash_modulus;
  return x;
}

// x * 2**shift modulo 2**61 - 1, for x already reduced: a rotation inside 61 bits.
std::uint64_t rotate_mersenne(std::uint64_t x, unsigned shift) {
  shift %= hash_bits;
  if (shift == 0) return x;
  return ((x << shift) & hash_modulus) | (x >> (hash_bits - shift));
}

std::uint64_t int_hash(std::int64_t v) {
  const bool negative = v < 0;
  const std::uint64_t magnitude = negative ? std::uint64_t{0} - static_cast<std::uint64_t>(v)
                                           : static_cast<std::uint64_t>(v);
  return signed_hash(negative, mod_mersenne(magnitude));
}

std::uint64_t bigint_hash(const BigIntNode& node) {
  // 2**64 = 8 (mod 2**61 - 1): fold limbs from the most significant.
  std::uint64_t acc = 0;
  for (std::uint32_t i = node.limb_count; i-- > 0;) {
    acc = mod_mersenne(rotate_mersenne(acc, 3) + mod_mersenne(node.limbs[i]));
  }
  return signed_hash(node.negative, acc);
}

std::optional<std::uint64_t> float_hash(double v) {
  if (std::isnan(v)) return std::nullopt;
  if (std::isinf(v)) return signed_hash(v < 0, 314159);
  // v = mantissa * 2**exponent with an integer mantissa below 2**53.
  int exponent = 0;
  const double fraction = std::frexp(std::fabs(v), &exponent);
  const auto mantissa = static_cast<std::uint64_t>(std::ldexp(fraction, 53));
  exponent -= 53;
  const unsigned shift = static_cast<unsigned>(((exponent % 61) + 61) % 61);
  return signed_hash(v < 0, rotate_mersenne(mod_mersenne(mantissa), shift));
}

constexpr std::uint64_t xxprime_1 = 11400714785074694791ull;
constexpr std::uint64_t xxprime_2 = 14029467366897019727ull;
constexpr std::uint64_t xxprime_5 = 2870177450012600261ull;

std::uint64_t shuffle_bits(std::uint64_t h) { return ((h ^ 89869747ull) ^ (h << 16)) * 3644798167ull; }

}  // namespace

// Fixed hashes, computed with an explicit stack (tuples nest arbitrarily deep) and memoized per node
// (shared tuples are hashed once).
class FixedHashes::Hasher {
 public:
  std::optional<std::uint64_t> hash(Slot root) {
    if (auto leaf = leaf_hash(root)) return *leaf;
    if (root.tag != Tag::tuple && root.tag != Tag::frozenset) return std::nullopt;
    struct Frame {
      Slot slot;
      std::size_t index;
      std::uint64_t acc;
    };
    std::vector<Frame> stack;
    auto start = [&](Slot s) -> bool {  // false when already known
      if (memo_.count(s.p)) return false;
      memo_[s.p] = std::nullopt;  // until done: a cycle back to it counts as unhashable
      stack.push_back({s, 0, s.tag == Tag::tuple ? xxprime_5 : 0});
      return true;
    };
    if (!start(root)) return memo_[root.p];
    std::optional<std::uint64_t> child;
    bool have_child = false;
    while (!stack.empty()) {
      Frame& f = stack.back();
      const bool is_tuple = f.slot.tag == Tag::tuple;
      const std::size_t size = is_tuple ? node<SeqNode>(f.slot).size : node<DictNode>(f.slot).size;
      if (have_child) {
        have_child = false;
        if (!child) {
          fail_all(stack);
          return std::nullopt;
        }
        absorb(f, is_tuple, *child);
      }
      bool pushed = false;
      while (f.index < size) {
        const Slot item = load(is_tuple ? node<SeqNode>(f.slot).items[f.index]
                                        : node<DictNode>(f.slot).entries[f.index].key);
        ++f.index;
        std::optional<std::uint64_t> h = leaf_hash(item);
        if (!h && (item.tag == Tag::tuple || item.tag == Tag::frozenset)) {
          auto known = memo_.find(item.p);
          if (known != memo_.end()) {
            h = known->second;
            if (!h) {
              fail_all(stack);
              return std::nullopt;
            }
          } else {
            start(item);  // may reallocate: f is not used after this
            pushed = true;
            break;
          }
        }
        if (!h) {
          fail_all(stack);
          return std::nullopt;
        }
        absorb(f, is_tuple, *h);
      }
      if (pushed) continue;
      std::uint64_t result = f.acc;
      if (is_tuple) {
        result += size ^ (xxprime_5 ^ 3527539ull);
        if (result == static_cast<std::uint64_t>(-1)) result = 1546275796ull;
      } else {
        result ^= (static_cast<std::uint64_t>(size) + 1) * 1927868237ull;
        result ^= (result >> 11) ^ (result >> 25);
        result = result * 69069u + 907133923ull;
        if (result == static_cast<std::uint64_t>(-1)) result = 590923713ull;
      }
      memo_[f.slot.p] = result;
      stack.pop_back();
      child = result;
      have_child = true;
    }
    return child;
  }

 private:
  static void absorb(auto& frame, bool is_tuple, std::uint64_t h) {
    if (is_tuple) {
      frame.acc += h * xxprime_2;
      frame.acc = (frame.acc << 31) | (frame.acc >> 33);
      frame.acc *= xxprime_1;
    } else {
      frame.acc ^= shuffle_bits(h);
    }
  }

  void fail_all(const auto& stack) {
    for (const auto& frame : stack) memo_[frame.slot.p] = std::nullopt;
  }

  static std::optional<std::uint64_t> leaf_hash(Slot s) {
    switch (s.tag) {
      case Tag::boolean:
        return s.b ? 1 : 0;
      case Tag::small_int:
        return int_hash(s.i);
      case Tag::big_int:
        return bigint_hash(node<BigIntNode>(s));
      case Tag::floating:
        return float_hash(s.f);
      case Tag::str:
      case Tag::bytes:
        if (node<StringNode>(s).size == 0) return 0;
        return std::nullopt;
      default:
        return std::nullopt;
    }
  }

  std::unordered_map<const Node*, std::optional<std::uint64_t>> memo_;
};


namespace {

// The order in which CPython iterates a set built by adding `set`'s items one by one, in their
// insertion order (how set(list), ADDITEMS and FROZENSET build sets): a simulation of CPython's
// open-addressing table (linear probes of 9, then perturbed jumps; grown to 4x the used count once
// 3/5 full), as positions of the set's entries. nullopt when an item's hash is not reproducible.
template <class HashFn>
std::optional<std::vector<std::size_t>> cpython_set_order(const DictNode& set, HashFn&& hash_of) {
  const std::size_t count = set.size;
  std::vector<std::uint64_t> hashes(count);
  for (std::size_t i = 0; i < count; ++i) {
    const auto h = hash_of(load(set.entries[i].key));
    if (!h) return std::nullopt;
    hashes[i] = *h;
  }
  constexpr std::size_t linear_probes = 9;
  constexpr unsigned perturb_shift = 5;
  constexpr std::size_t empty = static_cast<std::size_t>(-1);
  std::vector<std::size_t> table(8, empty);
  std::size_t mask = 7;
  auto place = [&](std::vector<std::size_t>& into, std::size_t into_mask, std::size_t item) {
    std::uint64_t perturb = hashes[item];
    std::size_t i = static_cast<std::size_t>(hashes[item]) & into_mask;
    while (true) {
      const std::size_t probes = i + linear_probes <= into_mask ? linear_probes : 0;
      for (std::size_t j = 0; j <= probes; ++j) {
        if (into[i + j] == empty) {
          into[i + j] = item;
          return;
        }
      }
      perturb >>= perturb_shift;
      i = static_cast<std::size_t>(i * 5 + 1 + perturb) & into_mask;
    }
  };
  std::size_t used = 0;
  for (std::size_t item = 0; item < count; ++item) {
    place(table, mask, item);
    ++used;
    if (used * 5 < mask * 3) continue;
    const std::size_t min_used = used > 50000 ? used * 2 : used * 4;
    std::size_t size = 8;
    while (size <= min_used) size <<= 1;
    std::vector<std::size_t> grown(size, empty);
    for (const std::size_t old : table) {
      if (old != empty) place(grown, size - 1, old);
    }
    table.swap(grown);
    mask = size - 1;
  }
  std::vector<std::size_t> order;
  order.reserve(count);
  for (const std::size_t item : table) {
    if (item != empty) order.push_back(item);
  }
  return order;
}

}  // namespace

FixedHashes::FixedHashes() : hasher_(std::make_unique<Hasher>()) {}
FixedHashes::~FixedHashes() = default;

std::optional<std::uint64_t> FixedHashes::hash(Slot value) { return hasher_->hash(value); }

std::optional<std::vector<std::size_t>> FixedHashes::set_positions(const DictNode& set) {
  return cpython_set_order(set, [this](Slot item) { return hasher_->hash(item); });
}

std::optional<std::vector<Slot>> FixedHashes::set_order(const DictNode& set) {
  auto positions = set_positions(set);
  if (!positions) return std::nullopt;
  std::vector<Slot> order;
  order.reserve(positions->size());
  for (const std::size_t position : *positions) order.push_back(load(set.entries[position].key));
  return order;
}

}  // namespace pickle::detail
