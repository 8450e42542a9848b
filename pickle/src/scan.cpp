#include "pickle/scan.hpp"

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "compat.hpp"
#include "pickle/opcodes.hpp"
#include "unicode.hpp"

namespace pickle {
namespace {

// What the walk knows about a stack or memo entry. Containers are not tracked item by item: the
// scan needs to know strings exactly (STACK_GLOBAL operands), and for everything else only whether
// it is plain data, a global, or something produced at load time.
enum class Abstract : std::uint8_t {
  text,         // a str (or a Python 2 str, which loads as str by default): `text` holds it
  data,         // any other plain data: numbers, bytes, containers, None, bools
  global,       // a module attribute: `item` is its ScanItem
  unknown_global,  // a STACK_GLOBAL whose operands were computed at load time
  call_result,  // the result of a call: `item` is the call's ScanItem
  persistent,   // what a persistent id loads as
  extension,    // what an extension code loads as
};

struct AbstractValue {
  Abstract kind = Abstract::data;
  std::size_t item = 0;
  std::string_view text;  // into the input or into Walk::owned_text
};

struct Failure {
  ScanError error;
};

std::string printable(std::string_view raw, std::size_t limit = 120) {
  std::string out;
  for (unsigned char c : raw.substr(0, limit)) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static const char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  if (raw.size() > limit) out += "...";
  return out;
}

// Python's Py_ISSPACE.
bool is_py_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\x0b' || c == '\x0c';
}

enum class DecimalStatus { ok, invalid, overflow };

// PyLong_FromString(s, NULL, 10) followed by PyLong_AsSsize_t, as load_get/load_put use them on the
// NUL-terminated copy of the line: leading and trailing whitespace, a sign, underscores between
// digits, at most 4300 digits.
DecimalStatus parse_python_decimal(std::string_view line, std::int64_t& value) {
  std::size_t nul = line.find('\0');
  if (nul != std::string_view::npos) line = line.substr(0, nul);
  std::size_t i = 0;
  while (i < line.size() && is_py_space(line[i])) ++i;
  bool negative = false;
  if (i < line.size() && (line[i] == '+' || line[i] == '-')) negative = line[i++] == '-';
  std::size_t digits = 0;
  bool overflow = false;
  std::uint64_t magnitude = 0;
  bool previous_digit = false;
  for (; i < line.size(); ++i) {
    char c = line[i];
    if (c >= '0' && c <= '9') {
      ++digits;
      previous_digit = true;
      if (magnitude > (std::uint64_t(1) << 63) / 10) overflow = true;
      magnitude = magnitude * 10 + static_cast<std::uint64_t>(c - '0');
      if (magnitude > (std::uint64_t(1) << 63)) overflow = true;
    } else if (c == '_') {
      if (!previous_digit || i + 1 >= line.size() || line[i + 1] < '0' || line[i + 1] > '9') {
        return DecimalStatus::invalid;
      }
      previous_digit = false;
    } else {
      break;
    }
  }
  if (digits == 0) return DecimalStatus::invalid;
  while (i < line.size() && is_py_space(line[i])) ++i;
  if (i != line.size()) return DecimalStatus::invalid;
  if (digits > 4300) return DecimalStatus::invalid;
  if (overflow || (!negative && magnitude > static_cast<std::uint64_t>(INT64_MAX))) {
    return DecimalStatus::overflow;
  }
  value = negative ? -static_cast<std::int64_t>(magnitude - 1) - 1 : static_cast<std::int64_t>(magnitude);
  if (negative && magnitude == 0) value = 0;
  return DecimalStatus::ok;
}

using detail::append_utf8;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The Walk: one pass over the file, pickle after pickle.
class Walk {
 public:
  explicit Walk(std::string_view data) : data_(data) {}

  ScanReport run();

 private:
  // --- input ------------------------------------------------------------------------------------
  [[noreturn]] void fail(PyExc python_class, std::string message) {
    throw Failure{ScanError{std::move(message), opcode_offset_, opcode_, python_class}};
  }
  [[noreturn]] void truncated() { fail(PyExc::UnpicklingError, "pickle data was truncated"); }

