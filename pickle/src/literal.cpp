// Python literals as ast.literal_eval accepts them.
//
// Tokens (numbers, string literals, names, punctuation, whitespace and comments) are recognized
// with Boost.Spirit X3 rules; the nesting of displays is handled by an explicit stack of open
// brackets, so a 1,000,000-deep list parses without recursion.
//
// Not accepted (rejected with a ValueError that says so): complex numbers and the `a+bj` / `a-bj`
// sums ast.literal_eval allows for them (pickle::Value has no complex kind), f-strings, and names
// other than None, True, False, `...` (Ellipsis, built as the global builtins.Ellipsis, which is how
// CPython pickles it) and `set()`.
//
// Identity: like CPython's parser, every literal makes a new object (`['ab', 'ab']` holds two
// distinct strs); dumps with Identities::cpython then shares what CPython shares (the empty str and
// bytes, 1-character strs, …). Sets are built in CPython's iteration order when every element's
// hash is deterministic in CPython (no str/bytes inside), so their pickles match CPython's.
#include "pickle/literal.hpp"

#include <unicode/uchar.h>

#include <boost/spirit/home/x3.hpp>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "set_order.hpp"
#include "unicode.hpp"
#include "value_impl.hpp"

namespace pickle {
namespace {

namespace x3 = boost::spirit::x3;
using Iter = std::string_view::const_iterator;

// --- lexical grammar ---------------------------------------------------------------------------

const auto digit = x3::char_('0', '9');
const auto digit_part = digit >> *(-x3::lit('_') >> digit);
const auto exponent = x3::no_case[x3::lit('e')] >> -x3::char_("+-") >> digit_part;
const auto point_float = (-digit_part >> '.' >> digit_part) | (digit_part >> '.');
const auto float_number = (point_float >> -exponent) | (digit_part >> exponent);
const auto imaginary = (float_number | digit_part) >> x3::no_case[x3::lit('j')];
// Character classes by explicit ASCII ranges: X3's alnum/alpha/xdigit assert (abort) on bytes
// above 0x7f, which a user's literal may contain.
const auto hex_digit = x3::char_('0', '9') | x3::char_('a', 'f') | x3::char_('A', 'F');
const auto hex_int = x3::lit('0') >> x3::no_case[x3::lit('x')] >> +(-x3::lit('_') >> hex_digit);
const auto octal_int = x3::lit('0') >> x3::no_case[x3::lit('o')] >> +(-x3::lit('_') >> x3::char_('0', '7'));
const auto binary_int = x3::lit('0') >> x3::no_case[x3::lit('b')] >> +(-x3::lit('_') >> x3::char_('0', '1'));
const auto zero_int = x3::lit('0') >> *(-x3::lit('_') >> x3::lit('0'));
const auto decimal_int = x3::char_('1', '9') >> *(-x3::lit('_') >> digit);

const auto ascii_letter = x3::char_('a', 'z') | x3::char_('A', 'Z');
const auto identifier_char = ascii_letter | x3::char_('0', '9') | x3::char_('_');
const auto name_rule = (ascii_letter | x3::char_('_')) >> *identifier_char;

// Blanks between tokens: spaces, tabs, form feeds, newlines, comments, backslash continuations.
const auto blank = x3::char_(" \t\f\r\n") | (x3::lit('#') >> *(x3::char_ - x3::char_("\r\n"))) |
                   (x3::lit('\\') >> -x3::lit('\r') >> x3::lit('\n'));

const auto string_prefix = x3::no_case[x3::lit("rb") | x3::lit("br") | x3::lit("r") | x3::lit("b") |
                                       x3::lit("u")];
// Bodies of the four quote forms; an escaped character never ends a string.
const auto escaped = x3::lit('\\') >> x3::char_;
const auto body_single = *(escaped | (x3::char_ - x3::char_("'\r\n")));
const auto body_double = *(escaped | (x3::char_ - x3::char_("\"\r\n")));
const auto body_triple_single = *(escaped | (x3::char_ - x3::lit("'''")));
const auto body_triple_double = *(escaped | (x3::char_ - x3::lit("\"\"\"")));

[[noreturn]] void syntax_error(std::string_view what, std::size_t offset) {
  throw Error(PyExc::ValueError,
              "invalid literal: " + std::string(what) + " at offset " + std::to_string(offset));
}

[[noreturn]] void malformed(std::string_view what, std::size_t offset) {
  throw Error(PyExc::ValueError, "malformed node or string: " + std::string(what) + " at offset " +
                                     std::to_string(offset));
}

// --- tokens --------------------------------------------------------------------------------------

enum class TokenKind : std::uint8_t { end, punct, number, string, name, ellipsis };

struct Token {
  TokenKind kind = TokenKind::end;
  char punct = 0;
  std::size_t offset = 0;
  std::string_view text;  // number: the digits; name: the name
  // string: decoded value
  bool is_bytes = false;
  std::string data;  // UTF-8 (str) or raw bytes
};

using detail::append_utf8;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decode the escapes of a non-raw literal body (Python's string and bytes escape rules).
void decode_escapes(std::string_view body, bool bytes, std::size_t offset, std::string& out) {
  std::size_t i = 0;
  while (i < body.size()) {
    char c = body[i];
    if (c != '\\') {
      if (c == '\r') {  // universal newlines inside triple-quoted strings
        out += '\n';
        i += (i + 1 < body.size() && body[i + 1] == '\n') ? 2 : 1;
        continue;
      }
      out += c;
      ++i;
      continue;
    }
    if (i + 1 >= body.size()) syntax_error("trailing backslash", offset);
    char e = body[i + 1];
    i += 2;
    switch (e) {
      case '\n':
        break;
      case '\r':
        if (i < body.size() && body[i] == '\n') ++i;
        break;
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'v': out += '\v'; break;
      case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': {
        std::uint32_t v = static_cast<std::uint32_t>(e - '0');
        for (int k = 0; k < 2 && i < body.size() && body[i] >= '0' && body[i] <= '7'; ++k, ++i)
          v = v * 8 + static_cast<std::uint32_t>(body[i] - '0');
        if (bytes) {
          out += static_cast<char>(v & 0xFF);
        } else {
          append_utf8(out, v);
        }
        break;
      }
      case 'x': {
        if (i + 2 > body.size() || hex_value(body[i]) < 0 || hex_value(body[i + 1]) < 0)
          syntax_error("truncated \\xXX escape", offset);
        std::uint32_t v = static_cast<std::uint32_t>(hex_value(body[i]) * 16 + hex_value(body[i + 1]));
        i += 2;
        if (bytes) {
          out += static_cast<char>(v);
        } else {
          append_utf8(out, v);
        }
        break;
      }
      case 'u':
      case 'U': {
        if (bytes) {
          out += '\\';
          out += e;
          break;
        }
        std::size_t n = e == 'u' ? 4 : 8;
        std::uint32_t v = 0;
        for (std::size_t k = 0; k < n; ++k) {
          if (i + k >= body.size() || hex_value(body[i + k]) < 0)
            syntax_error(e == 'u' ? "truncated \\uXXXX escape" : "truncated \\UXXXXXXXX escape", offset);
          v = v * 16 + static_cast<std::uint32_t>(hex_value(body[i + k]));
        }
        if (v > 0x10FFFF) syntax_error("illegal Unicode character", offset);
        i += n;
        append_utf8(out, v);
        break;
      }
      case 'N': {
        if (bytes) {
          out += "\\N";
          break;
        }
        if (i >= body.size() || body[i] != '{') syntax_error("malformed \\N character escape", offset);
        std::size_t close = body.find('}', i);
        if (close == std::string_view::npos) syntax_error("malformed \\N character escape", offset);
        std::string char_name(body.substr(i + 1, close - i - 1));
        UErrorCode status = U_ZERO_ERROR;
        UChar32 cp = u_charFromName(U_UNICODE_CHAR_NAME, char_name.c_str(), &status);
        if (U_FAILURE(status) || cp < 0) {
          status = U_ZERO_ERROR;
          cp = u_charFromName(U_CHAR_NAME_ALIAS, char_name.c_str(), &status);
        }
        if (U_FAILURE(status) || cp < 0) syntax_error("unknown Unicode character name", offset);
        append_utf8(out, static_cast<std::uint32_t>(cp));
        i = close + 1;
        break;
      }
      default:
        // Unknown escapes are kept as they are (Python warns, and keeps them).
        out += '\\';
        out += e;
        break;
    }
  }
}

class Lexer {
 public:
  explicit Lexer(std::string_view text) : text_(text), it_(text.begin()) {}

