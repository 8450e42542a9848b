#include "pickle/cache_errors.hpp"

#include <string>

#include "pickle/repr.hpp"

namespace pickle::cache {

namespace {

std::string class_repr(std::string_view python_type_name) {
  std::string text = "<class '";
  text += python_type_name;
  text += "'>";
  return text;
}

// The class an inert object is an instance of, when the pickle says so: the class given to
// NEWOBJ / NEWOBJ_EX / OBJ / INST, or a global called by REDUCE (a class in the common case of
// copyreg-style reductions; for a factory function this names the function).
std::optional<std::string> object_class_name(const Value& object) {
  switch (object.object_form()) {
    case ObjectForm::reduce:
    case ObjectForm::newobj:
    case ObjectForm::newobj_ex:
    case ObjectForm::inst:
    case ObjectForm::obj: break;
    case ObjectForm::persid:
    case ObjectForm::binpersid:
    case ObjectForm::ext: return std::nullopt;
  }
  const Value cls = object.callable();
  if (cls.kind() != Kind::global) return std::nullopt;
  // Python omits the module of builtins in the repr of a class: <class 'int'>.
  if (cls.module() == "builtins") return std::string(cls.qualname());
  std::string name(cls.module());
  name += '.';
  name += cls.qualname();
  return name;
}

std::string pickling_message(std::string_view what, std::string_view type_repr,
                             std::string_view value_repr) {
  std::string message = "Failed to pickle cache ";
  message += what;
  message += " with type ";
  message += type_repr;
  message += " and value ";
  message += value_repr;
  message += '.';
  return message;
}

std::string timeout_message(std::string_view what, std::string_view lock, const Value& timeout) {
  std::string message = "Failed to acquire ";
  message += what;
  message += ' ';
  message += lock;
  message += " within ";
  message += python_str(timeout);
  message += " seconds.";
  return message;
}

}  // namespace

std::string python_type_repr(const Value& value) {
  if (value.kind() == Kind::object) {
    if (auto name = object_class_name(value)) return class_repr(*name);
  }
  // PickleBuffer lives in the pickle module, so Python qualifies it.
  if (value.kind() == Kind::buffer) return class_repr("pickle.PickleBuffer");
  return class_repr(value.type_name());
}

std::string python_str(const Value& value) {
  if (value.is_str()) return std::string(value.as_str());
  return repr(value);
}

LockTimeoutError::LockTimeoutError(std::string_view lock, const Value& timeout)
    : PyException(timeout_message("lock", lock, timeout), nullptr) {}

FileLockTimeoutError::FileLockTimeoutError(std::string_view file_lock, const Value& timeout)
    : PyException(timeout_message("file lock", file_lock, timeout), nullptr) {}

KeyPicklingError::KeyPicklingError(const Value& key, std::exception_ptr cause)
    : PyException(pickling_message("key", python_type_repr(key), repr(key)), std::move(cause)) {}

KeyPicklingError::KeyPicklingError(std::string_view python_type_name, std::string_view key_repr,
                                   std::exception_ptr cause)
    : PyException(pickling_message("key", class_repr(python_type_name), key_repr),
                  std::move(cause)) {}

ValuePicklingError::ValuePicklingError(const Value& value, std::exception_ptr cause)
    : PyException(pickling_message("value", python_type_repr(value), repr(value)),
                  std::move(cause)) {}

ValuePicklingError::ValuePicklingError(std::string_view python_type_name,
                                       std::string_view value_repr, std::exception_ptr cause)
    : PyException(pickling_message("value", class_repr(python_type_name), value_repr),
                  std::move(cause)) {}

ValueUnPicklingError::ValueUnPicklingError(std::string_view pickled_value,
                                           std::exception_ptr cause)
    : PyException("Failed to unpickle cache value from pickled value " +
                      repr(Value::bytes(pickled_value)) + ".",
                  std::move(cause)) {}

namespace {
bool is_library_error(const std::exception_ptr& failure) noexcept {
  if (!failure) return false;
  try {
    std::rethrow_exception(failure);
  } catch (const pickle::Error&) {
    return true;
  } catch (...) {
    return false;
  }
}
}  // namespace

bool is_pickling_failure(const std::exception_ptr& failure) noexcept {
  return is_library_error(failure);
}

bool is_unpickling_failure(const std::exception_ptr& failure) noexcept {
  return is_library_error(failure);
}

}  // namespace pickle::cache
