// The exception classes of PyTorch Inductor's caching module
// (torch._inductor.runtime.caching.exceptions), as a C++ hierarchy with the same relations:
//
//   PyException                                   Python's Exception
//   ├── PyRuntimeError                            Python's RuntimeError
//   ├── PyTypeError                               Python's TypeError
//   └── CacheError
//       ├── SystemError   (also a PyRuntimeError)
//       │   ├── LockTimeoutError
//       │   └── FileLockTimeoutError
//       └── UserError     (also a PyTypeError)
//           ├── KeyEncodingError   → KeyPicklingError
//           ├── ValueEncodingError → ValuePicklingError
//           └── ValueDecodingError → ValueUnPicklingError
//
// Python's multiple inheritance (SystemError(CacheError, RuntimeError)) is mirrored with virtual
// bases, so there is one std::exception subobject and `catch (const std::exception&)`,
// `catch (const CacheError&)` and `catch (const PyTypeError&)` all catch a KeyPicklingError.
//
// Each error's what() is the message the Python class formats, character for character, e.g.
//   Failed to pickle cache key with type <class 'list'> and value [1, 2].
// and python_class_name() its qualified Python name. A cache error raised because the pickle
// library failed keeps that failure (a pickle::Error from errors.hpp) as its cause().
//
// Which pickle-library failures become which cache error is decided here, in one place:
// raise_pickling_failure and raise_unpickling_failure (see lru/README.md for the table).
#pragma once

#include <exception>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "pickle/errors.hpp"
#include "pickle/value.hpp"

namespace pickle::cache {

// Python's `type(x)` as printed: "<class 'list'>". For inert objects whose class is known (NEWOBJ,
// OBJ, INST, and REDUCE whose callable is a global) the class's qualified name, with "builtins."
// dropped as Python does: "<class 'collections.OrderedDict'>"; a buffer is
// "<class 'pickle.PickleBuffer'>"; a global (a class or function reference) "<class 'type'>".
std::string python_type_repr(const Value& value);
// Python's `str(x)`: the text itself for a str, repr(x) otherwise.
std::string python_str(const Value& value);

// The root: Python's Exception. Holds the message and the cause.
class PyException : public std::exception {
 public:
  const char* what() const noexcept override { return message_.c_str(); }
  const std::string& message() const noexcept { return message_; }
  // The qualified Python class name: "torch._inductor.runtime.caching.exceptions.KeyPicklingError".
  virtual std::string_view python_class_name() const noexcept { return "Exception"; }
  // The failure this error was raised from (Python's __cause__, `raise ... from err`); null if none.
  const std::exception_ptr& cause() const noexcept { return cause_; }
  // Rethrows the cause, if any.
  void rethrow_cause() const {
    if (cause_) std::rethrow_exception(cause_);
  }

 protected:
  PyException(std::string message, std::exception_ptr cause) noexcept
      : message_(std::move(message)), cause_(std::move(cause)) {}
  // Virtual bases are constructed by the most derived class; intermediate classes use this one.
  PyException() noexcept = default;

