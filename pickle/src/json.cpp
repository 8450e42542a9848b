// JSON views of values (to_json) and values from JSON (from_json). The mapping is documented in
// pickle/json.hpp and pickle/JSON.md. Both directions use explicit stacks: the data may be nested a
// million levels deep.
#include "pickle/json.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "repr_text.hpp"
#include "unicode.hpp"
#include "value_impl.hpp"

namespace pickle {
namespace {

using detail::Slot;
using detail::Tag;

// Ints up to this many bits have at most 4300 decimal digits (2^14284 < 10^4300), so json.loads
// reads them under CPython's default int_max_str_digits; longer ones are written in hex.
constexpr std::size_t max_decimal_int_bits = 14284;

constexpr char base64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void append_base64(std::string& out, std::string_view data) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const std::uint32_t group = (std::uint32_t(bytes[i]) << 16) | (std::uint32_t(bytes[i + 1]) << 8) |
                                bytes[i + 2];
    out += base64_alphabet[(group >> 18) & 63];
    out += base64_alphabet[(group >> 12) & 63];
    out += base64_alphabet[(group >> 6) & 63];
    out += base64_alphabet[group & 63];
  }
  const std::size_t rest = data.size() - i;
  if (rest == 1) {
    const std::uint32_t group = std::uint32_t(bytes[i]) << 16;
    out += base64_alphabet[(group >> 18) & 63];
    out += base64_alphabet[(group >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    const std::uint32_t group = (std::uint32_t(bytes[i]) << 16) | (std::uint32_t(bytes[i + 1]) << 8);
    out += base64_alphabet[(group >> 18) & 63];
    out += base64_alphabet[(group >> 12) & 63];
    out += base64_alphabet[(group >> 6) & 63];
    out += '=';
  }
}

int base64_digit(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Strict base64 (padded, standard alphabet, no whitespace), as base64.b64encode writes it.
std::optional<std::string> decode_base64(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int padding = 0;
    if (last && text[i + 3] == '=') padding = text[i + 2] == '=' ? 2 : 1;
    std::uint32_t group = 0;
    for (int k = 0; k < 4; ++k) {
      int digit = 0;
      if (k < 4 - padding) {
        digit = base64_digit(text[i + static_cast<std::size_t>(k)]);
        if (digit < 0) return std::nullopt;
      }
      group = (group << 6) | static_cast<std::uint32_t>(digit);
    }
    out += static_cast<char>((group >> 16) & 0xFF);
    if (padding < 2) out += static_cast<char>((group >> 8) & 0xFF);
    if (padding < 1) out += static_cast<char>(group & 0xFF);
  }
  return out;
}

// ================================================================================================
// to_json
// ================================================================================================

// The kinds whose identity is kept in the output ($id / $ref): the mutable ones, and the containers
// through which sharing and cycles run.
bool identity_kept(Tag tag) noexcept {
  switch (tag) {
    case Tag::tuple:
    case Tag::list:
    case Tag::dict:
    case Tag::set:
    case Tag::frozenset:
    case Tag::bytearray:
    case Tag::object:
    case Tag::buffer:
      return true;
    default:
      return false;
  }
}

std::string_view view_of(Slot slot) noexcept {
  const auto& node = detail::node<detail::StringNode>(slot);
  return {node.data, node.size};
}

// The code point of a surrogate's 3-byte form at data[i] (ED A0..BF xx), or 0.
char32_t surrogate_at(std::string_view data, std::size_t i) noexcept {
  if (i + 3 > data.size()) return 0;
  const auto b0 = static_cast<unsigned char>(data[i]);
  const auto b1 = static_cast<unsigned char>(data[i + 1]);
  const auto b2 = static_cast<unsigned char>(data[i + 2]);
  if (b0 != 0xED || b1 < 0xA0) return 0;
  return char32_t(0xD000) | (char32_t(b1 & 0x3F) << 6) | char32_t(b2 & 0x3F);
}

// A str JSON cannot carry as a string: a high surrogate directly followed by a low surrogate would
// read back as one supplementary character.
bool has_surrogate_pair(std::string_view utf8) noexcept {
  for (std::size_t i = 0; i + 6 <= utf8.size(); ++i) {
    const char32_t high = surrogate_at(utf8, i);
    if (high >= 0xD800 && high <= 0xDBFF) {
      const char32_t low = surrogate_at(utf8, i + 3);
      if (low >= 0xDC00 && low <= 0xDFFF) return true;
    }
  }
  return false;
}

void append_hex4(std::string& out, unsigned value) {
  constexpr char digits[] = "0123456789abcdef";
  out += "\\u";
  out += digits[(value >> 12) & 15];
  out += digits[(value >> 8) & 15];
  out += digits[(value >> 4) & 15];
  out += digits[value & 15];
}

// A JSON string for surrogatepass UTF-8 that has no surrogate pair (json.dumps(ensure_ascii=False)'s
// escapes; lone surrogates escaped so that the output stays valid UTF-8).
void append_json_string(std::string& out, std::string_view utf8) {
  out += '"';
  std::size_t i = 0;
  while (i < utf8.size()) {
    const auto c = static_cast<unsigned char>(utf8[i]);
    if (c == 0xED && i + 2 < utf8.size() && static_cast<unsigned char>(utf8[i + 1]) >= 0xA0) {
      append_hex4(out, surrogate_at(utf8, i));
      i += 3;
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          append_hex4(out, c);
        } else {
          // Copy the run of ordinary bytes at once.
          std::size_t end = i + 1;
          while (end < utf8.size()) {
            const auto d = static_cast<unsigned char>(utf8[end]);
            if (d < 0x20 || d == '"' || d == '\\' || d == 0xED) break;
            ++end;
          }
          out.append(utf8, i, end - i);
          i = end;
          continue;
        }
    }
    ++i;
  }
  out += '"';
}

std::size_t bit_length(const detail::BigIntNode& node) noexcept {
  if (node.limb_count == 0) return 0;
  const std::uint64_t top = node.limbs[node.limb_count - 1];
  return (std::size_t(node.limb_count) - 1) * 64 + static_cast<std::size_t>(64 - std::countl_zero(top));
}

// Python's hex(n): -0x1f.
std::string python_hex(const detail::BigIntNode& node) {
  constexpr char digits[] = "0123456789abcdef";
  std::string out = node.negative ? "-0x" : "0x";
  bool started = false;
  for (std::size_t limb = node.limb_count; limb-- > 0;) {
    for (int shift = 60; shift >= 0; shift -= 4) {
      const unsigned digit = static_cast<unsigned>((node.limbs[limb] >> shift) & 15);
      if (digit == 0 && !started) continue;
      started = true;
      out += digits[digit];
    }
  }
  if (!started) out += '0';
  return out;
}

std::string_view form_name(ObjectForm form) noexcept {
  switch (form) {
    case ObjectForm::reduce: return "reduce";
    case ObjectForm::newobj: return "newobj";
    case ObjectForm::newobj_ex: return "newobj_ex";
    case ObjectForm::inst: return "inst";
    case ObjectForm::obj: return "obj";
    case ObjectForm::persid: return "persid";
    case ObjectForm::binpersid: return "binpersid";
    case ObjectForm::ext: return "ext";
  }
  return "reduce";
}

std::optional<ObjectForm> form_from_name(std::string_view name) noexcept {
  for (ObjectForm form : {ObjectForm::reduce, ObjectForm::newobj, ObjectForm::newobj_ex,
                          ObjectForm::inst, ObjectForm::obj, ObjectForm::persid,
                          ObjectForm::binpersid, ObjectForm::ext}) {
    if (form_name(form) == name) return form;
  }
  return std::nullopt;
}

// ObjectOp::state_setter where value.hpp has it (a __reduce__ state setter: `first`(obj, `second`)).
template <class Op = ObjectOp>
constexpr std::optional<Op> state_setter_op() noexcept {
  if constexpr (requires { Op::state_setter; }) {
    return Op::state_setter;
  } else {
    return std::nullopt;
  }
}

std::string_view op_name(ObjectOp op) noexcept {
  switch (op) {
    case ObjectOp::build: return "build";
    case ObjectOp::append: return "append";
    case ObjectOp::setitem: return "setitem";
    case ObjectOp::additem: return "additem";
    default:
      if (op == state_setter_op()) return "state_setter";
      return "unknown";
  }
}

std::optional<ObjectOp> op_from_name(std::string_view name) noexcept {
  for (ObjectOp op : {ObjectOp::build, ObjectOp::append, ObjectOp::setitem, ObjectOp::additem}) {
    if (op_name(op) == name) return op;
  }
  if (name == "state_setter") return state_setter_op();
  return std::nullopt;
}

bool has_two_operands(ObjectOp op) noexcept {
  return op == ObjectOp::setitem || op == state_setter_op();
}

[[noreturn]] void throw_too_large(std::size_t max_bytes) {
  throw LimitError("max_output_bytes", "JSON output exceeds " + std::to_string(max_bytes) + " bytes",
                   UnpicklingError::no_offset, std::nullopt, PyExc::ValueError);
}

// Writes JSON tokens with json.dumps's separators and indentation.
class TokenWriter {
 public:
  TokenWriter(int indent, std::size_t max_bytes) : indent_(indent), max_bytes_(max_bytes) {}

