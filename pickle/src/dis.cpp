// pickletools.genops and pickletools.dis (Python 3.11), from the opcode table in opcodes.hpp.
//
// pickletools decodes arguments with its own readers, which are not the unpickler's: decimal
// arguments go through int() (whitespace, underscores and the 4300-digit limit included, and GET/PUT
// numbers too), FLOAT through float(), STRING and the text-line arguments through
// codecs.escape_decode then ASCII, UNICODE through raw-unicode-escape. Their error messages are
// reproduced word for word, since dis' output is compared against CPython's.
#include "pickle/dis.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <iterator>
#include <vector>

#include "repr_text.hpp"
#include "unicode.hpp"
#include "value_impl.hpp"

namespace pickle {
namespace {

// A ValueError (or one of its subclasses) pickletools would raise.
struct DisFailure {
  std::string message;
  PyExc python_class = PyExc::ValueError;
};

constexpr std::size_t max_str_digits = 4300;  // sys.get_int_max_str_digits() default
constexpr std::uint64_t py_ssize_max = 0x7FFFFFFFFFFFFFFFull;

std::string bytes_repr(std::string_view data) {
  std::string out;
  detail::append_bytes_repr(out, data);
  return out;
}

// The byte stream as pickletools reads it through io.BytesIO: short reads at the end.
class Stream {
 public:
  explicit Stream(std::string_view data) : data_(data) {}
  std::size_t pos() const noexcept { return pos_; }
  std::string_view read(std::uint64_t n) {
    const std::size_t available = data_.size() - pos_;
    const std::size_t take = n < available ? static_cast<std::size_t>(n) : available;
    const std::string_view out = data_.substr(pos_, take);
    pos_ += take;
    return out;
  }
  // Up to and including the next newline, or the rest.
  std::string_view readline() {
    const std::size_t nl = data_.find('\n', pos_);
    return read(nl == std::string_view::npos ? data_.size() - pos_ : nl - pos_ + 1);
  }

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
};

std::uint64_t little_endian(std::string_view bytes) {
  std::uint64_t v = 0;
  for (std::size_t i = bytes.size(); i-- > 0;) v = (v << 8) | static_cast<unsigned char>(bytes[i]);
  return v;
}

std::uint64_t read_unsigned(Stream& in, std::size_t width, const char* name) {
  const std::string_view bytes = in.read(width);
  if (bytes.size() != width) {
    throw DisFailure{std::string("not enough data in stream to read ") + name};
  }
  return little_endian(bytes);
}

std::int32_t read_int4(Stream& in) {
  return static_cast<std::int32_t>(static_cast<std::uint32_t>(read_unsigned(in, 4, "int4")));
}

bool is_py_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

// Python's int(bytes) in base 10.
BigInt python_int(std::string_view text) {
  auto invalid = [&]() -> DisFailure {
    // "%.200R" of the first 200 bytes.
    std::string shown = bytes_repr(text.substr(0, 200));
    if (shown.size() > 200) shown.resize(200);
    return DisFailure{"invalid literal for int() with base 10: " + shown};
  };
  std::size_t i = 0;
  while (i < text.size() && is_py_space(text[i])) ++i;
  bool negative = false;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) negative = text[i++] == '-';
  if (i < text.size() && text[i] == '_') throw invalid();
  std::string digits;
  char previous = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '_')) {
    if (text[i] == '_') {
      if (previous == '_') throw invalid();
    } else {
      digits += text[i];
    }
    previous = text[i++];
  }
  if (previous == '_') throw invalid();
  if (digits.size() > max_str_digits) {
    throw DisFailure{"Exceeds the limit (4300 digits) for integer string conversion: value has " +
                     std::to_string(digits.size()) +
                     " digits; use sys.set_int_max_str_digits() to increase the limit"};
  }
  while (i < text.size() && is_py_space(text[i])) ++i;
  if (digits.empty() || i != text.size()) throw invalid();
  // cpp_int would read a leading 0 as an octal prefix; Python's base 10 ignores leading zeros.
  const std::size_t significant = std::min(digits.find_first_not_of('0'), digits.size() - 1);
  BigInt value(digits.substr(significant));
  return negative ? BigInt(-value) : value;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (x != b[i]) return false;
  }
  return true;
}

