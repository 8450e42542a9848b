// numpy 1.x's repr of arrays and scalars (numpy/core/arrayprint.py with its default options:
// precision 8, floatmode 'maxprec', linewidth 75, threshold 1000, edgeitems 3; scalartypes.c for
// scalars), checked against numpy 1.24 by tests/types/numpy-1.24.jsonl.
#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "pickle/types.hpp"
#include "repr_text.hpp"
#include "types_internal.hpp"

namespace pickle::types {

namespace numpy {

namespace {

// Element bytes in native order.
void native_bytes(const Dtype& d, const std::byte* source, unsigned char* out) {
  std::memcpy(out, source, d.itemsize);
  if (d.byteorder == '>') {
    const std::size_t part = d.kind == 'c' ? d.itemsize / 2 : d.itemsize;
    for (std::size_t start = 0; start < d.itemsize; start += part) std::reverse(out + start, out + start + part);
  }
}

long double half_to_long_double(std::uint16_t bits) {
  const int exponent = (bits >> 10) & 0x1F;
  const int mantissa = bits & 0x3FF;
  long double magnitude;
  if (exponent == 0) {
    magnitude = std::ldexp(static_cast<long double>(mantissa), -24);
  } else if (exponent == 31) {
    magnitude = mantissa == 0 ? std::numeric_limits<long double>::infinity() : std::numeric_limits<long double>::quiet_NaN();
  } else {
    magnitude = std::ldexp(static_cast<long double>(mantissa + 1024), exponent - 25);
  }
  return (bits & 0x8000) ? -magnitude : magnitude;
}

// x rounded to the nearest float16 (ties to even), as a long double.
long double round_to_half(long double x) {
  if (x == 0 || !std::isfinite(x)) return x;
  int exponent;
  (void)std::frexp(x, &exponent);  // |x| = m * 2^exponent, m in [0.5, 1)
  const int quantum_exponent = std::max(exponent - 1, -14) - 10;
  const long double rounded = std::nearbyint(std::ldexp(x, -quantum_exponent));
  const long double result = std::ldexp(rounded, quantum_exponent);
  if (std::fabs(result) > 65504.0L) return std::copysign(std::numeric_limits<long double>::infinity(), x);
  return result;
}

// Width in bits of a float part: 16, 32, 64 or 80 (x87 extended in 16 bytes).
int part_bits(const Dtype& d) {
  const std::size_t part = d.kind == 'c' ? d.itemsize / 2 : d.itemsize;
  return part == 2 ? 16 : part == 4 ? 32 : part == 8 ? 64 : 80;
}

long double float_part(const unsigned char* bytes, int bits) {
  switch (bits) {
    case 16: {
      std::uint16_t v;
      std::memcpy(&v, bytes, 2);
      return half_to_long_double(v);
    }
    case 32: {
      float v;
      std::memcpy(&v, bytes, 4);
      return v;
    }
    case 64: {
      double v;
      std::memcpy(&v, bytes, 8);
      return v;
    }
    default: {
      long double v = 0;
      std::memcpy(&v, bytes, std::min<std::size_t>(sizeof v, 10));
      return v;
    }
  }
}

// The shortest decimal digits that read back as v in its own type, and the decimal exponent of the
// first digit (v = d.ddd × 10^exponent). v is finite.
struct Digits {
  std::string digits;
  int exponent = 0;
};

Digits parse_scientific(std::string_view text) {
  Digits out;
  const std::size_t e = text.find('e');
  for (const char c : text.substr(0, e)) {
    if (c >= '0' && c <= '9') out.digits += c;
  }
  out.exponent = std::atoi(std::string(text.substr(e + 1)).c_str());
  while (out.digits.size() > 1 && out.digits.back() == '0') out.digits.pop_back();
  return out;
}

Digits shortest_digits(long double v, int bits) {
  v = std::fabs(v);
  if (v == 0) return {"0", 0};
  char buffer[128];
  std::to_chars_result result{};
  switch (bits) {
    case 32:
      result = std::to_chars(buffer, buffer + sizeof buffer, static_cast<float>(v), std::chars_format::scientific);
      break;
    case 64:
      result = std::to_chars(buffer, buffer + sizeof buffer, static_cast<double>(v), std::chars_format::scientific);
      break;
    case 80:
      result = std::to_chars(buffer, buffer + sizeof buffer, v, std::chars_format::scientific);
      break;
    default: {
      // float16: the fewest significant digits that round back to the same half.
      for (int precision = 0; precision < 8; ++precision) {
        std::snprintf(buffer, sizeof buffer, "%.*Le", precision, v);
        if (round_to_half(std::strtold(buffer, nullptr)) == v) return parse_scientific(buffer);
      }
      std::snprintf(buffer, sizeof buffer, "%.8Le", v);
      return parse_scientific(buffer);
    }
  }
  return parse_scientific(std::string_view(buffer, static_cast<std::size_t>(result.ptr - buffer)));
}

constexpr int unlimited = std::numeric_limits<int>::max();

// Positional digits of |v|, at most max_fraction after the point (rounded from the exact value
// when the shortest form has more): {integer part, fraction without trailing zeros}.
std::pair<std::string, std::string> positional_parts(long double v, int bits, int max_fraction) {
  const Digits d = shortest_digits(v, bits);
  const int n = static_cast<int>(d.digits.size());
  std::string whole, fraction;
  if (n - 1 - d.exponent <= max_fraction) {
    if (d.exponent >= 0) {
      whole = d.digits.substr(0, std::min(n, d.exponent + 1));
      whole.append(static_cast<std::size_t>(std::max(0, d.exponent + 1 - n)), '0');
      if (n > d.exponent + 1) fraction = d.digits.substr(static_cast<std::size_t>(d.exponent + 1));
    } else {
      whole = "0";
      fraction = std::string(static_cast<std::size_t>(-d.exponent - 1), '0') + d.digits;
    }
  } else {
    char buffer[6000];
    std::snprintf(buffer, sizeof buffer, "%.*Lf", max_fraction, std::fabs(v));
    const std::string text = buffer;
    const std::size_t point = text.find('.');
    whole = text.substr(0, point);
    fraction = point == std::string::npos ? "" : text.substr(point + 1);
  }
  while (!fraction.empty() && fraction.back() == '0') fraction.pop_back();
  if (fraction.empty() && whole.empty()) whole = "0";
  return {whole, fraction};
}

// Scientific digits of |v|: {first digit, fraction without trailing zeros, exponent}.
struct Scientific {
  std::string whole, fraction;
  int exponent = 0;
};

Scientific scientific_parts(long double v, int bits, int max_fraction) {
  Digits d = shortest_digits(v, bits);
  if (static_cast<int>(d.digits.size()) - 1 > max_fraction) {
    char buffer[128];
    std::snprintf(buffer, sizeof buffer, "%.*Le", max_fraction, std::fabs(v));
    d = parse_scientific(buffer);
  }
  Scientific out{d.digits.substr(0, 1), d.digits.substr(1), d.exponent};
  while (!out.fraction.empty() && out.fraction.back() == '0') out.fraction.pop_back();
  return out;
}

std::string exponent_text(int exponent, std::size_t min_digits) {
  std::string digits = std::to_string(std::abs(exponent));
  if (digits.size() < min_digits) digits.insert(0, min_digits - digits.size(), '0');
  return std::string(exponent < 0 ? "e-" : "e+") + digits;
}

std::string sign_of(long double v, bool sign_plus) {
  if (std::signbit(v)) return "-";
  return sign_plus ? "+" : "";
}

// arrayprint.FloatingFormat, floatmode 'maxprec', precision 8.
class FloatFormat {
 public:
  FloatFormat(const std::vector<long double>& values, int bits, bool sign_plus) : bits_(bits), sign_plus_(sign_plus) {
    std::vector<long double> finite;
    bool any_nonfinite = false;
    bool negative_infinity = false;
    long double max_abs = 0;
    long double min_abs = std::numeric_limits<long double>::infinity();
    for (const long double v : values) {
      if (!std::isfinite(v)) {
        any_nonfinite = true;
        if (std::isinf(v) && v < 0) negative_infinity = true;
        continue;
      }
      finite.push_back(v);
      if (v != 0) {
        max_abs = std::max(max_abs, std::fabs(v));
        min_abs = std::min(min_abs, std::fabs(v));
      }
    }
    if (max_abs != 0) {
      // numpy divides in the element type.
      long double ratio = max_abs / min_abs;
      if (bits == 16) ratio = round_to_half(ratio);
      if (bits == 32) ratio = static_cast<float>(ratio);
      if (bits == 64) ratio = static_cast<double>(ratio);
      exp_format_ = max_abs >= 1e8L || min_abs < static_cast<long double>(0.0001) || ratio > 1000.0L;
    }
    if (finite.empty()) {
      pad_left_ = pad_right_ = 0;
    } else if (exp_format_) {
      std::size_t exp_digits = 0;
      for (const long double v : finite) {
        const Scientific s = scientific_parts(v, bits, 8);
        exp_digits = std::max(exp_digits, exponent_text(s.exponent, 2).size() - 2);
        precision_ = std::max(precision_, s.fraction.size());
        pad_left_ = std::max(pad_left_, sign_of(v, sign_plus).size() + 1);
      }
      exp_digits_ = exp_digits;
      pad_right_ = exp_digits_ + 2 + precision_;
    } else {
      for (const long double v : finite) {
        const auto [whole, fraction] = positional_parts(v, bits, 8);
        pad_left_ = std::max(pad_left_, sign_of(v, sign_plus).size() + whole.size());
        pad_right_ = std::max(pad_right_, fraction.size());
      }
    }
    if (any_nonfinite) {
      const std::size_t offset = pad_right_ + 1;
      const std::size_t infinity_length = 3 + ((sign_plus || negative_infinity) ? 1 : 0);
      if (3 > offset) pad_left_ = std::max(pad_left_, 3 - offset);
      if (infinity_length > offset) pad_left_ = std::max(pad_left_, infinity_length - offset);
    }
  }

