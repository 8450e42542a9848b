// Python's repr() for pickle::Value: the scalar texts, the set iteration order CPython would show,
// and an iterative walk over containers and objects (see pickle/repr.hpp for the object form).
#include "pickle/repr.hpp"

#include <unicode/uchar.h>

#include <charconv>
#include <deque>
#include <cmath>
#include <cstring>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "repr_text.hpp"
#include "set_order.hpp"
#include "types_repr.hpp"
#include "unicode.hpp"
#include "value_impl.hpp"

namespace pickle {
namespace detail {

namespace {
constexpr char hex_digits[] = "0123456789abcdef";

void append_hex(std::string& out, std::uint32_t value, int digits) {
  for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4) out += hex_digits[(value >> shift) & 0xF];
}

void append_escaped_code_point(std::string& out, char32_t cp) {
  if (cp <= 0xFF) {
    out += "\\x";
    append_hex(out, cp, 2);
  } else if (cp <= 0xFFFF) {
    out += "\\u";
    append_hex(out, cp, 4);
  } else {
    out += "\\U";
    append_hex(out, cp, 8);
  }
}
}  // namespace

bool python_printable(char32_t cp) noexcept {
  if (cp < 0x80) return cp >= 0x20 && cp < 0x7F;
  switch (u_charType(static_cast<UChar32>(cp))) {
    case U_CONTROL_CHAR:
    case U_FORMAT_CHAR:
    case U_SURROGATE:
    case U_PRIVATE_USE_CHAR:
    case U_UNASSIGNED:
    case U_LINE_SEPARATOR:
    case U_PARAGRAPH_SEPARATOR:
    case U_SPACE_SEPARATOR:
      return false;
    default:
      break;
  }
  // ICU knows a newer Unicode than Python 3.11 (Unicode 14.0): what was assigned later is still
  // unassigned (Cn, not printable) there.
  UVersionInfo age;
  u_charAge(static_cast<UChar32>(cp), age);
  return age[0] < 14 || (age[0] == 14 && age[1] == 0);
}

void append_str_repr(std::string& out, std::string_view utf8) {
  // Python picks ' unless the text has ' and no ".
  const bool has_single = utf8.find('\'') != std::string_view::npos;
  const bool has_double = utf8.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  out += quote;
  std::size_t pos = 0;
  while (pos < utf8.size()) {
    const unsigned char byte = static_cast<unsigned char>(utf8[pos]);
    if (byte < 0x80) {
      ++pos;
      if (byte == static_cast<unsigned char>(quote) || byte == '\\') {
        out += '\\';
        out += static_cast<char>(byte);
      } else if (byte == '\t') {
        out += "\\t";
      } else if (byte == '\n') {
        out += "\\n";
      } else if (byte == '\r') {
        out += "\\r";
      } else if (byte < 0x20 || byte == 0x7F) {
        out += "\\x";
        append_hex(out, byte, 2);
      } else {
        out += static_cast<char>(byte);
      }
      continue;
    }
    const std::size_t start = pos;
    const char32_t cp = next_code_point(utf8, pos);
    if (python_printable(cp)) {
      out.append(utf8.substr(start, pos - start));
    } else {
      append_escaped_code_point(out, cp);
    }
  }
  out += quote;
}

namespace {
void append_bytes_literal(std::string& out, std::string_view data, bool always_escape_single) {
  const bool has_single = data.find('\'') != std::string_view::npos;
  const bool has_double = data.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  out += 'b';
  out += quote;
  for (const char c : data) {
    const unsigned char byte = static_cast<unsigned char>(c);
    if (byte == static_cast<unsigned char>(quote) || byte == '\\' ||
        (always_escape_single && byte == '\'')) {
      out += '\\';
      out += c;
    } else if (byte == '\t') {
      out += "\\t";
    } else if (byte == '\n') {
      out += "\\n";
    } else if (byte == '\r') {
      out += "\\r";
    } else if (byte < 0x20 || byte >= 0x7F) {
      out += "\\x";
      append_hex(out, byte, 2);
    } else {
      out += c;
    }
  }
  out += quote;
}

}  // namespace

void append_bytes_repr(std::string& out, std::string_view data) { append_bytes_literal(out, data, false); }

// CPython's bytearray repr escapes ' even inside "…".
void append_bytearray_repr(std::string& out, std::string_view data) {
  out += "bytearray(";
  append_bytes_literal(out, data, true);
  out += ')';
}

void append_float_repr(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "nan";
    return;
  }
  if (std::isinf(value)) {
    out += value > 0 ? "inf" : "-inf";
    return;
  }
  // The shortest digits that round-trip, then Python's float_repr_style 'r' layout.
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::scientific);
  std::string_view text(buffer, static_cast<std::size_t>(result.ptr - buffer));
  if (!text.empty() && text.front() == '-') {
    out += '-';
    text.remove_prefix(1);
  }
  const std::size_t e = text.find('e');
  std::string digits;
  for (const char c : text.substr(0, e)) {
    if (c != '.') digits += c;
  }
  int exponent = 0;
  std::from_chars(text.data() + e + 1 + (text[e + 1] == '+' ? 1 : 0), text.data() + text.size(),
                  exponent);
  const int point = exponent + 1;  // digits before the decimal point
  const int count = static_cast<int>(digits.size());
  if (point > -4 && point <= 16) {
    if (point <= 0) {
      out += "0.";
      out.append(static_cast<std::size_t>(-point), '0');
      out += digits;
    } else if (point >= count) {
      out += digits;
      out.append(static_cast<std::size_t>(point - count), '0');
      out += ".0";
    } else {
      out.append(digits, 0, static_cast<std::size_t>(point));
      out += '.';
      out.append(digits, static_cast<std::size_t>(point));
    }
    return;
  }
  out += digits[0];
  if (count > 1) {
    out += '.';
    out.append(digits, 1);
  }
  out += 'e';
  out += exponent < 0 ? '-' : '+';
  const int magnitude = exponent < 0 ? -exponent : exponent;
  if (magnitude < 10) out += '0';
  out += std::to_string(magnitude);
}