// Python's float(bytes).
double python_float(std::string_view original) {
  const DisFailure failure{"could not convert string to float: " + bytes_repr(original)};
  std::string_view text = original;
  while (!text.empty() && is_py_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_py_space(text.back())) text.remove_suffix(1);
  // Underscores are allowed only between digits, and are then ignored.
  std::string plain;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '_') {
      if (i == 0 || i + 1 == text.size() || !is_digit(text[i - 1]) || !is_digit(text[i + 1])) {
        throw failure;
      }
      continue;
    }
    plain += text[i];
  }
  std::string_view body = plain;
  bool negative = false;
  if (!body.empty() && (body.front() == '+' || body.front() == '-')) {
    negative = body.front() == '-';
    body.remove_prefix(1);
  }
  if (iequals(body, "inf") || iequals(body, "infinity")) {
    return negative ? -HUGE_VAL : HUGE_VAL;
  }
  if (iequals(body, "nan")) return negative ? -std::nan("") : std::nan("");
  // [digits][.digits][e[sign]digits] with at least one mantissa digit.
  std::size_t i = 0;
  std::size_t mantissa_digits = 0;
  while (i < body.size() && is_digit(body[i])) ++i, ++mantissa_digits;
  if (i < body.size() && body[i] == '.') {
    ++i;
    while (i < body.size() && is_digit(body[i])) ++i, ++mantissa_digits;
  }
  if (mantissa_digits == 0) throw failure;
  if (i < body.size() && (body[i] == 'e' || body[i] == 'E')) {
    ++i;
    if (i < body.size() && (body[i] == '+' || body[i] == '-')) ++i;
    const std::size_t exponent_start = i;
    while (i < body.size() && is_digit(body[i])) ++i;
    if (i == exponent_start) throw failure;
  }
  if (i != body.size()) throw failure;
  // from_chars rounds correctly and ignores the locale; out of range, Python gives inf or 0.
  double magnitude = 0;
  const auto parsed = std::from_chars(body.data(), body.data() + body.size(), magnitude);
  if (parsed.ec == std::errc::result_out_of_range) {
    const std::size_t first = body.find_first_not_of("0.");
    const std::size_t e = body.find_first_of("eE");
    long long exponent = 0;
    if (e != std::string_view::npos) {
      std::string_view digits = body.substr(e + 1);
      const bool minus = !digits.empty() && digits.front() == '-';
      if (!digits.empty() && (digits.front() == '-' || digits.front() == '+')) digits.remove_prefix(1);
      for (const char c : digits) exponent = std::min<long long>(exponent * 10 + (c - '0'), 1'000'000'000);
      if (minus) exponent = -exponent;
    }
    // The decimal exponent of the leading nonzero digit decides: above 0 it overflowed.
    const std::size_t point = std::min(body.find('.'), e == std::string_view::npos ? body.size() : e);
    const long long leading =
        exponent + (static_cast<long long>(point) - static_cast<long long>(first) - (first < point ? 1 : 0));
    magnitude = leading > 0 ? HUGE_VAL : 0.0;
  }
  return negative ? -magnitude : magnitude;
}

// codecs.escape_decode: Python's bytes-literal escapes; unknown escapes keep their backslash.
std::string escape_decode(std::string_view data) {
  std::string out;
  std::size_t i = 0;
  auto hex_value = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  while (i < data.size()) {
    if (data[i] != '\\') {
      out += data[i++];
      continue;
    }
    const std::size_t backslash = i++;
    if (i == data.size()) throw DisFailure{"Trailing \\ in string"};
    const char c = data[i++];
    switch (c) {
      case '\n': break;
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 't': out += '\t'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 'v': out += '\v'; break;
      case 'a': out += '\a'; break;
      case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': {
        int value = c - '0';
        for (int extra = 0; extra < 2 && i < data.size() && data[i] >= '0' && data[i] <= '7'; ++extra) {
          value = value * 8 + (data[i++] - '0');
        }
        out += static_cast<char>(value & 0xFF);
        break;
      }
      case 'x':
        if (i + 1 < data.size() && hex_value(data[i]) >= 0 && hex_value(data[i + 1]) >= 0) {
          out += static_cast<char>(hex_value(data[i]) * 16 + hex_value(data[i + 1]));
          i += 2;
          break;
        }
        throw DisFailure{"invalid \\x escape at position " + std::to_string(backslash)};
      default:
        out += '\\';
        --i;
        break;
    }
  }
  return out;
}