 private:
  std::string message_;
  std::exception_ptr cause_;
};

#define PICKLE_CACHE_PY_NAME(name) \
  std::string_view python_class_name() const noexcept override { return name; }

// Python's RuntimeError and TypeError, as the second bases of SystemError and UserError.
class PyRuntimeError : public virtual PyException {
 public:
  explicit PyRuntimeError(std::string message, std::exception_ptr cause = nullptr)
      : PyException(std::move(message), std::move(cause)) {}
  PICKLE_CACHE_PY_NAME("RuntimeError")
 protected:
  PyRuntimeError() = default;
};

class PyTypeError : public virtual PyException {
 public:
  explicit PyTypeError(std::string message, std::exception_ptr cause = nullptr)
      : PyException(std::move(message), std::move(cause)) {}
  PICKLE_CACHE_PY_NAME("TypeError")
 protected:
  PyTypeError() = default;
};

// The base classes take their message as Python's Exception(arg) does: str(arg), so
// CacheError("text") has the message "text" and CacheError(Value::list({1})) "[1]".
#define PICKLE_CACHE_BASE_CONSTRUCTORS(cls)                               \
  explicit cls(const Value& argument, std::exception_ptr cause = nullptr) \
      : PyException(python_str(argument), std::move(cause)) {}

class CacheError : public virtual PyException {
 public:
  PICKLE_CACHE_BASE_CONSTRUCTORS(CacheError)
  PICKLE_CACHE_PY_NAME("torch._inductor.runtime.caching.exceptions.CacheError")
 protected:
  CacheError() = default;
};

class SystemError : public CacheError, public PyRuntimeError {
 public:
  PICKLE_CACHE_BASE_CONSTRUCTORS(SystemError)
  PICKLE_CACHE_PY_NAME("torch._inductor.runtime.caching.exceptions.SystemError")
 protected:
  SystemError() = default;
};

// `lock` is Python's str(lock) (e.g. "<unlocked _thread.lock object at 0x7f…>"); `timeout` is the
// number as given (60.0 prints "60.0", 60 prints "60").
class LockTimeoutError : public SystemError {
 public:
  LockTimeoutError(std::string_view lock, const Value& timeout);
  PICKLE_CACHE_PY_NAME("torch._inductor.runtime.caching.exceptions.LockTimeoutError")
};

// `file_lock` is Python's str(flock) (e.g. "<filelock._unix.UnixFileLock object at 0x7f…>").
class FileLockTimeoutError : public SystemError {
 public:
  FileLockTimeoutError(std::string_view file_lock, const Value& timeout);
  PICKLE_CACHE_PY_NAME("torch._inductor.runtime.caching.exceptions.FileLockTimeoutError")
};

class UserError : public CacheError, public PyTypeError {
 public:
  PICKLE_CACHE_BASE_CONSTRUCTORS(UserError)
  PICKLE_CACHE_PY_NAME("torch._inductor.runtime.caching.exceptions.UserError")
 protected:
  UserError() = default;
};

class KeyEncodingError : public UserError {
 public:
  PICKLE_CACHE_BASE_CONSTRUCTORS(KeyEncodingError)
  PICKLE_CACHE_PY_NAME("torch._inductor.runtime.caching.exceptions.KeyEncodingError")
 protected:
  KeyEncodingError() = default;
};

class ValueEncodingError : public UserError {
 public:
  PICKLE_CACHE_BASE_CONSTRUCTORS(ValueEncodingError)
  PICKLE_CACHE_PY_NAME("torch._inductor.runtime.caching.exceptions.ValueEncodingError")
 protected:
  ValueEncodingError() = default;
};

class ValueDecodingError : public UserError {
 public:
  PICKLE_CACHE_BASE_CONSTRUCTORS(ValueDecodingError)
  PICKLE_CACHE_PY_NAME("torch._inductor.runtime.caching.exceptions.ValueDecodingError")
 protected:
  ValueDecodingError() = default;
};

#undef PICKLE_CACHE_BASE_CONSTRUCTORS

// "Failed to pickle cache key with type <class 'list'> and value [1, 2]."
class KeyPicklingError : public KeyEncodingError {
 public:
  explicit KeyPicklingError(const Value& key, std::exception_ptr cause = nullptr);
  // A key that is not a pickle::Value: the caller names the Python type it stands for and gives
  // its repr, e.g. ("tuple", "(1, 2)") → "... with type <class 'tuple'> and value (1, 2).".
  KeyPicklingError(std::string_view python_type_name, std::string_view key_repr,
                   std::exception_ptr cause = nullptr);
  PICKLE_CACHE_PY_NAME("torch._inductor.runtime.caching.exceptions.KeyPicklingError")
};

// "Failed to pickle cache value with type <class 'dict'> and value {}."
class ValuePicklingError : public ValueEncodingError {
 public:
  explicit ValuePicklingError(const Value& value, std::exception_ptr cause = nullptr);
  ValuePicklingError(std::string_view python_type_name, std::string_view value_repr,
                     std::exception_ptr cause = nullptr);
  PICKLE_CACHE_PY_NAME("torch._inductor.runtime.caching.exceptions.ValuePicklingError")
};

// "Failed to unpickle cache value from pickled value b'\x80\x04'."
class ValueUnPicklingError : public ValueDecodingError {
 public:
  explicit ValueUnPicklingError(std::string_view pickled_value, std::exception_ptr cause = nullptr);
  PICKLE_CACHE_PY_NAME("torch._inductor.runtime.caching.exceptions.ValueUnPicklingError")
};

#undef PICKLE_CACHE_PY_NAME

// --- mapping the pickle library's failures to cache errors ------------------------------------
//
// A failure of pickle::dumps that is a pickle::Error (PicklingError of any CPython class,
// UnhashableError, …) is a pickling failure; a failure of pickle::loads that is a pickle::Error
// (UnpicklingError of any CPython class, LimitError, …) is an unpickling failure. Anything else
// (std::bad_alloc, an exception thrown by a user callback) is not a cache error and propagates.
bool is_pickling_failure(const std::exception_ptr& failure) noexcept;
bool is_unpickling_failure(const std::exception_ptr& failure) noexcept;

// Throws ErrorClass(value, failure) when `failure` is a pickling failure; rethrows `failure`
// unchanged otherwise. ErrorClass is any cache error constructible from (const Value&, cause):
// KeyPicklingError, ValuePicklingError, or a base class (whose message is then str(value)).
template <class ErrorClass>
[[noreturn]] void raise_pickling_failure(const std::exception_ptr& failure, const Value& value) {
  if (is_pickling_failure(failure)) throw ErrorClass(value, failure);
  std::rethrow_exception(failure);
}

// Throws ErrorClass(pickled, failure) when `failure` is an unpickling failure (for a base class,
// whose message is str(bytes), the argument is the bytes value); rethrows `failure` otherwise.
template <class ErrorClass>
[[noreturn]] void raise_unpickling_failure(const std::exception_ptr& failure,
                                           std::string_view pickled) {
  if (!is_unpickling_failure(failure)) std::rethrow_exception(failure);
  if constexpr (std::is_base_of_v<ValueUnPicklingError, ErrorClass>) {
    throw ErrorClass(pickled, failure);
  } else {
    throw ErrorClass(Value::bytes(pickled), failure);
  }
}

}  // namespace pickle::cache
