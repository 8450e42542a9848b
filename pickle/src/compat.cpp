#include "compat.hpp"

#include <algorithm>
#include <span>
#include <tuple>

namespace pickle::detail {
namespace {

struct NameRow {
  std::string_view module;
  std::string_view name;
  std::string_view mapped_module;
  std::string_view mapped_name;
  int first_minor;
  int last_minor;
};

struct ModuleRow {
  std::string_view module;
  std::string_view mapped_module;
  int first_minor;
  int last_minor;
};

#include "compat_tables.inc"

// The reading tables are those of CPython 3.11, the reference interpreter.
constexpr int reading_minor = 11;

bool holds(int first_minor, int last_minor, int minor) noexcept {
  return first_minor <= minor && minor <= last_minor;
}

const NameRow* find_name(std::span<const NameRow> rows, QualifiedName key, int minor) noexcept {
  auto it = std::lower_bound(rows.begin(), rows.end(), key, [](const NameRow& row, QualifiedName k) {
    return std::tie(row.module, row.name) < std::tie(k.module, k.name);
  });
  for (; it != rows.end() && it->module == key.module && it->name == key.name; ++it) {
    if (holds(it->first_minor, it->last_minor, minor)) return &*it;
  }
  return nullptr;
}

const ModuleRow* find_module(std::span<const ModuleRow> rows, std::string_view module,
                             int minor) noexcept {
  auto it = std::lower_bound(rows.begin(), rows.end(), module,
                             [](const ModuleRow& row, std::string_view m) { return row.module < m; });
  for (; it != rows.end() && it->module == module; ++it) {
    if (holds(it->first_minor, it->last_minor, minor)) return &*it;
  }
  return nullptr;
}

QualifiedName map_name(std::span<const NameRow> names, std::span<const ModuleRow> modules,
                       QualifiedName name, int minor) noexcept {
  if (const NameRow* row = find_name(names, name, minor)) {
    return {row->mapped_module, row->mapped_name};
  }
  if (const ModuleRow* row = find_module(modules, name.module, minor)) {
    return {row->mapped_module, name.name};
  }
  return name;
}

}  // namespace

QualifiedName py2_to_py3(QualifiedName name) noexcept {
  return map_name(name_mapping, import_mapping, name, reading_minor);
}

QualifiedName py3_to_py2(QualifiedName name, int target_minor) noexcept {
  return map_name(reverse_name_mapping, reverse_import_mapping, name, target_minor);
}

}  // namespace pickle::detail
