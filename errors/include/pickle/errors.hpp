// The error hierarchy of the pickle library.
//
// Every failure the library reports derives from pickle::Error. Reader failures carry the byte
// offset and opcode where they happened and the name of the exception class CPython's C unpickler
// raises for the same input, so that a C++ caller can map a failure exactly as a Python caller would.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace pickle {

// The CPython exception classes a (un)pickling failure corresponds to.
enum class PyExc : std::uint8_t {
  UnpicklingError,
  PicklingError,
  EOFError,
  ValueError,
  TypeError,
  OverflowError,
  UnicodeDecodeError,
  UnicodeEncodeError,
  AttributeError,
  KeyError,
  IndexError,
  MemoryError,
  RecursionError,
  LookupError,
  ModuleNotFoundError,
};

// The Python spelling of the class, e.g. "EOFError", "UnpicklingError".
std::string_view py_exc_name(PyExc exc) noexcept;

// Base of every exception the library throws.
class Error : public std::runtime_error {
 public:
  Error(PyExc python_class, const std::string& message)
      : std::runtime_error(message), python_class_(python_class) {}
  // The CPython exception class raised for the same failure.
  PyExc python_class() const noexcept { return python_class_; }
  std::string_view python_class_name() const noexcept { return py_exc_name(python_class_); }

 private:
  PyExc python_class_;
};

// Reading a pickle failed: malformed, truncated or refused input.
class UnpicklingError : public Error {
 public:
  static constexpr std::size_t no_offset = static_cast<std::size_t>(-1);

  UnpicklingError(PyExc python_class, const std::string& message, std::size_t offset = no_offset,
                  std::optional<std::uint8_t> opcode = std::nullopt)
      : Error(python_class, message), offset_(offset), opcode_(opcode) {}

  // Offset of the opcode being executed (or of the byte where input ran out), from the start of the
  // pickle; no_offset when unknown.
  std::size_t offset() const noexcept { return offset_; }
  // The opcode byte being executed, if any.
  std::optional<std::uint8_t> opcode() const noexcept { return opcode_; }

 private:
  std::size_t offset_;
  std::optional<std::uint8_t> opcode_;
};

// A configured resource limit was exceeded (issue: hardened reader).
class LimitError : public UnpicklingError {
 public:
  LimitError(std::string_view limit, const std::string& message, std::size_t offset,
             std::optional<std::uint8_t> opcode,
             PyExc python_class = PyExc::UnpicklingError)  // a limit CPython also has keeps its class
      : UnpicklingError(python_class, message, offset, opcode), limit_(limit) {}
  // The name of the limit, as spelled in pickle::Limits.
  const std::string& limit() const noexcept { return limit_; }

 private:
  std::string limit_;
};

// Writing a pickle failed (the value cannot be represented at the requested protocol, …).
class PicklingError : public Error {
 public:
  explicit PicklingError(const std::string& message, PyExc python_class = PyExc::PicklingError)
      : Error(python_class, message) {}
};

// An operation needed a hashable value (dict key, set element) and got an unhashable one.
// Python raises TypeError("unhashable type: 'list'").
class UnhashableError : public Error {
 public:
  explicit UnhashableError(std::string_view type_name)
      : Error(PyExc::TypeError, "unhashable type: '" + std::string(type_name) + "'") {}
};

// A Value accessor was used on a value of another kind (as_str() on an int, …).
class TypeMismatch : public Error {
 public:
  explicit TypeMismatch(const std::string& message) : Error(PyExc::TypeError, message) {}
};

}  // namespace pickle
