// Keys for pickle::Value arguments.
//
// Hashability and the hash are Python's (Value::hash(): list, dict, set, bytearray and tuples
// holding them are unhashable; hashes of str, tuple and frozenset nodes are computed once and kept
// in the node, so a repeated key is not walked again). The typed equality is pickle::same_graph:
// kinds equal at every depth, floats by bits, set items in order, and node sharing one to one,
// which is exactly what decides the bytes pickle writes for a value.
#include "pickle/lru.hpp"

namespace pickle::lru_detail {

ValueKey::ValueKey(const Value& v, bool typed_key) : borrowed(&v), typed(typed_key) {
  try {
    hash = v.hash();
    hashable = true;
  } catch (const UnhashableError&) {
    // Decided before the function is called, so this can only be about the argument.
  }
}

bool operator==(const ValueKey& a, const ValueKey& b) {
  const Value& x = a.value();
  const Value& y = b.value();
  const void* node = x.identity();
  if (node != nullptr && node == y.identity()) return true;
  return a.typed ? same_graph(x, y) : x == y;
}

}  // namespace pickle::lru_detail
