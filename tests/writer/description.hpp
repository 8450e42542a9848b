// Test support: builds a pickle::Value graph from the identity-keeping text description written by
// tests/writer/describe.py (see its docstring for the grammar). Iterative, like everything else.
#pragma once

#include <cstdint>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pickle/value.hpp"
#include "value_impl.hpp"

namespace pickle::testing {

inline std::string unhex(std::string_view hex) {
  std::string out;
  out.reserve(hex.size() / 2);
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw std::invalid_argument("bad hex digit");
  };
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out += static_cast<char>(nibble(hex[i]) * 16 + nibble(hex[i + 1]));
  return out;
}

// Hex with runs written [pattern*count] (tests/writer/describe.py pack_hex).
inline std::string unpack_hex(std::string_view text) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '[') {
      std::size_t star = text.find('*', i);
      std::size_t end = text.find(']', i);
      std::string pattern = unhex(text.substr(i + 1, star - i - 1));
      std::size_t count = std::stoull(std::string(text.substr(star + 1, end - star - 1)));
      for (std::size_t k = 0; k < count; ++k) out += pattern;
      i = end + 1;
    } else {
      std::size_t end = text.find('[', i);
      if (end == std::string_view::npos) end = text.size();
      out += unhex(text.substr(i, end - i));
      i = end;
    }
  }
  return out;
}

inline std::string to_hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    out += digits[static_cast<unsigned char>(c) >> 4];
    out += digits[static_cast<unsigned char>(c) & 15];
  }
  return out;
}

