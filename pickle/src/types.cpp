// Typed views of the standard library's objects: recognised from the object nodes CPython's own
// reductions produce, and turned back into those reductions.
#include "pickle/types.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "types_internal.hpp"

namespace pickle::types {

namespace internal {

void malformed(std::string_view type, const std::string& why) {
  throw Error(PyExc::ValueError, "malformed " + std::string(type) + " in pickle: " + why);
}

bool is_global(const Value& value, std::string_view module, std::string_view qualname) {
  return value.kind() == Kind::global && value.module() == module && value.qualname() == qualname;
}

std::vector<Value> tuple_items(const Value& args, std::string_view type) {
  if (args.kind() != Kind::tuple) malformed(type, "arguments are not a tuple");
  return args.items();
}

std::int64_t small_int(const Value& value, std::string_view type, std::string_view what) {
  if (!value.is_int() || value.is_bool()) malformed(type, std::string(what) + " is not an int");
  const auto v = value.as_int64();
  if (!v) malformed(type, std::string(what) + " is out of range");
  return *v;
}

GlobalPool::GlobalPool(const Value& original) {
  // A few levels of the original object (its callable, arguments, state and their callables) hold
  // every global a reduction of the standard library or numpy uses; the walk is bounded.
  constexpr std::size_t max_visits = 256;
  std::vector<std::pair<Value, int>> stack{{original, 0}};
  std::size_t visits = 0;
  while (!stack.empty() && visits++ < max_visits) {
    auto [value, depth] = stack.back();
    stack.pop_back();
    if (value.kind() == Kind::global) {
      globals_.push_back(value);
      continue;
    }
    if (depth >= 4) continue;
    if (value.kind() == Kind::tuple) {
      for (const Value& item : value.items()) stack.emplace_back(item, depth + 1);
    } else if (value.kind() == Kind::object && value.object_form() == ObjectForm::reduce) {
      stack.emplace_back(value.callable(), depth + 1);
      stack.emplace_back(value.args(), depth + 1);
      for (const auto& [op, first, second] : value.object_ops()) {
        if (op == ObjectOp::build) stack.emplace_back(first, depth + 1);
      }
    } else if (value.kind() == Kind::object && value.object_form() == ObjectForm::newobj) {
      stack.emplace_back(value.callable(), depth + 1);
    }
  }
}

Value GlobalPool::get(std::string_view module, std::string_view qualname) const {
  for (const Value& global : globals_) {
    if (global.module() == module && global.qualname() == qualname) return global;
  }
  return Value::global(module, qualname);
}

}  // namespace internal

using internal::GlobalPool;
using internal::is_global;
using internal::malformed;
using internal::small_int;
using internal::tuple_items;

namespace {

constexpr std::int64_t max_timedelta_days = 999999999;

// What an object node calls, seen through copyreg's forms.
struct Call {
  enum class Shape : std::uint8_t {
    call,           // cls(*args)                                   REDUCE
    new_object,     // cls.__new__(cls, *args)                      NEWOBJ or copyreg.__newobj__
    reconstructor,  // copyreg._reconstructor(cls, base, state0)    protocols 0–1
  };
  Shape shape = Shape::call;
  Value cls;
  std::vector<Value> args;
  std::vector<std::tuple<ObjectOp, Value, Value>> ops;
};

// with_ops = false leaves out the operations (an unknown object may have millions of items).
std::optional<Call> decompose(const Value& object, bool with_ops = true) {
  if (object.kind() != Kind::object) return std::nullopt;
  Call call;
  switch (object.object_form()) {
    case ObjectForm::reduce:
    case ObjectForm::inst:
    case ObjectForm::obj: {
      call.cls = object.callable();
      if (call.cls.kind() != Kind::global) return std::nullopt;
      if (object.args().kind() != Kind::tuple) return std::nullopt;
      call.args = object.args().items();
      if (is_global(call.cls, "copyreg", "_reconstructor")) {
        if (call.args.size() != 3 || call.args[0].kind() != Kind::global) return std::nullopt;
        call.shape = Call::Shape::reconstructor;
        call.cls = call.args[0];
        call.args.erase(call.args.begin());
      } else if (is_global(call.cls, "copyreg", "__newobj__")) {
        if (call.args.empty() || call.args[0].kind() != Kind::global) return std::nullopt;
        call.shape = Call::Shape::new_object;
        call.cls = call.args[0];
        call.args.erase(call.args.begin());
      }
      break;
    }
    case ObjectForm::newobj:
      call.shape = Call::Shape::new_object;
      call.cls = object.callable();
      if (call.cls.kind() != Kind::global || object.args().kind() != Kind::tuple) return std::nullopt;
      call.args = object.args().items();
      break;
    default:
      return std::nullopt;
  }
  if (with_ops) call.ops = object.object_ops();
  return call;
}

void expect_shape(const Call& call, Call::Shape shape, std::string_view type) {
  if (call.shape != shape) malformed(type, "not made the way CPython pickles it");
}

void expect_args(const Call& call, std::size_t min, std::size_t max, std::string_view type) {
  if (call.args.size() < min || call.args.size() > max) {
    malformed(type, "takes " + std::to_string(min) + (min == max ? "" : "–" + std::to_string(max)) +
                        " arguments, got " + std::to_string(call.args.size()));
  }
}

void expect_no_ops(const Call& call, std::string_view type) {
  if (!call.ops.empty()) malformed(type, "has state or items after creation");
}

// The BUILD state of an object made by object.__reduce_ex__: a dict of str keys (or absent).
std::vector<std::pair<std::string, Value>> attribute_state(const Call& call, std::string_view type,
                                                           bool required) {
  std::vector<std::pair<std::string, Value>> attributes;
  if (call.ops.empty()) {
    if (required) malformed(type, "has no state");
    return attributes;
  }
  if (call.ops.size() != 1 || std::get<0>(call.ops[0]) != ObjectOp::build) {
    malformed(type, "has operations other than one BUILD");
  }
  const Value& state = std::get<1>(call.ops[0]);
  if (state.kind() != Kind::dict) malformed(type, "state is not a dict");
  for (auto& [key, value] : state.dict_items()) {
    if (!key.is_str()) malformed(type, "attribute name is not a str");
    attributes.emplace_back(std::string(key.as_str()), value);
  }
  return attributes;
}

const GlobalPool& no_pool() {
  static const GlobalPool pool{Value()};
  return pool;
}

Value make_call(const GlobalPool& pool, std::string_view module, std::string_view qualname,
                std::initializer_list<Value> args) {
  return Value::object(ObjectForm::reduce, pool.get(module, qualname), Value::tuple(args));
}

// An object as object.__reduce_ex__(protocol) makes it for a class without __getnewargs__.
Value make_default_reduced(const GlobalPool& pool, std::string_view module, std::string_view qualname,
                           int protocol) {
  if (protocol < 2) {
    return make_call(pool, "copyreg", "_reconstructor",
                     {pool.get(module, qualname), pool.get("builtins", "object"), Value()});
  }
  return Value::object(ObjectForm::newobj, pool.get(module, qualname), Value::tuple());
}

Value attributes_dict(const std::vector<std::pair<std::string, Value>>& attributes) {
  Value dict = Value::dict();
  for (const auto& [name, value] : attributes) dict.set_item(Value(name), value);
  return dict;
}

// --- datetime ------------------------------------------------------------------------------------

bool is_leap(int year) { return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0); }
int days_in_month(int year, int month) {
  static constexpr int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && is_leap(year) ? 29 : days[month - 1];
}

void check_date(int year, int month, int day, std::string_view type) {
  if (year < 1 || year > 9999) malformed(type, "year " + std::to_string(year) + " is out of range");
  if (month < 1 || month > 12) malformed(type, "month must be in 1..12");
  if (day < 1 || day > days_in_month(year, month)) malformed(type, "day is out of range for month");
}

void check_time(int hour, int minute, int second, int microsecond, std::string_view type) {
  if (hour > 23 || minute > 59 || second > 59 || microsecond > 999999) {
    malformed(type, "time field out of range");
  }
}

std::string_view state_bytes(const Value& value, std::size_t size, std::string_view type) {
  if (value.kind() != Kind::bytes) malformed(type, "state is not bytes");
  const std::string_view bytes = value.as_bytes();
  if (bytes.size() != size) malformed(type, "state is not " + std::to_string(size) + " bytes");
  return bytes;
}

int byte_at(std::string_view bytes, std::size_t i) { return static_cast<unsigned char>(bytes[i]); }

Value optional_tzinfo(const Call& call, std::string_view type) {
  if (call.args.size() < 2) return Value();
  const Value& tzinfo = call.args[1];
  // CPython writes the tzinfo argument only for aware values.
  if (tzinfo.is_none()) malformed(type, "tzinfo argument is None");
  return tzinfo;
}

Date read_date(const Call& call) {
  constexpr std::string_view type = "datetime.date";
  expect_shape(call, Call::Shape::call, type);
  expect_args(call, 1, 1, type);
  expect_no_ops(call, type);
  const std::string_view s = state_bytes(call.args[0], 4, type);
  Date date{byte_at(s, 0) * 256 + byte_at(s, 1), byte_at(s, 2), byte_at(s, 3)};
  check_date(date.year, date.month, date.day, type);
  return date;
}

Time read_time(const Call& call) {
  constexpr std::string_view type = "datetime.time";
  expect_shape(call, Call::Shape::call, type);
  expect_args(call, 1, 2, type);
  expect_no_ops(call, type);
  const std::string_view s = state_bytes(call.args[0], 6, type);
  Time time;
  time.hour = byte_at(s, 0) & 0x7F;
  time.fold = (byte_at(s, 0) & 0x80) != 0;
  time.minute = byte_at(s, 1);
  time.second = byte_at(s, 2);
  time.microsecond = (byte_at(s, 3) << 16) | (byte_at(s, 4) << 8) | byte_at(s, 5);
  check_time(time.hour, time.minute, time.second, time.microsecond, type);
  time.tzinfo = optional_tzinfo(call, type);
  return time;
}

DateTime read_datetime(const Call& call) {
  constexpr std::string_view type = "datetime.datetime";
  expect_shape(call, Call::Shape::call, type);
  expect_args(call, 1, 2, type);
  expect_no_ops(call, type);
  const std::string_view s = state_bytes(call.args[0], 10, type);
  DateTime dt;
  dt.year = byte_at(s, 0) * 256 + byte_at(s, 1);
  dt.month = byte_at(s, 2) & 0x7F;
  dt.fold = (byte_at(s, 2) & 0x80) != 0;
  dt.day = byte_at(s, 3);
  dt.hour = byte_at(s, 4);
  dt.minute = byte_at(s, 5);
  dt.second = byte_at(s, 6);
  dt.microsecond = (byte_at(s, 7) << 16) | (byte_at(s, 8) << 8) | byte_at(s, 9);
  check_date(dt.year, dt.month, dt.day, type);
  check_time(dt.hour, dt.minute, dt.second, dt.microsecond, type);
  dt.tzinfo = optional_tzinfo(call, type);
  return dt;
}

Timedelta read_timedelta(const Call& call) {
  constexpr std::string_view type = "datetime.timedelta";
  expect_shape(call, Call::Shape::call, type);
  expect_args(call, 3, 3, type);
  expect_no_ops(call, type);
  Timedelta delta;
  delta.days = small_int(call.args[0], type, "days");
  const std::int64_t seconds = small_int(call.args[1], type, "seconds");
  const std::int64_t microseconds = small_int(call.args[2], type, "microseconds");
  if (delta.days < -max_timedelta_days || delta.days > max_timedelta_days || seconds < 0 ||
      seconds >= 86400 || microseconds < 0 || microseconds >= 1000000) {
    malformed(type, "fields are not normalised");
  }
  delta.seconds = static_cast<std::int32_t>(seconds);
  delta.microseconds = static_cast<std::int32_t>(microseconds);
  return delta;
}

Timezone read_timezone(const Call& call) {
  constexpr std::string_view type = "datetime.timezone";
  expect_shape(call, Call::Shape::call, type);
  expect_args(call, 1, 2, type);
  expect_no_ops(call, type);
  const auto offset_call = decompose(call.args[0]);
  if (!offset_call || !is_global(offset_call->cls, "datetime", "timedelta")) {
    malformed(type, "offset is not a timedelta");
  }
  Timezone tz;
  tz.offset = read_timedelta(*offset_call);
  // Strictly between -timedelta(hours=24) and timedelta(hours=24).
  if (tz.offset.days < -1 || tz.offset.days > 0 ||
      (tz.offset.days == -1 && tz.offset.seconds == 0 && tz.offset.microseconds == 0)) {
    malformed(type, "offset must be strictly between -24 and 24 hours");
  }
  if (call.args.size() == 2) {
    if (!call.args[1].is_str()) malformed(type, "name is not a str");
    tz.name = std::string(call.args[1].as_str());
  }
  return tz;
}

std::optional<Timezone> as_timezone(const Value& tzinfo) {
  const auto call = decompose(tzinfo);
  if (!call || !is_global(call->cls, "datetime", "timezone")) return std::nullopt;
  try {
    return read_timezone(*call);
  } catch (const Error&) {
    return std::nullopt;
  }
}

Value timedelta_value(const GlobalPool& pool, const Timedelta& delta) {
  return make_call(pool, "datetime", "timedelta", {Value(delta.days), Value(delta.seconds), Value(delta.microseconds)});
}

Value timezone_value(const GlobalPool& pool, const Timezone& tz) {
  if (tz.name) return make_call(pool, "datetime", "timezone", {timedelta_value(pool, tz.offset), Value(*tz.name)});
  return make_call(pool, "datetime", "timezone", {timedelta_value(pool, tz.offset)});
}

std::string time_state(int hour, int minute, int second, int microsecond) {
  std::string s;
  s += static_cast<char>(hour);
  s += static_cast<char>(minute);
  s += static_cast<char>(second);
  s += static_cast<char>((microsecond >> 16) & 0xFF);
  s += static_cast<char>((microsecond >> 8) & 0xFF);
  s += static_cast<char>(microsecond & 0xFF);
  return s;
}

std::string date_state(int year, int month, int day) {
  std::string s;
  s += static_cast<char>((year >> 8) & 0xFF);
  s += static_cast<char>(year & 0xFF);
  s += static_cast<char>(month);
  s += static_cast<char>(day);
  return s;
}

Value with_tzinfo(const GlobalPool& pool, std::string_view qualname, std::string state, const Value& tzinfo) {
  if (tzinfo.is_none()) return make_call(pool, "datetime", qualname, {Value::bytes(state)});
  return make_call(pool, "datetime", qualname, {Value::bytes(state), tzinfo});
}

// --- Decimal -------------------------------------------------------------------------------------

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    if (x != b[i]) return false;
  }
  return true;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Digits with single '_' between them (as Python's number syntax allows); nullopt otherwise.
std::optional<std::string> digit_run(std::string_view text) {
  std::string digits;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (is_digit(text[i])) {
      digits += text[i];
    } else if (text[i] == '_' && i > 0 && i + 1 < text.size() && is_digit(text[i - 1]) &&
               is_digit(text[i + 1])) {
      continue;
    } else {
      return std::nullopt;
    }
  }
  return digits;
}

