// JSON views of pickle values, and the inverse on the JSON-representable subset.
//
//   std::string text = pickle::to_json(pickle::loads(bytes));          // any loaded value
//   pickle::Value v  = pickle::from_json(R"({"a": [1, 2.5, null]})");
//
// The mapping (pickle/JSON.md has the full description and examples):
//
//   None, True, False       null, true, false
//   int                     the exact decimal digits (JSON allows any number of digits; note that
//                           many JSON parsers keep only 53 bits). Ints of more than 14284 bits,
//                           which have more than 4300 digits (CPython's int_max_str_digits), are
//                           {"$int": "0x1f…"} (Python's hex(), linear to write and to read).
//   float                   Python's repr (1.0, 1e+16, -0.0), always with '.' or 'e' so that it
//                           reads back as a float; nan/inf as {"$float": "nan"|"-nan"|"inf"|"-inf"}
//   str                     a JSON string: UTF-8, escaping only '"', '\\' and control characters
//                           as json.dumps(ensure_ascii=False) does; lone surrogates as \udXXX
//                           escapes (never invalid UTF-8). A str holding a high surrogate directly
//                           followed by a low one, which every JSON reader would join into one
//                           character, is {"$codepoints": [55357, 56832, …]}.
//   bytes, bytearray        {"$bytes": "<base64>"}, {"$bytearray": "<base64>"}
//   list                    [ … ]
//   tuple                   {"$tuple": [ … ]}
//   set, frozenset          {"$set": [ … ]}, {"$frozenset": [ … ]}
//   dict                    a JSON object when every key is a str written as a JSON string and
//                           the first key does not start with '$'; otherwise
//                           {"$dict": [[key, value], …]}
//   global                  {"$global": ["module", "qualified.name"]}
//   object                  {"$object": {"form": "reduce", "callable": …, "args": …, "ops": […]}}
//                           (forms reduce, newobj, inst, obj: callable, args; newobj_ex: also
//                           kwargs; persid, binpersid: pid; ext: code, callable). ops are
//                           ["build", state], ["append", item], ["setitem", key, value],
//                           ["additem", item], in the order they were applied.
//   buffer                  {"$buffer": {"data": "<base64>", "index": n, "readonly": bool}}
//
// Sharing: a list, tuple, dict, set, frozenset, bytearray, object or buffer reached more than once
// (shared, or part of a cycle) is written in full where the text first reaches it, as
// {"$id": n, "$value": …} with n counting 0, 1, 2, … in text order, and as {"$ref": n} everywhere
// else. So the output is finite for cycles and linear in the number of distinct nodes for
// memo-doubling pickles. str, bytes, ints, floats and globals are immutable values and are written
// at every place (their sharing is not observable in Python).
//
// Layout is json.dumps's: one line with ", " and ": " by default, or indent=N. The output is always
// valid UTF-8 JSON, identical to what Python's json.dumps(…, ensure_ascii=False) writes for the
// mapped value (with lone surrogates escaped).
//
// from_json reads any JSON text (RFC 8259, plus Python's NaN, Infinity and -Infinity) into the
// value json.loads would build, applying the tags above: an object whose first key starts with '$'
// must be one of the tags, exactly as written by to_json. Like json.loads, equal dict keys of one
// document are one str object (json.decoder's key memo), so that pickle::dumps(from_json(text),
// {.identities = Identities::cpython}) is byte for byte pickle.dumps(json.loads(text)).
// Malformed JSON and misused tags raise pickle::JsonError (CPython class ValueError, as
// json.JSONDecodeError is one), unhashable keys UnhashableError, limits LimitError.
//
// Nothing recurses over the data: a 1,000,000-deep list converts both ways.
#pragma once

#include <cstddef>
#include <limits>
#include <string>
#include <string_view>

#include "pickle/errors.hpp"
#include "pickle/value.hpp"

namespace pickle {

// JSON that cannot be read, or a tag used wrongly. offset() is the byte offset in the text.
class JsonError : public Error {
 public:
  JsonError(const std::string& message, std::size_t offset)
      : Error(PyExc::ValueError, message), offset_(offset) {}
  std::size_t offset() const noexcept { return offset_; }

 private:
  std::size_t offset_;
};

struct JsonOptions {
  // -1: one line, items separated by ", " (json.dumps's default). N >= 0: json.dumps(indent=N),
  // a newline and N spaces per level, items separated by ",".
  int indent = -1;
  // Output larger than this throws LimitError("max_output_bytes"): an unshared str repeated a
  // million times by a small pickle is a large JSON text.
  std::size_t max_output_bytes = std::numeric_limits<std::size_t>::max();
};

struct FromJsonOptions {
  std::size_t max_input_bytes = std::size_t(1) << 32;
  std::size_t max_depth = 100'000'000;  // nesting of arrays and objects
  // Digits of one JSON integer, as CPython's int_max_str_digits (json.loads raises beyond it).
  std::size_t max_int_digits = 4300;
};

std::string to_json(const Value& value, const JsonOptions& options = {});
Value from_json(std::string_view text, const FromJsonOptions& options = {});

}  // namespace pickle
