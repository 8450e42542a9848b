// pickletool types: what pickle/types.hpp makes of a pickle's top-level object — its kind, its
// typed value as flat text (the form tests/types_heldout.py computes from the Python object),
// its repr, and the pickle written again from the typed value at the same protocol.
#include <bit>
#include <complex>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "pickle/reader.hpp"
#include "pickle/repr.hpp"
#include "pickle/types.hpp"
#include "pickle/writer.hpp"

namespace pickletool {
namespace {

namespace types = pickle::types;
namespace numpy = pickle::types::numpy;
using pickle::Value;

std::string hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    out += digits[static_cast<unsigned char>(c) >> 4];
    out += digits[static_cast<unsigned char>(c) & 0xF];
  }
  return out;
}

std::string float_bits(double x) {
  char buffer[17];
  std::snprintf(buffer, sizeof buffer, "%016llx", static_cast<unsigned long long>(std::bit_cast<std::uint64_t>(x)));
  return buffer;
}

std::string tz_fields(const Value& tzinfo, const std::optional<types::Timezone>& tz) {
  if (tzinfo.is_none()) return "none";
  if (!tz) return "other";
  return "tz:" + std::to_string(tz->offset.to_chrono().count()) + ":" + (tz->name ? *tz->name : "-");
}

std::string pairs_repr(const std::vector<std::pair<Value, Value>>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    out += (i ? ", (" : "(") + pickle::repr(items[i].first) + ", " + pickle::repr(items[i].second) + ")";
  }
  return out + "]";
}

std::string values_repr(const std::vector<Value>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + pickle::repr(items[i]);
  return out + "]";
}

std::string dtype_text(const numpy::Dtype& d) { return std::string(1, d.byteorder) + d.code(); }

template <class T>
std::string element_texts(const numpy::Array& a) {
  std::string out;
  for (const T& v : a.to_vector<T>()) {
    if (!out.empty()) out += ' ';
    if constexpr (std::is_same_v<T, bool>) {
      out += v ? "1" : "0";
    } else if constexpr (std::is_floating_point_v<T>) {
      out += float_bits(static_cast<double>(v));
    } else if constexpr (std::is_integral_v<T>) {
      out += std::to_string(v);
    } else {
      out += float_bits(static_cast<double>(v.real())) + ":" + float_bits(static_cast<double>(v.imag()));
    }
  }
  return out;
}

// The elements in C order, for the dtypes with a C++ element type; "" for float16/longdouble.
std::string array_values(const numpy::Array& a) {
  const char kind = a.dtype.kind;
  const std::size_t size = a.dtype.itemsize;
  if (kind == 'b') return element_texts<bool>(a);
  if (kind == 'i' && size == 1) return element_texts<std::int8_t>(a);
  if (kind == 'i' && size == 2) return element_texts<std::int16_t>(a);
  if (kind == 'i' && size == 4) return element_texts<std::int32_t>(a);
  if (kind == 'i' && size == 8) return element_texts<std::int64_t>(a);
  if (kind == 'u' && size == 1) return element_texts<std::uint8_t>(a);
  if (kind == 'u' && size == 2) return element_texts<std::uint16_t>(a);
  if (kind == 'u' && size == 4) return element_texts<std::uint32_t>(a);
  if (kind == 'u' && size == 8) return element_texts<std::uint64_t>(a);
  if (kind == 'f' && size == 4) return element_texts<float>(a);
  if (kind == 'f' && size == 8) return element_texts<double>(a);
  if (kind == 'c' && size == 8) return element_texts<std::complex<float>>(a);
  if (kind == 'c' && size == 16) return element_texts<std::complex<double>>(a);
  return "";
}

std::string join(const auto& numbers) {
  std::string out;
  for (const auto& n : numbers) out += (out.empty() ? "" : ",") + std::to_string(n);
  return out;
}

