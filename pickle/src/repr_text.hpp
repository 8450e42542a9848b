// Private: Python's repr() text for the scalar kinds, shared by repr.cpp and dis.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "pickle/value.hpp"

namespace pickle::detail {

// Python 3.11's str.isprintable() for one code point (Unicode 14 categories: characters assigned
// only in later Unicode versions count as unassigned, as they do in 3.11's unicodedata).
bool python_printable(char32_t cp) noexcept;

// repr(str) of surrogatepass UTF-8 (the text must be valid; see unicode.hpp).
void append_str_repr(std::string& out, std::string_view utf8);
// repr(bytes): b'...'.
void append_bytes_repr(std::string& out, std::string_view data);
// repr(bytearray): bytearray(b'...').
void append_bytearray_repr(std::string& out, std::string_view data);
// repr(float): shortest round-trip digits in Python's layout (1e+16, 1e-05, 0.0001, 123.0, -0.0).
void append_float_repr(std::string& out, double value);
void append_int_repr(std::string& out, std::int64_t value);
void append_int_repr(std::string& out, const BigInt& value);

// ascii()'s escaping of what repr() produced: every non-ASCII code point becomes \xhh, \uhhhh or
// \Uhhhhhhhh.
std::string escape_non_ascii(std::string_view utf8);

}  // namespace pickle::detail
