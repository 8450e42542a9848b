// Python's repr() for pickle::Value.
//
// For the builtin kinds the text is exactly what CPython 3.11 prints for the same object: ints,
// floats (shortest round-trip digits; 1e+16, 1e-05, 0.0001, inf, nan, -0.0), str with Python's
// quoting and escaping (printable means Python 3.11's str.isprintable(), i.e. Unicode 14 general
// categories, from ICU), bytes, bytearray, tuple/list/dict/set/frozenset, and containers being
// printed further up (a list containing itself) as [...], {...}, (...), set(...), frozenset(...).
// Sets print in CPython's iteration order for a set built by adding the items in their insertion
// order (which is how every pickle builds sets) whenever that order is reproducible, i.e. when every
// item's hash is: ints, bools, floats other than nan, the empty str and bytes, and tuples and
// frozensets of those. Other sets (str, bytes, None, nan, objects…: hashes that depend on the
// process) print in insertion order. Ints print all their digits, where CPython refuses beyond 4300
// (ValueError); past 2**131072 (about 39,500 digits), where decimal conversion gets slow, they print
// as an exact hex literal (0x…, -0x…) instead.
// Nothing recurses: a 1,000,000-deep list prints.
//
// Kinds Python could only print by running code print in this form:
//   global          module.qualname                  e.g. collections.OrderedDict
//                   global('mod ule', 'name')        when a part is not a dotted identifier
//   reduce / inst / obj
//                   callable(arg, …)                 the argument tuple's items, e.g.
//                                                    datetime.date(b'\x07\xbc\x05\x07');
//                                                    callable(*args) if args is not a tuple
//   newobj          cls.__new__(cls, arg, …)
//   newobj_ex       cls.__new__(cls, arg, …, **{'k': v})   (kwargs omitted when empty)
//   persistent id   persistent_load(pid)
//   extension       ext(code)
//   buffer          PickleBuffer(b'…') / PickleBuffer(b'…', readonly=True)
// An object with operations applied after creation (BUILD, APPEND(S), SETITEM(S), ADDITEMS) lists
// them in order after the creation, all inside <…>:
//   <collections.OrderedDict() [1]=2 [3]=4>     setitem
//   <mod.C() .__setstate__({'x': 1})>           build
//   <mod.L() .append(1) .append(2)>             append
//   <mod.S() .add(1)>                           additem
// An object reached again while it is being printed (a cycle through its state) prints as <...>.
#pragma once

#include <cstddef>
#include <string>

#include "pickle/value.hpp"

namespace pickle {

// Declared in value.hpp:  std::string repr(const Value& value);

struct ReprOptions {
  // Longest text to produce. Python prints a shared sub-object in full at every reference, so a
  // few hundred bytes of pickle can have a repr of 10^10 characters; past max_size, repr throws
  // pickle::Error(PyExc::MemoryError).
  std::size_t max_size = static_cast<std::size_t>(-1);
  // Objects that pickle/types.hpp recognises (datetime, Decimal, OrderedDict, numpy arrays, …)
  // print as Python prints them: datetime.date(2024, 2, 29). false: the generic object form above.
  bool typed_objects = true;
};

std::string repr(const Value& value, const ReprOptions& options);

// ascii(): repr with every non-ASCII character escaped.
std::string ascii(const Value& value);

}  // namespace pickle