struct Fields {
  std::string operator()(const types::Date& d) const {
    return std::to_string(d.year) + " " + std::to_string(d.month) + " " + std::to_string(d.day);
  }
  std::string operator()(const types::Time& t) const {
    return std::to_string(t.hour) + " " + std::to_string(t.minute) + " " + std::to_string(t.second) + " " +
           std::to_string(t.microsecond) + " " + (t.fold ? "1" : "0") + " " + tz_fields(t.tzinfo, t.timezone());
  }
  std::string operator()(const types::DateTime& t) const {
    return std::to_string(t.year) + " " + std::to_string(t.month) + " " + std::to_string(t.day) + " " +
           std::to_string(t.hour) + " " + std::to_string(t.minute) + " " + std::to_string(t.second) + " " +
           std::to_string(t.microsecond) + " " + (t.fold ? "1" : "0") + " " + tz_fields(t.tzinfo, t.timezone());
  }
  std::string operator()(const types::Timedelta& d) const {
    return std::to_string(d.days) + " " + std::to_string(d.seconds) + " " + std::to_string(d.microseconds);
  }
  std::string operator()(const types::Timezone& tz) const { return tz_fields(Value(1), tz); }
  std::string operator()(const types::Decimal& d) const { return d.to_string(); }
  std::string operator()(const types::Fraction& f) const { return f.numerator.str() + " " + f.denominator.str(); }
  std::string operator()(const types::Complex& c) const { return float_bits(c.real) + " " + float_bits(c.imag); }
  std::string operator()(const types::Uuid& u) const {
    std::string text = u.to_string();
    std::erase(text, '-');
    return text + " " + (u.is_safe ? std::to_string(*u.is_safe) : "none");
  }
  std::string operator()(const types::Range& r) const {
    return r.start.str() + " " + r.stop.str() + " " + r.step.str();
  }
  std::string operator()(const types::Slice& s) const {
    return pickle::repr(s.start) + " " + pickle::repr(s.stop) + " " + pickle::repr(s.step);
  }
  std::string operator()(const types::OrderedDict& d) const {
    return "items=" + pairs_repr(d.items) +
           " attributes=" + std::to_string(d.attributes.is_none() ? 0 : d.attributes.size());
  }
  std::string operator()(const types::DefaultDict& d) const {
    const std::string factory = d.default_factory.is_none()
                                    ? "None"
                                    : std::string(d.default_factory.module()) + "." + std::string(d.default_factory.qualname());
    return "factory=" + factory + " items=" + pairs_repr(d.items);
  }
  std::string operator()(const types::Counter& c) const { return "items=" + pairs_repr(c.items); }
  std::string operator()(const types::Deque& d) const {
    return "items=" + values_repr(d.items) + " maxlen=" + (d.maxlen ? std::to_string(*d.maxlen) : "None");
  }
  std::string operator()(const types::EnumMember& m) const {
    const std::string cls = "cls=" + std::string(m.cls.module()) + "." + std::string(m.cls.qualname());
    if (m.name) return cls + " name=" + *m.name;
    return cls + " value=" + pickle::repr(m.value);
  }
  std::string operator()(const types::Namespace& n) const {
    std::string keys;
    std::vector<Value> values;
    for (std::size_t i = 0; i < n.attributes.size(); ++i) {
      keys += (i ? "," : "") + n.attributes[i].first;
      values.push_back(n.attributes[i].second);
    }
    return "keys=" + keys + " values=" + values_repr(values);
  }
  std::string operator()(const numpy::Array& a) const {
    const std::string_view raw(reinterpret_cast<const char*>(a.data.data()), a.data.size());
    return "dtype=" + dtype_text(a.dtype) + " shape=" + join(a.shape) + " strides=" + join(a.strides) +
           " fortran=" + (a.fortran_order ? "1" : "0") + " raw=" + hex(raw) + " values=" + array_values(a);
  }
  std::string operator()(const numpy::Dtype& d) const { return "dtype=" + dtype_text(d); }
  std::string operator()(const numpy::Scalar& s) const { return "dtype=" + dtype_text(s.dtype) + " raw=" + hex(s.data); }
};

