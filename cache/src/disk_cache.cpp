#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <exception>
#include <random>
#include <utility>

#include "pickle/cache.hpp"
#include "pickle/reader.hpp"

namespace pickle::cache {

namespace {

constexpr std::string_view entry_module = "torch._inductor.runtime.caching.interfaces";
constexpr std::string_view entry_class = "CacheEntry";

// The whole of a regular file; nullopt when the path is missing or is not a regular file (symbolic
// links are not followed: the cache lives in a shared temporary directory).
std::optional<std::string> read_regular_file(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR) return std::nullopt;
    throw CacheOSError(errno, "Cannot open a cache entry", path);
  }
  struct stat status {};
  if (::fstat(fd, &status) != 0 || !S_ISREG(status.st_mode)) {
    ::close(fd);
    return std::nullopt;
  }
  std::string content;
  char buffer[65536];
  for (;;) {
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      throw CacheOSError(error, "Cannot read a cache entry", path);
    }
    if (got == 0) break;
    content.append(buffer, static_cast<std::size_t>(got));
  }
  ::close(fd);
  return content;
}

const std::string& version_header_bytes() {
  static const std::string header = version_header(format_version);
  return header;
}

// The state and size of a regular file from its first bytes, without reading the rest; nullopt
// when it is missing or not a regular file.
std::optional<std::pair<EntryState, std::uintmax_t>> peek_regular_file(const std::filesystem::path& path);

EntryState state_of(std::string_view content) {
  const std::string& header = version_header_bytes();
  if (content.size() < version_header_size || content.substr(0, version_header_size) != header) {
    return EntryState::wrong_header;
  }
  return content.size() == version_header_size ? EntryState::empty_payload : EntryState::valid;
}

std::optional<std::pair<EntryState, std::uintmax_t>> peek_regular_file(
    const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR) return std::nullopt;
    throw CacheOSError(errno, "Cannot open a cache entry", path);
  }
  struct stat status {};
  if (::fstat(fd, &status) != 0 || !S_ISREG(status.st_mode)) {
    ::close(fd);
    return std::nullopt;
  }
  // One byte past the header tells an empty payload from a valid entry.
  char head[version_header_size + 1];
  std::size_t got = 0;
  while (got < sizeof head) {
    const ssize_t n = ::read(fd, head + got, sizeof head - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return std::make_pair(state_of(std::string_view(head, got)),
                        static_cast<std::uintmax_t>(status.st_size));
}

bool unlink_if_present(const std::filesystem::path& path) {
  if (::unlink(path.c_str()) == 0) return true;
  if (errno == ENOENT) return false;
  throw CacheOSError(errno, "Cannot remove a cache entry", path);
}

void check_entry_name(std::string_view name) {
  if (!is_entry_name(name)) {
    throw Error(PyExc::ValueError,
                "not a cache entry name (32 lowercase hex digits): '" + std::string(name) + "'");
  }
}

bool is_permission_failure(const CacheOSError& error) {
  return error.error_number() == EACCES || error.error_number() == EPERM ||
         error.error_number() == EROFS;
}

// A temporary file in the cache directory, removed when it goes out of scope.
class TemporaryFile {
 public:
  TemporaryFile(const std::filesystem::path& dir, std::string_view name, std::string_view content) {
    static std::atomic<unsigned> counter{0};
    static thread_local std::mt19937_64 random(std::random_device{}());
    for (int attempt = 0;; ++attempt) {
      // Starts with a dot and is longer than 32 characters: never taken for an entry.
      path_ = dir / (".tmp." + std::string(name) + "." + std::to_string(::getpid()) + "." +
                     std::to_string(counter++) + "." + std::to_string(random() % 1000000));
      fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd_ >= 0) break;
      if (errno != EEXIST || attempt > 100) {
        throw CacheOSError(errno, "Cannot create a temporary file", path_);
      }
    }
    std::size_t written = 0;
    while (written < content.size()) {
      const ssize_t put = ::write(fd_, content.data() + written, content.size() - written);
      if (put < 0) {
        if (errno == EINTR) continue;
        const int error = errno;
        discard();
        throw CacheOSError(error, "Cannot write a temporary file", path_);
      }
      written += static_cast<std::size_t>(put);
    }
    if (::close(fd_) != 0) {
      const int error = errno;
      fd_ = -1;
      discard();
      throw CacheOSError(error, "Cannot write a temporary file", path_);
    }
    fd_ = -1;
  }
  ~TemporaryFile() { discard(); }
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  void discard() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (!path_.empty()) ::unlink(path_.c_str());
    path_.clear();
  }
  std::filesystem::path path_;
  int fd_ = -1;
};

}  // namespace

std::string_view entry_state_name(EntryState state) noexcept {
  switch (state) {
    case EntryState::valid:
      return "valid";
    case EntryState::wrong_header:
      return "wrong-header";
    case EntryState::empty_payload:
      return "empty-payload";
    case EntryState::not_a_file:
      return "not-a-file";
  }
  return "unknown";
}

