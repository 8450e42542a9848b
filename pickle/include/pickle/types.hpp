// Typed views of the objects real pickles contain: datetime, Decimal, OrderedDict, numpy arrays, …
//
// The reader keeps every object as an inert Kind::object node (pickle/value.hpp). This layer
// recognises the common ones from the shape of that node alone — nothing is imported or executed —
// and turns them into plain C++ values, and back into a Value that pickle::dumps writes exactly as
// CPython's own reduction of that object:
//
//   pickle::Value v = pickle::loads(bytes);
//   if (auto when = pickle::types::view<pickle::types::DateTime>(v)) use(when->to_local());
//   auto typed = pickle::types::Registry::standard().recognize(v);   // any known type
//   std::string again = pickle::dumps(pickle::types::to_value(*typed), {.protocol = 2});
//
// Recognised (module.name as pickled; CPython's reduction in brackets):
//   datetime.date / time / datetime   [cls(state_bytes[, tzinfo])]        Date, Time, DateTime
//   datetime.timedelta                [timedelta(days, seconds, us)]      Timedelta
//   datetime.timezone                 [timezone(offset[, name])]          Timezone
//   decimal.Decimal                   [Decimal(str)]                      Decimal
//   fractions.Fraction                [Fraction('n/d') ≤3.10, (n, d) 3.11+]  Fraction
//   builtins.complex                  [complex(re, im)]                   Complex
//   uuid.UUID                         [NEWOBJ + BUILD {'int': …}]         Uuid
//   builtins.range / builtins.slice   [range(a, b, c)] / [slice(a, b, c)] Range / Slice
//   collections.OrderedDict           [OrderedDict() + SETITEMS]          OrderedDict
//   collections.defaultdict           [defaultdict(factory) + SETITEMS]   DefaultDict
//   collections.Counter               [Counter(dict)]                     Counter
//   collections.deque                 [deque((), maxlen) + APPENDS]       Deque
//   types.SimpleNamespace             [SimpleNamespace() + BUILD dict]    Namespace
//   argparse.Namespace                [NEWOBJ + BUILD dict]               Namespace
//   enum members                      [cls(value)]                         EnumMember (classes
//                                     registered with Registry::add_enum; see EnumMember)
//   numpy arrays, dtypes and scalars  see pickle/types/numpy.hpp
// Protocols 0 and 1 write some of these through copyreg._reconstructor; both forms are read, and
// written back in the form the protocol needs (the writer's job).
//
// Parts that are themselves Python objects (a datetime's tzinfo, an OrderedDict's keys and values)
// stay pickle::Values, so a value re-made from its typed view keeps the sharing it was loaded with
// and writes the same memo references.
#pragma once

#include <array>
#include <chrono>
#include <complex>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "pickle/errors.hpp"
#include "pickle/types/numpy.hpp"
#include "pickle/value.hpp"

namespace pickle::types {

// The CPython 3.x version whose reduction (and repr) to reproduce: Fraction's reduction changed in
// 3.11, OrderedDict's repr in 3.12, SimpleNamespace's and argparse.Namespace's in 3.9.
// The protocol matters for objects pickled by object.__reduce_ex__ (uuid.UUID, argparse.Namespace):
// copyreg._reconstructor below protocol 2, NEWOBJ from 2 on.
struct ConvertOptions {
  int target_minor = 11;
  int protocol = 4;
  // The object node the typed value was read from, if any: its globals are reused, so that the
  // value made again shares them as the loaded graph did and pickle::dumps writes the same memo
  // references as the original pickle. Without it the globals are new: write such values with
  // Identities::cpython to get CPython's sharing of module names.
  Value original = Value();
};

// datetime.timedelta, normalised as Python keeps it: 0 <= seconds < 86400,
// 0 <= microseconds < 1000000, |days| <= 999999999.
struct Timedelta {
  std::int64_t days = 0;
  std::int32_t seconds = 0;
  std::int32_t microseconds = 0;

