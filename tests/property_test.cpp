// Properties of the value model on random graphs (sharing, cycles through lists and dicts).
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "pickle/value.hpp"

namespace {

using pickle::BigInt;
using pickle::Value;

// One construction step: what to make, a number to make it from, and references to earlier values.
using Step = std::tuple<std::uint8_t, std::int64_t, std::vector<std::uint16_t>>;
using Recipe = std::vector<Step>;

enum class Variant {
  exact,          // the recipe as written
  numeric_alias,  // small ints written as floats: == still holds, same_graph does not
};

Value atom(std::uint8_t op, std::int64_t n, Variant variant) {
  switch (op) {
    case 0: return Value();
    case 1: return Value((n & 1) != 0);
    case 2: {
      const std::int64_t small = n % 5;  // few distinct values, so that equal pairs are common
      if (variant == Variant::numeric_alias) return Value(static_cast<double>(small));
      return Value(small);
    }
    case 3: return Value(n);
    case 4: return Value((BigInt(n) << 70) + 3);
    case 5: return Value(static_cast<double>(n % 9) / 4.0);  // no NaN: NaN != NaN by design
    case 6: return Value("s" + std::to_string(n % 4));
    case 7: return Value::bytes("b" + std::to_string(n % 3));
    default: return Value("\xc3\xa9" + std::to_string(n % 2));
  }
}

// Builds every intermediate value of the recipe; the same recipe gives structurally identical
// pools made of distinct nodes.
// Objects compare by identity (so a rebuilt graph holding one is not ==): they are made only when
// `with_objects`; otherwise such steps make tuples.
std::vector<Value> build(const Recipe& recipe, Variant variant, bool with_objects = false,
                         int* mutations = nullptr) {
  std::vector<Value> pool;
  for (const auto& [op, n, raw_refs] : recipe) {
    std::vector<Value> refs;
    if (!pool.empty()) {
      for (std::size_t i = 0; i < raw_refs.size() && i < 5; ++i) {
        refs.push_back(pool[raw_refs[i] % pool.size()]);
      }
    }
    std::vector<Value> hashable;
    for (const Value& ref : refs) {
      if (ref.hashable()) hashable.push_back(ref);
    }
    switch (op % 16) {
      case 9: pool.push_back(Value::tuple(refs)); break;
      case 10: pool.push_back(Value::list(refs)); break;
      case 11: pool.push_back(Value::frozenset(hashable)); break;
      case 12: {
        Value set = Value::set();
        for (const Value& item : hashable) set.add(item);
        pool.push_back(set);
        break;
      }
      case 13: {
        Value dict = Value::dict();
        for (std::size_t i = 0; i + 1 < refs.size(); i += 2) {
          if (refs[i].hashable()) dict.set_item(refs[i], refs[i + 1]);
        }
        pool.push_back(dict);
        break;
      }
      case 14: {  // mutate an earlier list or dict: this makes cycles and cross links
        if (refs.size() < 2) break;
        const std::size_t start = raw_refs[0] % pool.size();
        for (std::size_t k = 0; k < pool.size(); ++k) {
          Value target = pool[(start + k) % pool.size()];
          if (target.kind() == pickle::Kind::list) {
            target.append(refs[1]);
          } else if (target.kind() == pickle::Kind::dict) {
            target.set_item(Value(n % 3), refs[1]);
          } else {
            continue;
          }
          if (mutations != nullptr) ++*mutations;
          break;
        }
        break;
      }
      case 15:
        if (!with_objects) {
          pool.push_back(Value::tuple(refs));
          break;
        }
        pool.push_back(Value::object(pickle::ObjectForm::reduce, Value::global("m", "f"),
                                            Value::tuple(refs)));
        break;
      default: pool.push_back(atom(static_cast<std::uint8_t>(op % 16), n, variant)); break;
    }
  }
  return pool;
}

RC_GTEST_PROP(ValueProperties, RebuiltGraphsAreEqualSameGraphAndHashEqual, (const Recipe& recipe)) {
  int mutations = 0;
  const auto a = build(recipe, Variant::exact, false, &mutations);
  const auto b = build(recipe, Variant::exact);
  RC_CLASSIFY(mutations > 0, "with mutations (cycles, cross links)");
  RC_ASSERT(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    RC_ASSERT(same_graph(a[i], b[i]));
    RC_ASSERT(a[i] == b[i]);
    RC_ASSERT(a[i].hashable() == b[i].hashable());
    if (a[i].hashable()) RC_ASSERT(a[i].hash() == b[i].hash());
  }
}

RC_GTEST_PROP(ValueProperties, GraphsWithObjectsAreTheSameGraph, (const Recipe& recipe)) {
  const auto a = build(recipe, Variant::exact, true);
  const auto b = build(recipe, Variant::exact, true);
  for (std::size_t i = 0; i < a.size(); ++i) {
    RC_ASSERT(same_graph(a[i], b[i]));
    RC_ASSERT(same_graph(a[i], a[i]));
    RC_ASSERT(a[i] == a[i]);
  }
}

RC_GTEST_PROP(ValueProperties, NumericAliasesAreEqualButNotTheSameGraph, (const Recipe& recipe)) {
  const auto a = build(recipe, Variant::exact);
  const auto b = build(recipe, Variant::numeric_alias);
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].kind() != b[i].kind()) RC_ASSERT(!same_graph(a[i], b[i]));
    RC_ASSERT(a[i] == b[i]);
    if (a[i].hashable()) RC_ASSERT(a[i].hash() == b[i].hash());
  }
}

RC_GTEST_PROP(ValueProperties, EqualityIsSymmetricAndReflexiveAndHashCompatible,
              (const Recipe& recipe)) {
  const auto pool = build(recipe, Variant::exact);
  for (std::size_t i = 0; i < pool.size(); ++i) {
    RC_ASSERT(pool[i] == pool[i]);
    for (std::size_t j = 0; j < pool.size(); ++j) {
      const bool equal = pool[i] == pool[j];
      RC_ASSERT(equal == (pool[j] == pool[i]));
      if (same_graph(pool[i], pool[j])) {
        RC_ASSERT(same_graph(pool[j], pool[i]));
        RC_ASSERT(equal);
      }
      if (equal && pool[i].hashable() && pool[j].hashable()) {
        RC_ASSERT(pool[i].hash() == pool[j].hash());
      }
    }
  }
}

RC_GTEST_PROP(ValueProperties, DictsUnifyEqualKeys, (const Recipe& recipe)) {
  const auto pool = build(recipe, Variant::exact);
  Value dict = Value::dict();
  std::vector<Value> distinct;
  for (std::size_t i = 0; i < pool.size(); ++i) {
    if (!pool[i].hashable()) continue;
    dict.set_item(pool[i], static_cast<std::int64_t>(i));
    bool seen = false;
    for (const Value& key : distinct) seen = seen || key == pool[i];
    if (!seen) distinct.push_back(pool[i]);
  }
  RC_ASSERT(dict.size() == distinct.size());
  const auto items = dict.dict_items();
  for (std::size_t k = 0; k < distinct.size(); ++k) {
    RC_ASSERT(items[k].first.is(distinct[k]));  // the first key object stays
    RC_ASSERT(dict.contains(distinct[k]));
  }
}

}  // namespace