  std::string operator()(long double v) const {
    if (!std::isfinite(v)) {
      std::string text = std::isnan(v) ? (sign_plus_ ? "+nan" : "nan") : (v < 0 ? "-inf" : sign_plus_ ? "+inf" : "inf");
      const std::size_t width = pad_left_ + pad_right_ + 1;
      if (text.size() < width) text.insert(0, width - text.size(), ' ');
      return text;
    }
    std::string text;
    if (exp_format_) {
      // Every value gets `precision_` fraction digits, the exact value's digits rounded there
      // (numpy's Dragon4 with min_digits), not the shortest digits padded with zeros.
      char buffer[128];
      std::snprintf(buffer, sizeof buffer, "%.*Le", static_cast<int>(precision_), std::fabs(v));
      const std::string_view printed = buffer;
      const std::size_t e = printed.find('e');
      const std::size_t point = printed.find('.');
      std::string whole = sign_of(v, sign_plus_) + std::string(printed.substr(0, std::min(point, e)));
      if (whole.size() < pad_left_) whole.insert(0, pad_left_ - whole.size(), ' ');
      const std::string fraction = point < e ? std::string(printed.substr(point + 1, e - point - 1)) : "";
      const int exponent = std::atoi(std::string(printed.substr(e + 1)).c_str());
      return whole + "." + fraction + exponent_text(exponent, exp_digits_);
    }
    const auto [digits, fraction] = positional_parts(v, bits_, 8);
    std::string whole = sign_of(v, sign_plus_) + digits;
    if (whole.size() < pad_left_) whole.insert(0, pad_left_ - whole.size(), ' ');
    std::string tail = fraction;
    tail.append(pad_right_ - std::min(pad_right_, tail.size()), ' ');
    return whole + "." + tail;
  }