  // Throws pickle::Error(OverflowError) beyond int64 microseconds (about ±292,000 years).
  std::chrono::microseconds to_chrono() const;
  // Normalises as timedelta(microseconds=…) does; throws pickle::Error(OverflowError) past
  // Python's range.
  static Timedelta from_chrono(std::chrono::microseconds duration);
  friend bool operator==(const Timedelta&, const Timedelta&) = default;
};

// datetime.timezone: a fixed offset (strictly between -24 h and 24 h) and an optional name.
struct Timezone {
  Timedelta offset;
  std::optional<std::string> name;  // UTF-8
  bool is_utc_singleton() const { return offset == Timedelta{} && !name; }  // datetime.timezone.utc
  friend bool operator==(const Timezone&, const Timezone&) = default;
};

struct Date {
  int year = 1;  // 1 … 9999
  int month = 1;
  int day = 1;
  std::chrono::year_month_day to_chrono() const;
  // Throws pickle::Error(ValueError) outside datetime.date's range (years 1 … 9999).
  static Date from_chrono(std::chrono::year_month_day date);
  friend bool operator==(const Date&, const Date&) = default;
};

struct Time {
  int hour = 0;
  int minute = 0;
  int second = 0;
  int microsecond = 0;
  bool fold = false;
  Value tzinfo;  // None when naive; any tzinfo object as loaded (timezone, zoneinfo, pytz, …)

  // The tzinfo as a datetime.timezone, when it is one.
  std::optional<Timezone> timezone() const;
  std::chrono::microseconds since_midnight() const;
};

struct DateTime {
  int year = 1;
  int month = 1;
  int day = 1;
  int hour = 0;
  int minute = 0;
  int second = 0;
  int microsecond = 0;
  bool fold = false;
  Value tzinfo;  // None when naive

  Date date() const { return {year, month, day}; }
  std::optional<Timezone> timezone() const;
  // The wall-clock reading, whatever the tzinfo.
  std::chrono::local_time<std::chrono::microseconds> to_local() const;
  // The instant, when the tzinfo is a datetime.timezone (nullopt when naive or another tzinfo,
  // whose offset only Python code could compute).
  std::optional<std::chrono::sys_time<std::chrono::microseconds>> to_sys() const;
  // A naive datetime from a wall-clock reading, or (with tz) an aware one showing `instant` in tz.
  static DateTime from_local(std::chrono::local_time<std::chrono::microseconds> wall);
  static DateTime from_sys(std::chrono::sys_time<std::chrono::microseconds> instant,
                           const Timezone& tz);
};

// decimal.Decimal, exactly: sign, coefficient digits and exponent, or a special value.
struct Decimal {
  enum class Special : std::uint8_t { finite, infinity, nan, snan };
  bool negative = false;
  Special special = Special::finite;
  std::string digits = "0";  // the coefficient (NaN: its diagnostic payload, may be empty)
  std::int64_t exponent = 0;

  // Parses what Decimal(str) accepts (surrounding whitespace, case-insensitive Inf/NaN, '_' between
  // digits); throws pickle::Error(ValueError) otherwise.
  static Decimal parse(std::string_view text);
  // str(d): Python's to-scientific-string, what Decimal pickles.
  std::string to_string() const;
  friend bool operator==(const Decimal&, const Decimal&) = default;
};

// fractions.Fraction in lowest terms, denominator > 0.
struct Fraction {
  BigInt numerator = 0;
  BigInt denominator = 1;
  // Reduces to lowest terms; throws pickle::Error(ValueError) for a zero denominator
  // (ZeroDivisionError in Python).
  static Fraction make(BigInt numerator, BigInt denominator);
  std::string to_string() const;  // str(): "n/d", or "n" when d == 1
  friend bool operator==(const Fraction&, const Fraction&) = default;
};

struct Complex {
  double real = 0;
  double imag = 0;
  std::complex<double> to_std() const { return {real, imag}; }
};

struct Uuid {
  std::array<std::uint8_t, 16> bytes{};  // big-endian, as UUID.bytes
  // uuid.SafeUUID: 0 safe, -1 unsafe; nullopt = unknown (not written in the state).
  std::optional<int> is_safe;
  BigInt as_int() const;
  static Uuid from_int(const BigInt& value);  // throws pickle::Error(ValueError) outside 0 … 2**128-1
  std::string to_string() const;  // 12345678-1234-5678-1234-567812345678
  friend bool operator==(const Uuid&, const Uuid&) = default;
};

struct Range {
  BigInt start = 0;
  BigInt stop = 0;
  BigInt step = 1;  // never 0
  friend bool operator==(const Range&, const Range&) = default;
};

struct Slice {
  Value start;
  Value stop;
  Value step;
};

struct OrderedDict {
  std::vector<std::pair<Value, Value>> items;
  Value attributes;  // the instance __dict__ a subclass or an assignment gave it (BUILD), or None
};

struct DefaultDict {
  Value default_factory;  // a global (builtins.list, …) or None
  std::vector<std::pair<Value, Value>> items;
};

struct Counter {
  std::vector<std::pair<Value, Value>> items;
};

struct Deque {
  std::vector<Value> items;
  std::optional<std::int64_t> maxlen;
};

// An enum member: Python pickles it as `cls(value)` (a REDUCE of the class with one argument),
// which has the same shape as many other reductions, so only classes registered with
// Registry::add_enum are recognised automatically; view<EnumMember> reads any such call.
// Its name is not in the pickle, so its repr (<Color.RED: 1>) cannot be printed.
struct EnumMember {
  Value cls;  // Kind::global
  Value value;  // None when pickled by name
  // Set when the pickle names the member instead, as getattr(cls, 'NAME') (Enum.__reduce_ex__ of
  // some CPython 3.11 releases, Debian's 3.11.2 among them); written back in that form.
  std::optional<std::string> name;
};

// types.SimpleNamespace or argparse.Namespace: attributes in the pickle's order.
struct Namespace {
  enum class Type : std::uint8_t { simple, argparse };
  Type type = Type::simple;
  std::vector<std::pair<std::string, Value>> attributes;
};

using Typed = std::variant<Date, Time, DateTime, Timedelta, Timezone, Decimal, Fraction, Complex,
                           Uuid, Range, Slice, OrderedDict, DefaultDict, Counter, Deque, EnumMember,
                           Namespace, numpy::Array, numpy::Dtype, numpy::Scalar>;

// The Value CPython's reduction of the typed value makes (pickle::dumps writes its bytes).
Value to_value(const Typed& typed, const ConvertOptions& options = {});
// Python's repr(), when it can be printed without running code (nullopt for EnumMember, and for
// parts Python would print with an address, such as a defaultdict's function factory). Parts that
// are Values print with pickle::repr.
std::optional<std::string> repr(const Typed& typed, const ConvertOptions& options = {});

// A recognizer: the typed value of an object node it knows, or nullopt when the node is not that
// type. Throws pickle::Error when the node names the type but its arguments are malformed (a
// date's state of 3 bytes, a numpy shape that disagrees with its data).
using Recognizer = std::function<std::optional<Typed>(const Value& object)>;

class Registry {
 public:
  Registry() = default;
  // The recognizers for every type listed at the top of this file.
  static const Registry& standard();