  std::string_view read(std::size_t n) {
    if (n > data_.size() - pos_) truncated();
    note_frame_read(n);
    std::string_view out = data_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  std::uint64_t read_uint(std::size_t n) {
    std::string_view bytes = read(n);
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < n; ++i) {
      value |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
    }
    return value;
  }
  std::int32_t read_int4() { return static_cast<std::int32_t>(static_cast<std::uint32_t>(read_uint(4))); }
  // A line without its '\n'; CPython requires at least `min_length` bytes including the '\n'.
  std::string_view read_line(std::size_t min_length = 2) {
    std::size_t newline = data_.find('\n', pos_);
    if (newline == std::string_view::npos) truncated();
    std::size_t length = newline - pos_ + 1;
    if (length < min_length) truncated();
    note_frame_read(length);
    std::string_view line = data_.substr(pos_, length - 1);
    pos_ = newline + 1;
    return line;
  }
  // A length-prefixed payload; CPython refuses lengths beyond Py_ssize_t.
  std::string_view read_payload(std::uint64_t length, const char* what) {
    if (length > static_cast<std::uint64_t>(INT64_MAX)) {
      fail(PyExc::UnpicklingError, std::string(what) + " exceeds system's maximum size of " +
                                       std::to_string(INT64_MAX) + " bytes");
    }
    return read(static_cast<std::size_t>(std::min<std::uint64_t>(length, SIZE_MAX)));
  }

  // Frames: C _pickle reads straight through frame boundaries; pickle.py refuses. A pickle that
  // depends on the difference was made by hand.
  void note_frame_read(std::size_t n) {
    if (frame_end_ != 0 && pos_ < frame_end_ && pos_ + n > frame_end_ && !straddle_reported_) {
      straddle_reported_ = true;
      anomaly("an opcode straddles the end of its FRAME (pickle.py refuses this, _pickle accepts)",
              Risk::suspicious);
    }
  }

  // --- stack -------------------------------------------------------------------------------------
  [[noreturn]] void underflow() {
    fail(PyExc::UnpicklingError, marks_.empty() ? "unpickling stack underflow" : "unexpected MARK found");
  }
  std::size_t fence() const { return marks_.empty() ? 0 : marks_.back(); }
  AbstractValue pop() {
    if (stack_.size() <= fence()) underflow();
    AbstractValue top = stack_.back();
    stack_.pop_back();
    return top;
  }
  const AbstractValue& top() {
    if (stack_.size() <= fence()) underflow();
    return stack_.back();
  }
  void push(AbstractValue value) { stack_.push_back(value); }
  void push_data() { stack_.push_back(AbstractValue{}); }
  std::size_t marker() {
    if (marks_.empty()) fail(PyExc::UnpicklingError, "could not find MARK");
    std::size_t mark = marks_.back();
    marks_.pop_back();
    return mark;
  }
  // The items from `start` up, which CPython makes into a tuple or list.
  void pop_from(std::size_t start) {
    if (start < fence()) underflow();
    stack_.resize(std::min(start, stack_.size()));
  }

  // --- memo --------------------------------------------------------------------------------------
  void memo_put(std::uint64_t index, const AbstractValue& value) {
    auto [it, inserted] = memo_.insert_or_assign(index, value);
    (void)it;
    if (!inserted && !memo_overwrite_reported_) {
      memo_overwrite_reported_ = true;
      anomaly("memo slot " + std::to_string(index) + " is overwritten (picklers never do this)",
              Risk::suspicious);
    }
  }
  AbstractValue memo_get(std::uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) fail(PyExc::UnpicklingError, "Memo value not found at index " + std::to_string(index));
    return it->second;
  }

  // --- items -------------------------------------------------------------------------------------
  std::size_t add_item(ScanItemKind kind, std::string module, std::string name, std::string detail,
                       Risk risk, std::string reason) {
    auto key = std::make_tuple(kind, module, name, detail);
    auto found = item_index_.find(key);
    if (found != item_index_.end()) {
      ++report_.items[found->second].count;
      return found->second;
    }
    ScanItem item;
    item.kind = kind;
    item.opcode = opcode_ ? std::string(find_opcode(*opcode_)->name) : std::string();
    item.offset = opcode_offset_;
    item.pickle_index = pickle_index_;
    item.module = std::move(module);
    item.name = std::move(name);
    item.detail = std::move(detail);
    item.risk = risk;
    item.reason = std::move(reason);
    report_.items.push_back(std::move(item));
    item_index_.emplace(std::move(key), report_.items.size() - 1);
    return report_.items.size() - 1;
  }
  void anomaly(std::string what, Risk risk) {
    add_item(ScanItemKind::anomaly, "", "", std::move(what), risk, "structure no pickler writes");
  }