  std::size_t offset() const { return static_cast<std::size_t>(it_ - text_.begin()); }

  // Outside brackets a newline ends the expression: only blanks may follow it.
  void set_depth(std::size_t depth) { depth_ = depth; }

  Token next() {
    Iter blank_start = it_;
    x3::parse(it_, text_.end(), *blank);
    Token tok;
    tok.offset = offset();
    if (it_ == text_.end()) return tok;
    if (depth_ == 0 && started_ && ends_line(blank_start, it_)) syntax_error("invalid syntax", tok.offset);
    started_ = true;
    Iter start = it_;

    // Numbers first: `.5` starts with a dot, `...` does not parse as a number.
    if (x3::parse(it_, text_.end(), imaginary)) {
      it_ = start;
      throw Error(PyExc::ValueError, "complex numbers are not supported (pickle::Value has no complex "
                                     "kind) at offset " + std::to_string(tok.offset));
    }
    it_ = start;
    if (x3::parse(it_, text_.end(), float_number | hex_int | octal_int | binary_int | zero_int | decimal_int)) {
      Iter probe = it_;
      if (probe != text_.end() && x3::parse(probe, text_.end(), identifier_char | x3::lit('.')))
        syntax_error("invalid decimal literal", tok.offset);
      tok.kind = TokenKind::number;
      tok.text = std::string_view(&*start, static_cast<std::size_t>(it_ - start));
      return tok;
    }
    it_ = start;
    if (x3::parse(it_, text_.end(), x3::lit("..."))) {
      tok.kind = TokenKind::ellipsis;
      return tok;
    }
    it_ = start;
    if (string_token(tok)) return tok;
    it_ = start;
    if (x3::parse(it_, text_.end(), name_rule)) {
      tok.kind = TokenKind::name;
      tok.text = std::string_view(&*start, static_cast<std::size_t>(it_ - start));
      return tok;
    }
    it_ = start;
    char c = *it_;
    if (std::string_view("()[]{},:+-").find(c) != std::string_view::npos) {
      ++it_;
      tok.kind = TokenKind::punct;
      tok.punct = c;
      return tok;
    }
    syntax_error("invalid syntax", tok.offset);
  }