std::string strip_leading_zeros(std::string digits) {
  const std::size_t first = digits.find_first_not_of('0');
  digits.erase(0, first == std::string::npos ? digits.size() : first);
  return digits;
}

std::string_view trim(std::string_view text) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  while (!text.empty() && space(text.front())) text.remove_prefix(1);
  while (!text.empty() && space(text.back())) text.remove_suffix(1);
  return text;
}

// --- Fraction ------------------------------------------------------------------------------------

BigInt parse_integer(std::string_view text, std::string_view type) {
  bool negative = false;
  if (!text.empty() && (text[0] == '+' || text[0] == '-')) {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  const auto digits = digit_run(text);
  if (!digits || digits->empty()) malformed(type, "invalid literal");
  if (digits->size() > 4300) malformed(type, "more than 4300 digits");
  BigInt value(*digits);
  return negative ? BigInt(-value) : value;
}

Fraction read_fraction(const Call& call) {
  constexpr std::string_view type = "fractions.Fraction";
  expect_shape(call, Call::Shape::call, type);
  expect_args(call, 1, 2, type);
  expect_no_ops(call, type);
  if (call.args.size() == 2) {
    for (const Value& part : call.args) {
      if (!part.is_int() || part.is_bool()) malformed(type, "numerator and denominator must be ints");
    }
    return Fraction::make(call.args[0].as_bigint(), call.args[1].as_bigint());
  }
  if (!call.args[0].is_str()) malformed(type, "argument is not a str");
  const std::string_view text = trim(call.args[0].as_str());
  const std::size_t slash = text.find('/');
  if (slash == std::string_view::npos) return Fraction::make(parse_integer(text, type), 1);
  std::string_view denominator = text.substr(slash + 1);
  if (!denominator.empty() && (denominator[0] == '+' || denominator[0] == '-')) {
    malformed(type, "signed denominator");
  }
  return Fraction::make(parse_integer(text.substr(0, slash), type), parse_integer(denominator, type));
}

// --- the rest ------------------------------------------------------------------------------------

Decimal read_decimal(const Call& call) {
  constexpr std::string_view type = "decimal.Decimal";
  expect_shape(call, Call::Shape::call, type);
  expect_args(call, 1, 1, type);
  expect_no_ops(call, type);
  if (!call.args[0].is_str()) malformed(type, "argument is not a str");
  return Decimal::parse(call.args[0].as_str());
}

Complex read_complex(const Call& call) {
  constexpr std::string_view type = "complex";
  expect_shape(call, Call::Shape::call, type);
  expect_args(call, 2, 2, type);
  expect_no_ops(call, type);
  if (!call.args[0].is_float() || !call.args[1].is_float()) malformed(type, "parts are not floats");
  return {call.args[0].as_float(), call.args[1].as_float()};
}

Uuid read_uuid(const Call& call) {
  constexpr std::string_view type = "uuid.UUID";
  if (call.shape == Call::Shape::call) malformed(type, "not made the way CPython pickles it");
  if (call.shape == Call::Shape::reconstructor) {
    if (!is_global(call.args[0], "builtins", "object") || !call.args[1].is_none()) {
      malformed(type, "unexpected copyreg._reconstructor arguments");
    }
  } else {
    expect_args(call, 0, 0, type);
  }
  const auto attributes = attribute_state(call, type, true);
  Uuid uuid;
  bool have_int = false;
  for (const auto& [name, value] : attributes) {
    if (name == "int") {
      if (!value.is_int() || value.is_bool()) malformed(type, "int is not an int");
      uuid = Uuid{Uuid::from_int(value.as_bigint()).bytes, uuid.is_safe};
      have_int = true;
    } else if (name == "is_safe") {
      const std::int64_t safe = small_int(value, type, "is_safe");
      if (safe != 0 && safe != -1) malformed(type, "is_safe must be 0 or -1");
      uuid.is_safe = static_cast<int>(safe);
    } else {
      malformed(type, "unexpected attribute " + name);
    }
  }
  if (!have_int) malformed(type, "state has no 'int'");
  if (attributes.size() == 2 && attributes[0].first != "int") malformed(type, "state out of order");
  return uuid;
}

Range read_range(const Call& call) {
  constexpr std::string_view type = "range";
  expect_shape(call, Call::Shape::call, type);
  expect_args(call, 3, 3, type);
  expect_no_ops(call, type);
  for (const Value& part : call.args) {
    if (!part.is_int() || part.is_bool()) malformed(type, "arguments are not ints");
  }
  Range range{call.args[0].as_bigint(), call.args[1].as_bigint(), call.args[2].as_bigint()};
  if (range.step == 0) malformed(type, "step is zero");
  return range;
}

Slice read_slice(const Call& call) {
  constexpr std::string_view type = "slice";
  expect_shape(call, Call::Shape::call, type);
  expect_args(call, 3, 3, type);
  expect_no_ops(call, type);
  return {call.args[0], call.args[1], call.args[2]};
}

std::vector<std::pair<Value, Value>> set_items(const Call& call, std::string_view type,
                                               Value* attributes) {
  std::vector<std::pair<Value, Value>> items;
  bool built = false;
  for (const auto& [op, first, second] : call.ops) {
    if (op == ObjectOp::setitem && !built) {
      items.emplace_back(first, second);
    } else if (op == ObjectOp::build && attributes != nullptr && !built) {
      // CPython writes the state after the items, and only when there is one.
      if (first.kind() != Kind::dict || first.size() == 0) malformed(type, "state is not a non-empty dict");
      *attributes = first;
      built = true;
    } else {
      malformed(type, "unexpected operation after creation");
    }
  }
  return items;
}

OrderedDict read_ordered_dict(const Call& call) {
  constexpr std::string_view type = "collections.OrderedDict";
  expect_shape(call, Call::Shape::call, type);
  expect_args(call, 0, 0, type);
  OrderedDict dict;
  dict.items = set_items(call, type, &dict.attributes);
  return dict;
}

DefaultDict read_default_dict(const Call& call) {
  constexpr std::string_view type = "collections.defaultdict";
  expect_shape(call, Call::Shape::call, type);
  expect_args(call, 0, 1, type);
  DefaultDict dict;
  if (call.args.size() == 1) {
    // CPython writes no argument for a None factory.
    if (call.args[0].is_none()) malformed(type, "factory argument is None");
    dict.default_factory = call.args[0];
  }
  dict.items = set_items(call, type, nullptr);
  return dict;
}

Counter read_counter(const Call& call) {
  constexpr std::string_view type = "collections.Counter";
  expect_shape(call, Call::Shape::call, type);
  expect_args(call, 1, 1, type);
  expect_no_ops(call, type);
  if (call.args[0].kind() != Kind::dict) malformed(type, "argument is not a dict");
  return {call.args[0].dict_items()};
}

Deque read_deque(const Call& call) {
  constexpr std::string_view type = "collections.deque";
  expect_shape(call, Call::Shape::call, type);
  expect_args(call, 0, 2, type);
  Deque deque;
  if (call.args.size() == 1) malformed(type, "takes 0 or 2 arguments");
  if (call.args.size() == 2) {
    if (call.args[0].kind() != Kind::tuple || call.args[0].size() != 0) {
      malformed(type, "first argument is not ()");
    }
    const std::int64_t maxlen = small_int(call.args[1], type, "maxlen");
    if (maxlen < 0) malformed(type, "maxlen must be non-negative");
    deque.maxlen = maxlen;
  }
  for (const auto& [op, first, second] : call.ops) {
    if (op != ObjectOp::append) malformed(type, "unexpected operation after creation");
    deque.items.push_back(first);
  }
  if (deque.maxlen && deque.items.size() > static_cast<std::size_t>(*deque.maxlen)) {
    malformed(type, "more items than maxlen");
  }
  return deque;
}

Namespace read_simple_namespace(const Call& call) {
  constexpr std::string_view type = "types.SimpleNamespace";
  expect_shape(call, Call::Shape::call, type);
  expect_args(call, 0, 0, type);
  return {Namespace::Type::simple, attribute_state(call, type, true)};
}

Namespace read_argparse_namespace(const Call& call) {
  constexpr std::string_view type = "argparse.Namespace";
  if (call.shape == Call::Shape::call) malformed(type, "not made the way CPython pickles it");
  if (call.shape == Call::Shape::reconstructor) {
    if (!is_global(call.args[0], "builtins", "object") || !call.args[1].is_none()) {
      malformed(type, "unexpected copyreg._reconstructor arguments");
    }
  } else {
    expect_args(call, 0, 0, type);
  }
  auto attributes = attribute_state(call, type, false);
  if (!call.ops.empty() && attributes.empty()) malformed(type, "empty state is written as none");
  return {Namespace::Type::argparse, std::move(attributes)};
}

template <class T>
Recognizer recognizer(T (*read)(const Call&)) {
  return [read](const Value& value) -> std::optional<Typed> {
    const auto call = decompose(value);
    if (!call) return std::nullopt;
    return Typed(read(*call));
  };
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

}  // namespace

// --- Timedelta, Date, Time, DateTime ---------------------------------------------------------------

std::chrono::microseconds Timedelta::to_chrono() const {
  // int64 microseconds cover about ±292,000 years; timedelta reaches ±2.7 million.
  std::int64_t total = 0;
  if (__builtin_mul_overflow(days, std::int64_t{86400000000}, &total) ||
      __builtin_add_overflow(total, std::int64_t{seconds} * 1000000 + microseconds, &total)) {
    throw Error(PyExc::OverflowError, "timedelta too large for std::chrono::microseconds");
  }
  return std::chrono::microseconds(total);
}

Timedelta Timedelta::from_chrono(std::chrono::microseconds duration) {
  const std::int64_t total = duration.count();
  constexpr std::int64_t per_day = std::int64_t{86400} * 1000000;
  const std::int64_t days = floor_div(total, per_day);
  const std::int64_t rest = total - days * per_day;
  if (days < -max_timedelta_days || days > max_timedelta_days) {
    throw Error(PyExc::OverflowError, "days=" + std::to_string(days) + "; must have magnitude <= 999999999");
  }
  return {days, static_cast<std::int32_t>(rest / 1000000), static_cast<std::int32_t>(rest % 1000000)};
}

std::chrono::year_month_day Date::to_chrono() const {
  return std::chrono::year_month_day{std::chrono::year(year), std::chrono::month(static_cast<unsigned>(month)),
                                     std::chrono::day(static_cast<unsigned>(day))};
}

Date Date::from_chrono(std::chrono::year_month_day date) {
  if (!date.ok()) throw Error(PyExc::ValueError, "invalid date");
  Date result{static_cast<int>(date.year()), static_cast<int>(static_cast<unsigned>(date.month())),
              static_cast<int>(static_cast<unsigned>(date.day()))};
  if (result.year < 1 || result.year > 9999) {
    throw Error(PyExc::ValueError, "year " + std::to_string(result.year) + " is out of range");
  }
  return result;
}

std::optional<Timezone> Time::timezone() const { return as_timezone(tzinfo); }

std::chrono::microseconds Time::since_midnight() const {
  return std::chrono::hours(hour) + std::chrono::minutes(minute) + std::chrono::seconds(second) +
         std::chrono::microseconds(microsecond);
}

std::optional<Timezone> DateTime::timezone() const { return as_timezone(tzinfo); }

std::chrono::local_time<std::chrono::microseconds> DateTime::to_local() const {
  const std::chrono::local_days midnight{date().to_chrono()};
  return midnight + std::chrono::hours(hour) + std::chrono::minutes(minute) + std::chrono::seconds(second) +
         std::chrono::microseconds(microsecond);
}

std::optional<std::chrono::sys_time<std::chrono::microseconds>> DateTime::to_sys() const {
  const auto tz = timezone();
  if (!tz) return std::nullopt;
  return std::chrono::sys_time<std::chrono::microseconds>(to_local().time_since_epoch() - tz->offset.to_chrono());
}

DateTime DateTime::from_local(std::chrono::local_time<std::chrono::microseconds> wall) {
  const auto midnight = std::chrono::floor<std::chrono::days>(wall);
  const Date date = Date::from_chrono(std::chrono::year_month_day{midnight});
  std::int64_t rest = (wall - midnight).count();
  DateTime dt;
  dt.year = date.year;
  dt.month = date.month;
  dt.day = date.day;
  dt.microsecond = static_cast<int>(rest % 1000000);
  rest /= 1000000;
  dt.second = static_cast<int>(rest % 60);
  rest /= 60;
  dt.minute = static_cast<int>(rest % 60);
  dt.hour = static_cast<int>(rest / 60);
  return dt;
}

DateTime DateTime::from_sys(std::chrono::sys_time<std::chrono::microseconds> instant, const Timezone& tz) {
  DateTime dt = from_local(std::chrono::local_time<std::chrono::microseconds>(instant.time_since_epoch() +
                                                                               tz.offset.to_chrono()));
  dt.tzinfo = timezone_value(no_pool(), tz);
  return dt;
}

// --- Decimal ---------------------------------------------------------------------------------------

Decimal Decimal::parse(std::string_view input) {
  const auto invalid = [&]() -> Error {
    return Error(PyExc::ValueError, "invalid literal for Decimal: '" + std::string(input) + "'");
  };
  // CPython's decimal ignores underscores anywhere in the text.
  std::string without_underscores;
  for (const char c : trim(input)) {
    if (c != '_') without_underscores += c;
  }
  std::string_view text = without_underscores;
  Decimal d;
  if (!text.empty() && (text[0] == '+' || text[0] == '-')) {
    d.negative = text[0] == '-';
    text.remove_prefix(1);
  }
  if (iequals(text, "inf") || iequals(text, "infinity")) {
    d.special = Special::infinity;
    d.digits.clear();
    return d;
  }
  const bool snan = text.size() >= 4 && iequals(text.substr(0, 4), "snan");
  if (snan || (text.size() >= 3 && iequals(text.substr(0, 3), "nan"))) {
    d.special = snan ? Special::snan : Special::nan;
    const auto payload = digit_run(text.substr(snan ? 4 : 3));
    if (!payload) throw invalid();
    d.digits = strip_leading_zeros(*payload);
    return d;
  }
  std::string_view mantissa = text;
  std::string_view exponent_text;
  const std::size_t e = text.find_first_of("eE");
  if (e != std::string_view::npos) {
    mantissa = text.substr(0, e);
    exponent_text = text.substr(e + 1);
    if (exponent_text.empty()) throw invalid();
  }
  const std::size_t point = mantissa.find('.');
  const auto whole = digit_run(mantissa.substr(0, point));
  std::optional<std::string> fraction = std::string();
  if (point != std::string_view::npos) fraction = digit_run(mantissa.substr(point + 1));
  if (!whole || !fraction || (whole->empty() && fraction->empty())) throw invalid();
  std::int64_t exponent = 0;
  if (!exponent_text.empty()) {
    bool exponent_negative = false;
    if (exponent_text[0] == '+' || exponent_text[0] == '-') {
      exponent_negative = exponent_text[0] == '-';
      exponent_text.remove_prefix(1);
    }
    const auto exponent_digits = digit_run(exponent_text);
    if (!exponent_digits || exponent_digits->empty()) throw invalid();
    const std::string significant = strip_leading_zeros(*exponent_digits);
    // libmpdec's limit is far below this; past it Python raises too.
    if (significant.size() > 18) throw Error(PyExc::ValueError, "Decimal exponent out of range");
    exponent = significant.empty() ? 0 : std::stoll(significant);
    if (exponent_negative) exponent = -exponent;
  }
  d.exponent = exponent - static_cast<std::int64_t>(fraction->size());
  d.digits = strip_leading_zeros(*whole + *fraction);
  if (d.digits.empty()) d.digits = "0";
  return d;
}

std::string Decimal::to_string() const {
  std::string out = negative ? "-" : "";
  switch (special) {
    case Special::infinity:
      return out + "Infinity";
    case Special::nan:
      return out + "NaN" + digits;
    case Special::snan:
      return out + "sNaN" + digits;
    case Special::finite:
      break;
  }
  const std::int64_t count = static_cast<std::int64_t>(digits.size());
  const std::int64_t left_digits = exponent + count;
  const std::int64_t dot_place = exponent <= 0 && left_digits > -6 ? left_digits : 1;
  if (dot_place <= 0) {
    out += "0.";
    out.append(static_cast<std::size_t>(-dot_place), '0');
    out += digits;
  } else if (dot_place >= count) {
    out += digits;
    out.append(static_cast<std::size_t>(dot_place - count), '0');
  } else {
    out.append(digits, 0, static_cast<std::size_t>(dot_place));
    out += '.';
    out.append(digits, static_cast<std::size_t>(dot_place));
  }
  if (left_digits != dot_place) {
    const std::int64_t shown = left_digits - dot_place;
    out += 'E';
    out += shown < 0 ? '-' : '+';
    out += std::to_string(shown < 0 ? -shown : shown);
  }
  return out;
}

// --- Fraction, Uuid --------------------------------------------------------------------------------

Fraction Fraction::make(BigInt numerator, BigInt denominator) {
  if (denominator == 0) throw Error(PyExc::ValueError, "Fraction(" + numerator.str() + ", 0)");
  BigInt divisor = boost::multiprecision::gcd(numerator, denominator);
  if (divisor == 0) divisor = 1;
  if (denominator < 0) divisor = -divisor;
  return {numerator / divisor, denominator / divisor};
}

std::string Fraction::to_string() const {
  if (denominator == 1) return numerator.str();
  return numerator.str() + "/" + denominator.str();
}

BigInt Uuid::as_int() const {
  BigInt value = 0;
  for (const std::uint8_t byte : bytes) value = (value << 8) | byte;
  return value;
}

Uuid Uuid::from_int(const BigInt& value) {
  if (value < 0 || value >= (BigInt(1) << 128)) throw Error(PyExc::ValueError, "int is out of range (need a 128-bit value)");
  Uuid uuid;
  BigInt rest = value;
  for (std::size_t i = 16; i-- > 0;) {
    uuid.bytes[i] = static_cast<std::uint8_t>(static_cast<unsigned>(rest & 0xFF));
    rest >>= 8;
  }
  return uuid;
}

std::string Uuid::to_string() const {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += hex[bytes[i] >> 4];
    out += hex[bytes[i] & 0xF];
  }
  return out;
}

