#include "text_parse.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <vector>

#include <boost/spirit/home/x3.hpp>

#include "unicode.hpp"

namespace pickle::detail::text {
namespace x3 = boost::spirit::x3;

namespace {

using Iterator = std::string_view::const_iterator;

// --- shared lexical pieces ----------------------------------------------------------------------

// C isspace in the "C" locale, which is also Python's Py_ISSPACE.
const auto c_space = x3::char_(" \t\n\v\f\r");
const auto sign = x3::char_("+-");
const auto octal_digit = x3::char_('0', '7');
const auto binary_digit = x3::char_('0', '1');
const auto decimal_digit = x3::char_('0', '9');
// Not x3::xdigit: its character-class test asserts on bytes above 0x7f, which input can contain.
const auto hex_digit = x3::char_("0-9a-fA-F");

int digit_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'z') return c - 'a' + 10;
  if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
  return 99;
}

// Skips what `parser` matches at `it` (nothing when it does not match).
template <class Parser>
void skip(Iterator& it, Iterator end, const Parser& parser) {
  x3::parse(it, end, parser);
}

// A magnitude in base 2^k from its digits, linear in the number of digits.
BigInt from_power_of_two_digits(std::string_view digits, int bits_per_digit) {
  std::vector<std::uint64_t> limbs;  // little-endian
  std::uint64_t current = 0;
  int filled = 0;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    if (*it == '_') continue;
    std::uint64_t d = static_cast<std::uint64_t>(digit_value(*it));
    current |= d << filled;
    filled += bits_per_digit;
    if (filled >= 64) {
      limbs.push_back(current);
      filled -= 64;
      current = filled > 0 ? d >> (bits_per_digit - filled) : 0;
    }
  }
  if (filled > 0) limbs.push_back(current);
  BigInt result;
  if (!limbs.empty()) {
    boost::multiprecision::import_bits(result, limbs.rbegin(), limbs.rend(), 64, true);
  }
  return result;
}

// A decimal magnitude (digits and underscores), 19 digits at a time.
BigInt from_decimal_digits(std::string_view digits) {
  BigInt result;
  std::uint64_t chunk = 0;
  std::uint64_t scale = 1;
  for (char c : digits) {
    if (c == '_') continue;
    chunk = chunk * 10 + static_cast<std::uint64_t>(c - '0');
    scale *= 10;
    if (scale == 10'000'000'000'000'000'000ull) {
      result = result * scale + chunk;
      chunk = 0;
      scale = 1;
    }
  }
  if (scale != 1) result = result * scale + chunk;
  return result;
}

// Takes the magnitude by reference: a by-value cpp_int trips GCC's maybe-uninitialized analysis
// in sanitizer builds.
IntValue make_int_value(BigInt& magnitude, bool negative) {
  IntValue out{false, 0, {}};
  if (negative) magnitude = -magnitude;
  if (magnitude >= std::numeric_limits<std::int64_t>::min() &&
      magnitude <= std::numeric_limits<std::int64_t>::max()) {
    out.small = true;
    out.small_value = static_cast<std::int64_t>(magnitude);
  } else {
    out.big_value.swap(magnitude);
  }
  return out;
}

}  // namespace

std::string_view c_text(std::string_view line) noexcept {
  std::size_t nul = line.find('\0');
  return nul == std::string_view::npos ? line : line.substr(0, nul);
}