void append_int_repr(std::string& out, std::int64_t value) {
  char buffer[24];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  out.append(buffer, result.ptr);
}

void append_int_repr(std::string& out, const BigInt& value) { out += value.str(); }

std::string escape_non_ascii(std::string_view utf8) {
  std::string out;
  out.reserve(utf8.size());
  std::size_t pos = 0;
  while (pos < utf8.size()) {
    if (static_cast<unsigned char>(utf8[pos]) < 0x80) {
      out += utf8[pos++];
      continue;
    }
    append_escaped_code_point(out, next_code_point(utf8, pos));
  }
  return out;
}

}  // namespace detail

namespace {

using detail::DictNode;
using detail::FixedHashes;
using detail::Node;
using detail::ObjectNode;
using detail::SeqNode;
using detail::Slot;
using detail::StringNode;
using detail::Tag;

bool is_dotted_identifier(std::string_view text) {
  if (text.empty()) return false;
  bool segment_start = true;
  for (const char c : text) {
    if (c == '.') {
      if (segment_start) return false;
      segment_start = true;
      continue;
    }
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (!letter && !(digit && !segment_start)) return false;
    segment_start = false;
  }
  return !segment_start;
}

std::string_view string_of(Slot s) {
  const auto& node = detail::node<StringNode>(s);
  return {node.data, node.size};
}

// One step of the object form: literal text or a value to print.
struct Piece {
  std::string_view text;
  Slot slot;
  bool is_text;
};

class ReprWriter {
 public:
  ReprWriter(std::string& out, std::size_t max_size, detail::Heap* heap = nullptr,
             bool typed_objects = false)
      : out_(out), max_size_(max_size), heap_(heap), typed_objects_(typed_objects) {}

  void run(Slot root) {
    // A shared sub-object prints in full at every reference, as in Python, so a small pickle can
    // have an exponentially long repr: the caller bounds it.
    enter(root);
    check_size(0);
    while (!frames_.empty()) {
      step();
      check_size(0);
    }
  }