  // Recognizer for objects whose class / callable is the global module.qualname.
  void add(std::string module, std::string qualname, Recognizer recognizer);
  // module.qualname is an Enum class: `cls(value)` objects of it are EnumMembers.
  void add_enum(std::string module, std::string qualname);

  // The typed value of `value` (a Kind::object node), or nullopt when no recognizer takes it;
  // malformed arguments to a known type also give nullopt (see explain()).
  std::optional<Typed> recognize(const Value& value) const;
  // Like recognize, but throws the recognizer's pickle::Error for malformed arguments.
  std::optional<Typed> recognize_or_throw(const Value& value) const;

 private:
  std::map<std::pair<std::string, std::string>, Recognizer> recognizers_;
};

// The class (global) an object node instantiates, seen through copyreg's protocol 0/1 and 2+ forms:
// cls(…), cls.__new__(cls, …), copyreg._reconstructor(cls, base, state), copyreg.__newobj__(cls, …).
// nullopt for other values.
std::optional<std::pair<std::string, std::string>> object_class(const Value& object);

// The typed value as T, throwing pickle::TypeMismatch (naming the type found) when `value` is not a
// T, and the recognizer's pickle::Error when it is malformed.
template <class T>
T view_or_throw(const Value& value, const Registry& registry = Registry::standard());
// nullopt instead of throwing.
template <class T>
std::optional<T> view(const Value& value, const Registry& registry = Registry::standard()) {
  try {
    return view_or_throw<T>(value, registry);
  } catch (const Error&) {
    return std::nullopt;
  }
}

namespace detail {
EnumMember read_enum_member(const Value& value);
std::string_view typed_name(const Typed& typed);
}  // namespace detail

template <class T>
T view_or_throw(const Value& value, const Registry& registry) {
  if constexpr (std::is_same_v<T, EnumMember>) {
    if (auto typed = registry.recognize_or_throw(value)) {
      if (auto* member = std::get_if<EnumMember>(&*typed)) return *member;
    }
    return detail::read_enum_member(value);
  } else {
    auto typed = registry.recognize_or_throw(value);
    if (!typed) throw TypeMismatch("not a recognised object: " + std::string(value.type_name()));
    if (auto* result = std::get_if<T>(&*typed)) return std::move(*result);
    throw TypeMismatch("a " + std::string(detail::typed_name(*typed)) + ", not the type asked for");
  }
}

}  // namespace pickle::types