// glibc strtol with base 0: whitespace, sign, then "0x" + hex digits, "0" + octal digits or
// decimal digits. Without any digit the end pointer is the start of the text.
StrtolResult strtol_base0(std::string_view text) noexcept {
  Iterator it = text.begin();
  const Iterator end = text.end();
  skip(it, end, *c_space);
  bool negative = false;
  char sign_char = 0;
  if (x3::parse(it, end, sign, sign_char)) negative = sign_char == '-';

  int base = 10;
  Iterator digits_begin = it;
  Iterator after_prefix = it;
  if (x3::parse(after_prefix, end, x3::lit('0') >> x3::char_("xX") >> &hex_digit)) {
    base = 16;
    digits_begin = after_prefix;
  } else if (it != end && *it == '0') {
    base = 8;
  }
  Iterator digits_end = digits_begin;
  bool matched = false;
  switch (base) {
    case 16: matched = x3::parse(digits_end, end, +hex_digit); break;
    case 8: matched = x3::parse(digits_end, end, +octal_digit); break;
    default: matched = x3::parse(digits_end, end, +decimal_digit); break;
  }
  if (!matched) return {text.empty() || text.front() == '\n', 0};  // end pointer = start of text

  // Accumulate the magnitude in unsigned arithmetic; LONG_MIN is representable when negative.
  constexpr std::uint64_t positive_limit = static_cast<std::uint64_t>(INT64_MAX);
  const std::uint64_t limit = negative ? positive_limit + 1 : positive_limit;
  std::uint64_t magnitude = 0;
  bool overflow = false;
  for (Iterator p = digits_begin; p != digits_end; ++p) {
    std::uint64_t d = static_cast<std::uint64_t>(digit_value(*p));
    if (magnitude > (limit - d) / static_cast<std::uint64_t>(base)) {
      overflow = true;
      break;
    }
    magnitude = magnitude * static_cast<std::uint64_t>(base) + d;
  }
  if (overflow) return {false, 0};
  if (digits_end != end && *digits_end != '\n') return {false, 0};
  std::int64_t value = negative ? static_cast<std::int64_t>(0 - magnitude)
                                : static_cast<std::int64_t>(magnitude);
  return {true, value};
}

// PyLong_FromString(text, NULL, base) for base 0 and 10, including its int_max_str_digits check
// (which it makes on the digit run, before looking at what follows it).
IntResult python_int(std::string_view text, int base, std::size_t max_digits) {
  Iterator it = text.begin();
  const Iterator end = text.end();
  skip(it, end, *c_space);
  char sign_char = 0;
  bool negative = false;
  if (x3::parse(it, end, sign, sign_char)) negative = sign_char == '-';

  bool error_if_nonzero = false;
  if (base == 0) {
    char prefix = 0;
    Iterator probe = it;
    if (x3::parse(probe, end, x3::lit('0') >> x3::char_("xXoObB"), prefix)) {
      base = (prefix == 'x' || prefix == 'X') ? 16 : (prefix == 'o' || prefix == 'O') ? 8 : 2;
    } else if (it != end && *it == '0') {
      error_if_nonzero = true;  // C-style octal such as "010" is not Python syntax
      base = 10;
    } else {
      base = 10;
    }
  }
  {
    Iterator probe = it;
    const std::string prefix_chars = base == 16 ? "xX" : base == 8 ? "oO" : base == 2 ? "bB" : "";
    if (!prefix_chars.empty() &&
        x3::parse(probe, end, x3::lit('0') >> x3::char_(prefix_chars) >> -x3::lit('_'))) {
      it = probe;  // one underscore may follow the prefix
    }
  }
  if (it != end && *it == '_') return IntInvalid{base};

  // The digit run: digits of the base and single underscores between them.
  const Iterator run_begin = it;
  auto is_digit = [base](char c) { return digit_value(c) < base; };
  std::size_t digits = 0;
  char previous = 0;
  for (; it != end && (is_digit(*it) || *it == '_'); ++it) {
    if (*it == '_') {
      if (previous == '_') return IntInvalid{base};
    } else {
      ++digits;
    }
    previous = *it;
  }
  if (previous == '_') return IntInvalid{base};
  const std::string_view run = text.substr(static_cast<std::size_t>(run_begin - text.begin()),
                                           static_cast<std::size_t>(it - run_begin));
  const bool binary_base = (base & (base - 1)) == 0;
  if (!binary_base && digits > max_digits) return IntTooManyDigits{digits};

  if (error_if_nonzero) {
    base = 0;  // CPython names base 0 from here on
    if (std::any_of(run.begin(), run.end(), [](char c) { return c != '0' && c != '_'; })) {
      return IntInvalid{base};
    }
  }
  if (digits == 0) return IntInvalid{base};
  skip(it, end, *c_space);
  if (it != end) return IntInvalid{base};

  BigInt magnitude;
  switch (base) {
    case 16: magnitude = from_power_of_two_digits(run, 4); break;
    case 8: magnitude = from_power_of_two_digits(run, 3); break;
    case 2: magnitude = from_power_of_two_digits(run, 1); break;
    default: magnitude = from_decimal_digits(run); break;
  }
  return make_int_value(magnitude, negative);
}

