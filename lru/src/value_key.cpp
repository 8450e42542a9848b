// Keys for pickle::Value arguments: Python's hashability rules, and a typed equality strict enough
// that a cached result is always the result the function gives for the argument at hand.
#include <bit>
#include <cstring>
#include <functional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pickle/lru.hpp"

namespace pickle::lru_detail {

namespace {

std::size_t hash_int(const Value& v) {
  if (auto small = v.as_int64()) return std::hash<std::int64_t>{}(*small);
  return std::hash<std::string>{}(v.as_bigint().str());
}

bool equal_ints(const Value& a, const Value& b) {
  auto small_a = a.as_int64();
  auto small_b = b.as_int64();
  if (small_a && small_b) return *small_a == *small_b;
  if (small_a || small_b) return false;
  return a.as_bigint() == b.as_bigint();
}

// Two keys that differ only in the sharing of their nodes pickle differently (a shared node is
// written once and fetched from the memo), so node identities must correspond one to one.
class IdentityMatching {
 public:
  enum class Outcome { first_visit, seen_consistently, conflict };

  Outcome match(const void* a, const void* b) {
    auto from_a = a_to_b_.find(a);
    auto from_b = b_to_a_.find(b);
    if (from_a == a_to_b_.end() && from_b == b_to_a_.end()) {
      a_to_b_.emplace(a, b);
      b_to_a_.emplace(b, a);
      return Outcome::first_visit;
    }
    if (from_a != a_to_b_.end() && from_b != b_to_a_.end() && from_a->second == b &&
        from_b->second == a) {
      return Outcome::seen_consistently;
    }
    return Outcome::conflict;
  }

 private:
  std::unordered_map<const void*, const void*> a_to_b_;
  std::unordered_map<const void*, const void*> b_to_a_;
};

}  // namespace

std::optional<std::size_t> strict_hash(const Value& root) {
  std::size_t hash = 0;
  std::vector<Value> pending{root};
  while (!pending.empty()) {
    const Value v = std::move(pending.back());
    pending.pop_back();
    hash = combine_hashes(hash, static_cast<std::size_t>(v.kind()) + 1);
    switch (v.kind()) {
      case Kind::none:
        break;
      case Kind::boolean:
        hash = combine_hashes(hash, v.as_bool() ? 1 : 0);
        break;
      case Kind::integer:
        hash = combine_hashes(hash, hash_int(v));
        break;
      case Kind::floating:
        hash = combine_hashes(hash, std::hash<std::uint64_t>{}(std::bit_cast<std::uint64_t>(v.as_float())));
        break;
      case Kind::str:
        hash = combine_hashes(hash, std::hash<std::string_view>{}(v.as_str()));
        break;
      case Kind::bytes:
        hash = combine_hashes(hash, std::hash<std::string_view>{}(v.as_bytes()));
        break;
      case Kind::tuple:
      case Kind::frozenset: {
        std::vector<Value> items = v.items();
        hash = combine_hashes(hash, items.size());
        for (auto it = items.rbegin(); it != items.rend(); ++it) pending.push_back(std::move(*it));
        break;
      }
      case Kind::global:
        hash = combine_hashes(hash, std::hash<std::string_view>{}(v.module()));
        hash = combine_hashes(hash, std::hash<std::string_view>{}(v.qualname()));
        break;
      case Kind::object:
      case Kind::buffer:  // hashable by identity, as object.__hash__ and PickleBuffer are
        hash = combine_hashes(hash, std::hash<const void*>{}(v.identity()));
        break;
      case Kind::bytearray:
      case Kind::list:
      case Kind::dict:
      case Kind::set:
        return std::nullopt;
    }
  }
  return hash;
}

bool strict_equal(const Value& a, const Value& b) {
  if (a.identity() != nullptr && a.identity() == b.identity()) return true;
  IdentityMatching matching;
  std::vector<std::pair<Value, Value>> pending{{a, b}};
  while (!pending.empty()) {
    auto [x, y] = std::move(pending.back());
    pending.pop_back();
    if (x.kind() != y.kind()) return false;
    switch (x.kind()) {
      case Kind::none:
        continue;
      case Kind::boolean:
        if (x.as_bool() != y.as_bool()) return false;
        continue;
      case Kind::integer:
        if (!equal_ints(x, y)) return false;
        continue;
      case Kind::floating:
        // By bits: 0.0 and -0.0 pickle differently, and a NaN is then equal to itself.
        if (std::bit_cast<std::uint64_t>(x.as_float()) != std::bit_cast<std::uint64_t>(y.as_float()))
          return false;
        continue;
      default:
        break;
    }
    switch (matching.match(x.identity(), y.identity())) {
      case IdentityMatching::Outcome::conflict: return false;
      case IdentityMatching::Outcome::seen_consistently: continue;
      case IdentityMatching::Outcome::first_visit: break;
    }
    switch (x.kind()) {
      case Kind::str:
        if (x.as_str() != y.as_str()) return false;
        break;
      case Kind::bytes:
      case Kind::bytearray:
        if (x.as_bytes() != y.as_bytes()) return false;
        break;
      case Kind::tuple:
      case Kind::list:
      case Kind::set:
      case Kind::frozenset: {
        std::vector<Value> xs = x.items();
        std::vector<Value> ys = y.items();
        if (xs.size() != ys.size()) return false;
        for (std::size_t i = xs.size(); i-- > 0;) pending.emplace_back(std::move(xs[i]), std::move(ys[i]));
        break;
      }
      case Kind::dict: {
        auto xs = x.dict_items();
        auto ys = y.dict_items();
        if (xs.size() != ys.size()) return false;
        for (std::size_t i = xs.size(); i-- > 0;) {
          pending.emplace_back(std::move(xs[i].second), std::move(ys[i].second));
          pending.emplace_back(std::move(xs[i].first), std::move(ys[i].first));
        }
        break;
      }
      case Kind::global:
        if (x.module() != y.module() || x.qualname() != y.qualname()) return false;
        break;
      case Kind::object:
      case Kind::buffer:
        if (x.identity() != y.identity()) return false;
        break;
      case Kind::none:
      case Kind::boolean:
      case Kind::integer:
      case Kind::floating:
        break;
    }
  }
  return true;
}

ValueKey::ValueKey(const Value& v, bool typed_key) : value(v), typed(typed_key) {
  const std::optional<std::size_t> strict = strict_hash(v);
  if (!strict) return;
  if (typed) {
    hash = *strict;
    hashable = true;
    return;
  }
  try {
    hash = v.hash();
    hashable = true;
  } catch (const UnhashableError&) {
    // Decided before the function is called, so this can only be about the argument.
  }
}

bool operator==(const ValueKey& a, const ValueKey& b) {
  return a.typed ? strict_equal(a.value, b.value) : a.value == b.value;
}

}  // namespace pickle::lru_detail