  std::size_t reference_global(std::string_view module, std::string_view name) {
    RiskAssessment assessment = assess_global(module, name);
    return add_item(ScanItemKind::global, std::string(module), std::string(name), "", assessment.risk,
                    std::move(assessment.reason));
  }

  // A call on `callable`; returns the value the call leaves on the stack.
  AbstractValue call(const AbstractValue& callable) {
    std::size_t index = 0;
    switch (callable.kind) {
      case Abstract::global: {
        const ScanItem& global = report_.items[callable.item];
        std::string module = global.module, name = global.name, reason = global.reason;
        index = add_item(ScanItemKind::call, std::move(module), std::move(name), "", global.risk,
                         std::move(reason));
        break;
      }
      case Abstract::unknown_global:
        index = add_item(ScanItemKind::call, "", "", "a global named at load time", Risk::dangerous,
                         "the callable's name is computed at load time");
        break;
      case Abstract::call_result: {
        const ScanItem& inner = report_.items[callable.item];
        std::string target = inner.module.empty() ? inner.detail : inner.module + "." + inner.name;
        index = add_item(ScanItemKind::call, "", "", "the result of calling " + target,
                         Risk::dangerous, "calls a value computed at load time");
        break;
      }
      case Abstract::persistent:
        index = add_item(ScanItemKind::call, "", "", "a persistent-id object", Risk::suspicious,
                         "the callable comes from persistent_load");
        break;
      case Abstract::extension:
        index = add_item(ScanItemKind::call, "", "", "an extension-code object", Risk::suspicious,
                         "the callable comes from the extension registry");
        break;
      case Abstract::text:
      case Abstract::data:
        index = add_item(ScanItemKind::call, "", "", "a plain data value", Risk::suspicious,
                         "not callable: Python raises TypeError here");
        break;
    }
    return AbstractValue{Abstract::call_result, index, {}};
  }

  void build(const AbstractValue& target) {
    switch (target.kind) {
      case Abstract::global: {
        const ScanItem& global = report_.items[target.item];
        std::string module = global.module, name = global.name;
        add_item(ScanItemKind::build, std::move(module), std::move(name), "", Risk::dangerous,
                 "BUILD on a module attribute sets attributes on it (monkey-patching)");
        break;
      }
      case Abstract::unknown_global:
        add_item(ScanItemKind::build, "", "", "a global named at load time", Risk::dangerous,
                 "BUILD on a module attribute sets attributes on it (monkey-patching)");
        break;
      case Abstract::call_result: {
        const ScanItem& made_by = report_.items[target.item];
        std::string module = made_by.module, name = made_by.name, detail = made_by.detail,
                    reason = made_by.reason;
        add_item(ScanItemKind::build, std::move(module), std::move(name), std::move(detail),
                 made_by.risk, "state for an object made by this call: " + reason);
        break;
      }
      case Abstract::persistent:
      case Abstract::extension:
        add_item(ScanItemKind::build, "", "",
                 target.kind == Abstract::persistent ? "a persistent-id object" : "an extension-code object",
                 Risk::suspicious, "state for an object the loader supplies");
        break;
      case Abstract::text:
      case Abstract::data:
        break;  // builtin data: no __setstate__ of the pickle's choosing runs
    }
  }