// _PyOS_ascii_strtod: optional sign, then "inf"/"infinity"/"nan" (any case) or a decimal number
// with optional fraction and exponent. No whitespace, no underscores, no hexadecimal.
FloatResult c_string_to_double(std::string_view text) noexcept {
  Iterator it = text.begin();
  const Iterator end = text.end();
  char sign_char = 0;
  bool negative = false;
  if (x3::parse(it, end, sign, sign_char)) negative = sign_char == '-';

  double value = 0;
  Iterator special = it;
  if (x3::parse(special, end, x3::no_case[x3::lit("inf")])) {
    skip(special, end, x3::no_case[x3::lit("inity")]);
    value = std::numeric_limits<double>::infinity();
    it = special;
  } else if (x3::parse(special, end, x3::no_case[x3::lit("nan")])) {
    value = std::numeric_limits<double>::quiet_NaN();
    it = special;
  } else {
    const auto mantissa = (+decimal_digit >> -(x3::lit('.') >> *decimal_digit)) |
                          (x3::lit('.') >> +decimal_digit);
    const auto exponent = x3::char_("eE") >> -sign >> +decimal_digit;
    Iterator number_end = it;
    if (!x3::parse(number_end, end, mantissa)) return {FloatStatus::no_conversion, 0};
    const Iterator mantissa_end = number_end;
    skip(number_end, end, exponent);

    const char* first = &*it;
    const char* last = first + (number_end - it);
    auto [ptr, ec] = std::from_chars(first, last, value, std::chars_format::general);
    if (ec == std::errc::result_out_of_range || ptr != last) {
      // Out of range: overflow when the first significant digit sits at a positive decimal
      // exponent, else an underflow to zero (which CPython accepts).
      long long point = 0;  // decimal exponent of the first significant digit, plus one
      bool seen_point = false, seen_digit = false;
      for (Iterator p = it; p != mantissa_end; ++p) {
        if (*p == '.') {
          seen_point = true;
          continue;
        }
        if (!seen_digit && *p == '0') {
          if (seen_point) --point;
          continue;
        }
        if (!seen_digit) seen_digit = true;
        if (!seen_point) ++point;
      }
      long long exponent_value = 0;
      if (mantissa_end != number_end) {
        Iterator p = mantissa_end + 1;
        bool exponent_negative = false;
        if (*p == '+' || *p == '-') exponent_negative = *p++ == '-';
        for (; p != number_end; ++p) {
          exponent_value = std::min<long long>(exponent_value * 10 + (*p - '0'), 1LL << 40);
        }
        if (exponent_negative) exponent_value = -exponent_value;
      }
      value = (seen_digit && point + exponent_value > 0) ? std::numeric_limits<double>::infinity()
                                                         : 0.0;
    }
    it = number_end;
    if (std::isinf(value)) {
      if (negative) value = -value;
      return {FloatStatus::overflow, value};
    }
  }
  if (negative) value = -value;
  if (it != end && *it != '\n') return {FloatStatus::trailing, value};
  return {FloatStatus::ok, value};
}

