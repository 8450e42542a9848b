// Caches keyed by pickled keys, compatible with PyTorch Inductor's caching module
// (torch/_inductor/runtime/caching/implementations.py, the generation with _InMemoryCacheImpl and
// _OnDiskCacheImpl): an in-memory cache, and an on-disk cache whose files Python writes and reads.
//
//   pickle::cache::OnDiskCache cache("tuned_mm");          // <tmp>/torchinductor_<user>/cache/tuned_mm
//   std::optional<pickle::Value> hit = cache.get(pickle::parse_literal("((3, 'x'), {})"));
//   cache.insert(key, value);                               // false when the key is already there
//
// On disk an entry is the file <cache dir>/<first 32 hex digits of sha256(pickle.dumps(key))>,
// holding a 4-byte version header (sha256(b"0")[:4] = 5f ec eb 66) and pickle.dumps(value). Keys
// are pickled byte for byte as CPython does, at protocol 4 (CPython 3.8–3.13) or 5 (3.14), so the
// names match the ones Python computes. Facts about the original and its pitfalls:
// /work/shared/reference/inductor-cache.md §5; this module's choices: cache/README.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "pickle/cache_errors.hpp"
#include "pickle/policy.hpp"
#include "pickle/value.hpp"

namespace pickle::cache {

// The protocol CPython 3.8–3.13 pickle.dumps uses by default; 3.14 producers use 5.
inline constexpr int default_protocol = 4;
// _OnDiskCacheImpl._version, and the header derived from it: sha256(str(version).encode())[:4].
inline constexpr int format_version = 0;
inline constexpr std::size_t version_header_size = 4;
std::string version_header(int version = format_version);

// CPython's pickle.dumps(key, protocol) for a key built in C++ or parsed from a literal (written with
// Identities::cpython, so objects CPython always shares are memo hits as in Python), memoized
// (LRU, 64 entries, typed all the way down). Failures raise KeyPicklingError.
std::string pickle_key(const Value& key, int protocol = default_protocol);
// pickle.dumps(value, protocol); failures raise ValuePicklingError. Not memoized (values are
// usually mutable and large).
std::string pickle_value(const Value& value, int protocol = default_protocol);
// sha256(pickled_key).hexdigest()[:32]
std::string entry_name_of_pickled_key(std::string_view pickled_key);
std::string entry_name(const Value& key, int protocol = default_protocol);
// True for names the cache writes: exactly 32 lowercase hex digits.
bool is_entry_name(std::string_view name) noexcept;

// An operating-system failure (no permission to write, read-only file system, …). Python raises
// these raw (OSError and its subclasses, not CacheError); python_class_name() is the subclass
// CPython picks for the errno: "PermissionError", "FileNotFoundError", "OSError", …
class CacheOSError : public PyException {
 public:
  CacheOSError(int error_number, const std::string& operation, const std::filesystem::path& path);
  int error_number() const noexcept { return error_number_; }
  const std::filesystem::path& path() const noexcept { return path_; }
  std::string_view python_class_name() const noexcept override;