  std::string& text() noexcept { return out_; }

  void begin_array() {
    before_value();
    out_ += '[';
    open_.push_back(true);
  }
  void end_array() { close(']'); }
  void begin_object() {
    before_value();
    out_ += '{';
    open_.push_back(true);
  }
  void end_object() { close('}'); }
  void key(std::string_view utf8) {
    separate();
    append_json_string(out_, utf8);
    out_ += ": ";
    after_key_ = true;
  }
  // The token of a scalar value, written by the caller right after this call.
  std::string& value() {
    before_value();
    return out_;
  }
  void string_value(std::string_view utf8) { append_json_string(value(), utf8); }
  void raw_value(std::string_view token) { value() += token; }

 private:
  void before_value() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!open_.empty()) separate();
  }
  void separate() {
    if (open_.back()) {
      open_.back() = false;
    } else {
      out_ += indent_ >= 0 ? "," : ", ";
    }
    newline(open_.size());
  }
  void newline(std::size_t depth) {
    if (indent_ < 0) return;
    const std::size_t spaces = depth * static_cast<std::size_t>(indent_);
    // Checked before appending: a large indent times a deep nesting is a lot of spaces at once.
    if (spaces >= max_bytes_ || out_.size() + 1 + spaces > max_bytes_) throw_too_large(max_bytes_);
    out_ += '\n';
    out_.append(spaces, ' ');
  }
  void close(char bracket) {
    const bool empty = open_.back();
    open_.pop_back();
    if (!empty) newline(open_.size());
    out_ += bracket;
  }

  std::string out_;
  int indent_;
  std::size_t max_bytes_;
  std::vector<bool> open_;  // per open container: no item written yet
  bool after_key_ = false;
};

class JsonEmitter {
 public:
  JsonEmitter(Slot root, const JsonOptions& options)
      : writer_(options.indent, options.max_output_bytes), max_bytes_(options.max_output_bytes) {
    count_references(root);
    tasks_.push_back({Task::Op::value, root, {}});
  }

  std::string run() {
    while (!tasks_.empty()) {
      const Task task = tasks_.back();
      tasks_.pop_back();
      switch (task.op) {
        case Task::Op::value: emit(task.slot); break;
        case Task::Op::key_text: writer_.key(task.text); break;
        case Task::Op::key_str: writer_.key(view_of(task.slot)); break;
        case Task::Op::string_text: writer_.string_value(task.text); break;
        case Task::Op::begin_array: writer_.begin_array(); break;
        case Task::Op::end_array: writer_.end_array(); break;
        case Task::Op::end_object: writer_.end_object(); break;
      }
      if (writer_.text().size() > max_bytes_) throw_too_large(max_bytes_);
    }
    return std::move(writer_.text());
  }

 private:
  struct Task {
    enum class Op : std::uint8_t {
      value, key_text, key_str, string_text, begin_array, end_array, end_object
    };
    Op op;
    Slot slot;
    std::string_view text;
  };

  // Marks every identity-kept node reached more than once (shared or in a cycle).
  void count_references(Slot root) {
    std::vector<Slot> stack{root};
    auto visit = [&](Slot slot) {
      if (identity_kept(slot.tag)) stack.push_back(slot);
    };
    while (!stack.empty()) {
      const Slot slot = stack.back();
      stack.pop_back();
      if (!identity_kept(slot.tag)) continue;
      auto [it, first_time] = reached_.try_emplace(slot.p, false);
      if (!first_time) {
        it->second = true;
        continue;
      }
      switch (slot.tag) {
        case Tag::tuple:
        case Tag::list: {
          const auto& seq = detail::node<detail::SeqNode>(slot);
          for (std::size_t i = seq.size; i-- > 0;) visit(detail::load(seq.items[i]));
          break;
        }
        case Tag::dict:
        case Tag::set:
        case Tag::frozenset: {
          const auto& table = detail::node<detail::DictNode>(slot);
          for (std::size_t i = table.size; i-- > 0;) {
            if (slot.tag == Tag::dict) visit(detail::load(table.entries[i].value));
            visit(detail::load(table.entries[i].key));
          }
          break;
        }
        case Tag::object: {
          const auto& object = detail::node<detail::ObjectNode>(slot);
          for (std::size_t i = object.op_count; i-- > 0;) {
            visit(object.ops[i].second);
            visit(object.ops[i].first);
          }
          visit(object.kwargs);
          visit(object.args);
          visit(object.callable);
          break;
        }
        default:
          break;
      }
    }
  }