std::variant<std::string, EscapeError> decode_bytes_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  Iterator it = text.begin();
  const Iterator end = text.end();

  static const x3::symbols<char> simple_escapes = [] {
    x3::symbols<char> table;
    table.add("\\", '\\')("'", '\'')("\"", '"')("b", '\b')("f", '\f')("t", '\t')("n", '\n')(
        "r", '\r')("v", '\v')("a", '\a');
    return table;
  }();

  while (it != end) {
    Iterator literal_end = std::find(it, end, '\\');
    out.append(it, literal_end);
    it = literal_end;
    if (it == end) break;
    const std::size_t backslash_position = static_cast<std::size_t>(it - text.begin());
    ++it;
    if (it == end) return EscapeError{"Trailing \\ in string"};
    char simple = 0;
    std::string octal;
    std::string hex;
    if (*it == '\n') {
      ++it;  // a line continuation
    } else if (x3::parse(it, end, simple_escapes, simple)) {
      out.push_back(simple);
    } else if (x3::parse(it, end, x3::repeat(1, 3)[octal_digit], octal)) {
      int v = 0;
      for (char c : octal) v = v * 8 + (c - '0');
      out.push_back(static_cast<char>(v & 0xFF));
    } else if (*it == 'x') {
      ++it;
      if (!x3::parse(it, end, x3::repeat(2)[hex_digit], hex)) {
        return EscapeError{"invalid \\x escape at position " + std::to_string(backslash_position)};
      }
      out.push_back(static_cast<char>(digit_value(hex[0]) * 16 + digit_value(hex[1])));
    } else {
      out.push_back('\\');  // unknown escapes stay as they are
    }
  }
  return out;
}

std::variant<std::string, RawUnicodeError> decode_raw_unicode_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  const std::size_t size = text.size();
  std::size_t i = 0;
  while (i < size) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c != '\\') {
      if (c < 0x80) {
        out.push_back(static_cast<char>(c));
      } else {
        append_utf8(out, c);  // bytes are Latin-1 code points
      }
      ++i;
      continue;
    }
    const std::size_t start = i;
    ++i;
    if (i >= size) {
      out.push_back('\\');
      break;
    }
    char kind = text[i++];
    int count = 0;
    const char* truncated = nullptr;
    if (kind == 'u') {
      count = 4;
      truncated = "truncated \\uXXXX escape";
    } else if (kind == 'U') {
      count = 8;
      truncated = "truncated \\UXXXXXXXX escape";
    } else {
      out.push_back('\\');
      if (static_cast<unsigned char>(kind) < 0x80) {
        out.push_back(kind);
      } else {
        append_utf8(out, static_cast<unsigned char>(kind));
      }
      continue;
    }
    Iterator it = text.begin() + static_cast<std::ptrdiff_t>(i);
    std::string hex;
    x3::parse(it, text.end(), x3::repeat(0, count)[hex_digit], hex);
    i = static_cast<std::size_t>(it - text.begin());
    if (static_cast<int>(hex.size()) < count) return RawUnicodeError{start, i, truncated};
    std::uint32_t cp = 0;
    for (char h : hex) cp = cp * 16 + static_cast<std::uint32_t>(digit_value(h));
    if (cp > 0x10FFFF) return RawUnicodeError{start, i, "\\Uxxxxxxxx out of range"};
    append_utf8(out, static_cast<char32_t>(cp));
  }
  return out;
}

std::string c_format_200(std::string_view text) {
  std::string_view head = text.substr(0, std::min<std::size_t>(text.size(), 200));
  std::string out;
  while (!head.empty()) {
    auto error = check_utf8(head);
    if (!error) {
      out.append(head);
      break;
    }
    out.append(head.substr(0, error->start));
    out.append("\xEF\xBF\xBD");  // U+FFFD, one per invalid sequence like the "replace" handler
    std::size_t skip_to = std::max(error->end, error->start + 1);
    head.remove_prefix(std::min(skip_to, head.size()));
  }
  return out;
}

}  // namespace pickle::detail::text