 private:
  bool string_token(Token& tok) {
    Iter start = it_;
    Iter after_prefix = it_;
    x3::parse(after_prefix, text_.end(), x3::raw[-string_prefix]);
    std::string_view prefix(&*start, static_cast<std::size_t>(after_prefix - start));
    bool raw = false;
    bool bytes = false;
    for (char p : prefix) {
      raw |= p == 'r' || p == 'R';
      bytes |= p == 'b' || p == 'B';
    }
    it_ = after_prefix;
    if (it_ == text_.end() || (*it_ != '\'' && *it_ != '"')) {
      it_ = start;
      return false;
    }
    // An f-string or another prefix would have matched as a name: reject those in the parser.
    std::string_view body;
    auto take = [&](auto quote, auto body_rule) {
      Iter probe = it_;
      Iter body_start;
      if (!x3::parse(probe, text_.end(), quote)) return false;
      body_start = probe;
      if (!x3::parse(probe, text_.end(), body_rule)) return false;
      Iter body_end = probe;
      if (!x3::parse(probe, text_.end(), quote)) syntax_error("unterminated string literal", tok.offset);
      body = std::string_view(body_start == text_.end() ? nullptr : &*body_start,
                              static_cast<std::size_t>(body_end - body_start));
      it_ = probe;
      return true;
    };
    if (!(take(x3::lit("'''"), body_triple_single) || take(x3::lit("\"\"\""), body_triple_double) ||
          take(x3::lit('\''), body_single) || take(x3::lit('"'), body_double)))
      syntax_error("unterminated string literal", tok.offset);
    tok.kind = TokenKind::string;
    tok.is_bytes = bytes;
    if (bytes) {
      for (char c : body)
        if (static_cast<unsigned char>(c) >= 0x80)
          syntax_error("bytes can only contain ASCII literal characters", tok.offset);
    }
    if (raw) {
      tok.data.assign(body);
    } else {
      decode_escapes(body, bytes, tok.offset, tok.data);
    }
    return true;
  }