 private:
  enum class FrameKind : std::uint8_t { sequence, dict, set, pieces };
  struct Frame {
    Frame(FrameKind frame_kind, Slot frame_container) : kind(frame_kind), container(frame_container) {}
    FrameKind kind;
    Slot container;
    std::size_t index = 0;
    std::size_t text_start = 0;  // where the container's text begins in out_
    std::size_t cuts = 0;        // cuts_ when it began
    // A set's iteration order and an object's pieces live in orders_ / piece_lists_, stacks that
    // grow and shrink with the frames (keeping Frame small and trivially movable).
  };

  // A container printed in full with no marker inside it has no cycle below it, so its text is the
  // same wherever it is referenced again: later references copy the text instead of walking the
  // graph again. A pickle of n doubly shared tuples then prints at the speed of memcpy until it
  // reaches max_size, instead of in 2**n steps.
  bool copy_printed(Slot s) {
    const auto found = printed_.find(s.p);
    if (found == printed_.end()) return false;
    const auto [start, length] = found->second;
    check_size(length);
    const std::size_t end = out_.size();
    out_.resize(end + length);
    std::memcpy(out_.data() + end, out_.data() + start, length);
    return true;
  }

  void check_size(std::size_t more) const {
    if (more > max_size_ || out_.size() > max_size_ - more) {
      throw Error(PyExc::MemoryError, "repr longer than " + std::to_string(max_size_) + " bytes");
    }
  }

  void push_frame(FrameKind kind, Slot s) {
    frames_.push_back({kind, s});
    frames_.back().text_start = begun_at_;
    frames_.back().cuts = cuts_;
  }

  void enter(Slot s) {
    if (s.is_node() && s.tag != Tag::str && s.tag != Tag::bytes && s.tag != Tag::bytearray &&
        copy_printed(s)) {
      return;
    }
    switch (s.tag) {
      case Tag::none:
        out_ += "None";
        return;
      case Tag::boolean:
        out_ += s.b ? "True" : "False";
        return;
      case Tag::small_int:
        detail::append_int_repr(out_, s.i);
        return;
      case Tag::floating:
        detail::append_float_repr(out_, s.f);
        return;
      case Tag::big_int: {
        const std::size_t start = out_.size();
        append_big_int(detail::node<detail::BigIntNode>(s));
        printed_.emplace(s.p, std::pair{start, out_.size() - start});
        return;
      }
      case Tag::str:
        detail::append_str_repr(out_, string_of(s));
        return;
      case Tag::bytes:
        detail::append_bytes_repr(out_, string_of(s));
        return;
      case Tag::bytearray:
        detail::append_bytearray_repr(out_, string_of(s));
        return;
      case Tag::global:
        append_global(s);
        return;
      case Tag::buffer: {
        const auto& buffer = detail::node<detail::BufferNode>(s);
        out_ += "PickleBuffer(";
        detail::append_bytes_repr(out_, {buffer.data, buffer.size});
        out_ += buffer.readonly ? ", readonly=True)" : ")";
        return;
      }
      case Tag::tuple:
      case Tag::list:
        enter_sequence(s);
        return;
      case Tag::dict:
        if (detail::node<DictNode>(s).size == 0) {
          out_ += "{}";
          return;
        }
        if (!begin(s, "{...}")) return;
        out_ += '{';
        push_frame(FrameKind::dict, s);
        return;
      case Tag::set:
      case Tag::frozenset:
        enter_set(s);
        return;
      case Tag::object:
        enter_object(s);
        return;
    }
  }

  // Decimal conversion is quadratic; past 2**131072 (about 39,500 digits, where CPython refuses
  // repr() anyway: its limit is 4300 digits) the exact value is printed as a hex literal instead.
  void append_big_int(const detail::BigIntNode& node) {
    constexpr std::uint32_t decimal_limb_limit = 131072 / 64;
    if (node.limb_count <= decimal_limb_limit) {
      detail::append_int_repr(out_, detail::to_bigint(node));
      return;
    }
    if (node.negative) out_ += '-';
    out_ += "0x";
    bool leading = true;
    for (std::uint32_t i = node.limb_count; i-- > 0;) {
      for (int shift = 60; shift >= 0; shift -= 4) {
        const unsigned digit = static_cast<unsigned>((node.limbs[i] >> shift) & 0xF);
        if (leading && digit == 0) continue;
        leading = false;
        out_ += "0123456789abcdef"[digit];
      }
    }
  }

