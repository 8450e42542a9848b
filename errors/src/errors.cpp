#include "pickle/errors.hpp"

namespace pickle {

std::string_view py_exc_name(PyExc exc) noexcept {
  switch (exc) {
    case PyExc::UnpicklingError: return "UnpicklingError";
    case PyExc::PicklingError: return "PicklingError";
    case PyExc::EOFError: return "EOFError";
    case PyExc::ValueError: return "ValueError";
    case PyExc::TypeError: return "TypeError";
    case PyExc::OverflowError: return "OverflowError";
    case PyExc::UnicodeDecodeError: return "UnicodeDecodeError";
    case PyExc::UnicodeEncodeError: return "UnicodeEncodeError";
    case PyExc::AttributeError: return "AttributeError";
    case PyExc::KeyError: return "KeyError";
    case PyExc::IndexError: return "IndexError";
    case PyExc::MemoryError: return "MemoryError";
    case PyExc::RecursionError: return "RecursionError";
    case PyExc::LookupError: return "LookupError";
    case PyExc::ModuleNotFoundError: return "ModuleNotFoundError";
  }
  return "Exception";
}

}  // namespace pickle
