// Private: the text arguments of the protocol 0/1 opcodes, parsed as CPython's C unpickler parses
// them (C strtol, PyLong_FromString, PyOS_string_to_double, bytes escapes, raw-unicode-escape).
//
// Every function takes the argument the way the C unpickler sees it: the line copied into a
// NUL-terminated buffer, so a NUL byte inside the line ends the text. Callers pass `c_text(line)`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "pickle/value.hpp"

namespace pickle::detail::text {

// The line as a C function sees it: up to the first NUL byte (the trailing '\n' included).
std::string_view c_text(std::string_view line) noexcept;

// INT's fast path: C strtol(text, &end, 0) on a 64-bit long. A value when the conversion did not
// overflow and stopped at '\n' or at the end of the text (CPython's acceptance test).
struct StrtolResult {
  bool accepted;
  std::int64_t value;
};
StrtolResult strtol_base0(std::string_view text) noexcept;

// Python's int(text, base) for base 0 or 10, as PyLong_FromString sees a C string.
struct IntValue {
  bool small;  // value fits in int64 (`small_value`), else `big_value`
  std::int64_t small_value;
  BigInt big_value;
};
struct IntInvalid {
  int base;  // the base CPython names in "invalid literal for int() with base N"
};
struct IntTooManyDigits {
  std::size_t digits;  // decimal digits, underscores not counted
};
using IntResult = std::variant<IntValue, IntInvalid, IntTooManyDigits>;
IntResult python_int(std::string_view text, int base, std::size_t max_digits);

// PyOS_string_to_double(text, &end, OverflowError) followed by load_float's end check.
enum class FloatStatus {
  ok,
  no_conversion,  // nothing parsed: "could not convert string to float: '<text>'"
  trailing,       // parsed a prefix, not followed by '\n' or end: "could not convert string to float"
  overflow,       // "value too large to convert to float: '<text>'"
};
struct FloatResult {
  FloatStatus status;
  double value;
};
FloatResult c_string_to_double(std::string_view text) noexcept;

// Python's bytes-literal escape decoding (PyBytes_DecodeEscape) of STRING's inner text.
struct EscapeError {
  std::string message;  // "invalid \x escape at position N" / "Trailing \ in string"
};
std::variant<std::string, EscapeError> decode_bytes_escape(std::string_view text);

// raw-unicode-escape decoding of UNICODE's text, to UTF-8 (surrogatepass form for surrogates).
struct RawUnicodeError {
  std::size_t start;  // bytes [start, end) of the input, as in UnicodeDecodeError
  std::size_t end;
  const char* reason;  // "truncated \uXXXX escape", …
};
std::variant<std::string, RawUnicodeError> decode_raw_unicode_escape(std::string_view text);

// The message CPython formats with "%.200s": the first 200 bytes, decoded as UTF-8 with
// replacement characters.
std::string c_format_200(std::string_view text);

}  // namespace pickle::detail::text