  // Python's reprlib guard: a container already being printed further up prints as a marker.
  bool begin(Slot s, std::string_view marker) {
    if (!in_progress_.insert(s.p).second) {
      out_ += marker;
      ++cuts_;
      return false;
    }
    begun_at_ = out_.size();
    return true;
  }

  void finish(std::string_view closing) {
    out_ += closing;
    const Frame& frame = frames_.back();
    in_progress_.erase(frame.container.p);
    if (frame.cuts == cuts_) {
      printed_.emplace(frame.container.p, std::pair{frame.text_start, out_.size() - frame.text_start});
    }
    frames_.pop_back();
  }

  void enter_sequence(Slot s) {
    const bool tuple = s.tag == Tag::tuple;
    if (detail::node<SeqNode>(s).size == 0) {
      out_ += tuple ? "()" : "[]";
      return;
    }
    if (!begin(s, tuple ? "(...)" : "[...]")) return;
    out_ += tuple ? '(' : '[';
    push_frame(FrameKind::sequence, s);
  }

  void enter_set(Slot s) {
    const bool frozen = s.tag == Tag::frozenset;
    const auto& set = detail::node<DictNode>(s);
    if (set.size == 0) {
      out_ += frozen ? "frozenset()" : "set()";
      return;
    }
    if (!begin(s, frozen ? "frozenset(...)" : "set(...)")) return;
    out_ += frozen ? "frozenset({" : "{";
    if (auto order = hasher_.set_order(set)) {
      orders_.push_back(std::move(*order));
    } else {
      std::vector<Slot> insertion;
      insertion.reserve(set.size);
      for (std::size_t i = 0; i < set.size; ++i) insertion.push_back(detail::load(set.entries[i].key));
      orders_.push_back(std::move(insertion));
    }
    push_frame(FrameKind::set, s);
  }

  void append_global(Slot s) {
    const auto& global = detail::node<detail::GlobalNode>(s);
    const bool texts = global.module.tag == Tag::str && global.name.tag == Tag::str;
    if (texts && is_dotted_identifier(string_of(global.module)) &&
        is_dotted_identifier(string_of(global.name))) {
      out_ += string_of(global.module);
      out_ += '.';
      out_ += string_of(global.name);
      return;
    }
    // Names that are not identifiers would read ambiguously when joined by a dot.
    out_ += "global(";
    ReprWriter(out_, max_size_).run(global.module);
    out_ += ", ";
    ReprWriter(out_, max_size_).run(global.name);
    out_ += ')';
  }

  // Objects pickle/types.hpp recognises print as Python prints them; their parts (dict items, …)
  // are values of this same graph, printed by this walk.
  bool enter_typed(Slot s) {
    auto typed = detail::typed_repr(Value(s, heap_));
    if (!typed) return false;
    if (!begin(s, "...")) return true;
    std::vector<Piece> p;
    for (auto& piece : *typed) {
      if (piece.value) {
        p.push_back({{}, piece.value->slot(), false});
        typed_values_.push_back(std::move(*piece.value));
      } else {
        typed_texts_.push_back(std::move(piece.text));
        p.push_back({typed_texts_.back(), Slot(), true});
      }
    }
    piece_lists_.push_back(std::move(p));
    push_frame(FrameKind::pieces, s);
    return true;
  }