  // --- string decoding ---------------------------------------------------------------------------
  std::string_view own(std::string text) {
    owned_text_.push_back(std::move(text));
    return owned_text_.back();
  }
  // PyBytes_DecodeEscape, as STRING uses it.
  std::string decode_escaped(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size();) {
      char c = s[i++];
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i == s.size()) fail(PyExc::ValueError, "Trailing \\ in string");
      char e = s[i++];
      switch (e) {
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
          int value = e - '0';
          for (int k = 0; k < 2 && i < s.size() && s[i] >= '0' && s[i] <= '7'; ++k) {
            value = value * 8 + (s[i++] - '0');
          }
          out += static_cast<char>(value & 0xFF);
          break;
        }
        case 'x':
          if (i + 1 < s.size() && hex_value(s[i]) >= 0 && hex_value(s[i + 1]) >= 0) {
            out += static_cast<char>(hex_value(s[i]) * 16 + hex_value(s[i + 1]));
            i += 2;
            break;
          }
          fail(PyExc::ValueError, "invalid \\x escape");
        default:
          out += '\\';
          --i;
          break;
      }
    }
    return out;
  }
  // raw-unicode-escape decoding (UNICODE), to UTF-8 with surrogates in their 3-byte form.
  std::string decode_raw_unicode_escape(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size();) {
      unsigned char c = static_cast<unsigned char>(s[i]);
      if (c != '\\') {
        append_utf8(out, c);
        ++i;
        continue;
      }
      std::size_t run = 0;
      while (i < s.size() && s[i] == '\\') {
        ++run;
        ++i;
      }
      out.append(run, '\\');
      if (run % 2 == 0 || i >= s.size() || (s[i] != 'u' && s[i] != 'U')) continue;
      out.pop_back();
      std::size_t count = s[i] == 'u' ? 4 : 8;
      ++i;
      std::uint32_t cp = 0;
      for (std::size_t k = 0; k < count; ++k) {
        if (i >= s.size() || hex_value(s[i]) < 0) {
          fail(PyExc::UnicodeDecodeError, count == 4 ? "truncated \\uXXXX escape" : "truncated \\UXXXXXXXX escape");
        }
        cp = cp * 16 + static_cast<std::uint32_t>(hex_value(s[i++]));
      }
      if (cp > 0x10FFFF) fail(PyExc::UnicodeDecodeError, "\\Uxxxxxxxx out of range");
      append_utf8(out, cp);
    }
    return out;
  }

  // --- the walk ------------------------------------------------------------------------------------
  // One pickle from pos_ to its STOP. Throws Failure.
  void walk_pickle();
  void step(Op op);

  std::string_view data_;
  std::size_t pos_ = 0;
  std::size_t pickle_start_ = 0;
  std::size_t pickle_index_ = 0;
  std::size_t opcode_offset_ = 0;
  std::optional<std::uint8_t> opcode_;
  bool stopped_ = false;
  int protocol_ = 0;
  bool proto_seen_ = false;
  std::size_t frame_end_ = 0;
  bool straddle_reported_ = false;
  bool memo_overwrite_reported_ = false;
  std::vector<AbstractValue> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint64_t, AbstractValue> memo_;
  std::deque<std::string> owned_text_;
  std::map<std::tuple<ScanItemKind, std::string, std::string, std::string>, std::size_t> item_index_;
  ScanReport report_;
};

void Walk::walk_pickle() {
  stack_.clear();
  marks_.clear();
  protocol_ = 0;
  proto_seen_ = false;
  frame_end_ = 0;
  stopped_ = false;
  pickle_start_ = pos_;
  while (!stopped_) {
    opcode_offset_ = pos_;
    opcode_.reset();
    if (pos_ >= data_.size()) fail(PyExc::EOFError, "Ran out of input");
    const auto byte = static_cast<std::uint8_t>(data_[pos_]);
    const OpcodeInfo* info = find_opcode(byte);
    if (!info) {
      if (byte >= 0x20 && byte <= 0x7e && byte != '\'' && byte != '\\') {
        fail(PyExc::UnpicklingError, std::string("invalid load key, '") + static_cast<char>(byte) + "'.");
      }
      static const char hex[] = "0123456789abcdef";
      fail(PyExc::UnpicklingError,
           std::string("invalid load key, '\\x") + hex[byte >> 4] + hex[byte & 15] + "'.");
    }
    opcode_ = byte;
    if (frame_end_ != 0 && pos_ == frame_end_) frame_end_ = 0;
    note_frame_read(1);
    ++pos_;
    step(info->op);
  }
}