void check_ascii(std::string_view data) {
  for (std::size_t i = 0; i < data.size(); ++i) {
    const unsigned char byte = static_cast<unsigned char>(data[i]);
    if (byte >= 0x80) {
      char buffer[128];
      std::snprintf(buffer, sizeof buffer,
                    "'ascii' codec can't decode byte 0x%02x in position %zu: ordinal not in range(128)",
                    byte, i);
      throw DisFailure{buffer, PyExc::UnicodeDecodeError};
    }
  }
}

std::string latin1_to_utf8(std::string_view data) {
  std::string out;
  for (const char c : data) detail::append_utf8(out, static_cast<unsigned char>(c));
  return out;
}

// str(data, 'raw-unicode-escape'): \uXXXX and \UXXXXXXXX after an odd run of backslashes; every
// other byte is its Latin-1 character.
std::string raw_unicode_escape_decode(std::string_view data) {
  std::string out;
  std::size_t i = 0;
  auto fail = [&](std::size_t start, std::size_t end, const char* reason) -> DisFailure {
    return DisFailure{"'rawunicodeescape' codec can't decode bytes in position " +
                      std::to_string(start) + "-" + std::to_string(end - 1) + ": " + reason,
                      PyExc::UnicodeDecodeError};
  };
  while (i < data.size()) {
    const char c = data[i];
    if (c != '\\' || i + 1 >= data.size()) {
      detail::append_utf8(out, static_cast<unsigned char>(c));
      ++i;
      continue;
    }
    const char kind = data[i + 1];
    if (kind != 'u' && kind != 'U') {
      detail::append_utf8(out, '\\');
      detail::append_utf8(out, static_cast<unsigned char>(kind));
      i += 2;
      continue;
    }
    const std::size_t start = i;
    const int count = kind == 'u' ? 4 : 8;
    const char* truncated = kind == 'u' ? "truncated \\uXXXX escape" : "truncated \\UXXXXXXXX escape";
    i += 2;
    std::uint32_t cp = 0;
    for (int k = 0; k < count; ++k, ++i) {
      if (i >= data.size()) throw fail(start, i, truncated);
      const char h = data[i];
      int digit;
      if (h >= '0' && h <= '9') {
        digit = h - '0';
      } else if (h >= 'a' && h <= 'f') {
        digit = h - 'a' + 10;
      } else if (h >= 'A' && h <= 'F') {
        digit = h - 'A' + 10;
      } else {
        throw fail(start, i, truncated);
      }
      cp = (cp << 4) | static_cast<std::uint32_t>(digit);
    }
    if (cp > 0x10FFFF) throw fail(start, i, "\\Uxxxxxxxx out of range");
    detail::append_utf8(out, cp);
  }
  return out;
}

std::string utf8_surrogatepass(std::string_view data) {
  if (auto error = detail::check_utf8(data)) {
    throw DisFailure{detail::utf8_error_message(data, *error), PyExc::UnicodeDecodeError};
  }
  return std::string(data);
}

// read_stringnl and its variants.
std::string_view read_line(Stream& in, const char* what) {
  const std::string_view line = in.readline();
  if (line.empty() || line.back() != '\n') {
    throw DisFailure{std::string("no newline found when trying to read ") + what};
  }
  return line.substr(0, line.size() - 1);
}

std::string read_stringnl(Stream& in, bool strip_quotes) {
  std::string_view data = read_line(in, "stringnl");
  if (strip_quotes) {
    bool found = false;
    for (const char q : {'"', '\''}) {
      if (!data.empty() && data.front() == q) {
        if (data.back() != q) {
          throw DisFailure{"strinq quote " + bytes_repr(std::string_view(&q, 1)) +
                           " not found at both ends of " + bytes_repr(data)};
        }
        // A lone quote both starts and ends the data: Python's data[1:-1] is then empty.
        data = data.size() >= 2 ? data.substr(1, data.size() - 2) : std::string_view();
        found = true;
        break;
      }
    }
    if (!found) throw DisFailure{"no string quotes around " + bytes_repr(data)};
  }
  std::string decoded = escape_decode(data);
  check_ascii(decoded);
  return decoded;
}

std::string_view counted(Stream& in, std::uint64_t n, const char* name) {
  const std::string_view data = in.read(n);
  if (data.size() != n) {
    throw DisFailure{"expected " + std::to_string(n) + " bytes in a " + name + ", but only " +
                     std::to_string(data.size()) + " remain"};
  }
  return data;
}

void check_maxsize(std::uint64_t n, const char* name) {
  if (n > py_ssize_max) {
    throw DisFailure{std::string(name) + " byte count > sys.maxsize: " + std::to_string(n)};
  }
}