  // Pushes tasks so that they run in the order given.
  void schedule(std::vector<Task>& forward) {
    tasks_.insert(tasks_.end(), forward.rbegin(), forward.rend());
    forward.clear();
  }

  void emit(Slot slot) {
    if (identity_kept(slot.tag)) {
      auto it = reached_.find(slot.p);
      if (it != reached_.end() && it->second) {
        auto [id, first_time] = ids_.try_emplace(slot.p, ids_.size());
        if (!first_time) {
          writer_.begin_object();
          writer_.key("$ref");
          writer_.value() += std::to_string(id->second);
          writer_.end_object();
          return;
        }
        writer_.begin_object();
        writer_.key("$id");
        writer_.value() += std::to_string(id->second);
        writer_.key("$value");
        tasks_.push_back({Task::Op::end_object, {}, {}});
      }
    }
    std::vector<Task>& next = scratch_;
    auto value = [&](Slot s) { next.push_back({Task::Op::value, s, {}}); };
    auto key = [&](std::string_view text) { next.push_back({Task::Op::key_text, {}, text}); };
    auto op = [&](Task::Op o) { next.push_back({o, {}, {}}); };
    auto tagged = [&](std::string_view tag) {
      writer_.begin_object();
      writer_.key(tag);
    };
    switch (slot.tag) {
      case Tag::none: writer_.raw_value("null"); return;
      case Tag::boolean: writer_.raw_value(slot.b ? "true" : "false"); return;
      case Tag::small_int: writer_.value() += std::to_string(slot.i); return;
      case Tag::floating: emit_float(slot.f); return;
      case Tag::big_int: emit_big_int(detail::node<detail::BigIntNode>(slot)); return;
      case Tag::str: emit_str(view_of(slot)); return;
      case Tag::bytes:
      case Tag::bytearray: {
        tagged(slot.tag == Tag::bytes ? "$bytes" : "$bytearray");
        std::string& out = writer_.value();
        out += '"';
        append_base64(out, view_of(slot));
        out += '"';
        writer_.end_object();
        return;
      }
      case Tag::buffer: {
        const auto& buffer = detail::node<detail::BufferNode>(slot);
        tagged("$buffer");
        writer_.begin_object();
        writer_.key("data");
        std::string& out = writer_.value();
        out += '"';
        append_base64(out, {buffer.data, buffer.size});
        out += '"';
        writer_.key("index");
        writer_.value() += std::to_string(buffer.index);
        writer_.key("readonly");
        writer_.raw_value(buffer.readonly ? "true" : "false");
        writer_.end_object();
        writer_.end_object();
        return;
      }
      case Tag::global: {
        const auto& global = detail::node<detail::GlobalNode>(slot);
        tagged("$global");
        writer_.begin_array();
        value(global.module);
        value(global.name);
        op(Task::Op::end_array);
        op(Task::Op::end_object);
        break;
      }
      case Tag::list: {
        const auto& seq = detail::node<detail::SeqNode>(slot);
        writer_.begin_array();
        next.reserve(seq.size + 1);
        for (std::size_t i = 0; i < seq.size; ++i) value(detail::load(seq.items[i]));
        op(Task::Op::end_array);
        break;
      }
      case Tag::tuple: {
        const auto& seq = detail::node<detail::SeqNode>(slot);
        tagged("$tuple");
        writer_.begin_array();
        next.reserve(seq.size + 2);
        for (std::size_t i = 0; i < seq.size; ++i) value(detail::load(seq.items[i]));
        op(Task::Op::end_array);
        op(Task::Op::end_object);
        break;
      }
      case Tag::set:
      case Tag::frozenset: {
        const auto& table = detail::node<detail::DictNode>(slot);
        tagged(slot.tag == Tag::set ? "$set" : "$frozenset");
        writer_.begin_array();
        next.reserve(table.size + 2);
        for (std::size_t i = 0; i < table.size; ++i) value(detail::load(table.entries[i].key));
        op(Task::Op::end_array);
        op(Task::Op::end_object);
        break;
      }
      case Tag::dict: {
        const auto& table = detail::node<detail::DictNode>(slot);
        if (plain_object(table)) {
          writer_.begin_object();
          next.reserve(table.size * 2 + 1);
          for (std::size_t i = 0; i < table.size; ++i) {
            next.push_back({Task::Op::key_str, detail::load(table.entries[i].key), {}});
            value(detail::load(table.entries[i].value));
          }
          op(Task::Op::end_object);
        } else {
          tagged("$dict");
          writer_.begin_array();
          next.reserve(table.size * 4 + 2);
          for (std::size_t i = 0; i < table.size; ++i) {
            op(Task::Op::begin_array);
            value(detail::load(table.entries[i].key));
            value(detail::load(table.entries[i].value));
            op(Task::Op::end_array);
          }
          op(Task::Op::end_array);
          op(Task::Op::end_object);
        }
        break;
      }
      case Tag::object: {
        const auto& object = detail::node<detail::ObjectNode>(slot);
        tagged("$object");
        writer_.begin_object();
        writer_.key("form");
        writer_.string_value(form_name(object.form));
        switch (object.form) {
          case ObjectForm::persid:
          case ObjectForm::binpersid:
            key("pid");
            value(object.args);
            break;
          case ObjectForm::ext:
            writer_.key("code");
            writer_.value() += std::to_string(object.ext_code);
            key("callable");
            value(object.callable);
            break;
          default:
            key("callable");
            value(object.callable);
            key("args");
            value(object.args);
            if (object.form == ObjectForm::newobj_ex) {
              key("kwargs");
              value(object.kwargs);
            }
        }
        key("ops");
        op(Task::Op::begin_array);
        for (std::size_t i = 0; i < object.op_count; ++i) {
          const detail::ObjectOpEntry& entry = object.ops[i];
          op(Task::Op::begin_array);
          next.push_back({Task::Op::string_text, {}, op_name(entry.op)});
          value(entry.first);
          if (has_two_operands(entry.op)) value(entry.second);
          op(Task::Op::end_array);
        }
        op(Task::Op::end_array);
        op(Task::Op::end_object);
        op(Task::Op::end_object);
        break;
      }
    }
    schedule(next);
  }

  // A dict written as a JSON object: str keys that are JSON strings, first key not a tag.
  static bool plain_object(const detail::DictNode& table) {
    for (std::size_t i = 0; i < table.size; ++i) {
      const Slot key = detail::load(table.entries[i].key);
      if (key.tag != Tag::str) return false;
      const std::string_view text = view_of(key);
      if (i == 0 && !text.empty() && text.front() == '$') return false;
      if (has_surrogate_pair(text)) return false;
    }
    return true;
  }

