// Private: Python 2 ↔ 3 module and name mapping, as CPython's _compat_pickle does it.
//
// Reading (protocol < 3, fix_imports): NAME_MAPPING, then IMPORT_MAPPING.
// Writing (protocol < 3, fix_imports): REVERSE_NAME_MAPPING, then REVERSE_IMPORT_MAPPING.
// The tables are generated from CPython's Lib/_compat_pickle.py by tools/gen_compat.py.
#pragma once

#include <string_view>
#include <utility>

namespace pickle::detail {

struct QualifiedName {
  std::string_view module;
  std::string_view name;
};

// The Python 3 name a Python 2 (module, name) stands for; the input itself when unmapped.
// The returned views point into the input or into static tables.
QualifiedName py2_to_py3(QualifiedName name) noexcept;

// The Python 2 name a Python 3 (module, name) is written as at protocols 0–2. `target_minor` is the
// CPython 3.x minor version whose tables to use (3.13 dropped tkinter.tix → Tix).
QualifiedName py3_to_py2(QualifiedName name, int target_minor = 11) noexcept;

}  // namespace pickle::detail