  void enter_object(Slot s) {
    if (typed_objects_ && enter_typed(s)) return;
    if (!begin(s, "<...>")) return;
    const auto& object = detail::node<ObjectNode>(s);
    std::vector<Piece> p;
    auto text = [&p](std::string_view t) { p.push_back({t, Slot(), true}); };
    auto value = [&p](Slot v) { p.push_back({{}, v, false}); };
    auto arguments = [&](Slot args, bool leading_comma) {
      if (args.tag == Tag::tuple) {
        const auto& tuple = detail::node<SeqNode>(args);
        for (std::size_t i = 0; i < tuple.size; ++i) {
          if (i > 0 || leading_comma) text(", ");
          value(detail::load(tuple.items[i]));
        }
      } else {
        text(leading_comma ? ", *" : "*");
        value(args);
      }
    };
    const bool has_ops = object.op_count > 0;
    if (has_ops) text("<");
    switch (object.form) {
      case ObjectForm::reduce:
      case ObjectForm::inst:
      case ObjectForm::obj:
        value(object.callable);
        text("(");
        arguments(object.args, false);
        text(")");
        break;
      case ObjectForm::newobj:
      case ObjectForm::newobj_ex:
        value(object.callable);
        text(".__new__(");
        value(object.callable);
        arguments(object.args, true);
        if (object.form == ObjectForm::newobj_ex &&
            !(object.kwargs.tag == Tag::dict && detail::node<DictNode>(object.kwargs).size == 0)) {
          text(", **");
          value(object.kwargs);
        }
        text(")");
        break;
      case ObjectForm::persid:
      case ObjectForm::binpersid:
        text("persistent_load(");
        value(object.args);
        text(")");
        break;
      case ObjectForm::ext: {
        text("ext(");
        Slot code;
        code.tag = Tag::small_int;
        code.i = object.ext_code;
        value(code);
        text(")");
        break;
      }
    }
    for (std::size_t i = 0; i < object.op_count; ++i) {
      const auto& op = object.ops[i];
      switch (op.op) {
        case ObjectOp::build:
          text(" .__setstate__(");
          value(op.first);
          text(")");
          break;
        case ObjectOp::append:
          text(" .append(");
          value(op.first);
          text(")");
          break;
        case ObjectOp::setitem:
          text(" [");
          value(op.first);
          text("]=");
          value(op.second);
          break;
        case ObjectOp::additem:
          text(" .add(");
          value(op.first);
          text(")");
          break;
        case ObjectOp::state_setter:
          text(" ");
          value(op.first);
          text("(self, ");
          value(op.second);
          text(")");
          break;
      }
    }
    if (has_ops) text(">");
    piece_lists_.push_back(std::move(p));
    push_frame(FrameKind::pieces, s);
  }

  void step() {
    Frame& f = frames_.back();
    switch (f.kind) {
      case FrameKind::sequence: {
        const auto& seq = detail::node<SeqNode>(f.container);
        if (f.index < seq.size) {
          if (f.index > 0) out_ += ", ";
          const Slot item = detail::load(seq.items[f.index++]);
          enter(item);
          return;
        }
        if (f.container.tag == Tag::list) {
          finish("]");
        } else {
          finish(seq.size == 1 ? ",)" : ")");
        }
        return;
      }
      case FrameKind::dict: {
        const auto& dict = detail::node<DictNode>(f.container);
        const std::size_t entry = f.index / 2;
        if (entry < dict.size) {
          const bool key = f.index % 2 == 0;
          ++f.index;
          if (key) {
            if (entry > 0) out_ += ", ";
            enter(detail::load(dict.entries[entry].key));
          } else {
            out_ += ": ";
            enter(detail::load(dict.entries[entry].value));
          }
          return;
        }
        finish("}");
        return;
      }
      case FrameKind::set: {
        const std::vector<Slot>& order = orders_.back();
        if (f.index < order.size()) {
          if (f.index > 0) out_ += ", ";
          const Slot item = order[f.index++];
          enter(item);
          return;
        }
        orders_.pop_back();
        finish(f.container.tag == Tag::frozenset ? "})" : "}");
        return;
      }
      case FrameKind::pieces: {
        const std::vector<Piece>& pieces = piece_lists_.back();
        if (f.index < pieces.size()) {
          const Piece piece = pieces[f.index++];
          if (piece.is_text) {
            out_ += piece.text;
          } else {
            enter(piece.slot);
          }
          return;
        }
        piece_lists_.pop_back();
        finish("");
        return;
      }
    }
  }