 private:
  int error_number_;
  std::filesystem::path path_;
};

// --- base directory ----------------------------------------------------------------------------

// tempfile.gettempdir(): the first of $TMPDIR, $TEMP, $TMP, /tmp, /var/tmp, /usr/tmp and the current
// directory in which a file can be created, made absolute. Throws CacheOSError(FileNotFoundError)
// when there is none, as Python does.
std::filesystem::path python_tempdir();
// getpass.getuser(): $LOGNAME, $USER, $LNAME, $USERNAME (the first that is set and non-empty), else
// the password database's name for the real uid. Throws CacheOSError when there is none.
std::string python_user_name();
// torch's default_cache_dir(): python_tempdir() / ("torchinductor_" + user name with each of
// \ / : * ? " < > | replaced by _). The on-disk cache does not consult TORCHINDUCTOR_CACHE_DIR.
std::filesystem::path default_cache_dir();

// Why the entries of `dir` should not be trusted, or nullopt when they can be: the cache lives in a
// shared temporary directory, where another user may have created torchinductor_<you> first
// (the pycuda advisory, inducer/pycuda#54). Checks `dir` and each parent: a symbolic link, an owner
// other than this user or root, or write permission for group or others without the sticky bit
// (as /tmp has) is a reason. A missing directory is no reason (there is nothing to read).
std::optional<std::string> untrusted_directory_reason(const std::filesystem::path& dir);

// --- in-memory cache ---------------------------------------------------------------------------

// _InMemoryCacheImpl: a map from the pickled key to the value. get() returns nullopt on a miss and
// the stored value on a hit (a stored None is a hit: Value() inside the optional). insert() keeps
// the first value and returns false for a key already present. Like the original, the stored
// handle itself is returned, so a hit on a list aliases the cached list. Thread-safe.
class InMemoryCache {
 public:
  explicit InMemoryCache(int protocol = default_protocol) : protocol_(protocol) {}
  std::optional<Value> get(const Value& key) const;
  bool insert(const Value& key, Value value);
  std::size_t size() const;

 private:
  int protocol_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Value> entries_;
};

// --- the directory lock -----------------------------------------------------------------------

// The lock Python's filelock.FileLock takes on Unix, so C++ and Python processes exclude each other:
// open(path, O_RDWR|O_TRUNC|O_NOFOLLOW|O_CREAT, 0644), flock(LOCK_EX|LOCK_NB) polled every 50 ms,
// and, once locked, a file whose last link is gone (a newer filelock unlinks on release) is dropped
// and the loop starts again. Release unlocks and closes, and never unlinks the file (unlinking a
// lock file others wait on splits them across inodes). One FileLock is one holder: not re-entrant.
class FileLock {
 public:
  // timeout < 0: wait for ever; 0: one attempt.
  FileLock(std::filesystem::path path, std::chrono::duration<double> timeout);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  FileLock(FileLock&& other) noexcept;  // takes over the other's hold
  FileLock& operator=(FileLock&& other) noexcept;

  // Throws FileLockTimeoutError when the timeout passes, CacheOSError when the file cannot be
  // opened at all.
  void acquire();
  // One non-blocking attempt.
  bool try_acquire();
  void release() noexcept;
  bool locked() const noexcept { return fd_ >= 0; }
  const std::filesystem::path& path() const noexcept { return path_; }
  // What FileLockTimeoutError shows in place of Python's str(flock).
  std::string description() const;