// --- conversion back -------------------------------------------------------------------------------

namespace {

struct ToValue {
  const ConvertOptions& options;
  GlobalPool pool{options.original};

  Value operator()(const Date& d) const {
    check_date(d.year, d.month, d.day, "datetime.date");
    return make_call(pool, "datetime", "date", {Value::bytes(date_state(d.year, d.month, d.day))});
  }
  Value operator()(const Time& t) const {
    check_time(t.hour, t.minute, t.second, t.microsecond, "datetime.time");
    // CPython writes the fold only from protocol 4 on.
    const bool fold = t.fold && options.protocol > 3;
    return with_tzinfo(pool, "time", time_state(t.hour | (fold ? 0x80 : 0), t.minute, t.second, t.microsecond),
                       t.tzinfo);
  }
  Value operator()(const DateTime& dt) const {
    check_date(dt.year, dt.month, dt.day, "datetime.datetime");
    check_time(dt.hour, dt.minute, dt.second, dt.microsecond, "datetime.datetime");
    return with_tzinfo(pool, "datetime",
                       date_state(dt.year, dt.month | (dt.fold && options.protocol > 3 ? 0x80 : 0), dt.day) +
                           time_state(dt.hour, dt.minute, dt.second, dt.microsecond),
                       dt.tzinfo);
  }
  Value operator()(const Timedelta& delta) const { return timedelta_value(pool, delta); }
  Value operator()(const Timezone& tz) const { return timezone_value(pool, tz); }
  Value operator()(const Decimal& d) const { return make_call(pool, "decimal", "Decimal", {Value(d.to_string())}); }
  Value operator()(const Fraction& f) const {
    if (options.target_minor >= 11) {
      return make_call(pool, "fractions", "Fraction", {Value(f.numerator), Value(f.denominator)});
    }
    return make_call(pool, "fractions", "Fraction", {Value(f.to_string())});
  }
  Value operator()(const Complex& c) const { return make_call(pool, "builtins", "complex", {Value(c.real), Value(c.imag)}); }
  Value operator()(const Uuid& u) const {
    Value object = make_default_reduced(pool, "uuid", "UUID", options.protocol);
    Value state = Value::dict();
    state.set_item("int", Value(u.as_int()));
    if (u.is_safe) state.set_item("is_safe", *u.is_safe);
    object.add_object_op(ObjectOp::build, state);
    return object;
  }
  Value operator()(const Range& r) const {
    return make_call(pool, "builtins", "range", {Value(r.start), Value(r.stop), Value(r.step)});
  }
  Value operator()(const Slice& s) const { return make_call(pool, "builtins", "slice", {s.start, s.stop, s.step}); }
  Value operator()(const OrderedDict& d) const {
    Value object = make_call(pool, "collections", "OrderedDict", {});
    for (const auto& [key, value] : d.items) object.add_object_op(ObjectOp::setitem, key, value);
    if (!d.attributes.is_none()) object.add_object_op(ObjectOp::build, d.attributes);
    return object;
  }
  Value operator()(const DefaultDict& d) const {
    Value object = d.default_factory.is_none() ? make_call(pool, "collections", "defaultdict", {})
                                                : make_call(pool, "collections", "defaultdict", {d.default_factory});
    for (const auto& [key, value] : d.items) object.add_object_op(ObjectOp::setitem, key, value);
    return object;
  }
  Value operator()(const Counter& c) const {
    Value dict = Value::dict();
    for (const auto& [key, value] : c.items) dict.set_item(key, value);
    return make_call(pool, "collections", "Counter", {dict});
  }
  Value operator()(const Deque& d) const {
    Value object = d.maxlen ? make_call(pool, "collections", "deque", {Value::tuple(), Value(*d.maxlen)})
                            : make_call(pool, "collections", "deque", {});
    for (const Value& item : d.items) object.add_object_op(ObjectOp::append, item);
    return object;
  }
  Value operator()(const EnumMember& m) const {
    if (m.cls.kind() != Kind::global) throw TypeMismatch("an enum member's class must be a global");
    if (m.name) {
      return Value::object(ObjectForm::reduce, pool.get("builtins", "getattr"), Value::tuple({m.cls, Value(*m.name)}));
    }
    return Value::object(ObjectForm::reduce, m.cls, Value::tuple({m.value}));
  }
  Value operator()(const Namespace& n) const {
    if (n.type == Namespace::Type::simple) {
      Value object = make_call(pool, "types", "SimpleNamespace", {});
      object.add_object_op(ObjectOp::build, attributes_dict(n.attributes));
      return object;
    }
    Value object = make_default_reduced(pool, "argparse", "Namespace", options.protocol);
    if (!n.attributes.empty()) object.add_object_op(ObjectOp::build, attributes_dict(n.attributes));
    return object;
  }
  Value operator()(const numpy::Array& a) const { return internal::numpy_to_value(a, options); }
  Value operator()(const numpy::Dtype& d) const { return internal::numpy_to_value(d, options); }
  Value operator()(const numpy::Scalar& s) const { return internal::numpy_to_value(s, options); }
};

}  // namespace

