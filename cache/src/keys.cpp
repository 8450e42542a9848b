// Key and value pickling, entry names, the version header and the OS error class.
#include <cerrno>
#include <cstring>
#include <exception>
#include <string>

#include "pickle/cache.hpp"
#include "pickle/lru.hpp"
#include "pickle/writer.hpp"
#include "sha256.hpp"

namespace pickle::cache {

namespace {

WriteOptions write_options(int protocol) {
  WriteOptions options;
  options.protocol = protocol;
  // Protocol 5 is what 3.14 writes by default; the bytes of plain data are the same as 3.11's at
  // protocol 5, but error messages then follow the version that produces such files.
  options.target_minor = protocol >= 5 ? 14 : 11;
  options.identities = Identities::cpython;
  return options;
}

std::string pickle_key_uncached(const Value& key, int protocol) {
  std::exception_ptr failure;
  try {
    return dumps(key, write_options(protocol));
  } catch (...) {
    failure = std::current_exception();
  }
  raise_pickling_failure<KeyPicklingError>(failure, key);
}

}  // namespace

std::string version_header(int version) {
  return std::string(reinterpret_cast<const char*>(detail::sha256(std::to_string(version)).data()),
                     version_header_size);
}

std::string pickle_key(const Value& key, int protocol) {
  static LruCache<std::string(const Value&, int)> memo(&pickle_key_uncached);
  return memo(key, protocol);
}

std::string pickle_value(const Value& value, int protocol) {
  std::exception_ptr failure;
  try {
    return dumps(value, write_options(protocol));
  } catch (...) {
    failure = std::current_exception();
  }
  raise_pickling_failure<ValuePicklingError>(failure, value);
}

std::string entry_name_of_pickled_key(std::string_view pickled_key) {
  return detail::sha256_hex(pickled_key).substr(0, 32);
}

std::string entry_name(const Value& key, int protocol) {
  return entry_name_of_pickled_key(pickle_key(key, protocol));
}

bool is_entry_name(std::string_view name) noexcept {
  if (name.size() != 32) return false;
  for (char c : name) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

namespace {

std::string os_error_message(int error_number, const std::string& operation,
                             const std::filesystem::path& path) {
  // Python's OSError str: "[Errno 13] Permission denied: '/path'"; the operation is added in front
  // because C++ callers have no traceback.
  return operation + ": [Errno " + std::to_string(error_number) + "] " +
         std::strerror(error_number) + ": '" + path.string() + "'";
}

}  // namespace

CacheOSError::CacheOSError(int error_number, const std::string& operation,
                           const std::filesystem::path& path)
    : PyException(os_error_message(error_number, operation, path), nullptr),
      error_number_(error_number),
      path_(path) {}

std::string_view CacheOSError::python_class_name() const noexcept {
  switch (error_number_) {
    case EACCES:
    case EPERM:
      return "PermissionError";
    case ENOENT:
      return "FileNotFoundError";
    case EEXIST:
      return "FileExistsError";
    case EISDIR:
      return "IsADirectoryError";
    case ENOTDIR:
      return "NotADirectoryError";
    case EINTR:
      return "InterruptedError";
    case EAGAIN:
      return "BlockingIOError";
    default:
      return "OSError";
  }
}

}  // namespace pickle::cache
