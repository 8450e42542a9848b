// The byte emitters shared by the two writers (see emit.hpp).
#include "emit.hpp"

#include "pickle/errors.hpp"
#include "pickle/writer.hpp"

#include <charconv>
#include <cmath>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "value_impl.hpp"

namespace pickle::detail {

void advise_huge_pages(void* data, std::size_t size) noexcept {
#if defined(MADV_HUGEPAGE)
  constexpr std::uintptr_t huge = std::uintptr_t{2} << 20;
  const auto begin = reinterpret_cast<std::uintptr_t>(data);
  const std::uintptr_t first = (begin + huge - 1) & ~(huge - 1);
  const std::uintptr_t last = (begin + size) & ~(huge - 1);
  // Advice only: a kernel without THP refuses it and the pages stay small.
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#else
  (void)data;
  (void)size;
#endif
}

std::uint32_t decode_utf8(const unsigned char*& p) noexcept {
  unsigned char c = *p++;
  if (c < 0x80) return c;
  if (c < 0xE0) {
    std::uint32_t cp = (c & 0x1Fu) << 6 | (p[0] & 0x3Fu);
    p += 1;
    return cp;
  }
  if (c < 0xF0) {
    std::uint32_t cp = (c & 0x0Fu) << 12 | (p[0] & 0x3Fu) << 6 | (p[1] & 0x3Fu);
    p += 2;
    return cp;
  }
  std::uint32_t cp = (c & 0x07u) << 18 | (p[0] & 0x3Fu) << 12 | (p[1] & 0x3Fu) << 6 | (p[2] & 0x3Fu);
  p += 3;
  return cp;
}

int single_latin1_char(std::string_view s) noexcept {
  if (s.size() == 1) return static_cast<unsigned char>(s[0]) < 0x80 ? static_cast<unsigned char>(s[0]) : -1;
  if (s.size() == 2) {
    auto c0 = static_cast<unsigned char>(s[0]);
    if (c0 == 0xC2 || c0 == 0xC3) return ((c0 & 0x1F) << 6) | (static_cast<unsigned char>(s[1]) & 0x3F);
  }
  return -1;
}

void raw_unicode_escape(std::string_view utf8, std::string& out) {
  static constexpr char hex[] = "0123456789abcdef";
  auto p = reinterpret_cast<const unsigned char*>(utf8.data());
  auto end = p + utf8.size();
  while (p < end) {
    std::uint32_t cp = decode_utf8(p);
    if (cp >= 0x10000) {
      out += "\\U";
      for (int shift = 28; shift >= 0; shift -= 4) out += hex[(cp >> shift) & 0xF];
    } else if (cp >= 0x100 || cp == '\\' || cp == 0 || cp == '\n' || cp == '\r' || cp == 0x1A) {
      out += "\\u";
      for (int shift = 12; shift >= 0; shift -= 4) out += hex[(cp >> shift) & 0xF];
    } else {
      out += static_cast<char>(cp);
    }
  }
}

std::string float_repr(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x < 0 ? "-inf" : "inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<std::size_t>(res.ptr - buf));
  std::string out;
  if (sci.front() == '-') {
    out += '-';
    sci.remove_prefix(1);
  }
  std::size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e))
    if (c != '.') digits += c;
  int exponent = 0;
  std::string_view exp_text = sci.substr(e + 1);
  if (exp_text.front() == '+') exp_text.remove_prefix(1);
  std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exponent);
  int decpt = exponent + 1;
  int ndigits = static_cast<int>(digits.size());
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out += "0.";
      out.append(static_cast<std::size_t>(-decpt), '0');
      out += digits;
    } else if (decpt >= ndigits) {
      out += digits;
      out.append(static_cast<std::size_t>(decpt - ndigits), '0');
      out += ".0";
    } else {
      out += digits.substr(0, static_cast<std::size_t>(decpt));
      out += '.';
      out += digits.substr(static_cast<std::size_t>(decpt));
    }
  } else {
    out += digits[0];
    if (ndigits > 1) {
      out += '.';
      out += digits.substr(1);
    }
    out += 'e';
    out += exponent < 0 ? '-' : '+';
    int a = exponent < 0 ? -exponent : exponent;
    if (a < 10) out += '0';
    out += std::to_string(a);
  }
  return out;
}

std::string encode_long(const BigIntNode& n) {
  std::string bytes;
  bytes.reserve(n.limb_count * 8 + 1);
  for (std::uint32_t i = 0; i < n.limb_count; ++i)
    for (int b = 0; b < 8; ++b) bytes += static_cast<char>(n.limbs[i] >> (8 * b));
  while (!bytes.empty() && bytes.back() == 0) bytes.pop_back();
  if (bytes.empty()) return bytes;
  if (!n.negative) {
    if (static_cast<unsigned char>(bytes.back()) & 0x80) bytes += '\0';
    return bytes;
  }
  // Negate: two's complement of the magnitude, with room for the sign.
  bytes += '\0';
  bool carry = true;
  for (char& c : bytes) {
    unsigned v = static_cast<unsigned char>(~static_cast<unsigned char>(c)) + (carry ? 1u : 0u);
    carry = v > 0xFF;
    c = static_cast<char>(v);
  }
  while (bytes.size() > 1 && static_cast<unsigned char>(bytes.back()) == 0xFF &&
         (static_cast<unsigned char>(bytes[bytes.size() - 2]) & 0x80))
    bytes.pop_back();
  return bytes;
}