// pickle.decode_long: little-endian two's complement (imported in one pass: LONG4 may be large).
BigInt decode_long(std::string_view bytes) {
  BigInt value = 0;
  if (bytes.empty()) return value;
  const auto* first = reinterpret_cast<const unsigned char*>(bytes.data());
  std::vector<unsigned char> big_endian(std::make_reverse_iterator(first + bytes.size()),
                                        std::make_reverse_iterator(first));
  boost::multiprecision::import_bits(value, big_endian.begin(), big_endian.end(), 8);
  if (static_cast<unsigned char>(bytes.back()) & 0x80) {
    value -= BigInt(1) << (8 * bytes.size());
  }
  return value;
}

Value read_argument(ArgKind kind, Stream& in) {
  switch (kind) {
    case ArgKind::none:
      return Value();
    case ArgKind::uint1:
      return Value(read_unsigned(in, 1, "uint1"));
    case ArgKind::uint2:
      return Value(read_unsigned(in, 2, "uint2"));
    case ArgKind::int4:
      return Value(read_int4(in));
    case ArgKind::uint4:
      return Value(read_unsigned(in, 4, "uint4"));
    case ArgKind::uint8:
      return Value(read_unsigned(in, 8, "uint8"));
    case ArgKind::decimalnl_short: {
      const std::string_view text = read_line(in, "stringnl");
      if (text == "00") return Value(false);
      if (text == "01") return Value(true);
      return Value(python_int(text));
    }
    case ArgKind::decimalnl_long: {
      std::string_view text = read_line(in, "stringnl");
      if (!text.empty() && text.back() == 'L') text.remove_suffix(1);
      return Value(python_int(text));
    }
    case ArgKind::floatnl:
      return Value(python_float(read_line(in, "stringnl")));
    case ArgKind::float8: {
      const std::string_view bytes = in.read(8);
      if (bytes.size() != 8) throw DisFailure{"not enough data in stream to read float8"};
      std::uint64_t bits = 0;
      for (const char c : bytes) bits = (bits << 8) | static_cast<unsigned char>(c);
      double value;
      std::memcpy(&value, &bits, sizeof value);
      return Value(value);
    }
    case ArgKind::stringnl:
      return Value(read_stringnl(in, true));
    case ArgKind::stringnl_noescape:
      return Value(read_stringnl(in, false));
    case ArgKind::stringnl_noescape_pair: {
      std::string first = read_stringnl(in, false);
      const std::string second = read_stringnl(in, false);
      return Value(first + " " + second);
    }
    case ArgKind::string1: {
      const auto n = read_unsigned(in, 1, "uint1");
      return Value(latin1_to_utf8(counted(in, n, "string1")));
    }
    case ArgKind::string4: {
      const std::int32_t n = read_int4(in);
      if (n < 0) throw DisFailure{"string4 byte count < 0: " + std::to_string(n)};
      return Value(latin1_to_utf8(counted(in, static_cast<std::uint64_t>(n), "string4")));
    }
    case ArgKind::bytes1:
      return Value::bytes(counted(in, read_unsigned(in, 1, "uint1"), "bytes1"));
    case ArgKind::bytes4:
      return Value::bytes(counted(in, read_unsigned(in, 4, "uint4"), "bytes4"));
    case ArgKind::bytes8: {
      const auto n = read_unsigned(in, 8, "uint8");
      check_maxsize(n, "bytes8");
      return Value::bytes(counted(in, n, "bytes8"));
    }
    case ArgKind::bytearray8: {
      const auto n = read_unsigned(in, 8, "uint8");
      check_maxsize(n, "bytearray8");
      return Value::bytearray(counted(in, n, "bytearray8"));
    }
    case ArgKind::unicodestringnl:
      return Value(raw_unicode_escape_decode(read_line(in, "unicodestringnl")));
    case ArgKind::unicodestring1:
      return Value(utf8_surrogatepass(counted(in, read_unsigned(in, 1, "uint1"), "unicodestring1")));
    case ArgKind::unicodestring4:
      return Value(utf8_surrogatepass(counted(in, read_unsigned(in, 4, "uint4"), "unicodestring4")));
    case ArgKind::unicodestring8: {
      const auto n = read_unsigned(in, 8, "uint8");
      check_maxsize(n, "unicodestring8");
      return Value(utf8_surrogatepass(counted(in, n, "unicodestring8")));
    }
    case ArgKind::long1: {
      const auto n = read_unsigned(in, 1, "uint1");
      const std::string_view bytes = in.read(n);
      if (bytes.size() != n) throw DisFailure{"not enough data in stream to read long1"};
      return Value(decode_long(bytes));
    }
    case ArgKind::long4: {
      const std::int32_t n = read_int4(in);
      if (n < 0) throw DisFailure{"long4 byte count < 0: " + std::to_string(n)};
      const std::string_view bytes = in.read(static_cast<std::uint64_t>(n));
      if (bytes.size() != static_cast<std::size_t>(n)) {
        throw DisFailure{"not enough data in stream to read long4"};
      }
      return Value(decode_long(bytes));
    }
  }
  return Value();
}