  std::string& out_;
  std::size_t max_size_;
  std::vector<Frame> frames_;
  std::vector<std::vector<Slot>> orders_;
  std::vector<std::vector<Piece>> piece_lists_;
  std::unordered_set<const Node*> in_progress_;
  std::unordered_map<const void*, std::pair<std::size_t, std::size_t>> printed_;  // start, length
  std::size_t cuts_ = 0;      // markers printed so far
  std::size_t begun_at_ = 0;  // where the container that begin() accepted last starts
  FixedHashes hasher_;
  detail::Heap* heap_;
  bool typed_objects_;
  std::deque<std::string> typed_texts_;  // a deque: the pieces keep views of these
  std::vector<Value> typed_values_;
};

// A lower bound of the repr's length, in one pass over the graph, so that a repr that cannot fit
// in max_size fails at once instead of after printing max_size bytes. Python prints a shared
// sub-object in full at every reference, so sizes add up along every path: a node below which there
// is no cycle prints the same text wherever it is referenced, and its exact lower bound is reused;
// a node on or above a cycle may print cut short elsewhere (as [...]), so elsewhere it counts as
// the shortest marker.
class ReprSizeBound {
 public:
  ReprSizeBound(detail::Heap* heap, bool typed_objects) : heap_(heap), typed_objects_(typed_objects) {}

  std::uint64_t run(Slot root) {
    std::uint64_t total = 0;
    visit(root, total);
    while (!frames_.empty()) {
      Frame& frame = frames_.back();
      if (frame.next < frame.children.size()) {
        const Slot child = frame.children[frame.next++];
        std::uint64_t contribution = 0;
        if (visit(child, contribution)) continue;  // a frame was pushed
        Frame& parent = frames_.back();
        parent.size = add(parent.size, contribution);
        continue;
      }
      Info& info = infos_[frame.node.p];
      info.size = frame.size;
      info.done = true;
      info.cyclic = frame.cyclic;
      const std::uint64_t size = frame.size;
      const bool cyclic = frame.cyclic;
      frames_.pop_back();
      if (frames_.empty()) return add(total, size);
      Frame& parent = frames_.back();
      parent.size = add(parent.size, size);
      parent.cyclic = parent.cyclic || cyclic;
    }
    return total;
  }

 private:
  static constexpr std::uint64_t marker = 3;  // [...], (...), {...}, <...>, ... at least
  struct Info {
    std::uint64_t size = 0;
    bool done = false;
    bool cyclic = false;
  };
  struct Frame {
    Slot node;
    std::vector<Slot> children;
    std::size_t next = 0;
    std::uint64_t size = 0;
    bool cyclic = false;
  };

  static std::uint64_t add(std::uint64_t a, std::uint64_t b) {
    return a > std::numeric_limits<std::uint64_t>::max() - b ? std::numeric_limits<std::uint64_t>::max()
                                                             : a + b;
  }

