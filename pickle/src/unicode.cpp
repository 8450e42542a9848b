#include "unicode.hpp"

#include <unicode/utf8.h>

#include <cstdint>
#include <cstdio>
#include <cstring>

namespace pickle::detail {
namespace {

constexpr std::uint64_t high_bits = 0x8080808080808080ull;

// Bytes that can never begin a sequence: continuation bytes, the overlong leads C0/C1 and the leads
// of sequences beyond U+10FFFF. CPython reports these as "invalid start byte".
bool is_invalid_lead(unsigned char byte) noexcept {
  return (byte >= 0x80 && byte <= 0xC1) || byte >= 0xF5;
}

// ED A0..BF 80..BF: a surrogate in its 3-byte form, which ICU (correctly, for strict UTF-8) rejects
// but Python's "surrogatepass" accepts, and which pickle uses for lone surrogates.
bool is_surrogate_sequence(const unsigned char* bytes, std::size_t available) noexcept {
  return available >= 3 && bytes[0] == 0xED && bytes[1] >= 0xA0 && bytes[1] <= 0xBF &&
         bytes[2] >= 0x80 && bytes[2] <= 0xBF;
}

// Index of the first non-ASCII byte at or after `pos`.
std::size_t skip_ascii(const unsigned char* bytes, std::size_t size, std::size_t pos) noexcept {
  while (pos + 8 <= size) {
    std::uint64_t word;
    std::memcpy(&word, bytes + pos, 8);
    if (word & high_bits) break;
    pos += 8;
  }
  while (pos < size && bytes[pos] < 0x80) ++pos;
  return pos;
}

}  // namespace

std::optional<Utf8Error> check_utf8(std::string_view data) noexcept {
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  // ICU's macros index with int32_t: each non-ASCII sequence is handed to ICU on its own (at most
  // 4 bytes), so inputs over 2 GiB work too.
  const std::size_t size = data.size();
  std::size_t pos = 0;
  while (true) {
    pos = skip_ascii(bytes, size, pos);
    if (pos >= size) return std::nullopt;
    const std::size_t start = pos;
    const std::size_t available = size - start;
    const auto length = static_cast<std::int32_t>(available < 4 ? available : 4);
    std::int32_t offset = 0;
    UChar32 code_point;
    U8_NEXT(bytes + start, offset, length, code_point);
    if (code_point >= 0) {
      pos = start + static_cast<std::size_t>(offset);
      continue;
    }
    if (is_surrogate_sequence(bytes + start, available)) {
      pos = start + 3;
      continue;
    }
    // ICU stops after the maximal valid prefix of the sequence (at least one byte), which is
    // exactly the range CPython reports.
    const std::size_t end = start + static_cast<std::size_t>(offset);
    const char* reason;
    if (is_invalid_lead(bytes[start])) {
      reason = "invalid start byte";
    } else if (end == size) {
      reason = "unexpected end of data";
    } else {
      reason = "invalid continuation byte";
    }
    return Utf8Error{start, end, reason};
  }
}

std::string utf8_error_message(std::string_view data, const Utf8Error& error,
                               std::string_view codec) {
  std::string message = "'";
  message.append(codec);
  message += "' codec can't decode ";
  char buffer[96];
  if (error.end - error.start == 1 && error.start < data.size()) {
    std::snprintf(buffer, sizeof buffer, "byte 0x%02x in position %zu: ",
                  static_cast<unsigned>(static_cast<unsigned char>(data[error.start])),
                  error.start);
  } else {
    std::snprintf(buffer, sizeof buffer, "bytes in position %zu-%zu: ", error.start,
                  error.end - 1);
  }
  message += buffer;
  message += error.reason;
  return message;
}

void append_utf8(std::string& out, char32_t cp) {
  char buffer[4];
  std::int32_t length = 0;
  U8_APPEND_UNSAFE(buffer, length, static_cast<UChar32>(cp));
  out.append(buffer, static_cast<std::size_t>(length));
}

char32_t next_code_point(std::string_view data, std::size_t& pos) noexcept {
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data()) + pos;
  // The unsafe variant decodes any well-formed lead/trail pattern, surrogates included.
  std::int32_t offset = 0;
  UChar32 code_point;
  U8_NEXT_UNSAFE(bytes, offset, code_point);
  pos += static_cast<std::size_t>(offset);
  return static_cast<char32_t>(code_point);
}

std::size_t code_point_count(std::string_view data) noexcept {
  // Every code point has exactly one byte that is not a continuation byte (10xxxxxx).
  std::size_t count = 0;
  for (char c : data) count += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return count;
}

bool is_ascii(std::string_view data) noexcept {
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  return skip_ascii(bytes, data.size(), 0) == data.size();
}

}  // namespace pickle::detail