  void emit_float(double f) {
    if (std::isnan(f) || std::isinf(f)) {
      writer_.begin_object();
      writer_.key("$float");
      if (std::isnan(f)) {
        writer_.string_value(std::signbit(f) ? "-nan" : "nan");
      } else {
        writer_.string_value(f > 0 ? "inf" : "-inf");
      }
      writer_.end_object();
      return;
    }
    detail::append_float_repr(writer_.value(), f);
  }

  void emit_big_int(const detail::BigIntNode& node) {
    if (bit_length(node) > max_decimal_int_bits) {
      writer_.begin_object();
      writer_.key("$int");
      writer_.string_value(python_hex(node));
      writer_.end_object();
      return;
    }
    detail::append_int_repr(writer_.value(), detail::to_bigint(node));
  }

  void emit_str(std::string_view utf8) {
    if (!has_surrogate_pair(utf8)) {
      writer_.string_value(utf8);
      return;
    }
    writer_.begin_object();
    writer_.key("$codepoints");
    writer_.begin_array();
    std::size_t pos = 0;
    while (pos < utf8.size()) {
      writer_.value() += std::to_string(static_cast<std::uint32_t>(detail::next_code_point(utf8, pos)));
    }
    writer_.end_array();
    writer_.end_object();
  }

  TokenWriter writer_;
  std::size_t max_bytes_;
  std::vector<Task> tasks_;
  std::vector<Task> scratch_;
  std::unordered_map<const void*, bool> reached_;  // node → reached more than once
  std::unordered_map<const void*, std::size_t> ids_;
};

// ================================================================================================
// from_json: text → tree of JSON nodes (iterative parser) → value (iterative builder)
// ================================================================================================

enum class JsonType : std::uint8_t { null, true_, false_, number, string, array, object };

constexpr std::size_t none_index = static_cast<std::size_t>(-1);

struct JsonNode {
  JsonType type;
  bool integer = false;       // number: no fraction or exponent (or NaN/Infinity: false)
  std::size_t offset;         // in the text
  std::size_t begin = 0;      // string: in the string pool; number: in the text
  std::size_t size = 0;
  std::size_t first_child = none_index;  // array items; object members as key, value, key, …
  std::size_t next_sibling = none_index;
  std::size_t child_count = 0;
};

struct JsonTree {
  std::vector<JsonNode> nodes;
  std::string strings;  // decoded string contents
};

[[noreturn]] void fail(const std::string& what, std::string_view text, std::size_t offset) {
  std::size_t line = 1;
  std::size_t line_start = 0;
  const std::size_t end = std::min(offset, text.size());
  for (std::size_t i = 0; i < end; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  throw JsonError(what + ": line " + std::to_string(line) + " column " +
                      std::to_string(offset - line_start + 1) + " (char " + std::to_string(offset) +
                      ")",
                  offset);
}

class JsonParser {
 public:
  JsonParser(std::string_view text, const FromJsonOptions& options)
      : text_(text), options_(options) {}

  JsonTree parse() {
    if (text_.size() > options_.max_input_bytes) {
      throw LimitError("max_input_bytes",
                       "JSON text of " + std::to_string(text_.size()) + " bytes exceeds " +
                           std::to_string(options_.max_input_bytes),
                       0, std::nullopt, PyExc::ValueError);
    }
    if (auto error = detail::check_utf8(text_)) {
      fail(detail::utf8_error_message(text_, *error), text_, error->start);
    }
    enum class State { value, key, after_value } state = State::value;
    while (true) {
      if (state == State::value) {
        skip_space();
        if (pos_ >= text_.size()) fail("Expecting value", text_, pos_);
        const char c = text_[pos_];
        if (c == '[' || c == '{') {
          const std::size_t index = add({c == '[' ? JsonType::array : JsonType::object, false, pos_});
          ++pos_;
          if (open_.size() >= options_.max_depth) {
            throw LimitError("max_depth", "JSON nested deeper than " + std::to_string(options_.max_depth),
                             pos_ - 1, std::nullopt, PyExc::RecursionError);
          }
          open_.push_back({index, none_index});
          skip_space();
          const char close = c == '[' ? ']' : '}';
          if (pos_ < text_.size() && text_[pos_] == close) {
            ++pos_;
            open_.pop_back();
            state = State::after_value;
          } else {
            state = c == '[' ? State::value : State::key;
          }
          continue;
        }
        parse_scalar();
        state = State::after_value;
        continue;
      }
      if (state == State::key) {
        skip_space();
        if (pos_ >= text_.size() || text_[pos_] != '"') {
          fail("Expecting property name enclosed in double quotes", text_, pos_);
        }
        parse_string();
        skip_space();
        if (pos_ >= text_.size() || text_[pos_] != ':') fail("Expecting ':' delimiter", text_, pos_);
        ++pos_;
        state = State::value;
        continue;
      }
      // after a value
      if (open_.empty()) break;
      skip_space();
      const bool in_array = tree_.nodes[open_.back().node].type == JsonType::array;
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        state = in_array ? State::value : State::key;
        continue;
      }
      if (pos_ < text_.size() && text_[pos_] == (in_array ? ']' : '}')) {
        ++pos_;
        open_.pop_back();
        continue;
      }
      fail("Expecting ',' delimiter", text_, pos_);
    }
    skip_space();
    if (pos_ != text_.size()) fail("Extra data", text_, pos_);
    return std::move(tree_);
  }

 private:
  struct Open {
    std::size_t node;
    std::size_t last_child;
  };

  std::size_t add(JsonNode node) {
    const std::size_t index = tree_.nodes.size();
    tree_.nodes.push_back(node);
    if (!open_.empty()) {
      Open& parent = open_.back();
      JsonNode& parent_node = tree_.nodes[parent.node];
      if (parent.last_child == none_index) {
        parent_node.first_child = index;
      } else {
        tree_.nodes[parent.last_child].next_sibling = index;
      }
      parent.last_child = index;
      ++parent_node.child_count;
    }
    return index;
  }

  void skip_space() noexcept {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool literal(std::string_view word) const noexcept { return text_.substr(pos_, word.size()) == word; }

  static bool digit(char c) noexcept { return c >= '0' && c <= '9'; }

  void parse_scalar() {
    const char c = text_[pos_];
    if (c == '"') {
      parse_string();
      return;
    }
    struct Word {
      std::string_view text;
      JsonType type;
    };
    for (const Word& word : {Word{"null", JsonType::null}, Word{"true", JsonType::true_},
                             Word{"false", JsonType::false_}}) {
      if (literal(word.text)) {
        add({word.type, false, pos_});
        pos_ += word.text.size();
        return;
      }
    }
    for (std::string_view word : {"NaN", "Infinity", "-Infinity"}) {
      if (literal(word)) {
        add({JsonType::number, false, pos_, pos_, word.size()});
        pos_ += word.size();
        return;
      }
    }
    const std::size_t start = pos_;
    std::size_t p = pos_;
    if (p < text_.size() && text_[p] == '-') ++p;
    if (p >= text_.size() || !digit(text_[p])) fail("Expecting value", text_, start);
    if (text_[p] == '0') {
      ++p;
    } else {
      while (p < text_.size() && digit(text_[p])) ++p;
    }
    bool integer = true;
    if (p + 1 < text_.size() && text_[p] == '.' && digit(text_[p + 1])) {
      integer = false;
      p += 2;
      while (p < text_.size() && digit(text_[p])) ++p;
    }
    if (p < text_.size() && (text_[p] == 'e' || text_[p] == 'E')) {
      std::size_t q = p + 1;
      if (q < text_.size() && (text_[q] == '+' || text_[q] == '-')) ++q;
      if (q < text_.size() && digit(text_[q])) {
        integer = false;
        p = q;
        while (p < text_.size() && digit(text_[p])) ++p;
      }
    }
    add({JsonType::number, integer, start, start, p - start});
    pos_ = p;
  }

  static int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  std::optional<char32_t> hex4(std::size_t at) const noexcept {
    if (at + 4 > text_.size()) return std::nullopt;
    char32_t value = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      const int digit_value = hex_value(text_[at + k]);
      if (digit_value < 0) return std::nullopt;
      value = (value << 4) | static_cast<char32_t>(digit_value);
    }
    return value;
  }

  void parse_string() {
    const std::size_t start = pos_;
    ++pos_;
    std::string& pool = tree_.strings;
    const std::size_t begin = pool.size();
    while (true) {
      std::size_t run = pos_;
      while (run < text_.size()) {
        const auto c = static_cast<unsigned char>(text_[run]);
        if (c == '"' || c == '\\' || c < 0x20) break;
        ++run;
      }
      pool.append(text_, pos_, run - pos_);
      pos_ = run;
      if (pos_ >= text_.size()) fail("Unterminated string starting at", text_, start);
      const char c = text_[pos_];
      if (c == '"') {
        ++pos_;
        break;
      }
      if (c != '\\') fail("Invalid control character at", text_, pos_);
      if (pos_ + 1 >= text_.size()) fail("Unterminated string starting at", text_, start);
      const char escape = text_[pos_ + 1];
      switch (escape) {
        case '"': pool += '"'; break;
        case '\\': pool += '\\'; break;
        case '/': pool += '/'; break;
        case 'b': pool += '\b'; break;
        case 'f': pool += '\f'; break;
        case 'n': pool += '\n'; break;
        case 'r': pool += '\r'; break;
        case 't': pool += '\t'; break;
        case 'u': {
          auto cp = hex4(pos_ + 2);
          if (!cp) fail("Invalid \\uXXXX escape", text_, pos_ + 1);
          pos_ += 6;
          if (*cp >= 0xD800 && *cp <= 0xDBFF && literal("\\u")) {
            auto low = hex4(pos_ + 2);
            if (!low) fail("Invalid \\uXXXX escape", text_, pos_ + 1);
            if (*low >= 0xDC00 && *low <= 0xDFFF) {
              *cp = 0x10000 + ((*cp - 0xD800) << 10) + (*low - 0xDC00);
              pos_ += 6;
            }
          }
          detail::append_utf8(pool, *cp);
          continue;
        }
        default:
          fail("Invalid \\escape", text_, pos_);
      }
      pos_ += 2;
    }
    add({JsonType::string, false, start, begin, pool.size() - begin});
  }

  std::string_view text_;
  const FromJsonOptions& options_;
  std::size_t pos_ = 0;
  JsonTree tree_;
  std::vector<Open> open_;
};