  // Adds a leaf's size to `size`, or pushes a frame for a container met for the first time (true).
  bool visit(Slot s, std::uint64_t& size) {
    switch (s.tag) {
      case Tag::none:
      case Tag::boolean: size = add(size, 4); return false;
      case Tag::small_int: {
        std::uint64_t digits = s.i < 0 ? 2 : 1;
        for (std::uint64_t m = s.i < 0 ? 0 - static_cast<std::uint64_t>(s.i) : static_cast<std::uint64_t>(s.i);
             m >= 10; m /= 10) {
          ++digits;
        }
        size = add(size, digits);
        return false;
      }
      case Tag::floating: size = add(size, 3); return false;
      case Tag::big_int: {
        // 2**(64*(n-1)) has more than 16*(n-1) hex digits and more decimal ones.
        const auto limbs = detail::node<detail::BigIntNode>(s).limb_count;
        size = add(size, 1 + 16 * std::uint64_t(limbs > 0 ? limbs - 1 : 0));
        return false;
      }
      case Tag::str: size = add(size, string_of(s).size() + 2); return false;
      case Tag::bytes: size = add(size, string_of(s).size() + 3); return false;
      case Tag::bytearray: size = add(size, string_of(s).size() + 14); return false;
      case Tag::buffer: size = add(size, detail::node<detail::BufferNode>(s).size + 15); return false;
      case Tag::global: {
        const auto& global = detail::node<detail::GlobalNode>(s);
        for (const Slot part : {global.module, global.name}) {
          size = add(size, part.tag == Tag::str ? string_of(part).size() : 1);
        }
        return false;
      }
      default: break;
    }
    const auto found = infos_.find(s.p);
    if (found != infos_.end()) {
      const Info& info = found->second;
      if (!info.done || info.cyclic) {
        size = add(size, marker);
        if (!frames_.empty()) frames_.back().cyclic = true;
      } else {
        size = add(size, info.size);
      }
      return false;
    }
    infos_.emplace(s.p, Info{});
    Frame frame{s, {}, 0, 0, false};
    switch (s.tag) {
      case Tag::tuple:
      case Tag::list: {
        const auto& seq = detail::node<SeqNode>(s);
        frame.children.reserve(seq.size);
        for (std::size_t i = 0; i < seq.size; ++i) frame.children.push_back(detail::load(seq.items[i]));
        frame.size = seq.size == 0 ? 2 : 2 * seq.size + (seq.size == 1 && s.tag == Tag::tuple ? 1 : 0);
        break;
      }
      case Tag::dict: {
        const auto& dict = detail::node<DictNode>(s);
        for (std::size_t i = 0; i < dict.size; ++i) {
          frame.children.push_back(detail::load(dict.entries[i].key));
          frame.children.push_back(detail::load(dict.entries[i].value));
        }
        frame.size = dict.size == 0 ? 2 : 4 * dict.size;
        break;
      }
      case Tag::set:
      case Tag::frozenset: {
        const auto& set = detail::node<DictNode>(s);
        for (std::size_t i = 0; i < set.size; ++i) frame.children.push_back(detail::load(set.entries[i].key));
        frame.size = set.size == 0 ? 5 : 2 * set.size;
        break;
      }
      default: object_parts(s, frame);
    }
    frames_.push_back(std::move(frame));
    return true;
  }

  void object_parts(Slot s, Frame& frame) {
    if (typed_objects_) {
      if (auto typed = detail::typed_repr(Value(s, heap_))) {
        for (auto& piece : *typed) {
          if (piece.value) {
            frame.children.push_back(piece.value->slot());
            typed_values_.push_back(std::move(*piece.value));
          } else {
            frame.size = add(frame.size, piece.text.size());
          }
        }
        return;
      }
    }
    const auto& object = detail::node<ObjectNode>(s);
    frame.size = 2;
    frame.children.push_back(object.callable);
    if (object.args.tag == Tag::tuple) {
      const auto& args = detail::node<SeqNode>(object.args);
      for (std::size_t i = 0; i < args.size; ++i) frame.children.push_back(detail::load(args.items[i]));
    } else {
      frame.children.push_back(object.args);
    }
    if (object.form == ObjectForm::newobj_ex) frame.children.push_back(object.kwargs);
    for (std::size_t i = 0; i < object.op_count; ++i) {
      const auto& op = object.ops[i];
      frame.children.push_back(op.first);
      if (op.op == ObjectOp::setitem || op.op == ObjectOp::state_setter) {
        frame.children.push_back(op.second);
      }
    }
  }

  detail::Heap* heap_;
  bool typed_objects_;
  std::vector<Frame> frames_;
  std::unordered_map<const void*, Info> infos_;
  std::vector<Value> typed_values_;  // keeps the parts typed_repr made alive
};

}  // namespace

std::string repr(const Value& value) { return repr(value, ReprOptions{}); }

std::string repr(const Value& value, const ReprOptions& options) {
  if (options.max_size != static_cast<std::size_t>(-1)) {
    const std::uint64_t at_least = ReprSizeBound(value.heap(), options.typed_objects).run(value.slot());
    if (at_least > options.max_size) {
      throw Error(PyExc::MemoryError, "repr longer than " + std::to_string(options.max_size) +
                                          " bytes (at least " +
                                          (at_least == std::numeric_limits<std::uint64_t>::max()
                                               ? std::string("2**64")
                                               : std::to_string(at_least)) +
                                          ")");
    }
  }
  std::string out;
  ReprWriter(out, options.max_size, value.heap(), options.typed_objects).run(value.slot());
  return out;
}

std::string ascii(const Value& value) { return detail::escape_non_ascii(repr(value)); }

}  // namespace pickle