// _genops: calls `visit` for each opcode through STOP; DisFailure for what pickletools rejects.
template <class Visit>
void walk(std::string_view data, Visit&& visit) {
  Stream in(data);
  while (true) {
    const std::size_t pos = in.pos();
    const std::string_view code = in.read(1);
    if (code.empty()) throw DisFailure{"pickle exhausted before seeing STOP"};
    const OpcodeInfo* info = find_opcode(static_cast<std::uint8_t>(code[0]));
    if (info == nullptr) {
      throw DisFailure{"at position " + std::to_string(pos) + ", opcode " + bytes_repr(code) + " unknown"};
    }
    Value arg = read_argument(info->arg, in);
    visit(Instruction{info, pos, in.pos() - pos, std::move(arg)});
    if (info->op == Op::STOP) return;
  }
}

std::string_view stack_name(StackKind kind) {
  switch (kind) {
    case StackKind::any: return "any";
    case StackKind::int_: return "int";
    case StackKind::int_or_bool: return "int_or_bool";
    case StackKind::bytes_or_str: return "bytes_or_str";
    case StackKind::bytes: return "bytes";
    case StackKind::bytearray: return "bytearray";
    case StackKind::buffer: return "buffer";
    case StackKind::none: return "None";
    case StackKind::bool_: return "bool";
    case StackKind::str: return "str";
    case StackKind::float_: return "float";
    case StackKind::list: return "list";
    case StackKind::tuple: return "tuple";
    case StackKind::dict: return "dict";
    case StackKind::set: return "set";
    case StackKind::frozenset: return "frozenset";
    case StackKind::mark: return "mark";
    case StackKind::stackslice: return "stackslice";
  }
  return "any";
}

// The decimal digits of a big int argument, or nullopt past the int→str digit limit.
std::optional<std::string> argument_repr(const Value& arg) {
  if (arg.slot().tag == detail::Tag::big_int) {
    const BigInt value = arg.as_bigint();
    // Past 14300 bits a number has at least 4305 digits: refuse before converting.
    if (boost::multiprecision::msb(abs(value)) >= 14300) return std::nullopt;
    std::string digits = value.str();
    const std::size_t count = digits.size() - (digits[0] == '-' ? 1 : 0);
    if (count > max_str_digits) return std::nullopt;
    return digits;
  }
  return repr(arg);
}

}  // namespace

void genops(std::string_view data, const std::function<void(const Instruction&)>& visit) {
  std::size_t last_pos = 0;
  try {
    walk(data, [&](const Instruction& instruction) {
      last_pos = instruction.offset + instruction.size;
      visit(instruction);
    });
  } catch (const DisFailure& failure) {
    throw UnpicklingError(failure.python_class, failure.message, last_pos);
  }
}