 private:
  int bits_;
  bool sign_plus_;
  bool exp_format_ = false;
  std::size_t pad_left_ = 0;
  std::size_t pad_right_ = 0;
  std::size_t precision_ = 0;
  std::size_t exp_digits_ = 0;
};

std::string int_text(const Dtype& d, const unsigned char* bytes) {
  std::uint64_t raw = 0;
  for (std::size_t i = d.itemsize; i-- > 0;) raw = (raw << 8) | bytes[i];
  if (d.kind == 'u') return std::to_string(raw);
  const unsigned bits = static_cast<unsigned>(d.itemsize * 8);
  std::int64_t value = static_cast<std::int64_t>(raw);
  if (bits < 64 && (raw >> (bits - 1)) != 0) value = static_cast<std::int64_t>(raw | (~std::uint64_t{0} << bits));
  return std::to_string(value);
}

bool printable_kind(const Dtype& d) {
  switch (d.kind) {
    case 'b': case 'i': case 'u': return d.itemsize <= 8;
    case 'f': return d.itemsize == 2 || d.itemsize == 4 || d.itemsize == 8 || d.itemsize == 16;
    case 'c': return d.itemsize == 8 || d.itemsize == 16 || d.itemsize == 32;
    default: return false;
  }
}

// The element formatter of arrayprint._get_format_function, fitted to the elements shown.
class ElementFormat {
 public:
  ElementFormat(const Array& a, const std::vector<std::size_t>& offsets) : array_(a) {
    bits_ = part_bits(a.dtype);
    if (a.dtype.kind == 'f' || a.dtype.kind == 'c') {
      std::vector<long double> real, imag;
      for (const std::size_t offset : offsets) {
        const auto [re, im] = parts(offset);
        real.push_back(re);
        imag.push_back(im);
      }
      real_.emplace(real, bits_, false);
      if (a.dtype.kind == 'c') imag_.emplace(imag, bits_, true);
    } else if (a.dtype.kind != 'b') {
      for (const std::size_t offset : offsets) width_ = std::max(width_, integer(offset).size());
    }
  }