void Walk::step(Op op) {
  switch (op) {
    // --- plain data ---
    case Op::INT:
    case Op::LONG:
    case Op::FLOAT:
      read_line();
      push_data();
      break;
    case Op::BININT: read(4); push_data(); break;
    case Op::BININT1: read(1); push_data(); break;
    case Op::BININT2: read(2); push_data(); break;
    case Op::LONG1: read(read_uint(1)); push_data(); break;
    case Op::LONG4: {
      std::int32_t n = read_int4();
      if (n < 0) fail(PyExc::UnpicklingError, "LONG pickle has negative byte count");
      read(static_cast<std::size_t>(n));
      push_data();
      break;
    }
    case Op::BINFLOAT: read(8); push_data(); break;
    case Op::NONE:
    case Op::NEWTRUE:
    case Op::NEWFALSE:
    case Op::EMPTY_LIST:
    case Op::EMPTY_TUPLE:
    case Op::EMPTY_DICT:
    case Op::EMPTY_SET:
    case Op::NEXT_BUFFER:
      push_data();
      break;
    case Op::READONLY_BUFFER: top(); break;
    case Op::BINBYTES: read_payload(read_uint(4), "BINBYTES"); push_data(); break;
    case Op::SHORT_BINBYTES: read(read_uint(1)); push_data(); break;
    case Op::BINBYTES8: read_payload(read_uint(8), "BINBYTES8"); push_data(); break;
    case Op::BYTEARRAY8: read_payload(read_uint(8), "BYTEARRAY8"); push_data(); break;

    // --- text (tracked: it may name a global) ---
    case Op::STRING: {
      std::string_view line = read_line(1);
      if (line.size() < 2 || line.front() != line.back() || (line.front() != '\'' && line.front() != '"')) {
        fail(PyExc::UnpicklingError, "the STRING opcode argument must be quoted");
      }
      push(AbstractValue{Abstract::text, 0, own(decode_escaped(line.substr(1, line.size() - 2)))});
      break;
    }
    case Op::BINSTRING: {
      std::int32_t n = read_int4();
      if (n < 0) fail(PyExc::UnpicklingError, "BINSTRING pickle has negative byte count");
      push(AbstractValue{Abstract::text, 0, read(static_cast<std::size_t>(n))});
      break;
    }
    case Op::SHORT_BINSTRING:
    case Op::SHORT_BINUNICODE:
      push(AbstractValue{Abstract::text, 0, read(read_uint(1))});
      break;
    case Op::BINUNICODE:
      push(AbstractValue{Abstract::text, 0, read_payload(read_uint(4), "BINUNICODE")});
      break;
    case Op::BINUNICODE8:
      push(AbstractValue{Abstract::text, 0, read_payload(read_uint(8), "BINUNICODE8")});
      break;
    case Op::UNICODE: {
      std::string_view line = read_line(1);
      push(AbstractValue{Abstract::text, 0, own(decode_raw_unicode_escape(line))});
      break;
    }

    // --- containers ---
    case Op::APPEND:
    case Op::SETITEM: {
      const std::size_t operands = op == Op::APPEND ? 1 : 2;
      if (stack_.size() < operands + 1 || stack_.size() - operands <= fence()) underflow();
      stack_.resize(stack_.size() - operands);
      break;
    }
    case Op::APPENDS:
    case Op::SETITEMS:
    case Op::ADDITEMS: {
      std::size_t mark = marker();
      if (mark > stack_.size() || mark <= fence()) underflow();
      if (op == Op::SETITEMS && (stack_.size() - mark) % 2 != 0) {
        fail(PyExc::UnpicklingError, "odd number of items for SETITEMS");
      }
      stack_.resize(mark);
      break;
    }
    case Op::LIST:
    case Op::TUPLE:
    case Op::FROZENSET: {
      std::size_t mark = marker();
      pop_from(mark);
      push_data();
      break;
    }
    case Op::DICT: {
      std::size_t mark = marker();
      if ((stack_.size() - mark) % 2 != 0) fail(PyExc::UnpicklingError, "odd number of items for DICT");
      pop_from(mark);
      push_data();
      break;
    }
    case Op::TUPLE1:
    case Op::TUPLE2:
    case Op::TUPLE3: {
      const std::size_t n = op == Op::TUPLE1 ? 1 : op == Op::TUPLE2 ? 2 : 3;
      if (stack_.size() < n) underflow();
      pop_from(stack_.size() - n);
      push_data();
      break;
    }

    // --- stack manipulation ---
    case Op::POP:
      if (!marks_.empty() && marks_.back() == stack_.size()) {
        marks_.pop_back();
      } else {
        pop();
      }
      break;
    case Op::DUP: push(AbstractValue(top())); break;
    case Op::MARK: marks_.push_back(stack_.size()); break;
    case Op::POP_MARK: {
      std::size_t mark = marker();
      if (mark < stack_.size()) stack_.resize(mark);
      break;
    }

    // --- memo ---
    case Op::GET: {
      std::int64_t index = 0;
      DecimalStatus status = parse_python_decimal(read_line(), index);
      if (status == DecimalStatus::invalid) fail(PyExc::ValueError, "invalid literal for int() with base 10");
      if (status == DecimalStatus::overflow) fail(PyExc::OverflowError, "Python int too large to convert to C ssize_t");
      if (index < 0) fail(PyExc::UnpicklingError, "Memo value not found at index " + std::to_string(index));
      push(memo_get(static_cast<std::uint64_t>(index)));
      break;
    }
    case Op::BINGET: push(memo_get(read_uint(1))); break;
    case Op::LONG_BINGET: push(memo_get(read_uint(4))); break;
    case Op::PUT: {
      AbstractValue value = top();
      std::int64_t index = 0;
      DecimalStatus status = parse_python_decimal(read_line(), index);
      if (status == DecimalStatus::invalid) fail(PyExc::ValueError, "invalid literal for int() with base 10");
      if (status == DecimalStatus::overflow) fail(PyExc::OverflowError, "Python int too large to convert to C ssize_t");
      if (index < 0) fail(PyExc::ValueError, "negative PUT argument");
      memo_put(static_cast<std::uint64_t>(index), value);
      break;
    }
    case Op::BINPUT: {
      AbstractValue value = top();
      memo_put(read_uint(1), value);
      break;
    }
    case Op::LONG_BINPUT: {
      AbstractValue value = top();
      memo_put(read_uint(4), value);
      break;
    }
    case Op::MEMOIZE: {
      AbstractValue value = top();
      memo_put(memo_.size(), value);
      break;
    }

    // --- references ---
    case Op::GLOBAL: {
      std::string_view module = read_line();
      std::string_view name = read_line();
      push(AbstractValue{Abstract::global, reference_global(module, name), {}});
      break;
    }
    case Op::STACK_GLOBAL: {
      AbstractValue name = pop();
      AbstractValue module = pop();
      auto is_known_text = [](const AbstractValue& v) { return v.kind == Abstract::text; };
      // A module attribute may itself be a str (os.name), so only plain non-str data is an error.
      auto is_plain_data = [](const AbstractValue& v) { return v.kind == Abstract::data; };
      if (is_plain_data(name) || is_plain_data(module)) {
        fail(PyExc::UnpicklingError, "STACK_GLOBAL requires str");
      }
      if (is_known_text(name) && is_known_text(module)) {
        push(AbstractValue{Abstract::global, reference_global(module.text, name.text), {}});
      } else {
        std::size_t index = add_item(ScanItemKind::global, "", "",
                                     "STACK_GLOBAL with operands computed at load time",
                                     Risk::dangerous, "the global's name cannot be known before loading");
        push(AbstractValue{Abstract::unknown_global, index, {}});
      }
      break;
    }
    case Op::INST: {
      std::size_t mark = marker();
      std::string_view module = read_line();
      std::string_view name = read_line();
      pop_from(mark);
      AbstractValue cls{Abstract::global, reference_global(module, name), {}};
      push(call(cls));
      break;
    }
    case Op::OBJ: {
      std::size_t mark = marker();
      if (stack_.size() < mark + 1) underflow();
      AbstractValue cls = stack_[mark];
      pop_from(mark + 1);
      pop();
      push(call(cls));
      break;
    }
    case Op::REDUCE: {
      pop();  // arguments
      AbstractValue callable = pop();
      push(call(callable));
      break;
    }
    case Op::NEWOBJ: {
      pop();
      AbstractValue cls = pop();
      push(call(cls));
      break;
    }
    case Op::NEWOBJ_EX: {
      pop();
      pop();
      AbstractValue cls = pop();
      push(call(cls));
      break;
    }
    case Op::BUILD: {
      pop();  // state
      build(top());
      break;
    }
    case Op::PERSID: {
      std::string_view pid = read_line(1);
      add_item(ScanItemKind::persistent_id, "", "", printable(pid), Risk::suspicious,
               "loads whatever the loader's persistent_load returns");
      push(AbstractValue{Abstract::persistent, 0, {}});
      break;
    }
    case Op::BINPERSID: {
      AbstractValue pid = pop();
      std::string detail = pid.kind == Abstract::text ? printable(pid.text) : "a non-text persistent id";
      add_item(ScanItemKind::persistent_id, "", "", std::move(detail), Risk::suspicious,
               "loads whatever the loader's persistent_load returns");
      push(AbstractValue{Abstract::persistent, 0, {}});
      break;
    }
    case Op::EXT1:
    case Op::EXT2:
    case Op::EXT4: {
      std::uint64_t code = read_uint(op == Op::EXT1 ? 1 : op == Op::EXT2 ? 2 : 4);
      if (code == 0) fail(PyExc::ValueError, "EXT specifies code <= 0");
      add_item(ScanItemKind::extension, "", "", "code " + std::to_string(code), Risk::suspicious,
               "resolved through the copyreg extension registry of the loading process");
      push(AbstractValue{Abstract::extension, 0, {}});
      break;
    }

    // --- framing and control ---
    case Op::PROTO: {
      std::uint64_t protocol = read_uint(1);
      if (protocol > 5) {
        fail(PyExc::ValueError, "unsupported pickle protocol: " + std::to_string(protocol));
      }
      if (proto_seen_) {
        anomaly("duplicate PROTO", Risk::suspicious);
      } else if (opcode_offset_ != pickle_start_) {
        anomaly("PROTO not at the start of the pickle", Risk::suspicious);
      }
      proto_seen_ = true;
      protocol_ = static_cast<int>(protocol);
      break;
    }
    case Op::FRAME: {
      std::uint64_t length = read_uint(8);
      if (length > static_cast<std::uint64_t>(INT64_MAX)) {
        fail(PyExc::OverflowError, "FRAME length exceeds system's maximum of " + std::to_string(INT64_MAX) + " bytes");
      }
      if (length > data_.size() - pos_) truncated();
      if (frame_end_ != 0 && pos_ < frame_end_) {
        anomaly("a FRAME starts inside the previous frame (pickle.py refuses this, _pickle accepts)",
                Risk::suspicious);
      }
      frame_end_ = length == 0 ? 0 : pos_ + static_cast<std::size_t>(length);
      straddle_reported_ = false;
      break;
    }
    case Op::STOP: {
      pop();
      if (stack_.size() > 0 || !marks_.empty()) {
        anomaly("values left on the stack at STOP", Risk::suspicious);
      }
      stopped_ = true;
      break;
    }
  }
}