inline Value build_description(std::string_view text) {
  struct Frame {
    char tag;
    std::vector<Value> items;
    int label = -1;
    Value container;  // list/dict/set, or the object once created
    char form = 0;
    bool created = false;
  };
  struct Patch {
    Value container;
    bool is_list;
    std::size_t index;
    Value key;
  };
  std::map<int, Value> labels;
  std::map<int, std::vector<Patch>> pending;
  std::vector<Frame> stack;
  stack.push_back(Frame{'^', {}, -1, Value(), 0, false});
  int pending_label = -1;
  std::istringstream in{std::string(text)};
  std::string tok;

  auto set_label = [&](int label, const Value& v) {
    labels[label] = v;
    auto it = pending.find(label);
    if (it == pending.end()) return;
    for (Patch& p : it->second) {
      if (p.is_list) {
        p.container.set_list_item(p.index, v);
      } else {
        p.container.set_item(p.key, v);
      }
    }
    pending.erase(it);
  };

  while (in >> tok) {
    Value value;
    bool is_pending = false;
    int pending_ref = -1;
    char c = tok[0];
    if (c == '=') {
      pending_label = std::stoi(tok.substr(1));
      continue;
    }
    if (c == '(') {
      Frame f{tok[1], {}, pending_label, Value(), 0, false};
      pending_label = -1;
      if (f.tag == 'l') f.container = Value::list();
      if (f.tag == 'd') f.container = Value::dict();
      if (f.tag == 'S') f.container = Value::set();
      if (f.label >= 0 && (f.tag == 'l' || f.tag == 'd' || f.tag == 'S')) set_label(f.label, f.container);
      stack.push_back(std::move(f));
      continue;
    }
    if (c == ')') {
      Frame f = std::move(stack.back());
      stack.pop_back();
      switch (f.tag) {
        case 'l':
        case 'd':
        case 'S':
          value = f.container;
          break;
        case 't':
          value = Value::tuple(std::span<const Value>(f.items));
          break;
        case 'Z':
          value = Value::frozenset(std::span<const Value>(f.items));
          break;
        case 'g': {
          // Keep the module and name str objects themselves (their identity matters at protocol 4).
          const Value& module = f.items.at(0);
          const Value& name = f.items.at(1);
          detail::Heap* heap = detail::merge(module.heap(), name.heap());
          value = Value(detail::make_global(*heap, module.slot(), name.slot()), heap);
          break;
        }
        case 'B':
        case 'A':
        case 'I': {
          Frame& owner = stack.back();
          ObjectOp op = f.tag == 'B' ? ObjectOp::build : f.tag == 'A' ? ObjectOp::append : ObjectOp::setitem;
          owner.container.add_object_op(op, f.items.at(0), f.items.size() > 1 ? f.items[1] : Value());
          continue;
        }
        case 'o':
          value = f.container;
          break;
        default:
          throw std::invalid_argument("bad frame");
      }
      if (f.label >= 0 && f.tag != 'l' && f.tag != 'd' && f.tag != 'S') set_label(f.label, value);
    } else if (c == '@') {
      int k = std::stoi(tok.substr(1));
      auto it = labels.find(k);
      if (it != labels.end()) {
        value = it->second;
      } else {
        is_pending = true;
        pending_ref = k;
      }
    } else if (tok == "N") {
      value = Value();
    } else if (tok == "T") {
      value = Value(true);
    } else if (tok == "F") {
      value = Value(false);
    } else if (c == 'i') {
      value = Value(BigInt(tok.substr(1)));
      if (auto small = value.as_int64()) value = Value(*small);
    } else if (c == 'f') {
      std::string raw = unhex(tok.substr(1));
      std::uint64_t bits = 0;
      for (char ch : raw) bits = bits << 8 | static_cast<unsigned char>(ch);
      double d;
      static_assert(sizeof d == sizeof bits);
      __builtin_memcpy(&d, &bits, sizeof d);
      value = Value(d);
    } else if (c == 's') {
      value = Value::str(unpack_hex(tok.substr(1)));
    } else if (c == 'b') {
      value = Value::bytes(std::string_view(unpack_hex(tok.substr(1))));
    } else if (c == 'a') {
      value = Value::bytearray(unpack_hex(tok.substr(1)));
    } else if (tok == "R" || tok == "n" || tok == "x" || tok == "P" || tok == "E") {
      stack.back().form = tok[0];
      continue;
    } else {
      throw std::invalid_argument("bad token " + tok);
    }
    if (c != ')' && pending_label >= 0) {
      set_label(pending_label, value);
      pending_label = -1;
    }
    // Add the value to the innermost frame.
    Frame& f = stack.back();
    if (is_pending) {
      if (f.tag == 'l') {
        pending[pending_ref].push_back(Patch{f.container, true, f.container.size(), Value()});
        f.container.append(Value());
        continue;
      }
      if (f.tag == 'd' && f.items.size() == 1) {
        pending[pending_ref].push_back(Patch{f.container, false, 0, f.items[0]});
        f.container.set_item(f.items[0], Value());
        f.items.clear();
        continue;
      }
      throw std::invalid_argument("reference to an unfinished tuple");
    }
    switch (f.tag) {
      case 'l':
        f.container.append(value);
        break;
      case 'S':
        f.container.add(value);
        break;
      case 'd':
        f.items.push_back(value);
        if (f.items.size() == 2) {
          f.container.set_item(f.items[0], f.items[1]);
          f.items.clear();
        }
        break;
      case 'o': {
        f.items.push_back(value);
        std::size_t need = f.form == 'x' ? 3 : f.form == 'P' ? 1 : 2;  // E: code, global
        if (!f.created && f.items.size() == need) {
          if (f.form == 'E') {
            f.container = Value::object(ObjectForm::ext, f.items[1], Value());
            detail::node<detail::ObjectNode>(f.container.slot()).ext_code =
                static_cast<std::int32_t>(*f.items[0].as_int64());
          } else if (f.form == 'P') {
            f.container = Value::object(ObjectForm::binpersid, Value(), f.items[0]);
          } else {
            ObjectForm form = f.form == 'R' ? ObjectForm::reduce
                              : f.form == 'n' ? ObjectForm::newobj
                                              : ObjectForm::newobj_ex;
            f.container = Value::object(form, f.items[0], f.items[1], need == 3 ? f.items[2] : Value());
          }
          f.created = true;
          if (f.label >= 0) labels[f.label] = f.container;
        }
        break;
      }
      default:
        f.items.push_back(value);
        break;
    }
  }
  return stack.front().items.at(0);
}

