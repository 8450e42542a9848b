// Python's repr() for pickle::Value.
//
// For the builtin kinds the text is exactly what Python 3 prints for the same object: ints, floats
// (shortest round-trip form, inf, nan, -0.0), str with Python's quoting and escaping (the printable
// test follows Unicode general categories, from ICU), bytes, bytearray, containers, and recursive
// containers printed as [...], {...}, (...) like Python's reprlib guard. Sets print in CPython's
// iteration order where it is deterministic (elements whose hashes do not depend on the process's
// string hash seed) and in insertion order otherwise.
//
// Kinds Python would print with its own reprs print in this documented, unambiguous form:
//   global          module.qualname               (a class or function reference, as in `int`)
//   object          module.qualname(*args)        reduce: callable(args...)
//                   module.qualname.__new__(module.qualname, args...)   newobj / newobj_ex
//                   followed by .__setstate__(state) for each BUILD, and .append(x) /
//                   [k] = v / .add(x) for items, all inside <…> when any op is present:
//                   <collections.OrderedDict() [1]=2>
//   persistent id   persistent_load(pid)
//   extension       ext(code)
//   buffer          PickleBuffer(b'…') (read-only: PickleBuffer(b'…', readonly=True))
#pragma once

#include <string>

#include "pickle/value.hpp"

namespace pickle {

// Declared in value.hpp:  std::string repr(const Value& value);

// ascii(): repr with every non-ASCII character escaped.
std::string ascii(const Value& value);

}  // namespace pickle