  std::string operator()(std::size_t offset, bool zero_dimensional) const {
    switch (array_.dtype.kind) {
      case 'b': {
        const bool value = array_.data[offset] != std::byte{0};
        if (zero_dimensional) return value ? "True" : "False";
        return value ? " True" : "False";
      }
      case 'f':
        return (*real_)(parts(offset).first);
      case 'c': {
        const auto [re, im] = parts(offset);
        std::string imag_text = (*imag_)(im);
        const std::size_t end = imag_text.find_last_not_of(' ') + 1;
        imag_text.insert(end, "j");
        return (*real_)(re) + imag_text;
      }
      default: {
        std::string text = integer(offset);
        if (text.size() < width_) text.insert(0, width_ - text.size(), ' ');
        return text;
      }
    }
  }

 private:
  std::pair<long double, long double> parts(std::size_t offset) const {
    unsigned char bytes[32] = {};
    native_bytes(array_.dtype, array_.data.data() + offset, bytes);
    if (array_.dtype.kind == 'f') return {float_part(bytes, bits_), 0};
    return {float_part(bytes, bits_), float_part(bytes + array_.dtype.itemsize / 2, bits_)};
  }
  std::string integer(std::size_t offset) const {
    unsigned char bytes[8] = {};
    native_bytes(array_.dtype, array_.data.data() + offset, bytes);
    return int_text(array_.dtype, bytes);
  }