std::string bigint_decimal(const BigIntNode& n) { return to_bigint(n).str(); }

void emit_int_text(Output& out, std::int64_t v) {
  bool fits_int = v >= INT32_MIN && v <= INT32_MAX;
  out.put(fits_int ? op(Op::INT) : op(Op::LONG));
  out.write(std::to_string(v));
  out.write(fits_int ? "\n" : "L\n");
}

void emit_uint64(Output& out, int protocol, std::uint64_t v) {
  if (v <= static_cast<std::uint64_t>(INT64_MAX)) {
    emit_small_int(out, protocol, static_cast<std::int64_t>(v));
    return;
  }
  if (protocol >= 2) {
    // The top bit is set: eight magnitude bytes and a zero sign byte.
    char* p = out.reserve(11);
    p[0] = op(Op::LONG1);
    p[1] = 9;
    for (int i = 0; i < 8; ++i) p[2 + i] = static_cast<char>(v >> (8 * i));
    p[10] = 0;
    return;
  }
  out.put(op(Op::LONG));
  out.write(std::to_string(v));
  out.write("L\n");
}

void emit_big_int(Output& out, int protocol, const BigIntNode& n) {
  if (protocol >= 2) {
    std::string bytes = encode_long(n);
    if (bytes.size() < 256) {
      out.put(op(Op::LONG1), static_cast<char>(bytes.size()));
    } else if (bytes.size() <= 0x7FFFFFFFu) {
      out.op_u32(op(Op::LONG4), static_cast<std::uint32_t>(bytes.size()));
    } else {
      throw PicklingError("int too large to pickle", PyExc::OverflowError);
    }
    out.write(bytes);
    return;
  }
  out.put(op(Op::LONG));
  out.write(bigint_decimal(n));
  out.write("L\n");
}

void emit_str_text(Output& out, std::string_view utf8) {
  std::string text = "V";
  raw_unicode_escape(utf8, text);
  text += '\n';
  out.write(text);
}

void emit_long_str(Output& out, int protocol, std::string_view utf8) {
  std::size_t n = utf8.size();
  char header[9];
  if (n <= 0xFFFFFFFFu) {
    header[0] = op(Op::BINUNICODE);
    for (int i = 0; i < 4; ++i) header[1 + i] = static_cast<char>(std::uint64_t(n) >> (8 * i));
    out.payload(header, 5, utf8.data(), n);
  } else if (protocol >= 4) {
    header[0] = op(Op::BINUNICODE8);
    for (int i = 0; i < 8; ++i) header[1 + i] = static_cast<char>(std::uint64_t(n) >> (8 * i));
    out.payload(header, 9, utf8.data(), n);
  } else {
    throw PicklingError(
        "serializing a string larger than 4 GiB requires pickle protocol 4 or higher",
        PyExc::OverflowError);
  }
}

void emit_bytes_opcode(Output& out, int protocol, std::string_view data) {
  std::size_t n = data.size();
  if (n <= 0xFF) {
    char* p = out.reserve(2 + n);
    p[0] = op(Op::SHORT_BINBYTES);
    p[1] = static_cast<char>(n);
    std::memcpy(p + 2, data.data(), n);
    return;
  }
  char header[9];
  if (n <= 0xFFFFFFFFu) {
    header[0] = op(Op::BINBYTES);
    for (int i = 0; i < 4; ++i) header[1 + i] = static_cast<char>(std::uint64_t(n) >> (8 * i));
    out.payload(header, 5, data.data(), n);
  } else if (protocol >= 4) {
    header[0] = op(Op::BINBYTES8);
    for (int i = 0; i < 8; ++i) header[1 + i] = static_cast<char>(std::uint64_t(n) >> (8 * i));
    out.payload(header, 9, data.data(), n);
  } else {
    throw PicklingError(
        "serializing a bytes object larger than 4 GiB requires pickle protocol 4 or higher",
        PyExc::OverflowError);
  }
}

void emit_bytearray8(Output& out, std::string_view data) {
  char header[9];
  header[0] = op(Op::BYTEARRAY8);
  for (int i = 0; i < 8; ++i) header[1 + i] = static_cast<char>(std::uint64_t(data.size()) >> (8 * i));
  out.payload(header, 9, data.data(), data.size());
}

}  // namespace pickle::detail

namespace pickle::detail {

int resolve_protocol(const WriteOptions& options) {
  const int protocol = options.protocol;
  if (protocol == -1) return default_protocol(options.target_minor);
  if (protocol < 0) return 5;
  if (protocol > 5) throw PicklingError("pickle protocol must be <= 5", PyExc::ValueError);
  return protocol;
}

}  // namespace pickle::detail