std::shared_ptr<const LoadPolicy> entry_value_policy() {
  static const std::shared_ptr<const LoadPolicy> policy = [] {
    auto built = std::make_shared<SafeLoadPolicy>(PolicyPreset::deny_unknown);
    built->allow_global(entry_module, entry_class);
    return built;
  }();
  return policy;
}

std::optional<MemoizerEntry> as_memoizer_entry(const Value& value) {
  if (value.kind() != Kind::object || value.object_form() != ObjectForm::newobj) return std::nullopt;
  const Value cls = value.callable();
  if (cls.kind() != Kind::global || cls.module() != entry_module || cls.qualname() != entry_class) {
    return std::nullopt;
  }
  const Value state = value.state();
  if (state.kind() != Kind::dict) return std::nullopt;
  std::optional<Value> params = state.get(Value("encoded_params"));
  std::optional<Value> result = state.get(Value("encoded_result"));
  if (!params || !result) return std::nullopt;
  return MemoizerEntry{*params, *result};
}

Value make_memoizer_entry(Value encoded_params, Value encoded_result) {
  Value entry = Value::object(ObjectForm::newobj, Value::global(entry_module, entry_class),
                              Value::tuple());
  // A dataclass instance pickles its __dict__, in field order, as the BUILD state.
  Value state = Value::dict();
  state.set_item(Value("encoded_params"), std::move(encoded_params));
  state.set_item(Value("encoded_result"), std::move(encoded_result));
  entry.add_object_op(ObjectOp::build, std::move(state));
  return entry;
}

OnDiskCache::OnDiskCache(const std::filesystem::path& sub_dir, OnDiskCacheOptions options)
    : OnDiskCache(InDirectory{},
                  (options.base_dir ? *options.base_dir : default_cache_dir()) / "cache" / sub_dir,
                  options) {}  // a copy: the order of evaluation of arguments is unspecified

OnDiskCache::OnDiskCache(InDirectory, std::filesystem::path cache_dir, OnDiskCacheOptions options)
    : cache_dir_(std::move(cache_dir)), options_(std::move(options)) {
  // Path("a") / "" is "a" in Python, but "a/" here; keep the names Python shows.
  if (!cache_dir_.has_filename() && cache_dir_.has_parent_path() &&
      cache_dir_ != cache_dir_.root_path()) {
    cache_dir_ = cache_dir_.parent_path();
  }
  if (!options_.policy) options_.policy = entry_value_policy();
}

OnDiskCache OnDiskCache::in_directory(std::filesystem::path cache_dir, OnDiskCacheOptions options) {
  return OnDiskCache(InDirectory{}, std::move(cache_dir), std::move(options));
}

std::filesystem::path OnDiskCache::path_of(const Value& key) const {
  return cache_dir_ / entry_name(key, options_.protocol);
}

std::optional<FileLock> OnDiskCache::lock_for_writing() {
  std::optional<FileLock> lock;
  std::error_code error;
  std::filesystem::create_directories(cache_dir_, error);
  if (error) throw CacheOSError(error.value(), "Cannot create the cache directory", cache_dir_);
  if (!options_.lock) return lock;
  lock.emplace(lock_path(), options_.lock_timeout);
  lock->acquire();
  return lock;
}

std::optional<FileLock> OnDiskCache::lock_for_reading() {
  std::optional<FileLock> lock;
  if (!options_.lock) return lock;
  std::error_code error;
  if (!std::filesystem::is_directory(cache_dir_, error)) return lock;  // nothing to read
  lock.emplace(lock_path(), options_.lock_timeout);
  try {
    lock->acquire();
  } catch (const CacheOSError& failure) {
    // A directory this process may not write (no lock file to open): read without the lock.
    if (!is_permission_failure(failure)) throw;
    lock.reset();
  }
  return lock;
}

RawEntry OnDiskCache::read_entry(std::string_view name) {
  check_entry_name(name);
  RawEntry entry;
  std::optional<std::string> content = read_regular_file(cache_dir_ / name);
  if (!content) {
    entry.state = EntryState::not_a_file;
    return entry;
  }
  entry.state = state_of(*content);
  if (entry.state == EntryState::valid) entry.payload = content->substr(version_header_size);
  return entry;
}

std::optional<Value> OnDiskCache::get_locked(const std::string& name, bool may_remove) {
  RawEntry entry = read_entry(name);
  switch (entry.state) {
    case EntryState::not_a_file:
      return std::nullopt;
    case EntryState::wrong_header:
    case EntryState::empty_payload:
      if (may_remove) {
        try {
          unlink_if_present(cache_dir_ / name);
        } catch (const CacheOSError& failure) {
          // Python's get() would raise here; a reader without write access still gets its miss.
          if (!is_permission_failure(failure)) throw;
        }
      }
      return std::nullopt;
    case EntryState::valid:
      break;
  }
  return load_value(entry.payload);
}