  const Array& array_;
  int bits_ = 64;
  std::size_t width_ = 0;
  std::optional<FloatFormat> real_, imag_;
};

// numpy's dtype name in an array repr: the byte order is not shown (numpy 1.24 prints the native
// name, and its loads swaps _reconstruct'ed data to native order anyway).
std::string repr_dtype_name(const Dtype& d) {
  Dtype native = d;
  native.byteorder = d.byteorder == '|' ? '|' : '<';
  return native.name();
}

bool implicit_dtype(const Dtype& d) {
  return (d.kind == 'i' && d.itemsize == 8) || (d.kind == 'f' && d.itemsize == 8) ||
         (d.kind == 'c' && d.itemsize == 16) || d.kind == 'b';
}

constexpr std::size_t line_width = 75;
constexpr std::size_t threshold = 1000;
constexpr std::size_t edge_items = 3;

// arrayprint._formatArray. It recurses once per dimension, and arrays have at most 64.
class ArrayFormatter {
 public:
  ArrayFormatter(const Array& a, const ElementFormat& format, bool summarise,
                 const std::vector<std::vector<std::size_t>>& shown)
      : a_(a), format_(format), summarise_(summarise), shown_(shown) {}

  std::string format(std::size_t axis, std::size_t offset, const std::string& hanging_indent,
                     std::size_t current_width) const {
    const std::size_t ndim = a_.shape.size();
    if (axis == ndim) return format_(offset, ndim == 0);
    const std::string next_indent = hanging_indent + " ";
    const std::size_t next_width = current_width - 1;
    const std::size_t length = a_.shape[axis];
    const bool summary = summarise_ && 2 * edge_items < length;
    const std::vector<std::size_t>& indices = shown_[axis];
    const std::size_t stride = static_cast<std::size_t>(a_.strides[axis]);
    std::string s;
    if (ndim - axis == 1) {
      const std::size_t element_width = current_width - 1;
      std::string line = hanging_indent;
      for (std::size_t k = 0; k < indices.size(); ++k) {
        if (summary && k == edge_items) {
          extend_line(s, line, "...", element_width, hanging_indent);
          line += ", ";
        }
        extend_line(s, line, format(axis + 1, offset + indices[k] * stride, next_indent, next_width), element_width,
                    hanging_indent);
        if (k + 1 < indices.size()) line += ", ";
      }
      s += line;
    } else {
      const std::string line_separator = "," + std::string(ndim - axis - 1, '\n');
      for (std::size_t k = 0; k < indices.size(); ++k) {
        if (summary && k == edge_items) s += hanging_indent + "..." + line_separator;
        s += hanging_indent + format(axis + 1, offset + indices[k] * stride, next_indent, next_width);
        if (k + 1 < indices.size()) s += line_separator;
      }
    }
    return "[" + s.substr(hanging_indent.size()) + "]";
  }

 private:
  static void extend_line(std::string& s, std::string& line, const std::string& word, std::size_t width,
                          const std::string& next_line_prefix) {
    bool wrap = line.size() + word.size() > width;
    if (line.size() <= next_line_prefix.size()) wrap = false;  // wrapping would not help
    if (wrap) {
      const std::size_t end = line.find_last_not_of(' ');
      s += line.substr(0, end == std::string::npos ? 0 : end + 1) + "\n";
      line = next_line_prefix;
    }
    line += word;
  }