 private:
  std::filesystem::path path_;
  std::chrono::duration<double> timeout_;
  int fd_ = -1;
};

// --- on-disk cache -----------------------------------------------------------------------------

// What get() does with a file that has the wrong version header or an empty payload.
enum class StaleEntries : std::uint8_t {
  remove,  // unlink it and report a miss, as Python's get() does (a later insert can then write)
  keep,    // report a miss and leave the file alone (for read-only inspection)
};

struct OnDiskCacheOptions {
  // Replaces default_cache_dir(); the cache then lives in base_dir / "cache" / sub_dir.
  std::optional<std::filesystem::path> base_dir;
  int protocol = default_protocol;  // for keys and for the values this cache writes
  // Take <cache dir>/dir.lock around every operation, as Python's interface layer does.
  bool lock = true;
  std::chrono::duration<double> lock_timeout{60.0};  // locks._DEFAULT_TIMEOUT
  StaleEntries stale_entries = StaleEntries::remove;
  // Policy for reading values; null: entry_value_policy().
  std::shared_ptr<const LoadPolicy> policy;
};

// The default policy for values: PolicyPreset::deny_unknown (builtin data only) plus the one class
// the memoizers store, torch._inductor.runtime.caching.interfaces.CacheEntry.
std::shared_ptr<const LoadPolicy> entry_value_policy();

// The state of an entry file, as scan() and read_entry() see it.
enum class EntryState : std::uint8_t {
  valid,          // the version header and a non-empty payload
  wrong_header,   // shorter than the header, or another header (another version or a foreign file)
  empty_payload,  // the header only (Python removes these on get)
  not_a_file,     // a directory, a symbolic link, a device, …
};
std::string_view entry_state_name(EntryState state) noexcept;  // "valid", "wrong-header", …

struct EntryInfo {
  std::string name;  // the file name (32 hex digits)
  EntryState state = EntryState::valid;
  std::uintmax_t file_size = 0;
};

struct RawEntry {
  EntryState state = EntryState::valid;
  std::string payload;  // the pickled value, without the header (valid entries only)
};

// The memoizers' payload: a CacheEntry dataclass instance.
struct MemoizerEntry {
  Value encoded_params;
  Value encoded_result;
};
// The encoded params and result when `value` is a CacheEntry as the memoizers pickle it.
std::optional<MemoizerEntry> as_memoizer_entry(const Value& value);
// A CacheEntry object that pickles as Python's does (STACK_GLOBAL, EMPTY_TUPLE, NEWOBJ, BUILD).
Value make_memoizer_entry(Value encoded_params, Value encoded_result);

class OnDiskCache {
 public:
  // The cache of `sub_dir` under the base directory: (options.base_dir or default_cache_dir()) /
  // "cache" / sub_dir.
  explicit OnDiskCache(const std::filesystem::path& sub_dir = {}, OnDiskCacheOptions options = {});
  // A cache whose entries are the files of `cache_dir` itself (options.base_dir is ignored).
  static OnDiskCache in_directory(std::filesystem::path cache_dir, OnDiskCacheOptions options = {});

  const std::filesystem::path& cache_dir() const noexcept { return cache_dir_; }
  std::filesystem::path lock_path() const { return cache_dir_ / "dir.lock"; }
  std::filesystem::path path_of(const Value& key) const;
  const OnDiskCacheOptions& options() const noexcept { return options_; }

  // nullopt on a miss. A file with the wrong header or an empty payload is a miss (and is removed
  // under StaleEntries::remove). A payload that does not load raises ValueUnPicklingError (its
  // cause is the pickle::UnpicklingError, or the PolicyError for a refused global); the file is
  // left in place.
  std::optional<Value> get(const Value& key);
  // First writer wins: returns false when a valid entry exists. Otherwise writes header + payload
  // to a temporary file in the cache directory and link(2)s it to the entry's name, so no reader
  // ever sees a partial entry; a stale entry (wrong header, empty payload) is replaced. The value
  // is pickled before anything is written (ValuePicklingError leaves no file).
  bool insert(const Value& key, const Value& value);
  // Removes the key's entry; false when there was none.
  bool remove(const Value& key);

  // The same by file name, for entries whose keys cannot be computed in C++.
  std::optional<Value> get_entry(std::string_view name);
  RawEntry read_entry(std::string_view name);  // no removal; a missing file is not_a_file
  bool insert_pickled(std::string_view name, std::string_view pickled_value);
  bool remove_entry(std::string_view name);
  // Every file whose name is an entry name, sorted by name; dir.lock, temporary files and other
  // names are skipped. An absent directory has no entries.
  std::vector<EntryInfo> scan();
  // pickle.loads of a payload with the cache's policy, ValueUnPicklingError on failure.
  Value load_value(std::string_view pickled_value) const;

 private:
  struct InDirectory {};
  OnDiskCache(InDirectory, std::filesystem::path cache_dir, OnDiskCacheOptions options);
  std::optional<FileLock> lock_for_reading();
  std::optional<FileLock> lock_for_writing();
  std::optional<Value> get_locked(const std::string& name, bool may_remove);
  bool insert_locked(const std::string& name, std::string_view file_bytes);

  std::filesystem::path cache_dir_;
  OnDiskCacheOptions options_;
};

}  // namespace pickle::cache