// Owns the heap region the value is built in until the value takes it.
struct HeapHold {
  detail::Heap* heap = detail::Heap::create();
  ~HeapHold() { detail::release(heap); }
};

class ValueBuilder {
 public:
  ValueBuilder(std::string_view text, const JsonTree& tree, const FromJsonOptions& options)
      : text_(text), tree_(tree), options_(options) {}

  Value build() {
    Slot result;
    bool have_result = false;
    convert(0, result, have_result);
    while (!frames_.empty()) {
      if (have_result) {
        have_result = false;
        accept(frames_.back(), result);
        continue;
      }
      Frame& frame = frames_.back();
      const std::size_t next = next_child(frame);
      if (next == none_index) {
        result = finish(frame);
        frames_.pop_back();
        have_result = true;
        continue;
      }
      convert(next, result, have_result);
    }
    return Value(result, hold_.heap);
  }

 private:
  enum class FrameKind : std::uint8_t { list, dict, tuple, set, pairs, global, object };

  // What an object's child becomes.
  enum class Role : std::uint8_t { callable, args, kwargs, pid, op_first, op_second };
  struct Part {
    Role role;
    ObjectOp op;
    std::size_t node;
  };

  struct Parts {
    std::vector<Part> list;  // the children to convert, in order
    std::size_t next = 0;
    std::vector<Slot> results;  // global: module and name
    Slot pending_first;         // object: first operand of an op waiting for its second
  };

  struct Frame {
    FrameKind kind = FrameKind::list;
    Slot target;
    std::size_t cursor = none_index;  // next child node (list, dict, tuple, set, pairs: the next pair)
    std::optional<std::uint64_t> id;  // registered when the target is made
    bool have_key = false;  // dict: key read, waiting for its value; pairs: key converted
    Slot key;
    std::size_t pair_second = none_index;  // pairs: the value node of the current pair
    // Objects and globals only (kept out of line: frames of a million-deep list stay small).
    std::unique_ptr<Parts> parts;
  };

  detail::Heap& heap() { return *hold_.heap; }

  const JsonNode& node(std::size_t index) const { return tree_.nodes[index]; }

  std::string_view string_of(const JsonNode& n) const {
    return std::string_view(tree_.strings).substr(n.begin, n.size);
  }

  [[noreturn]] void fail_at(const JsonNode& n, const std::string& what) const {
    fail(what, text_, n.offset);
  }

  // The child node after `index`, or none.
  std::size_t sibling(std::size_t index) const { return node(index).next_sibling; }

  void register_id(std::uint64_t id, Slot slot, const JsonNode& at) {
    if (!ids_.try_emplace(id, slot).second) fail_at(at, "$id " + std::to_string(id) + " is defined twice");
  }

  std::uint64_t id_number(std::size_t index) const {
    const JsonNode& n = node(index);
    const std::string_view digits = text_.substr(n.begin, n.size);
    std::uint64_t id = 0;
    if (n.type != JsonType::number || !n.integer || digits.front() == '-' ||
        std::from_chars(digits.data(), digits.data() + digits.size(), id).ec != std::errc()) {
      fail_at(n, "an $id or $ref must be a non-negative integer");
    }
    return id;
  }

