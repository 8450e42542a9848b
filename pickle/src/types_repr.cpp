// Python's repr of recognised objects. Parts that are Python values (an OrderedDict's keys, a
// datetime's tzinfo) are left to the caller's iterative walk as pieces, so nothing recurses here.
#include "types_repr.hpp"

#include <algorithm>
#include <cmath>

#include "pickle/repr.hpp"
#include "repr_text.hpp"
#include "types_internal.hpp"

namespace pickle::types {

namespace {

using pickle::detail::TypedReprPiece;

class Pieces {
 public:
  Pieces& text(std::string_view t) {
    if (!pieces_.empty() && !pieces_.back().value) {
      pieces_.back().text += t;
    } else {
      pieces_.push_back({std::string(t), std::nullopt});
    }
    return *this;
  }
  Pieces& value(const Value& v) {
    pieces_.push_back({std::string(), v});
    return *this;
  }
  std::vector<TypedReprPiece> take() { return std::move(pieces_); }

 private:
  std::vector<TypedReprPiece> pieces_;
};

std::string int_text(std::int64_t v) { return std::to_string(v); }

void append_time_fields(std::string& out, int hour, int minute, int second, int microsecond) {
  out += int_text(hour) + ", " + int_text(minute);
  if (second != 0 || microsecond != 0) out += ", " + int_text(second);
  if (microsecond != 0) out += ", " + int_text(microsecond);
}

std::string timedelta_text(const Timedelta& d) {
  if (d == Timedelta{}) return "datetime.timedelta(0)";
  std::string out = "datetime.timedelta(";
  std::string separator;
  if (d.days != 0) out += "days=" + int_text(d.days), separator = ", ";
  if (d.seconds != 0) out += separator + "seconds=" + int_text(d.seconds), separator = ", ";
  if (d.microseconds != 0) out += separator + "microseconds=" + int_text(d.microseconds);
  return out + ")";
}

std::string timezone_text(const Timezone& tz) {
  if (tz.is_utc_singleton()) return "datetime.timezone.utc";
  std::string out = "datetime.timezone(" + timedelta_text(tz.offset);
  if (tz.name) {
    out += ", ";
    pickle::detail::append_str_repr(out, *tz.name);
  }
  return out + ")";
}

// A float as complex's repr shows it: repr digits without a trailing ".0".
std::string complex_part(double value, bool sign) {
  std::string text;
  if (sign && !std::signbit(value)) text += '+';
  if (std::isnan(value)) {
    text += "nan";  // Python shows no sign for nan's sign bit
    if (sign && std::signbit(value)) text = "+nan";
    return text;
  }
  pickle::detail::append_float_repr(text, value);
  if (text.size() >= 2 && text.compare(text.size() - 2, 2, ".0") == 0) text.resize(text.size() - 2);
  return text;
}

std::string complex_text(const Complex& c) {
  if (c.real == 0 && !std::signbit(c.real)) return complex_part(c.imag, false) + "j";
  return "(" + complex_part(c.real, false) + complex_part(c.imag, true) + "j)";
}

// The repr of a default factory, when Python's does not depend on the process (classes only).
std::optional<std::string> factory_text(const Value& factory) {
  if (factory.is_none()) return "None";
  if (factory.kind() != Kind::global) return std::nullopt;
  static constexpr std::string_view builtin_classes[] = {
      "list", "dict", "set", "frozenset", "int", "float", "str", "bytes", "bytearray", "tuple",
      "bool", "complex", "object"};
  static constexpr std::string_view collections_classes[] = {"OrderedDict", "Counter", "deque",
                                                             "defaultdict"};
  const std::string_view module = factory.module();
  const std::string_view name = factory.qualname();
  if (module == "builtins" &&
      std::find(std::begin(builtin_classes), std::end(builtin_classes), name) != std::end(builtin_classes)) {
    return "<class '" + std::string(name) + "'>";
  }
  if (module == "collections" && std::find(std::begin(collections_classes), std::end(collections_classes),
                                           name) != std::end(collections_classes)) {
    return "<class 'collections." + std::string(name) + "'>";
  }
  return std::nullopt;
}

// Counter's counts in most_common() order, when they are numbers Python orders the same way.
std::optional<std::vector<std::pair<Value, Value>>> most_common(std::vector<std::pair<Value, Value>> items) {
  for (const auto& [key, count] : items) {
    if (!count.is_int() && !count.is_float()) return std::nullopt;
    if (count.is_float() && std::isnan(count.as_float())) return std::nullopt;
  }
  const auto greater = [](const std::pair<Value, Value>& a, const std::pair<Value, Value>& b) {
    const Value& x = a.second;
    const Value& y = b.second;
    if (x.is_int() && y.is_int()) return x.as_bigint() > y.as_bigint();
    const double dx = x.is_float() ? x.as_float() : static_cast<double>(x.as_bigint());
    const double dy = y.is_float() ? y.as_float() : static_cast<double>(y.as_bigint());
    return dx > dy;
  };
  std::stable_sort(items.begin(), items.end(), greater);
  return items;
}

bool is_ascii_identifier(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

struct ReprPieces {
  int minor;

  std::optional<std::vector<TypedReprPiece>> text(std::string t) const {
    return std::vector<TypedReprPiece>{{std::move(t), std::nullopt}};
  }

  std::optional<std::vector<TypedReprPiece>> operator()(const Date& d) const {
    return text("datetime.date(" + int_text(d.year) + ", " + int_text(d.month) + ", " + int_text(d.day) + ")");
  }
  // CPython's time repr names tzinfo before fold, its datetime repr fold before tzinfo.
  std::optional<std::vector<TypedReprPiece>> with_tzinfo(std::string head, const Value& tzinfo, bool fold,
                                                         bool fold_first = false) const {
    Pieces p;
    p.text(head);
    if (fold && fold_first) p.text(", fold=1");
    if (!tzinfo.is_none()) p.text(", tzinfo=").value(tzinfo);
    if (fold && !fold_first) p.text(", fold=1");
    p.text(")");
    return p.take();
  }
  std::optional<std::vector<TypedReprPiece>> operator()(const Time& t) const {
    std::string head = "datetime.time(";
    append_time_fields(head, t.hour, t.minute, t.second, t.microsecond);
    return with_tzinfo(std::move(head), t.tzinfo, t.fold);
  }
  std::optional<std::vector<TypedReprPiece>> operator()(const DateTime& dt) const {
    std::string head = "datetime.datetime(" + int_text(dt.year) + ", " + int_text(dt.month) + ", " +
                       int_text(dt.day) + ", ";
    append_time_fields(head, dt.hour, dt.minute, dt.second, dt.microsecond);
    return with_tzinfo(std::move(head), dt.tzinfo, dt.fold, true);
  }
  std::optional<std::vector<TypedReprPiece>> operator()(const Timedelta& d) const { return text(timedelta_text(d)); }
  std::optional<std::vector<TypedReprPiece>> operator()(const Timezone& tz) const { return text(timezone_text(tz)); }
  std::optional<std::vector<TypedReprPiece>> operator()(const Decimal& d) const {
    return text("Decimal('" + d.to_string() + "')");
  }
  std::optional<std::vector<TypedReprPiece>> operator()(const Fraction& f) const {
    return text("Fraction(" + f.numerator.str() + ", " + f.denominator.str() + ")");
  }
  std::optional<std::vector<TypedReprPiece>> operator()(const Complex& c) const { return text(complex_text(c)); }
  std::optional<std::vector<TypedReprPiece>> operator()(const Uuid& u) const {
    return text("UUID('" + u.to_string() + "')");
  }
  std::optional<std::vector<TypedReprPiece>> operator()(const Range& r) const {
    std::string out = "range(" + r.start.str() + ", " + r.stop.str();
    if (r.step != 1) out += ", " + r.step.str();
    return text(out + ")");
  }
  std::optional<std::vector<TypedReprPiece>> operator()(const Slice& s) const {
    Pieces p;
    p.text("slice(").value(s.start).text(", ").value(s.stop).text(", ").value(s.step).text(")");
    return p.take();
  }
  std::optional<std::vector<TypedReprPiece>> operator()(const OrderedDict& d) const {
    if (d.items.empty()) return text("OrderedDict()");
    Pieces p;
    const bool dict_form = minor >= 12;
    p.text(dict_form ? "OrderedDict({" : "OrderedDict([");
    for (std::size_t i = 0; i < d.items.size(); ++i) {
      if (i > 0) p.text(", ");
      if (dict_form) {
        p.value(d.items[i].first).text(": ").value(d.items[i].second);
      } else {
        p.text("(").value(d.items[i].first).text(", ").value(d.items[i].second).text(")");
      }
    }
    p.text(dict_form ? "})" : "])");
    return p.take();
  }
  std::optional<std::vector<TypedReprPiece>> operator()(const DefaultDict& d) const {
    const auto factory = factory_text(d.default_factory);
    if (!factory) return std::nullopt;
    Pieces p;
    p.text("defaultdict(" + *factory + ", {");
    for (std::size_t i = 0; i < d.items.size(); ++i) {
      if (i > 0) p.text(", ");
      p.value(d.items[i].first).text(": ").value(d.items[i].second);
    }
    p.text("})");
    return p.take();
  }
  std::optional<std::vector<TypedReprPiece>> operator()(const Counter& c) const {
    if (c.items.empty()) return text("Counter()");
    auto ordered = most_common(c.items);
    const auto& items = ordered ? *ordered : c.items;
    Pieces p;
    p.text("Counter({");
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (i > 0) p.text(", ");
      p.value(items[i].first).text(": ").value(items[i].second);
    }
    p.text("})");
    return p.take();
  }
  std::optional<std::vector<TypedReprPiece>> operator()(const Deque& d) const {
    Pieces p;
    p.text("deque([");
    for (std::size_t i = 0; i < d.items.size(); ++i) {
      if (i > 0) p.text(", ");
      p.value(d.items[i]);
    }
    p.text("]");
    if (d.maxlen) p.text(", maxlen=" + int_text(*d.maxlen));
    p.text(")");
    return p.take();
  }
  std::optional<std::vector<TypedReprPiece>> operator()(const EnumMember&) const { return std::nullopt; }
  std::optional<std::vector<TypedReprPiece>> operator()(const Namespace& n) const {
    auto attributes = n.attributes;
    // 3.8 printed both kinds of namespace in sorted order; 3.9 on, in insertion order.
    if (minor <= 8) {
      std::stable_sort(attributes.begin(), attributes.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
    }
    Pieces p;
    p.text(n.type == Namespace::Type::simple ? "namespace(" : "Namespace(");
    std::vector<std::size_t> starred;
    bool first = true;
    for (std::size_t i = 0; i < attributes.size(); ++i) {
      if (!is_ascii_identifier(attributes[i].first)) {
        // Non-ASCII names may still be identifiers to Python: not decided here.
        for (const char c : attributes[i].first) {
          if (static_cast<unsigned char>(c) >= 0x80) return std::nullopt;
        }
        if (n.type == Namespace::Type::argparse) {
          starred.push_back(i);
          continue;
        }
      }
      if (!first) p.text(", ");
      first = false;
      p.text(attributes[i].first + "=").value(attributes[i].second);
    }
    if (!starred.empty()) {
      if (!first) p.text(", ");
      p.text("**{");
      for (std::size_t k = 0; k < starred.size(); ++k) {
        if (k > 0) p.text(", ");
        std::string key;
        pickle::detail::append_str_repr(key, attributes[starred[k]].first);
        p.text(key + ": ").value(attributes[starred[k]].second);
      }
      p.text("}");
    }
    p.text(")");
    return p.take();
  }
  std::optional<std::vector<TypedReprPiece>> operator()(const numpy::Array& a) const {
    auto t = numpy::array_repr(a);
    if (!t) return std::nullopt;
    return text(std::move(*t));
  }
  std::optional<std::vector<TypedReprPiece>> operator()(const numpy::Dtype& d) const {
    auto t = internal::numpy_repr(d);
    if (!t) return std::nullopt;
    return text(std::move(*t));
  }
  std::optional<std::vector<TypedReprPiece>> operator()(const numpy::Scalar& s) const {
    auto t = internal::numpy_repr(s);
    if (!t) return std::nullopt;
    return text(std::move(*t));
  }
};

}  // namespace

namespace internal {
std::optional<std::vector<pickle::detail::TypedReprPiece>> repr_pieces(const Typed& typed, int target_minor) {
  return std::visit(ReprPieces{target_minor}, typed);
}
}  // namespace internal

std::optional<std::string> repr(const Typed& typed, const ConvertOptions& options) {
  auto pieces = internal::repr_pieces(typed, options.target_minor);
  if (!pieces) return std::nullopt;
  std::string out;
  for (const auto& piece : *pieces) out += piece.value ? pickle::repr(*piece.value) : piece.text;
  return out;
}

}  // namespace pickle::types

namespace pickle::detail {

std::optional<std::vector<TypedReprPiece>> typed_repr(const Value& object) {
  const auto typed = types::Registry::standard().recognize(object);
  if (!typed) return std::nullopt;
  return types::internal::repr_pieces(*typed, 11);
}

}  // namespace pickle::detail