  // Whether the blanks [from, to) hold a newline that is not a backslash continuation.
  static bool ends_line(Iter from, Iter to) {
    for (Iter p = from; p != to; ++p) {
      if (*p == '#') {
        while (p != to && *p != '\n') ++p;
        if (p == to) return false;
      }
      if (*p == '\\') {
        ++p;
        if (p != to && *p == '\r') ++p;
        continue;  // the newline after it is a continuation
      }
      if (*p == '\n') return true;
    }
    return false;
  }

  std::string_view text_;
  Iter it_;
  std::size_t depth_ = 0;
  bool started_ = false;
};

// --- numbers ------------------------------------------------------------------------------------

Value number_value(std::string_view text, bool negative, std::size_t offset) {
  std::string digits;
  for (char c : text)
    if (c != '_') digits += c;
  bool is_float = digits.find_first_of(".eE") != std::string::npos &&
                  !(digits.size() > 1 && (digits[1] == 'x' || digits[1] == 'X'));
  if (is_float) {
    double d = 0;
    auto res = std::from_chars(digits.data(), digits.data() + digits.size(), d);
    if (res.ec == std::errc::result_out_of_range) {
      // Overflow gives inf, underflow 0.0, as Python's float().
      bool tiny = digits.find_first_of("eE") != std::string::npos &&
                  digits.find('-', digits.find_first_of("eE")) != std::string::npos;
      d = tiny ? 0.0 : HUGE_VAL;
    } else if (res.ec != std::errc() || res.ptr != digits.data() + digits.size()) {
      syntax_error("invalid float literal", offset);
    }
    return Value(negative ? -d : d);
  }
  BigInt v;
  if (digits.size() > 1 && digits[0] == '0' && (digits[1] == 'b' || digits[1] == 'B')) {
    for (std::size_t i = 2; i < digits.size(); ++i) v = v * 2 + (digits[i] - '0');
  } else if (digits.size() > 1 && digits[0] == '0' && (digits[1] == 'o' || digits[1] == 'O')) {
    for (std::size_t i = 2; i < digits.size(); ++i) v = v * 8 + (digits[i] - '0');
  } else if (digits.size() > 1 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
    for (std::size_t i = 2; i < digits.size(); ++i) v = v * 16 + hex_value(digits[i]);
  } else {
    if (digits.size() > 4300)
      throw Error(PyExc::ValueError,
                  "Exceeds the limit (4300 digits) for integer string conversion: value has " +
                      std::to_string(digits.size()) + " digits");
    v = BigInt(digits);
  }
  if (negative) v = -v;
  if (v >= INT64_MIN && v <= INT64_MAX) return Value(static_cast<std::int64_t>(v));
  return Value(v);
}

// A set as CPython builds it from a literal: equal items collapse to the first, and the items are
// stored in the order CPython iterates them, where that order is the same in every process.
Value make_set(const std::vector<Value>& items) {
  Value set = Value::set();
  for (const Value& item : items) set.add(item);
  if (set.size() < 2) return set;
  detail::FixedHashes hashes;
  auto order = hashes.set_order(detail::node<detail::DictNode>(set.slot()));
  if (!order) return set;
  Value ordered = Value::set();
  for (const detail::Slot& item : *order) ordered.add(Value(item, set.heap()));
  return ordered;
}

// --- structure ------------------------------------------------------------------------------

struct Frame {
  char open;  // '^' top level, '(' '[' '{'
  std::size_t offset;
  std::vector<Value> items;
  bool comma = false;       // a comma was seen (makes a tuple of a parenthesized value)
  bool after_comma = false;  // the last token was a comma
  bool dict = false;         // '{' with key: value pairs
  bool decided = false;      // '{' knows whether it is a dict or a set
};

Value close_frame(Frame& f) {
  switch (f.open) {
    case '^':
    case '(':
      if (f.items.size() == 1 && !f.comma) return f.items[0];
      return Value::tuple(std::span<const Value>(f.items));
    case '[':
      return Value::list(std::span<const Value>(f.items));
    default:
      if (f.items.empty() || f.dict) {
        Value d = Value::dict();
        for (std::size_t i = 0; i + 1 < f.items.size(); i += 2) d.set_item(f.items[i], f.items[i + 1]);
        return d;
      }
      return make_set(f.items);
  }
}

}  // namespace

Value parse_literal(std::string_view text) {
  // ast.literal_eval strips leading spaces and tabs; a BOM is not accepted.
  Lexer lexer(text);
  std::vector<Frame> stack;
  stack.push_back(Frame{'^', 0, {}});
  bool expect_value = true;
  bool after_colon = false;
  Token tok = lexer.next();
  for (;;) {
    Frame& f = stack.back();
    if (expect_value) {
      if (tok.kind == TokenKind::punct && (tok.punct == '(' || tok.punct == '[' || tok.punct == '{')) {
        stack.push_back(Frame{tok.punct, tok.offset, {}});
        after_colon = false;
        lexer.set_depth(stack.size() - 1);
        tok = lexer.next();
        continue;
      }
      if (tok.kind == TokenKind::punct && (tok.punct == ')' || tok.punct == ']' || tok.punct == '}')) {
        char expected = f.open == '(' ? ')' : f.open == '[' ? ']' : f.open == '{' ? '}' : 0;
        bool empty_ok = f.items.empty() && !f.after_comma;
        if (tok.punct != expected || after_colon || !(empty_ok || f.after_comma))
          syntax_error("invalid syntax", tok.offset);
        Value v = close_frame(f);
        stack.pop_back();
        lexer.set_depth(stack.size() - 1);
        stack.back().items.push_back(std::move(v));
        stack.back().after_comma = false;
        expect_value = false;
        after_colon = false;
        tok = lexer.next();
        continue;
      }
      Value value;
      if (tok.kind == TokenKind::punct && (tok.punct == '+' || tok.punct == '-')) {
        // One sign on a number, which may be parenthesized: -1, -(1), +1.5
        bool negative = tok.punct == '-';
        std::size_t sign_offset = tok.offset;
        std::size_t parens = 0;
        tok = lexer.next();
        while (tok.kind == TokenKind::punct && tok.punct == '(') {
          ++parens;
          tok = lexer.next();
        }
        if (tok.kind != TokenKind::number) malformed("a sign applies to a number only", sign_offset);
        value = number_value(tok.text, negative, tok.offset);
        for (; parens > 0; --parens) {
          tok = lexer.next();
          if (tok.kind != TokenKind::punct || tok.punct != ')') syntax_error("invalid syntax", tok.offset);
        }
        tok = lexer.next();
      } else if (tok.kind == TokenKind::number) {
        value = number_value(tok.text, false, tok.offset);
        tok = lexer.next();
      } else if (tok.kind == TokenKind::string) {
        // Adjacent literals are one: 'a' "b" → 'ab'; bytes and str do not mix.
        bool is_bytes = tok.is_bytes;
        std::string data = std::move(tok.data);
        for (tok = lexer.next(); tok.kind == TokenKind::string; tok = lexer.next()) {
          if (tok.is_bytes != is_bytes) syntax_error("cannot mix bytes and nonbytes literals", tok.offset);
          data += tok.data;
        }
        value = is_bytes ? Value::bytes(std::string_view(data)) : Value::str(data);
      } else if (tok.kind == TokenKind::ellipsis) {
        value = Value::global("builtins", "Ellipsis");
        tok = lexer.next();
      } else if (tok.kind == TokenKind::name) {
        std::size_t name_offset = tok.offset;
        if (tok.text == "None") {
          value = Value();
        } else if (tok.text == "True") {
          value = Value(true);
        } else if (tok.text == "False") {
          value = Value(false);
        } else if (tok.text == "set") {
          tok = lexer.next();
          if (tok.kind != TokenKind::punct || tok.punct != '(') malformed("name 'set'", name_offset);
          tok = lexer.next();
          if (tok.kind != TokenKind::punct || tok.punct != ')')
            malformed("set() takes no arguments in a literal", name_offset);
          value = Value::set();
        } else {
          malformed("name '" + std::string(tok.text) + "'", name_offset);
        }
        tok = lexer.next();
      } else {
        syntax_error(tok.kind == TokenKind::end ? "unexpected end of input" : "invalid syntax", tok.offset);
      }
      f.items.push_back(std::move(value));
      f.after_comma = false;
      expect_value = false;
      after_colon = false;
      continue;
    }

    // After a value.
    if (f.open == '{') {
      // Keys are at even positions; a key is followed by ':' in a dict.
      if (!f.decided) {
        f.decided = true;
        f.dict = tok.kind == TokenKind::punct && tok.punct == ':';
      }
      if (f.dict && f.items.size() % 2 == 1) {
        if (tok.kind != TokenKind::punct || tok.punct != ':') syntax_error("':' expected", tok.offset);
        expect_value = true;
        after_colon = true;
        tok = lexer.next();
        continue;
      }
    }
    if (tok.kind == TokenKind::punct && tok.punct == ',') {
      f.comma = true;
      f.after_comma = true;
      expect_value = true;
      tok = lexer.next();
      // A trailing comma may end the top level: `1,`
      if (f.open == '^' && tok.kind == TokenKind::end) {
        expect_value = false;
      } else {
        continue;
      }
    }
    if (tok.kind == TokenKind::end) {
      if (stack.size() != 1) syntax_error("unexpected end of input, '" + std::string(1, f.open) + "' was never closed", f.offset);
      if (f.items.empty()) syntax_error("empty input", 0);
      return close_frame(f);
    }
    if (tok.kind == TokenKind::punct && (tok.punct == ')' || tok.punct == ']' || tok.punct == '}')) {
      char expected = f.open == '(' ? ')' : f.open == '[' ? ']' : f.open == '{' ? '}' : 0;
      if (tok.punct != expected) syntax_error("unmatched '" + std::string(1, tok.punct) + "'", tok.offset);
      Value v = close_frame(f);
      stack.pop_back();
      lexer.set_depth(stack.size() - 1);
      stack.back().items.push_back(std::move(v));
      stack.back().after_comma = false;
      tok = lexer.next();
      continue;
    }
    syntax_error("invalid syntax", tok.offset);
  }
}

}  // namespace pickle