  // Converts node `index`: either sets result (a finished value) or pushes a frame.
  void convert(std::size_t index, Slot& result, bool& have_result) {
    std::optional<std::uint64_t> id;
    while (true) {
      const JsonNode& n = node(index);
      if (n.type != JsonType::object || n.child_count == 0) break;
      const std::string_view tag = string_of(node(n.first_child));
      if (tag.empty() || tag.front() != '$') break;
      const std::size_t payload = sibling(n.first_child);
      if (tag == "$id") {
        if (id) fail_at(n, "$id directly inside $id");
        if (n.child_count != 4 || string_of(node(sibling(payload))) != "$value") {
          fail_at(n, "an $id object is {\"$id\": n, \"$value\": value}");
        }
        id = id_number(payload);
        index = sibling(sibling(payload));
        continue;
      }
      if (n.child_count != 2) fail_at(n, "the tag " + std::string(tag) + " takes no other key");
      if (tag == "$ref") {
        if (id) fail_at(n, "$id of a $ref");
        const std::uint64_t ref = id_number(payload);
        auto it = ids_.find(ref);
        if (it == ids_.end()) fail_at(n, "$ref " + std::to_string(ref) + " refers to no earlier $id");
        result = it->second;
        have_result = true;
        return;
      }
      if (tag == "$tuple" || tag == "$set" || tag == "$frozenset" || tag == "$dict") {
        const JsonNode& items = node(payload);
        if (items.type != JsonType::array) fail_at(items, std::string(tag) + " takes an array");
        Frame frame;
        if (tag == "$tuple") {
          frame.kind = FrameKind::tuple;
          frame.target = detail::make_seq(heap(), Tag::tuple, nullptr, 0);
        } else if (tag == "$dict") {
          frame.kind = FrameKind::pairs;
          frame.target = detail::make_dict(heap(), Tag::dict, items.child_count);
        } else {
          frame.kind = FrameKind::set;
          frame.target = detail::make_dict(heap(), tag == "$set" ? Tag::set : Tag::frozenset,
                                           items.child_count);
        }
        frame.cursor = items.first_child;
        push(std::move(frame), id, n);
        return;
      }
      if (tag == "$global") {
        const JsonNode& names = node(payload);
        if (names.type != JsonType::array || names.child_count != 2) {
          fail_at(names, "$global takes [module, qualified name]");
        }
        Frame frame;
        frame.kind = FrameKind::global;
        frame.parts = std::make_unique<Parts>();
        frame.parts->list = {{Role::args, ObjectOp::build, names.first_child},
                             {Role::args, ObjectOp::build, sibling(names.first_child)}};
        push(std::move(frame), id, n);
        return;
      }
      if (tag == "$object") {
        push(object_frame(node(payload)), id, n);
        return;
      }
      result = tagged_scalar(tag, node(payload));
      if (id) register_id(*id, result, n);
      have_result = true;
      return;
    }

    const JsonNode& n = node(index);
    switch (n.type) {
      case JsonType::null: result = Slot(); break;
      case JsonType::true_:
      case JsonType::false_:
        result = Slot();
        result.tag = Tag::boolean;
        result.b = n.type == JsonType::true_;
        break;
      case JsonType::number: result = number(n); break;
      case JsonType::string: result = detail::make_str(heap(), string_of(n)); break;
      case JsonType::array: {
        Frame frame;
        frame.kind = FrameKind::list;
        frame.target = detail::make_seq(heap(), Tag::list, nullptr, 0);
        frame.cursor = n.first_child;
        push(std::move(frame), id, n);
        return;
      }
      case JsonType::object: {
        Frame frame;
        frame.kind = FrameKind::dict;
        frame.target = detail::make_dict(heap(), Tag::dict, n.child_count / 2);
        frame.cursor = n.first_child;
        push(std::move(frame), id, n);
        return;
      }
    }
    if (id) register_id(*id, result, n);
    have_result = true;
  }

  void push(Frame frame, std::optional<std::uint64_t> id, const JsonNode& at) {
    if (frame.target.tag != Tag::none) {
      if (id) register_id(*id, frame.target, at);
    } else {
      frame.id = id;  // registered when finished (a global is made from its converted names)
    }
    frame_offsets_.push_back(at.offset);
    frames_.push_back(std::move(frame));
  }

  Frame object_frame(const JsonNode& payload) {
    if (payload.type != JsonType::object) fail_at(payload, "$object takes an object");
    std::optional<ObjectForm> form;
    std::optional<std::size_t> callable, args, kwargs, pid, code, ops;
    for (std::size_t k = payload.first_child; k != none_index; k = sibling(sibling(k))) {
      const std::string_view name = string_of(node(k));
      const std::size_t v = sibling(k);
      std::optional<std::size_t>* field = nullptr;
      if (name == "form") {
        if (node(v).type != JsonType::string || !(form = form_from_name(string_of(node(v))))) {
          fail_at(node(v), "unknown object form");
        }
        continue;
      }
      if (name == "callable") field = &callable;
      else if (name == "args") field = &args;
      else if (name == "kwargs") field = &kwargs;
      else if (name == "pid") field = &pid;
      else if (name == "code") field = &code;
      else if (name == "ops") field = &ops;
      else fail_at(node(k), "unknown $object key '" + std::string(name) + "'");
      *field = v;
    }
    if (!form) fail_at(payload, "$object needs a form");
    const bool persistent = *form == ObjectForm::persid || *form == ObjectForm::binpersid;
    const bool ext = *form == ObjectForm::ext;
    if (persistent != pid.has_value() || ext != code.has_value() ||
        (*form == ObjectForm::newobj_ex) != kwargs.has_value() || (persistent && callable) ||
        (!persistent && !ext && (!callable || !args)) || (ext && args)) {
      fail_at(payload, "$object of form " + std::string(form_name(*form)) + " has the wrong keys");
    }
    Frame frame;
    frame.kind = FrameKind::object;
    frame.target = detail::make_object(heap(), *form, Slot(), Slot(), Slot());
    if (code) {
      const Slot value = number(node(*code));
      if (value.tag != Tag::small_int || value.i < INT32_MIN || value.i > INT32_MAX) {
        fail_at(node(*code), "an ext code is a 32-bit integer");
      }
      detail::node<detail::ObjectNode>(frame.target).ext_code = static_cast<std::int32_t>(value.i);
    }
    frame.parts = std::make_unique<Parts>();
    if (callable) frame.parts->list.push_back({Role::callable, ObjectOp::build, *callable});
    if (args) frame.parts->list.push_back({Role::args, ObjectOp::build, *args});
    if (pid) frame.parts->list.push_back({Role::pid, ObjectOp::build, *pid});
    if (kwargs) frame.parts->list.push_back({Role::kwargs, ObjectOp::build, *kwargs});
    if (ops) {
      const JsonNode& list = node(*ops);
      if (list.type != JsonType::array) fail_at(list, "ops take an array");
      for (std::size_t o = list.first_child; o != none_index; o = sibling(o)) {
        const JsonNode& entry = node(o);
        if (entry.type != JsonType::array || entry.child_count == 0 ||
            node(entry.first_child).type != JsonType::string) {
          fail_at(entry, "an op is [\"build\" | \"append\" | \"setitem\" | \"additem\", operands…]");
        }
        const std::string_view name = string_of(node(entry.first_child));
        const std::optional<ObjectOp> op = op_from_name(name);
        if (!op) fail_at(entry, "unknown op '" + std::string(name) + "'");
        const std::size_t operands = has_two_operands(*op) ? 2 : 1;
        if (entry.child_count != operands + 1) fail_at(entry, "malformed op");
        const std::size_t first = sibling(entry.first_child);
        frame.parts->list.push_back({Role::op_first, *op, first});
        if (operands == 2) frame.parts->list.push_back({Role::op_second, *op, sibling(first)});
      }
    }
    return frame;
  }

