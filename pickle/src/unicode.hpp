// Private: UTF-8 in Python's "surrogatepass" flavour, which is how the library stores str.
//
// Python str may hold lone surrogates (U+D800..U+DFFF); pickle writes them as their 3-byte UTF-8
// form (ED A0 80 for U+D800) and reads them back. Everything else is strict UTF-8. Validation and
// decoding go through ICU's UTF-8 macros; the surrogate forms ICU rejects are accepted here.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace pickle::detail {

// Why a byte sequence is not valid UTF-8, in the terms of CPython's UnicodeDecodeError:
// bytes [start, end) of the input, and the reason ("invalid start byte",
// "invalid continuation byte", "unexpected end of data").
struct Utf8Error {
  std::size_t start;
  std::size_t end;
  const char* reason;
};

// nullopt when `data` is valid UTF-8 with lone surrogates allowed.
std::optional<Utf8Error> check_utf8(std::string_view data) noexcept;

// CPython's message for a failed decode with the named codec, e.g.
// "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte".
std::string utf8_error_message(std::string_view data, const Utf8Error& error,
                               std::string_view codec = "utf-8");

// Append code point `cp` (any value up to 0x10FFFF, surrogates included) as UTF-8.
void append_utf8(std::string& out, char32_t cp);

// Decode the code point at `pos` of valid surrogatepass UTF-8 and advance `pos`.
char32_t next_code_point(std::string_view data, std::size_t& pos) noexcept;

// Number of code points in valid surrogatepass UTF-8.
std::size_t code_point_count(std::string_view data) noexcept;

// True when every byte is < 0x80.
bool is_ascii(std::string_view data) noexcept;

}  // namespace pickle::detail