DisResult dis(std::string_view data, const DisOptions& options) {
  DisResult result;
  std::string& out = result.text;
  const StackKind mark = StackKind::mark;
  std::vector<StackKind> stack;
  std::map<BigInt, StackKind> memo;
  int max_proto = -1;
  std::vector<std::size_t> markstack;
  const std::string indent_chunk(static_cast<std::size_t>(std::max(options.indentlevel, 0)), ' ');
  const std::size_t annotate = options.annotate ? 30 : 0;  // python -m pickletools -a uses 30
  std::size_t annocol = annotate;
  try {
    walk(data, [&](const Instruction& ins) {
      const OpcodeInfo& op = *ins.info;
      char prefix[32];
      std::snprintf(prefix, sizeof prefix, "%5zu: ", ins.offset);
      out += prefix;

      std::string line;
      const unsigned char code = static_cast<unsigned char>(op.op);
      if (code >= 0x20 && code < 0x7F) {
        line += static_cast<char>(code);
      } else {
        char escaped[8];
        std::snprintf(escaped, sizeof escaped, "\\x%02x", code);
        line += escaped;
      }
      if (line.size() < 4) line.append(4 - line.size(), ' ');
      line += ' ';
      line.append(markstack.size() * indent_chunk.size(), ' ');
      line += op.name;

      max_proto = std::max(max_proto, static_cast<int>(op.protocol));
      const std::span<const StackKind> before(op.before.data(), op.before_count);
      std::vector<StackKind> after(op.after.begin(), op.after.begin() + op.after_count);
      std::size_t numtopop = before.size();
      const auto mark_in_before = std::find(before.begin(), before.end(), mark);

      std::optional<std::string> markmsg;
      std::optional<std::string> errormsg;
      if (mark_in_before != before.end() ||
          (op.op == Op::POP && !stack.empty() && stack.back() == mark)) {
        if (!markstack.empty()) {
          const std::size_t markpos = markstack.back();
          markstack.pop_back();
          markmsg = "(MARK at " + std::to_string(markpos) + ")";
          while (true) {
            if (stack.empty()) throw std::out_of_range("list index out of range");
            if (stack.back() == mark) break;
            stack.pop_back();
          }
          stack.pop_back();
          numtopop = mark_in_before != before.end()
                         ? static_cast<std::size_t>(mark_in_before - before.begin())
                         : 0;
        } else {
          errormsg = markmsg = "no MARK exists on stack";
        }
      }

      const Value& arg = ins.arg;
      auto memo_key = [](const Value& v) { return v.as_bigint(); };
      if (op.op == Op::PUT || op.op == Op::BINPUT || op.op == Op::LONG_BINPUT || op.op == Op::MEMOIZE) {
        BigInt index;
        if (op.op == Op::MEMOIZE) {
          index = memo.size();
          markmsg = "(as " + std::to_string(memo.size()) + ")";
        } else {
          index = memo_key(arg);
        }
        if (memo.count(index)) {
          errormsg = "memo key " + repr(arg) + " already defined";
        } else if (stack.empty()) {
          errormsg = "stack is empty -- can't store into memo";
        } else if (stack.back() == mark) {
          errormsg = "can't store markobject in the memo";
        } else {
          memo[index] = stack.back();
        }
      } else if (op.op == Op::GET || op.op == Op::BINGET || op.op == Op::LONG_BINGET) {
        const auto found = memo.find(memo_key(arg));
        if (found != memo.end()) {
          after.assign(1, found->second);
        } else {
          errormsg = "memo key " + repr(arg) + " has never been stored into";
        }
      }

      if (!arg.is_none() || markmsg) {
        if (op.name.size() < 10) line.append(10 - op.name.size(), ' ');
        if (!arg.is_none()) {
          auto text = argument_repr(arg);
          if (!text) {
            throw DisFailure{
                "Exceeds the limit (4300 digits) for integer string conversion; use "
                "sys.set_int_max_str_digits() to increase the limit"};
          }
          line += ' ';
          line += *text;
        }
        if (markmsg) {
          line += ' ';
          line += *markmsg;
        }
      }
      if (annotate) {
        if (line.size() < annocol) line.append(annocol - line.size(), ' ');
        annocol = line.size();
        if (annocol > 50) annocol = annotate;
        line += ' ';
        line += op.description;
      }
      out += line;
      out += '\n';

      if (errormsg) throw DisFailure{*errormsg};
      if (stack.size() < numtopop) {
        throw DisFailure{"tries to pop " + std::to_string(numtopop) + " items from stack with only " +
                         std::to_string(stack.size()) + " items"};
      }
      stack.resize(stack.size() - numtopop);
      if (std::find(after.begin(), after.end(), mark) != after.end()) markstack.push_back(ins.offset);
      stack.insert(stack.end(), after.begin(), after.end());
    });
    out += "highest protocol among opcodes = " + std::to_string(max_proto) + "\n";
    if (!stack.empty()) {
      std::string listing = "[";
      for (std::size_t i = 0; i < stack.size(); ++i) {
        if (i) listing += ", ";
        listing += stack_name(stack[i]);
      }
      listing += "]";
      throw DisFailure{"stack not empty after STOP: " + listing};
    }
  } catch (const DisFailure& failure) {
    result.error = failure.message;
  } catch (const std::out_of_range& failure) {  // pickletools' IndexError on a mark popped early
    result.error = failure.what();
  }
  return result;
}

}  // namespace pickle