Value to_value(const Typed& typed, const ConvertOptions& options) {
  const ToValue convert{options};
  return std::visit(convert, typed);
}

// --- registry --------------------------------------------------------------------------------------

void Registry::add(std::string module, std::string qualname, Recognizer recognizer) {
  recognizers_[{std::move(module), std::move(qualname)}] = std::move(recognizer);
}

void Registry::add_enum(std::string module, std::string qualname) {
  add(std::move(module), std::move(qualname), [](const Value& value) -> std::optional<Typed> {
    return Typed(detail::read_enum_member(value));
  });
}

std::optional<std::pair<std::string, std::string>> object_class(const Value& object) {
  const auto call = decompose(object, false);
  if (!call) return std::nullopt;
  return std::pair<std::string, std::string>(call->cls.module(), call->cls.qualname());
}

std::optional<Typed> Registry::recognize_or_throw(const Value& value) const {
  if (value.kind() != Kind::object) return std::nullopt;
  // The reduce callable first (numpy's _reconstruct, scalar, _frombuffer), then the class seen
  // through copyreg's forms.
  const ObjectForm form = value.object_form();
  if (form == ObjectForm::reduce || form == ObjectForm::newobj) {
    const Value callable = value.callable();
    if (callable.kind() == Kind::global) {
      const auto found = recognizers_.find(std::pair<std::string, std::string>(callable.module(), callable.qualname()));
      if (found != recognizers_.end()) return found->second(value);
    }
  }
  const auto cls = object_class(value);
  if (!cls) return std::nullopt;
  const auto found = recognizers_.find(*cls);
  if (found == recognizers_.end()) return std::nullopt;
  return found->second(value);
}

