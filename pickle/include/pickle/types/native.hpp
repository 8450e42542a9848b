// The typed values of pickle/types.hpp in typed pickling (pickle/native.hpp): include this header
// and they are ordinary C++ values for pickle::dumps(x) and pickle::loads<T>(bytes):
//
//   std::vector<pickle::types::DateTime> log = pickle::loads<std::vector<pickle::types::DateTime>>(bytes);
//   std::string again = pickle::dumps(std::map<std::string, pickle::types::Decimal>{{"price", d}});
//
// Writing uses CPython 3.11's reductions at the writer's protocol (a Fraction is written as
// Fraction(n, d), 3.11's form); reading accepts what types::view_or_throw accepts and raises its
// pickle::Error otherwise. Enum members are read from any `cls(value)` call.
#pragma once

#include <type_traits>
#include <variant>

#include "pickle/native.hpp"
#include "pickle/types.hpp"

namespace pickle::types {

namespace native_hook {
template <class T, class Variant>
struct is_alternative;
template <class T, class... Alternatives>
struct is_alternative<T, std::variant<Alternatives...>> : std::disjunction<std::is_same<T, Alternatives>...> {};
}  // namespace native_hook

template <class T>
concept typed_value = native_hook::is_alternative<T, Typed>::value;

// Found by argument-dependent lookup from pickle::TypedWriter / TypedReader.
template <typed_value T>
void pickle_write(TypedWriter& writer, const T& x) {
  writer.write(to_value(Typed(x), {.target_minor = 11, .protocol = writer.protocol()}));
}

template <typed_value T>
void pickle_read(TypedReader& reader, T& x) {
  Value value;
  reader.read(value);
  x = view_or_throw<T>(value);
}

namespace numpy {
template <typed_value T>
void pickle_write(TypedWriter& writer, const T& x) {
  types::pickle_write(writer, x);
}
template <typed_value T>
void pickle_read(TypedReader& reader, T& x) {
  types::pickle_read(reader, x);
}
}  // namespace numpy

}  // namespace pickle::types