  const Array& a_;
  const ElementFormat& format_;
  bool summarise_;
  const std::vector<std::vector<std::size_t>>& shown_;
};

// numpy's float scalar repr: positional between 1e-4 and 1e16, scientific outside, shortest digits.
// trim_point_zero: "1.0" (float repr) rather than "1" (a complex repr's parts).
std::string scalar_float_text(long double v, int bits, bool keep_point_zero, bool sign_plus) {
  if (std::isnan(v)) return sign_plus ? "+nan" : "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : sign_plus ? "+inf" : "inf";
  const long double magnitude = std::fabs(v);
  const std::string sign = sign_of(v, sign_plus);
  if (magnitude >= 1e16L || (magnitude != 0 && magnitude < static_cast<long double>(0.0001))) {
    const Scientific s = scientific_parts(v, bits, unlimited);
    return sign + s.whole + (s.fraction.empty() ? "" : "." + s.fraction) + exponent_text(s.exponent, 2);
  }
  const auto [whole, fraction] = positional_parts(v, bits, unlimited);
  if (fraction.empty()) return sign + whole + (keep_point_zero ? ".0" : "");
  return sign + whole + "." + fraction;
}

}  // namespace

std::optional<std::string> array_repr(const Array& a) {
  if (!printable_kind(a.dtype)) return std::nullopt;
  const std::size_t count = a.size();
  const bool skip_dtype = implicit_dtype(a.dtype) && count > 0;
  const std::string suffix = skip_dtype ? ")" : ",";
  std::string body;
  if (count == 0) {
    body = "[]";
    if (a.shape.size() != 1) {
      body += ", shape=(";
      for (std::size_t i = 0; i < a.shape.size(); ++i) body += (i ? ", " : "") + std::to_string(a.shape[i]);
      body += ")";
    }
  } else {
    const bool summarise = count > threshold;
    std::vector<std::vector<std::size_t>> shown(a.shape.size());
    for (std::size_t axis = 0; axis < a.shape.size(); ++axis) {
      const std::size_t length = a.shape[axis];
      if (summarise && length > 2 * edge_items) {
        for (std::size_t i = 0; i < edge_items; ++i) shown[axis].push_back(i);
        for (std::size_t i = length - edge_items; i < length; ++i) shown[axis].push_back(i);
      } else {
        for (std::size_t i = 0; i < length; ++i) shown[axis].push_back(i);
      }
    }
    // The byte offsets of the elements shown (at most 6 per axis past the threshold).
    std::vector<std::size_t> offsets{0};
    for (std::size_t axis = 0; axis < a.shape.size(); ++axis) {
      std::vector<std::size_t> next;
      next.reserve(offsets.size() * shown[axis].size());
      for (const std::size_t base : offsets) {
        for (const std::size_t i : shown[axis]) next.push_back(base + i * static_cast<std::size_t>(a.strides[axis]));
      }
      offsets = std::move(next);
    }
    const ElementFormat format(a, offsets);
    const ArrayFormatter formatter(a, format, summarise, shown);
    body = formatter.format(0, 0, std::string(7, ' '), line_width - suffix.size());
  }
  std::string out = "array(" + body + suffix;
  if (skip_dtype) return out;
  const std::string dtype_text = "dtype=" + repr_dtype_name(a.dtype) + ")";
  const std::size_t newline = out.rfind('\n');
  const std::size_t last_line = out.size() - (newline == std::string::npos ? 0 : newline + 1);
  out += last_line + dtype_text.size() + 1 > line_width ? "\n      " : " ";
  return out + dtype_text;
}

}  // namespace numpy

namespace internal {

std::optional<std::string> numpy_repr(const numpy::Scalar& s) {
  using numpy::Generation;
  const numpy::Dtype& d = s.dtype;
  if (!numpy::printable_kind(d) || s.data.size() != d.itemsize) return std::nullopt;
  unsigned char bytes[32] = {};
  numpy::native_bytes(d, reinterpret_cast<const std::byte*>(s.data.data()), bytes);
  std::string text;
  if (d.kind == 'b') {
    const bool value = bytes[0] != 0;
    if (s.generation == Generation::numpy2) return value ? "np.True_" : "np.False_";
    return value ? "True" : "False";
  }
  const int bits = numpy::part_bits(d);
  if (d.kind == 'i' || d.kind == 'u') {
    text = numpy::int_text(d, bytes);
  } else if (d.kind == 'f') {
    text = numpy::scalar_float_text(numpy::float_part(bytes, bits), bits, true, false);
  } else {
    const long double re = numpy::float_part(bytes, bits);
    const long double im = numpy::float_part(bytes + d.itemsize / 2, bits);
    if (re == 0 && !std::signbit(re)) {
      text = numpy::scalar_float_text(im, bits, false, false) + "j";
    } else {
      text = "(" + numpy::scalar_float_text(re, bits, false, false) + numpy::scalar_float_text(im, bits, false, true) + "j)";
    }
  }
  if (s.generation == Generation::numpy1) return text;
  return "np." + d.name() + "(" + text + ")";
}

}  // namespace internal

}  // namespace pickle::types