std::optional<Typed> Registry::recognize(const Value& value) const {
  try {
    return recognize_or_throw(value);
  } catch (const Error&) {
    return std::nullopt;
  }
}

const Registry& Registry::standard() {
  static const Registry registry = [] {
    Registry r;
    r.add("datetime", "date", recognizer(read_date));
    r.add("datetime", "time", recognizer(read_time));
    r.add("datetime", "datetime", recognizer(read_datetime));
    r.add("datetime", "timedelta", recognizer(read_timedelta));
    r.add("datetime", "timezone", recognizer(read_timezone));
    r.add("decimal", "Decimal", recognizer(read_decimal));
    r.add("fractions", "Fraction", recognizer(read_fraction));
    r.add("builtins", "complex", recognizer(read_complex));
    r.add("uuid", "UUID", recognizer(read_uuid));
    r.add("builtins", "range", recognizer(read_range));
    r.add("builtins", "slice", recognizer(read_slice));
    r.add("collections", "OrderedDict", recognizer(read_ordered_dict));
    r.add("collections", "defaultdict", recognizer(read_default_dict));
    r.add("collections", "Counter", recognizer(read_counter));
    r.add("collections", "deque", recognizer(read_deque));
    r.add("types", "SimpleNamespace", recognizer(read_simple_namespace));
    r.add("argparse", "Namespace", recognizer(read_argparse_namespace));
    internal::add_numpy_recognizers(r);
    return r;
  }();
  return registry;
}