ScanReport Walk::run() {
  report_.size = data_.size();
  try {
    walk_pickle();
    ++report_.pickles;
  } catch (const Failure& failure) {
    report_.error = failure.error;
  }
  // What follows the first STOP: more pickles (Unpickler.load() would read them, with the memo
  // carried over), or bytes pickle.loads silently ignores. Either way, report what it refers to.
  while (!report_.error && pos_ < data_.size()) {
    const std::size_t start = pos_;
    ++pickle_index_;
    try {
      walk_pickle();
      ++report_.pickles;
      opcode_offset_ = start;
      opcode_.reset();
      anomaly("more pickles follow the first STOP (Unpickler.load() reads them, memo carried over)",
              Risk::suspicious);
    } catch (const Failure& failure) {
      opcode_offset_ = start;
      opcode_.reset();
      anomaly(std::to_string(data_.size() - start) + " bytes after STOP (not a complete pickle: " +
                  failure.error.message + ")",
              Risk::suspicious);
      break;
    }
  }
  for (const ScanItem& item : report_.items) report_.risk = std::max(report_.risk, item.risk);
  return std::move(report_);
}

// --- formatting ------------------------------------------------------------------------------------

void append_json_string(std::string& out, std::string_view text) {
  static const char hex[] = "0123456789abcdef";
  out += '"';
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\u00";
      out += hex[c >> 4];
      out += hex[c & 15];
      ++i;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
    } else {
      // Copy a well-formed UTF-8 sequence; escape a stray byte as the code point of its value.
      std::size_t length = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
      bool valid = length != 0 && c < 0xF5 && i + length <= text.size();
      for (std::size_t k = 1; valid && k < length; ++k) {
        valid = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
      }
      if (valid && length == 3) {
        const auto c1 = static_cast<unsigned char>(text[i + 1]);
        valid = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);
      }
      if (valid && length == 4) {
        const auto c1 = static_cast<unsigned char>(text[i + 1]);
        valid = !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
      }
      if (valid) {
        out.append(text.substr(i, length));
        i += length;
      } else {
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 15];
        ++i;
      }
    }
  }
  out += '"';
}