// The description of a value graph (the inverse of build_description): nodes reached more than
// once are labelled, so identities survive. Supports the kinds build_description and
// describe.build rebuild: atoms, str, bytes, bytearray, tuple, list, dict, set, frozenset, global,
// reduce objects with BUILD / APPEND / SETITEM ops.
inline std::string describe_value(const Value& top) {
  std::map<const void*, int> seen;  // node → times reached
  {
    std::vector<Value> stack{top};
    while (!stack.empty()) {
      Value v = stack.back();
      stack.pop_back();
      const void* id = v.identity();
      if (id == nullptr) continue;
      if (++seen[id] > 1) continue;
      switch (v.kind()) {
        case Kind::tuple:
        case Kind::list:
        case Kind::set:
        case Kind::frozenset:
          for (const Value& item : v.items()) stack.push_back(item);
          break;
        case Kind::dict:
          for (const auto& [k, x] : v.dict_items()) {
            stack.push_back(k);
            stack.push_back(x);
          }
          break;
        case Kind::object:
          stack.push_back(v.callable());
          stack.push_back(v.args());
          for (const auto& [op, a, b] : v.object_ops()) {
            stack.push_back(a);
            if (op == ObjectOp::setitem) stack.push_back(b);
          }
          break;
        default:
          break;
      }
    }
  }
  std::map<const void*, int> labels;
  std::string out;
  struct Item {
    Value value;
    const char* token;  // a literal token instead of a value
  };
  std::vector<Item> stack{{top, nullptr}};
  auto push_reversed = [&](const std::vector<Value>& values) {
    for (std::size_t i = values.size(); i-- > 0;) stack.push_back({values[i], nullptr});
  };
  while (!stack.empty()) {
    Item item = stack.back();
    stack.pop_back();
    if (!out.empty()) out += ' ';
    if (item.token != nullptr) {
      out += item.token;
      continue;
    }
    const Value& v = item.value;
    switch (v.kind()) {
      case Kind::none: out += 'N'; continue;
      case Kind::boolean: out += v.as_bool() ? 'T' : 'F'; continue;
      case Kind::integer: out += 'i' + v.as_bigint().str(); continue;
      case Kind::floating: {
        double d = v.as_float();
        std::uint64_t bits;
        __builtin_memcpy(&bits, &d, sizeof d);
        std::string raw;
        for (int i = 7; i >= 0; --i) raw += static_cast<char>(bits >> (8 * i));
        out += 'f' + to_hex(raw);
        continue;
      }
      default:
        break;
    }
    const void* id = v.identity();
    if (auto it = labels.find(id); it != labels.end()) {
      out += '@' + std::to_string(it->second);
      continue;
    }
    if (seen[id] > 1) {
      int label = static_cast<int>(labels.size());
      labels[id] = label;
      out += '=' + std::to_string(label) + ' ';
    }
    switch (v.kind()) {
      case Kind::str: out += 's' + to_hex(v.as_str()); break;
      case Kind::bytes: out += 'b' + to_hex(v.as_bytes()); break;
      case Kind::bytearray: out += 'a' + to_hex(v.as_bytes()); break;
      case Kind::tuple:
      case Kind::list:
      case Kind::set:
      case Kind::frozenset:
        out += v.kind() == Kind::tuple  ? "(t"
               : v.kind() == Kind::list ? "(l"
               : v.kind() == Kind::set  ? "(S"
                                        : "(Z";
        stack.push_back({Value(), ")"});
        push_reversed(v.items());
        break;
      case Kind::dict: {
        out += "(d";
        stack.push_back({Value(), ")"});
        std::vector<Value> flat;
        for (const auto& [k, x] : v.dict_items()) {
          flat.push_back(k);
          flat.push_back(x);
        }
        push_reversed(flat);
        break;
      }
      case Kind::global: {
        out += "(g s" + to_hex(v.module()) + " s" + to_hex(v.qualname()) + " )";
        break;
      }
      case Kind::object: {
        out += "(o R";
        stack.push_back({Value(), ")"});
        auto ops = v.object_ops();
        for (std::size_t i = ops.size(); i-- > 0;) {
          const auto& [op, a, b] = ops[i];
          stack.push_back({Value(), ")"});
          if (op == ObjectOp::setitem) stack.push_back({b, nullptr});
          stack.push_back({a, nullptr});
          stack.push_back({Value(), op == ObjectOp::build ? "(B" : op == ObjectOp::append ? "(A" : "(I"});
        }
        stack.push_back({v.args(), nullptr});
        stack.push_back({v.callable(), nullptr});
        break;
      }
      default:
        throw std::invalid_argument("cannot describe this kind");
    }
  }
  return out;
}

}  // namespace pickle::testing