namespace detail {

EnumMember read_enum_member(const Value& value) {
  constexpr std::string_view type = "enum member";
  const auto call = decompose(value);
  if (!call) throw TypeMismatch("not an enum member: " + std::string(value.type_name()));
  expect_shape(*call, Call::Shape::call, type);
  if (is_global(call->cls, "builtins", "getattr") && call->args.size() == 2 &&
      call->args[0].kind() == Kind::global && call->args[1].is_str()) {
    expect_no_ops(*call, type);
    return {call->args[0], Value(), std::string(call->args[1].as_str())};
  }
  expect_args(*call, 1, 1, type);
  expect_no_ops(*call, type);
  return {call->cls, call->args[0], std::nullopt};
}

std::string_view typed_name(const Typed& typed) {
  static constexpr std::string_view names[] = {
      "datetime.date", "datetime.time", "datetime.datetime", "datetime.timedelta",
      "datetime.timezone", "decimal.Decimal", "fractions.Fraction", "complex", "uuid.UUID", "range",
      "slice", "collections.OrderedDict", "collections.defaultdict", "collections.Counter",
      "collections.deque", "enum member", "namespace", "numpy.ndarray", "numpy.dtype",
      "numpy scalar"};
  static_assert(std::size(names) == std::variant_size_v<Typed>);
  return names[typed.index()];
}

}  // namespace detail

}  // namespace pickle::types