  Slot tagged_scalar(std::string_view tag, const JsonNode& payload) {
    if (tag == "$bytes" || tag == "$bytearray") {
      if (payload.type != JsonType::string) fail_at(payload, std::string(tag) + " takes a base64 string");
      auto data = decode_base64(string_of(payload));
      if (!data) fail_at(payload, "invalid base64");
      return detail::make_bytes(heap(), *data, tag == "$bytes" ? Tag::bytes : Tag::bytearray);
    }
    if (tag == "$float") {
      Slot slot;
      slot.tag = Tag::floating;
      const std::string_view name = payload.type == JsonType::string ? string_of(payload) : "";
      if (name == "nan") slot.f = std::numeric_limits<double>::quiet_NaN();
      else if (name == "-nan") slot.f = -std::numeric_limits<double>::quiet_NaN();
      else if (name == "inf") slot.f = std::numeric_limits<double>::infinity();
      else if (name == "-inf") slot.f = -std::numeric_limits<double>::infinity();
      else fail_at(payload, "$float takes \"nan\", \"-nan\", \"inf\" or \"-inf\"");
      return slot;
    }
    if (tag == "$int") return hex_int(payload);
    if (tag == "$codepoints") {
      if (payload.type != JsonType::array) fail_at(payload, "$codepoints takes an array");
      std::string utf8;
      for (std::size_t c = payload.first_child; c != none_index; c = sibling(c)) {
        const Slot cp = number(node(c));
        if (cp.tag != Tag::small_int || cp.i < 0 || cp.i > 0x10FFFF) {
          fail_at(node(c), "a code point is an integer in 0 … 0x10FFFF");
        }
        detail::append_utf8(utf8, static_cast<char32_t>(cp.i));
      }
      return detail::make_str(heap(), utf8);
    }
    if (tag == "$buffer") {
      if (payload.type != JsonType::object || payload.child_count != 6) {
        fail_at(payload, "$buffer takes {\"data\": base64, \"index\": n, \"readonly\": bool}");
      }
      const std::size_t data_key = payload.first_child;
      const std::size_t index_key = sibling(sibling(data_key));
      const std::size_t readonly_key = sibling(sibling(index_key));
      const JsonNode& data_node = node(sibling(data_key));
      const JsonNode& index_node = node(sibling(index_key));
      const JsonNode& readonly_node = node(sibling(readonly_key));
      if (string_of(node(data_key)) != "data" || string_of(node(index_key)) != "index" ||
          string_of(node(readonly_key)) != "readonly" || data_node.type != JsonType::string ||
          (readonly_node.type != JsonType::true_ && readonly_node.type != JsonType::false_)) {
        fail_at(payload, "$buffer takes {\"data\": base64, \"index\": n, \"readonly\": bool}");
      }
      auto data = decode_base64(string_of(data_node));
      if (!data) fail_at(data_node, "invalid base64");
      const Slot index = number(index_node);
      if (index.tag != Tag::small_int || index.i < 0) fail_at(index_node, "a buffer index is a non-negative integer");
      return detail::make_buffer(heap(), data->data(), data->size(), static_cast<std::size_t>(index.i),
                                 readonly_node.type == JsonType::true_);
    }
    fail_at(payload, "unknown tag '" + std::string(tag) +
                         "' (a dict whose first key starts with '$' is written {\"$dict\": [[key, value], …]})");
  }

  Slot hex_int(const JsonNode& payload) {
    std::string_view text = payload.type == JsonType::string ? string_of(payload) : "";
    const bool negative = !text.empty() && text.front() == '-';
    if (negative) text.remove_prefix(1);
    if (text.size() < 3 || text.substr(0, 2) != "0x") fail_at(payload, "$int takes Python's hex(): \"0x…\"");
    text.remove_prefix(2);
    BigInt value = 0;
    // Limb by limb from the most significant digits: linear in the number of digits.
    std::vector<std::uint64_t> limbs((text.size() + 15) / 16);
    for (std::size_t i = 0; i < text.size(); ++i) {
      const char c = text[text.size() - 1 - i];
      int digit = -1;
      if (c >= '0' && c <= '9') digit = c - '0';
      else if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
      if (digit < 0) fail_at(payload, "$int takes Python's hex(): \"0x…\"");
      limbs[i / 16] |= std::uint64_t(digit) << (4 * (i % 16));
    }
    boost::multiprecision::import_bits(value, limbs.rbegin(), limbs.rend(), 64);
    if (negative) value = -value;
    return detail::make_int(heap(), value);
  }

  Slot number(const JsonNode& n) {
    if (n.type != JsonType::number) fail_at(n, "expected a number");
    const std::string_view digits = text_.substr(n.begin, n.size);
    Slot slot;
    if (n.integer) {
      std::int64_t small = 0;
      const auto parsed = std::from_chars(digits.data(), digits.data() + digits.size(), small);
      if (parsed.ec == std::errc() && parsed.ptr == digits.data() + digits.size()) {
        slot.tag = Tag::small_int;
        slot.i = small;
        return slot;
      }
      const std::size_t count = digits.size() - (digits.front() == '-' ? 1 : 0);
      if (count > options_.max_int_digits) {
        throw LimitError("max_int_digits",
                         "Exceeds the limit (" + std::to_string(options_.max_int_digits) +
                             " digits) for integer string conversion: value has " +
                             std::to_string(count) + " digits",
                         n.offset, std::nullopt, PyExc::ValueError);
      }
      return detail::make_int(heap(), BigInt(std::string(digits)));
    }
    slot.tag = Tag::floating;
    if (digits == "NaN") {
      slot.f = std::numeric_limits<double>::quiet_NaN();
    } else if (digits == "Infinity" || digits == "-Infinity") {
      slot.f = digits.front() == '-' ? -std::numeric_limits<double>::infinity()
                                     : std::numeric_limits<double>::infinity();
    } else {
      const auto parsed = std::from_chars(digits.data(), digits.data() + digits.size(), slot.f);
      if (parsed.ec == std::errc::result_out_of_range) slot.f = out_of_range_float(digits);
    }
    return slot;
  }

