// Private: helpers shared by the typed-view sources (types.cpp, types_numpy.cpp, types_repr.cpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pickle/types.hpp"
#include "types_repr.hpp"

namespace pickle::types::internal {

[[noreturn]] void malformed(std::string_view type, const std::string& why);

bool is_global(const Value& value, std::string_view module, std::string_view qualname);
// The argument tuple's items (throws when args is not a tuple).
std::vector<Value> tuple_items(const Value& args, std::string_view type);
std::int64_t small_int(const Value& value, std::string_view type, std::string_view what);

// The globals of the object a typed value was read from (ConvertOptions::original), reused when it
// is made again so that it keeps the loaded graph's sharing (module names fetched from the memo).
class GlobalPool {
 public:
  explicit GlobalPool(const Value& original);
  Value get(std::string_view module, std::string_view qualname) const;

 private:
  std::vector<Value> globals_;
};

// numpy (types_numpy.cpp)
void add_numpy_recognizers(Registry& registry);
Value numpy_to_value(const numpy::Array& array, const ConvertOptions& options);
Value numpy_to_value(const numpy::Dtype& dtype, const ConvertOptions& options);
Value numpy_to_value(const numpy::Scalar& scalar, const ConvertOptions& options);
std::optional<std::string> numpy_repr(const numpy::Dtype& dtype);
std::optional<std::string> numpy_repr(const numpy::Scalar& scalar);

// repr (types_repr.cpp)
std::optional<std::vector<pickle::detail::TypedReprPiece>> repr_pieces(const Typed& typed, int target_minor);

}  // namespace pickle::types::internal