std::string target_of(const ScanItem& item) {
  if (!item.module.empty() || !item.name.empty()) return item.module + "." + item.name;
  return item.detail;
}

}  // namespace

std::string_view scan_item_kind_name(ScanItemKind kind) noexcept {
  switch (kind) {
    case ScanItemKind::global: return "global";
    case ScanItemKind::call: return "call";
    case ScanItemKind::build: return "build";
    case ScanItemKind::persistent_id: return "persistent_id";
    case ScanItemKind::extension: return "extension";
    case ScanItemKind::anomaly: return "anomaly";
  }
  return "anomaly";
}

ScanReport scan(std::string_view data) { return Walk(data).run(); }

std::string_view scan_verdict(const ScanReport& report) noexcept {
  if (report.risk == Risk::dangerous) return "dangerous";
  if (report.malformed()) return "malformed";
  if (report.risk == Risk::suspicious) return "suspicious";
  return "clean";
}

int scan_exit_code(const ScanReport& report) noexcept {
  if (report.risk == Risk::dangerous) return 3;
  if (report.malformed()) return 1;
  return 0;
}

std::string format_scan_text(const ScanReport& report, std::string_view source) {
  std::string out;
  if (!source.empty()) {
    out += printable(source, 4096);
    out += ": ";
  }
  out += scan_verdict(report);
  out += " (" + std::to_string(report.items.size()) + (report.items.size() == 1 ? " item, " : " items, ") +
         std::to_string(report.pickles) + (report.pickles == 1 ? " pickle, " : " pickles, ") +
         std::to_string(report.size) + (report.size == 1 ? " byte)\n" : " bytes)\n");
  for (const ScanItem& item : report.items) {
    std::string line = "  ";
    auto column = [&line](std::string_view text, std::size_t width) {
      line += text;
      if (text.size() < width) line.append(width - text.size(), ' ');
      line += ' ';
    };
    column(risk_name(item.risk), 10);
    column(scan_item_kind_name(item.kind), 13);
    column(printable(target_of(item)), 32);
    std::string where = (item.opcode.empty() ? std::string("at ") : item.opcode + " at ") +
                        std::to_string(item.offset);
    if (item.count > 1) where += " (x" + std::to_string(item.count) + ")";
    column(where, 24);
    line += item.reason;
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  if (report.error) {
    out += "  malformed: " + std::string(py_exc_name(report.error->python_class)) + ": " +
           printable(report.error->message, 400) + " at offset " + std::to_string(report.error->offset) + "\n";
  }
  return out;
}

std::string format_scan_json(const ScanReport& report, std::string_view source) {
  std::string out = "{\"source\":";
  append_json_string(out, source);
  out += ",\"size\":" + std::to_string(report.size);
  out += ",\"pickles\":" + std::to_string(report.pickles);
  out += ",\"verdict\":";
  append_json_string(out, scan_verdict(report));
  out += ",\"risk\":";
  append_json_string(out, risk_name(report.risk));
  out += ",\"exit_code\":" + std::to_string(scan_exit_code(report));
  out += ",\"error\":";
  if (report.error) {
    out += "{\"message\":";
    append_json_string(out, report.error->message);
    out += ",\"offset\":" + std::to_string(report.error->offset);
    out += ",\"opcode\":";
    const OpcodeInfo* info = report.error->opcode ? find_opcode(*report.error->opcode) : nullptr;
    if (info) {
      append_json_string(out, info->name);
    } else {
      out += "null";
    }
    out += ",\"python_class\":";
    append_json_string(out, py_exc_name(report.error->python_class));
    out += "}";
  } else {
    out += "null";
  }
  out += ",\"items\":[";
  bool first = true;
  for (const ScanItem& item : report.items) {
    if (!first) out += ",";
    first = false;
    out += "{\"kind\":";
    append_json_string(out, scan_item_kind_name(item.kind));
    out += ",\"opcode\":";
    append_json_string(out, item.opcode);
    out += ",\"offset\":" + std::to_string(item.offset);
    out += ",\"pickle\":" + std::to_string(item.pickle_index);
    out += ",\"count\":" + std::to_string(item.count);
    out += ",\"module\":";
    append_json_string(out, item.module);
    out += ",\"name\":";
    append_json_string(out, item.name);
    out += ",\"detail\":";
    append_json_string(out, item.detail);
    out += ",\"risk\":";
    append_json_string(out, risk_name(item.risk));
    out += ",\"reason\":";
    append_json_string(out, item.reason);
    out += "}";
  }
  out += "]}\n";
  return out;
}

}  // namespace pickle