// --buffers FILE: the out-of-band buffers, each an 8-byte little-endian length and its bytes.
std::vector<std::string> read_buffers(const std::string& path) {
  const std::string all = read_input(path);
  std::vector<std::string> buffers;
  std::size_t at = 0;
  while (at < all.size()) {
    if (all.size() - at < 8) throw UsageError("--buffers: truncated length");
    std::uint64_t length = 0;
    for (int i = 7; i >= 0; --i) length = (length << 8) | static_cast<unsigned char>(all[at + static_cast<std::size_t>(i)]);
    at += 8;
    if (length > all.size() - at) throw UsageError("--buffers: truncated buffer");
    buffers.push_back(all.substr(at, length));
    at += length;
  }
  return buffers;
}

int command_types(const std::vector<std::string>& argv) {
  Arguments args(argv, {}, {"buffers", "encoding", "target"});
  int minor = 11;
  if (auto target = args.value("target")) {
    if (target->rfind("3.", 0) != 0) throw UsageError("--target needs 3.X");
    try {
      minor = std::stoi(target->substr(2));
    } catch (const std::exception&) {
      throw UsageError("--target needs 3.X");
    }
  }
  const std::string data = read_input(args.only_positional("FILE"));
  std::vector<std::string> buffers;
  pickle::ReadOptions options = read_options(args);
  if (auto path = args.value("buffers")) {
    buffers = read_buffers(*path);
    options.buffers = std::vector<std::string_view>(buffers.begin(), buffers.end());
  }
  Value value;
  try {
    value = pickle::loads(data, options);
  } catch (const pickle::UnpicklingError& error) {
    return report_malformed(error);
  }
  std::optional<types::Typed> typed;
  std::string error;
  try {
    typed = types::Registry::standard().recognize_or_throw(value);
    if (!typed && value.kind() == pickle::Kind::object) typed = types::view_or_throw<types::EnumMember>(value);
  } catch (const pickle::Error& e) {
    error = e.what();
  }
  const int protocol = data.size() >= 2 && static_cast<unsigned char>(data[0]) == 0x80 ? data[1] : 0;
  pickle::WriteOptions write;
  write.protocol = protocol;
  write.target_minor = minor;
  if (!buffers.empty()) write.buffer_callback = [](const Value&) { return false; };
  std::string out = "{";
  if (!typed) {
    out += "\"kind\": null, \"error\": " + json_string(error.empty() ? "not a recognised object" : error);
  } else {
    const std::string rewritten = pickle::dumps(types::to_value(*typed, {.target_minor = minor, .protocol = protocol, .original = value}), write);
    out += "\"kind\": " + json_string(types::detail::typed_name(*typed)) + ", \"fields\": " +
           json_string(std::visit(Fields{}, *typed)) + ", \"typed_repr\": " +
           json_string(types::repr(*typed, {.target_minor = minor}).value_or("")) + ", \"rewritten\": " + json_string(hex(rewritten));
  }
  out += ", \"repr\": " + json_string(pickle::repr(value)) + "}";
  std::cout << out << '\n';
  return exit_ok;
}

const CommandRegistration registration{Command{
    "types", "types [--buffers FILE] [--target 3.X] FILE",
    "Print, as one JSON line, what pickle/types.hpp recognises in the pickle's top-level object:\n"
    "kind (null when nothing; then error says why), fields (its typed value as flat text),\n"
    "typed_repr, repr (pickletool repr's text), and rewritten (hex of the pickle written again\n"
    "from the typed value at the input's protocol).\n"
    "  --buffers FILE     protocol 5 out-of-band buffers, each an 8-byte little-endian length\n"
    "                     followed by its bytes; they are written out of band again\n"
    "  --target 3.X       the CPython version whose repr and reductions to use (default 3.11)",
    command_types}};

}  // namespace
}  // namespace pickletool