std::optional<Value> OnDiskCache::get(const Value& key) {
  const std::string name = entry_name(key, options_.protocol);
  return get_entry(name);
}

std::optional<Value> OnDiskCache::get_entry(std::string_view name) {
  check_entry_name(name);
  std::optional<FileLock> lock = lock_for_reading();
  // Without the lock (a directory this process cannot write), removing a stale file could remove
  // an entry a locked writer has just put in its place.
  const bool may_remove =
      options_.stale_entries == StaleEntries::remove && (lock || !options_.lock);
  return get_locked(std::string(name), may_remove);
}

bool OnDiskCache::insert_locked(const std::string& name, std::string_view file_bytes) {
  const std::filesystem::path final_path = cache_dir_ / name;
  std::optional<TemporaryFile> temporary;
  // Each round either finds a valid entry (first writer wins), or removes a stale one, or links.
  // Only writers that take no lock (Python's memoizers) can make it take more than two rounds.
  for (int round = 0; round < 64; ++round) {
    struct stat status {};
    if (::lstat(final_path.c_str(), &status) == 0) {
      if (!S_ISREG(status.st_mode)) {
        throw CacheOSError(EEXIST, "A cache entry's path is not a regular file", final_path);
      }
      RawEntry existing = read_entry(name);
      if (existing.state == EntryState::valid) return false;
      if (existing.state != EntryState::not_a_file) unlink_if_present(final_path);
      continue;
    }
    if (errno != ENOENT) throw CacheOSError(errno, "Cannot inspect a cache entry", final_path);
    if (!temporary) temporary.emplace(cache_dir_, name, file_bytes);
    if (::link(temporary->path().c_str(), final_path.c_str()) == 0) return true;
    if (errno != EEXIST) throw CacheOSError(errno, "Cannot link a cache entry into place", final_path);
  }
  throw CacheOSError(EEXIST, "A cache entry kept changing while being inserted", final_path);
}

bool OnDiskCache::insert(const Value& key, const Value& value) {
  const std::string name = entry_name(key, options_.protocol);
  std::string file_bytes = version_header_bytes();
  file_bytes += pickle_value(value, options_.protocol);
  std::optional<FileLock> lock = lock_for_writing();
  return insert_locked(name, file_bytes);
}

bool OnDiskCache::insert_pickled(std::string_view name, std::string_view pickled_value) {
  check_entry_name(name);
  if (pickled_value.empty()) {
    throw Error(PyExc::ValueError, "an entry's pickled value cannot be empty (it reads as stale)");
  }
  std::string file_bytes = version_header_bytes();
  file_bytes += pickled_value;
  std::optional<FileLock> lock = lock_for_writing();
  return insert_locked(std::string(name), file_bytes);
}

bool OnDiskCache::remove(const Value& key) { return remove_entry(entry_name(key, options_.protocol)); }

bool OnDiskCache::remove_entry(std::string_view name) {
  check_entry_name(name);
  std::error_code error;
  if (!std::filesystem::is_directory(cache_dir_, error)) return false;
  std::optional<FileLock> lock = lock_for_writing();
  return unlink_if_present(cache_dir_ / name);
}

std::vector<EntryInfo> OnDiskCache::scan() {
  std::vector<EntryInfo> entries;
  std::error_code error;
  if (!std::filesystem::is_directory(cache_dir_, error)) return entries;
  std::filesystem::directory_iterator it(cache_dir_, error);
  if (error) throw CacheOSError(error.value(), "Cannot list the cache directory", cache_dir_);
  for (const auto& item : it) {
    std::string name = item.path().filename().string();
    if (!is_entry_name(name)) continue;
    EntryInfo info;
    info.name = std::move(name);
    struct stat status {};
    if (::lstat(item.path().c_str(), &status) != 0) continue;  // removed meanwhile
    if (!S_ISREG(status.st_mode)) {
      info.state = EntryState::not_a_file;
    } else {
      auto peeked = peek_regular_file(item.path());
      if (!peeked) continue;  // removed or replaced meanwhile
      info.state = peeked->first;
      info.file_size = peeked->second;
    }
    entries.push_back(std::move(info));
  }
  std::sort(entries.begin(), entries.end(),
            [](const EntryInfo& a, const EntryInfo& b) { return a.name < b.name; });
  return entries;
}

Value OnDiskCache::load_value(std::string_view pickled_value) const {
  ReadOptions read_options;
  read_options.policy = options_.policy;
  std::exception_ptr failure;
  try {
    return loads(pickled_value, read_options);
  } catch (...) {
    failure = std::current_exception();
  }
  raise_unpickling_failure<ValueUnPicklingError>(failure, pickled_value);
}

}  // namespace pickle::cache