  // What Python's float() gives for a decimal beyond double's range: ±inf or ±0.0.
  static double out_of_range_float(std::string_view digits) {
    const bool negative = digits.front() == '-';
    if (negative) digits.remove_prefix(1);
    const std::size_t e = digits.find_first_of("eE");
    const std::string_view mantissa = digits.substr(0, e);
    long long exponent = 0;
    if (e != std::string_view::npos) {
      std::string_view exp = digits.substr(e + 1);
      if (!exp.empty() && exp.front() == '+') exp.remove_prefix(1);
      if (std::from_chars(exp.data(), exp.data() + exp.size(), exponent).ec != std::errc()) {
        exponent = exp.front() == '-' ? INT64_MIN / 2 : INT64_MAX / 2;
      }
    }
    // Decimal position of the first nonzero digit relative to the point.
    const std::size_t point = mantissa.find('.');
    const std::size_t int_digits = point == std::string_view::npos ? mantissa.size() : point;
    const std::size_t first = mantissa.find_first_not_of("0.");
    long long magnitude = 0;
    if (first != std::string_view::npos) {
      magnitude = first < int_digits ? static_cast<long long>(int_digits - first)
                                     : -static_cast<long long>(first - int_digits - 1);
    }
    const bool huge = first != std::string_view::npos && exponent + magnitude > 0;
    const double value = huge ? std::numeric_limits<double>::infinity() : 0.0;
    return negative ? -value : value;
  }

  std::size_t next_child(Frame& frame) {
    switch (frame.kind) {
      case FrameKind::list:
      case FrameKind::tuple:
      case FrameKind::set: {
        const std::size_t next = frame.cursor;
        if (next != none_index) frame.cursor = sibling(next);
        return next;
      }
      case FrameKind::dict: {
        if (frame.cursor == none_index) return none_index;
        // The key is a JSON string; equal keys of one document share one str, as json.loads's memo.
        const std::string_view key = string_of(node(frame.cursor));
        auto [it, first_time] = key_memo_.try_emplace(key, Slot());
        if (first_time) it->second = detail::make_str(heap(), key);
        frame.key = it->second;
        const std::size_t value = sibling(frame.cursor);
        frame.cursor = sibling(value);
        return value;
      }
      case FrameKind::pairs: {
        if (frame.have_key) return frame.pair_second;
        if (frame.cursor == none_index) return none_index;
        const JsonNode& pair = node(frame.cursor);
        if (pair.type != JsonType::array || pair.child_count != 2) {
          fail_at(pair, "$dict takes an array of [key, value] pairs");
        }
        frame.pair_second = sibling(pair.first_child);
        frame.cursor = sibling(frame.cursor);
        return pair.first_child;
      }
      case FrameKind::global:
      case FrameKind::object:
        if (frame.parts->next == frame.parts->list.size()) return none_index;
        return frame.parts->list[frame.parts->next].node;
    }
    return none_index;
  }

  void accept(Frame& frame, Slot value) {
    switch (frame.kind) {
      case FrameKind::list:
      case FrameKind::tuple:
        detail::seq_append(heap(), detail::node<detail::SeqNode>(frame.target), value);
        return;
      case FrameKind::set:
        detail::set_add(heap(), detail::node<detail::DictNode>(frame.target), value);
        return;
      case FrameKind::dict:
        detail::dict_set(heap(), detail::node<detail::DictNode>(frame.target), frame.key, value);
        return;
      case FrameKind::pairs:
        if (!frame.have_key) {
          frame.key = value;
          frame.have_key = true;
        } else {
          frame.have_key = false;
          detail::dict_set(heap(), detail::node<detail::DictNode>(frame.target), frame.key, value);
        }
        return;
      case FrameKind::global:
        frame.parts->results.push_back(value);
        ++frame.parts->next;
        return;
      case FrameKind::object: {
        const Part& part = frame.parts->list[frame.parts->next++];
        auto& object = detail::node<detail::ObjectNode>(frame.target);
        switch (part.role) {
          case Role::callable:
            object.callable = value;
            detail::note_reference(value);
            break;
          case Role::args:
          case Role::pid:
            object.args = value;
            detail::note_reference(value);
            break;
          case Role::kwargs:
            object.kwargs = value;
            detail::note_reference(value);
            break;
          case Role::op_first:
            if (has_two_operands(part.op)) {
              frame.parts->pending_first = value;
            } else {
              detail::object_add_op(heap(), object, part.op, value, Slot());
            }
            break;
          case Role::op_second:
            detail::object_add_op(heap(), object, part.op, frame.parts->pending_first, value);
            break;
        }
        return;
      }
    }
  }

  Slot finish(Frame& frame) {
    const std::size_t offset = frame_offsets_.back();
    frame_offsets_.pop_back();
    if (frame.kind == FrameKind::tuple) {
      // A hash taken while the tuple was still being filled (through a $ref inside it) is stale.
      detail::node<detail::SeqNode>(frame.target).hash_state = 0;
    }
    if (frame.kind == FrameKind::set && frame.target.tag == Tag::frozenset) {
      detail::node<detail::DictNode>(frame.target).hash_state = 0;
    }
    if (frame.kind != FrameKind::global) return frame.target;
    if (frame.parts->results[0].tag != Tag::str || frame.parts->results[1].tag != Tag::str) {
      fail("$global takes two str", text_, offset);
    }
    const Slot global = detail::make_global(heap(), frame.parts->results[0], frame.parts->results[1]);
    if (frame.id && !ids_.try_emplace(*frame.id, global).second) {
      fail("$id " + std::to_string(*frame.id) + " is defined twice", text_, offset);
    }
    return global;
  }

  std::string_view text_;
  const JsonTree& tree_;
  const FromJsonOptions& options_;
  HeapHold hold_;
  std::vector<Frame> frames_;
  std::vector<std::size_t> frame_offsets_;
  std::unordered_map<std::uint64_t, Slot> ids_;
  std::unordered_map<std::string_view, Slot> key_memo_;
};

}  // namespace

std::string to_json(const Value& value, const JsonOptions& options) {
  return JsonEmitter(value.slot(), options).run();
}

Value from_json(std::string_view text, const FromJsonOptions& options) {
  const JsonTree tree = JsonParser(text, options).parse();
  return ValueBuilder(text, tree, options).build();
}

}  // namespace pickle
