// Private: the hook through which repr.cpp prints the objects pickle/types.hpp recognises.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "pickle/value.hpp"

namespace pickle::detail {

// One step of a recognised object's repr: literal text, or a part of the object (a value of the
// same graph, such as a dict key) that the caller prints with its own iterative walk.
struct TypedReprPiece {
  std::string text;
  std::optional<Value> value;
};

// Python's repr of `object` as a sequence of pieces, or nullopt when no recognizer of the standard
// registry (pickle::types::Registry::standard()) takes it, or when Python could only print it by
// running code. Never recurses into the parts.
std::optional<std::vector<TypedReprPiece>> typed_repr(const Value& object);

}  // namespace pickle::detail
