// The cache module (cache/include/pickle/cache.hpp) without Python: SHA-256 against hashlib's
// digests, key pickles, entry names and entry files against CPython's (tests/cache/*.tsv, written
// by tests/gen_cache_cases.py), the in-memory cache's semantics, the on-disk cache's faults, the
// base directory rule, and pickletool cache.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "pickle/cache.hpp"
#include "pickle/literal.hpp"
#include "pickle/repr.hpp"
#include "pickle/writer.hpp"
#include "sha256.hpp"

namespace {

namespace fs = std::filesystem;
using pickle::Value;
namespace cache = pickle::cache;

fs::path test_data_dir() {
  const char* dir = std::getenv("PICKLE_TEST_DATA");
  return dir != nullptr ? fs::path(dir) : fs::path(__FILE__).parent_path();
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_file(const fs::path& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
}

std::string to_hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : bytes) {
    hex.push_back(digits[c >> 4]);
    hex.push_back(digits[c & 15]);
  }
  return hex;
}

std::string from_hex(std::string_view hex) {
  std::string bytes;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return bytes;
}

std::vector<std::vector<std::string>> read_tsv(const std::string& name) {
  std::ifstream in(test_data_dir() / "cache" / name);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::size_t start = 0;
    for (;;) {
      const std::size_t tab = line.find('\t', start);
      fields.push_back(line.substr(start, tab - start));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    rows.push_back(std::move(fields));
  }
  return rows;
}

std::string misc(const std::string& name) {
  for (const auto& row : read_tsv("misc.tsv")) {
    if (row[0] == name) return from_hex(row[1]);
  }
  ADD_FAILURE() << "no " << name << " in misc.tsv";
  return {};
}

// A fresh directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "pickle_cache_test.XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
    fs::permissions(path_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                               fs::perms::others_read | fs::perms::others_exec);
  }
  ~TempDir() {
    std::error_code error;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, error);
    for (auto it = fs::recursive_directory_iterator(path_, error); it != fs::recursive_directory_iterator();
         it.increment(error)) {
      if (it->is_directory(error)) fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, error);
    }
    fs::remove_all(path_, error);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

cache::OnDiskCacheOptions quick_options() {
  cache::OnDiskCacheOptions options;
  options.lock_timeout = std::chrono::duration<double>(5.0);
  return options;
}

std::vector<std::string> directory_names(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& item : fs::directory_iterator(dir)) names.push_back(item.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// --- SHA-256 ---------------------------------------------------------------------------------

std::string sequence_input(std::size_t length) {
  std::string input(length, '\0');
  for (std::size_t i = 0; i < length; ++i) input[i] = static_cast<char>((i * 131 + 17) % 256);
  return input;
}

std::string vector_input(const std::vector<std::string>& row) {
  if (row[0] == "seq") return sequence_input(std::stoul(row[1]));
  if (row[0] == "a") return std::string(std::stoul(row[1]), 'a');
  return row[1];
}

TEST(Sha256, MatchesHashlibOnBoundaryAndMultiBlockLengths) {
  const auto rows = read_tsv("sha256.tsv");
  ASSERT_GE(rows.size(), 30u);
  for (const auto& row : rows) {
    EXPECT_EQ(cache::detail::sha256_hex(vector_input(row)), row[2]) << row[0] << ' ' << row[1];
  }
}

TEST(Sha256, IncrementalUpdatesInAnyChunkingMatchHashlib) {
  for (const auto& row : read_tsv("sha256.tsv")) {
    const std::string input = vector_input(row);
    if (input.size() > 70000) continue;
    for (std::size_t chunk : {1u, 7u, 63u, 64u, 65u, 1000u}) {
      cache::detail::Sha256 hasher;
      for (std::size_t at = 0; at < input.size(); at += chunk) {
        hasher.update(std::string_view(input).substr(at, chunk));
      }
      EXPECT_EQ(to_hex(std::string_view(reinterpret_cast<const char*>(hasher.finish().data()), 32)),
                row[2])
          << row[0] << ' ' << row[1] << " in chunks of " << chunk;
    }
  }
}

// --- names and bytes -------------------------------------------------------------------------

TEST(Format, VersionHeaderIsPythons) {
  EXPECT_EQ(cache::version_header(), misc("header"));
  EXPECT_EQ(cache::version_header().size(), cache::version_header_size);
}

TEST(Format, KeyPicklesAndEntryNamesAreCPythons) {
  const auto rows = read_tsv("keys.tsv");
  ASSERT_GE(rows.size(), 60u);
  for (const auto& row : rows) {
    const int protocol = std::stoi(row[0]);
    const Value key = pickle::parse_literal(row[1]);
    EXPECT_EQ(to_hex(cache::pickle_key(key, protocol)), row[2]) << row[1] << " protocol " << protocol;
    EXPECT_EQ(cache::entry_name(key, protocol), row[3]) << row[1] << " protocol " << protocol;
    EXPECT_EQ(cache::entry_name_of_pickled_key(from_hex(row[2])), row[3]);
  }
}

TEST(Format, EntryFilesAreByteForBytePythons) {
  for (int protocol : {4, 5}) {
    TempDir dir;
    cache::OnDiskCacheOptions options = quick_options();
    options.protocol = protocol;
    auto disk = cache::OnDiskCache::in_directory(dir.path() / "sub", options);
    for (const auto& row : read_tsv("keys.tsv")) {
      if (std::stoi(row[0]) != protocol) continue;
      const Value key = pickle::parse_literal(row[1]);
      const Value value = pickle::parse_literal(row[4]);
      ASSERT_TRUE(disk.insert(key, value)) << row[1];
      EXPECT_EQ(to_hex(read_file(dir.path() / "sub" / row[3])), row[5]) << row[1];
      std::optional<Value> got = disk.get(key);
      ASSERT_TRUE(got.has_value()) << row[1];
      EXPECT_EQ(pickle::repr(*got), pickle::repr(value)) << row[1];
      EXPECT_TRUE(*got == value) << row[1];
    }
  }
}

TEST(Format, PythonEntryFilesAreFoundByKeyAndByScan) {
  TempDir dir;
  auto disk = cache::OnDiskCache::in_directory(dir.path(), quick_options());
  std::size_t written = 0;
  for (const auto& row : read_tsv("keys.tsv")) {
    if (row[0] != "4") continue;
    write_file(dir.path() / row[3], from_hex(row[5]));
    ++written;
  }
  std::vector<cache::EntryInfo> entries = disk.scan();
  EXPECT_EQ(entries.size(), written);
  for (const auto& entry : entries) EXPECT_EQ(entry.state, cache::EntryState::valid) << entry.name;
  for (const auto& row : read_tsv("keys.tsv")) {
    if (row[0] != "4") continue;
    std::optional<Value> got = disk.get(pickle::parse_literal(row[1]));
    ASSERT_TRUE(got.has_value()) << row[1];
    EXPECT_EQ(pickle::repr(*got), pickle::repr(pickle::parse_literal(row[4]))) << row[1];
    std::optional<Value> by_name = disk.get_entry(row[3]);
    ASSERT_TRUE(by_name.has_value());
    EXPECT_TRUE(*by_name == *got);
  }
}

TEST(Format, MemoizerEntriesPickleAndLoadAsPythons) {
  const Value params = pickle::parse_literal("{'args': (3, 'x'), 'kwargs': {}}");
  const Value result = pickle::parse_literal("[1, 2]");
  for (int protocol : {2, 3, 4, 5}) {
    const std::string expected = misc("memoizer_entry_" + std::to_string(protocol));
    pickle::WriteOptions options;
    options.protocol = protocol;
    options.identities = pickle::Identities::cpython;
    EXPECT_EQ(to_hex(pickle::dumps(cache::make_memoizer_entry(params, result), options)), to_hex(expected))
        << "protocol " << protocol;
    TempDir dir;
    auto disk = cache::OnDiskCache::in_directory(dir.path(), quick_options());
    const Value loaded = disk.load_value(expected);  // the default policy allows CacheEntry
    std::optional<cache::MemoizerEntry> entry = cache::as_memoizer_entry(loaded);
    ASSERT_TRUE(entry.has_value()) << "protocol " << protocol;
    EXPECT_EQ(pickle::repr(entry->encoded_params), pickle::repr(params));
    EXPECT_EQ(pickle::repr(entry->encoded_result), pickle::repr(result));
  }
  EXPECT_FALSE(cache::as_memoizer_entry(pickle::parse_literal("{'encoded_params': 1}")).has_value());
}

TEST(Format, EntryNamesAreExactly32LowercaseHexDigits) {
  EXPECT_TRUE(cache::is_entry_name("3c0cd042a0bfeffbfdfb1a29182fe2e2"));
  EXPECT_FALSE(cache::is_entry_name("3C0CD042A0BFEFFBFDFB1A29182FE2E2"));
  EXPECT_FALSE(cache::is_entry_name("3c0cd042a0bfeffbfdfb1a29182fe2e"));
  EXPECT_FALSE(cache::is_entry_name("dir.lock"));
  EXPECT_FALSE(cache::is_entry_name("../../../../../../../../etc/pass"));
}

// --- in-memory cache -------------------------------------------------------------------------

TEST(InMemoryCache, InsertKeepsTheFirstValueAndReportsIt) {
  cache::InMemoryCache memory;
  const Value key = pickle::parse_literal("((3, 'x'), {})");
  EXPECT_FALSE(memory.get(key).has_value());
  EXPECT_TRUE(memory.insert(key, Value("first")));
  EXPECT_FALSE(memory.insert(pickle::parse_literal("((3, 'x'), {})"), Value("second")));
  ASSERT_TRUE(memory.get(key).has_value());
  EXPECT_EQ(memory.get(key)->as_str(), "first");
  EXPECT_EQ(memory.size(), 1u);
}

TEST(InMemoryCache, ACachedNoneIsAHitNotAMiss) {
  cache::InMemoryCache memory;
  EXPECT_TRUE(memory.insert(Value("k"), Value()));
  std::optional<Value> hit = memory.get(Value("k"));
  ASSERT_TRUE(hit.has_value());
  EXPECT_TRUE(hit->is_none());
  EXPECT_FALSE(memory.get(Value("other")).has_value());
  // Falsy values are hits too (an early version tested the value's truth).
  EXPECT_TRUE(memory.insert(Value(0), Value(false)));
  ASSERT_TRUE(memory.get(Value(0)).has_value());
}

TEST(InMemoryCache, KeysAreTheirPicklesSoEqualKeysOfOtherTypesDiffer) {
  cache::InMemoryCache memory;
  EXPECT_TRUE(memory.insert(Value(1), Value("int")));
  EXPECT_TRUE(memory.insert(Value(true), Value("bool")));
  EXPECT_TRUE(memory.insert(Value(1.0), Value("float")));
  EXPECT_EQ(memory.get(Value(1))->as_str(), "int");
  EXPECT_EQ(memory.get(Value(true))->as_str(), "bool");
  // Unhashable keys work: only their pickles are hashed.
  EXPECT_TRUE(memory.insert(pickle::parse_literal("[1, {'a': 2}]"), Value(3)));
  EXPECT_EQ(memory.get(pickle::parse_literal("[1, {'a': 2}]"))->as_int64(), 3);
}

TEST(InMemoryCache, AHitReturnsTheStoredObjectAsPythonDoes) {
  cache::InMemoryCache memory;
  Value list = Value::list({1});
  memory.insert(Value("k"), list);
  EXPECT_TRUE(memory.get(Value("k"))->is(list));
}

TEST(InMemoryCache, AnUnpicklableKeyIsAKeyPicklingError) {
  cache::InMemoryCache memory;
  const Value buffer = Value::buffer("data", 0, false);  // PickleBuffer needs protocol 5
  EXPECT_THROW(memory.insert(buffer, Value(1)), cache::KeyPicklingError);
  EXPECT_THROW(memory.get(Value::tuple({Value(1), buffer})), cache::KeyPicklingError);
  cache::InMemoryCache protocol5(5);
  EXPECT_TRUE(protocol5.insert(buffer, Value(1)));
}

TEST(InMemoryCache, ConcurrentInsertsOfOneKeyHaveOneWinner) {
  cache::InMemoryCache memory;
  std::atomic<int> winners{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        if (memory.insert(Value::tuple({Value("k"), Value(i)}), Value(t))) ++winners;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(winners.load(), 200);
  EXPECT_EQ(memory.size(), 200u);
}

// --- on-disk cache ---------------------------------------------------------------------------

TEST(OnDiskCache, LivesUnderBaseDirCacheSubDir) {
  TempDir dir;
  cache::OnDiskCacheOptions options = quick_options();
  options.base_dir = dir.path();
  cache::OnDiskCache disk("tuned_mm", options);
  EXPECT_EQ(disk.cache_dir(), dir.path() / "cache" / "tuned_mm");
  EXPECT_EQ(disk.lock_path(), dir.path() / "cache" / "tuned_mm" / "dir.lock");
  cache::OnDiskCache no_sub_dir({}, options);
  EXPECT_EQ(no_sub_dir.cache_dir(), dir.path() / "cache");
  EXPECT_TRUE(disk.insert(Value("k"), Value("v")));
  EXPECT_EQ(directory_names(disk.cache_dir()),
            (std::vector<std::string>{cache::entry_name(Value("k")), "dir.lock"}));
}

TEST(OnDiskCache, FirstWriterWinsAndNoneIsAHit) {
  TempDir dir;
  auto disk = cache::OnDiskCache::in_directory(dir.path(), quick_options());
  const Value key = pickle::parse_literal("('a', 1)");
  EXPECT_FALSE(disk.get(key).has_value());
  EXPECT_TRUE(disk.insert(key, Value()));
  EXPECT_FALSE(disk.insert(key, Value(2)));
  std::optional<Value> hit = disk.get(key);
  ASSERT_TRUE(hit.has_value());
  EXPECT_TRUE(hit->is_none());
  EXPECT_TRUE(disk.remove(key));
  EXPECT_FALSE(disk.remove(key));
  EXPECT_FALSE(disk.get(key).has_value());
  EXPECT_TRUE(disk.insert(key, Value(2)));
  EXPECT_EQ(disk.get(key)->as_int64(), 2);
}

TEST(OnDiskCache, ProtocolsFourAndFiveNeverShareEntries) {
  TempDir dir;
  cache::OnDiskCacheOptions four = quick_options();
  cache::OnDiskCacheOptions five = quick_options();
  five.protocol = 5;
  auto disk4 = cache::OnDiskCache::in_directory(dir.path(), four);
  auto disk5 = cache::OnDiskCache::in_directory(dir.path(), five);
  const Value key = pickle::parse_literal("((3, 'x'), {})");
  EXPECT_TRUE(disk4.insert(key, Value(4)));
  EXPECT_FALSE(disk5.get(key).has_value());
  EXPECT_TRUE(disk5.insert(key, Value(5)));
  EXPECT_EQ(disk4.get(key)->as_int64(), 4);
  EXPECT_EQ(disk5.get(key)->as_int64(), 5);
}

TEST(OnDiskCache, AFailedValuePickleLeavesNoFile) {
  TempDir dir;
  auto disk = cache::OnDiskCache::in_directory(dir.path(), quick_options());
  EXPECT_THROW(disk.insert(Value("k"), Value::buffer("x", 0, false)), cache::ValuePicklingError);
  EXPECT_TRUE(disk.scan().empty());
  EXPECT_FALSE(disk.get(Value("k")).has_value());
  for (const auto& name : directory_names(dir.path())) EXPECT_EQ(name, "dir.lock");
  EXPECT_TRUE(disk.insert(Value("k"), Value(1)));
}

// Faults. Each gives the documented outcome and leaves the cache usable.

TEST(OnDiskCacheFaults, TruncatedEntryIsAValueUnPicklingErrorAndStaysUntilRemoved) {
  TempDir dir;
  auto disk = cache::OnDiskCache::in_directory(dir.path(), quick_options());
  const Value key = Value("truncated");
  ASSERT_TRUE(disk.insert(key, pickle::parse_literal("{'a': [1, 2, 3], 'b': 'text'}")));
  const fs::path path = disk.path_of(key);
  const std::string whole = read_file(path);
  for (std::size_t keep : {cache::version_header_size + 1, whole.size() / 2, whole.size() - 1}) {
    write_file(path, whole.substr(0, keep));
    try {
      disk.get(key);
      ADD_FAILURE() << "no error for a file cut to " << keep << " bytes";
    } catch (const cache::ValueUnPicklingError& error) {
      EXPECT_TRUE(error.cause() != nullptr);
      EXPECT_THROW(error.rethrow_cause(), pickle::UnpicklingError);
    }
    EXPECT_TRUE(fs::exists(path));
    EXPECT_FALSE(disk.insert(key, Value(1)));  // the header is valid: it is not stale
    const auto entries = disk.scan();
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_EQ(entries[0].state, cache::EntryState::valid);
    EXPECT_EQ(entries[0].file_size, keep);
  }
  EXPECT_TRUE(disk.insert(Value("other"), Value(2)));
  EXPECT_EQ(disk.get(Value("other"))->as_int64(), 2);
  EXPECT_TRUE(disk.remove(key));
  EXPECT_TRUE(disk.insert(key, Value(3)));
  EXPECT_EQ(disk.get(key)->as_int64(), 3);
}

TEST(OnDiskCacheFaults, WrongHeaderIsAMissAndTheFileIsReplaced) {
  TempDir dir;
  auto disk = cache::OnDiskCache::in_directory(dir.path(), quick_options());
  const Value key = Value("old version");
  const fs::path path = disk.path_of(key);
  write_file(path, cache::version_header(1) + cache::pickle_value(Value("stale")));
  EXPECT_EQ(disk.scan().at(0).state, cache::EntryState::wrong_header);
  EXPECT_FALSE(disk.get(key).has_value());
  EXPECT_FALSE(fs::exists(path));  // removed, as Python's get() does
  write_file(path, cache::version_header(1) + cache::pickle_value(Value("stale")));
  EXPECT_TRUE(disk.insert(key, Value("fresh")));  // a stale file does not block an insert
  EXPECT_EQ(disk.get(key)->as_str(), "fresh");
}

TEST(OnDiskCacheFaults, WrongHeaderIsKeptWhenAskedTo) {
  TempDir dir;
  cache::OnDiskCacheOptions options = quick_options();
  options.stale_entries = cache::StaleEntries::keep;
  auto disk = cache::OnDiskCache::in_directory(dir.path(), options);
  const fs::path path = disk.path_of(Value("k"));
  write_file(path, cache::version_header(2) + "payload");
  EXPECT_FALSE(disk.get(Value("k")).has_value());
  EXPECT_TRUE(fs::exists(path));
}

TEST(OnDiskCacheFaults, HeaderOnlyAndShorterThanHeaderAreStale) {
  TempDir dir;
  auto disk = cache::OnDiskCache::in_directory(dir.path(), quick_options());
  const fs::path path = disk.path_of(Value("k"));
  write_file(path, cache::version_header());
  EXPECT_EQ(disk.scan().at(0).state, cache::EntryState::empty_payload);
  EXPECT_FALSE(disk.get(Value("k")).has_value());
  EXPECT_FALSE(fs::exists(path));
  write_file(path, cache::version_header().substr(0, 2));
  EXPECT_EQ(disk.scan().at(0).state, cache::EntryState::wrong_header);
  EXPECT_TRUE(disk.insert(Value("k"), Value(1)));
  EXPECT_EQ(disk.get(Value("k"))->as_int64(), 1);
}

TEST(OnDiskCacheFaults, ForeignFilesAreSkippedOrStale) {
  TempDir dir;
  auto disk = cache::OnDiskCache::in_directory(dir.path(), quick_options());
  ASSERT_TRUE(disk.insert(Value("k"), Value(1)));
  write_file(dir.path() / "notes.txt", "not a cache entry");
  write_file(dir.path() / "ABCDEF0123456789ABCDEF0123456789", "upper case: not a name we write");
  fs::create_directory(dir.path() / "0123456789abcdef0123456789abcdef");
  fs::create_symlink("/etc/passwd", dir.path() / "fedcba9876543210fedcba9876543210");
  // A foreign file under an entry's name: no header, so stale.
  const fs::path foreign = disk.path_of(Value("foreign"));
  write_file(foreign, "GIF89a... something else entirely");
  const auto entries = disk.scan();
  ASSERT_EQ(entries.size(), 4u);
  for (const auto& entry : entries) {
    if (entry.name == cache::entry_name(Value("k"))) {
      EXPECT_EQ(entry.state, cache::EntryState::valid);
    } else if (entry.name == foreign.filename()) {
      EXPECT_EQ(entry.state, cache::EntryState::wrong_header);
    } else {
      EXPECT_EQ(entry.state, cache::EntryState::not_a_file) << entry.name;
    }
  }
  EXPECT_FALSE(disk.get_entry("fedcba9876543210fedcba9876543210").has_value());  // no symlinks
  EXPECT_FALSE(disk.get_entry("0123456789abcdef0123456789abcdef").has_value());
  EXPECT_THROW(disk.insert_pickled("0123456789abcdef0123456789abcdef", cache::pickle_value(Value(1))),
               cache::CacheOSError);
  EXPECT_FALSE(disk.get(Value("foreign")).has_value());
  EXPECT_FALSE(fs::exists(foreign));
  EXPECT_TRUE(disk.insert(Value("foreign"), Value(2)));
  EXPECT_EQ(disk.get(Value("k"))->as_int64(), 1);
  EXPECT_EQ(disk.get(Value("foreign"))->as_int64(), 2);
  EXPECT_TRUE(fs::exists(dir.path() / "notes.txt"));
  EXPECT_THROW(disk.get_entry("../notes.txt"), pickle::Error);
}

TEST(OnDiskCacheFaults, ADangerousValueIsRefusedByTheDefaultPolicy) {
  TempDir dir;
  auto disk = cache::OnDiskCache::in_directory(dir.path(), quick_options());
  const Value call = Value::object(pickle::ObjectForm::reduce, Value::global("os", "system"),
                                   Value::tuple({Value("echo hi")}));
  ASSERT_TRUE(disk.insert(Value("k"), call));
  try {
    disk.get(Value("k"));
    ADD_FAILURE() << "os.system was loaded";
  } catch (const cache::ValueUnPicklingError& error) {
    EXPECT_THROW(error.rethrow_cause(), pickle::PolicyError);
  }
  cache::OnDiskCacheOptions inert = quick_options();
  inert.policy = std::make_shared<pickle::SafeLoadPolicy>(pickle::PolicyPreset::inert);
  auto inspecting = cache::OnDiskCache::in_directory(dir.path(), inert);
  EXPECT_EQ(pickle::repr(*inspecting.get(Value("k"))), "os.system('echo hi')");
}

TEST(OnDiskCacheFaults, LockHeldPastTheTimeoutIsAFileLockTimeoutError) {
  TempDir dir;
  cache::OnDiskCacheOptions options;
  options.lock_timeout = std::chrono::duration<double>(0.3);
  auto disk = cache::OnDiskCache::in_directory(dir.path(), options);
  ASSERT_TRUE(disk.insert(Value("k"), Value(1)));
  {
    cache::FileLock holder(disk.lock_path(), std::chrono::duration<double>(1.0));
    holder.acquire();
    const auto start = std::chrono::steady_clock::now();
    try {
      disk.insert(Value("k2"), Value(2));
      ADD_FAILURE() << "inserted while the lock was held";
    } catch (const cache::FileLockTimeoutError& error) {
      EXPECT_NE(error.message().find("Failed to acquire file lock"), std::string::npos);
      EXPECT_NE(error.message().find("within 0.3 seconds."), std::string::npos) << error.message();
      EXPECT_NE(error.message().find("dir.lock"), std::string::npos);
    }
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(300));
    EXPECT_THROW(disk.get(Value("k")), cache::FileLockTimeoutError);
    EXPECT_THROW(disk.get(Value("k")), cache::SystemError);  // and a CacheError, a RuntimeError
  }
  EXPECT_TRUE(fs::exists(disk.lock_path()));  // release never unlinks
  EXPECT_TRUE(disk.insert(Value("k2"), Value(2)));
  EXPECT_EQ(disk.get(Value("k"))->as_int64(), 1);
}

TEST(OnDiskCacheFaults, LockFileRemovedByAnotherHolderIsRecreated) {
  TempDir dir;
  auto disk = cache::OnDiskCache::in_directory(dir.path(), quick_options());
  ASSERT_TRUE(disk.insert(Value("k"), Value(1)));
  fs::remove(disk.lock_path());  // what a newer filelock's release does
  EXPECT_TRUE(disk.insert(Value("k2"), Value(2)));
  EXPECT_TRUE(fs::exists(disk.lock_path()));
}

// Runs `body` in a child process without root's powers (uid/gid 65534) when this process is
// root, so that permissions apply; returns the child's exit status, or -1 when it cannot drop them.
int run_unprivileged(const std::function<int()>& body) {
  const pid_t child = ::fork();
  if (child < 0) return -1;
  if (child == 0) {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(100);
    int status = 1;
    try {
      status = body();
    } catch (...) {
      status = 99;
    }
    ::_exit(status);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  if (!WIFEXITED(status)) return -2;
  return WEXITSTATUS(status) == 100 ? -1 : WEXITSTATUS(status);
}

TEST(OnDiskCacheFaults, ReadOnlyDirectoryReadsButRefusesInsertsWithPermissionError) {
  TempDir dir;
  const fs::path cache_dir = dir.path() / "cache";
  auto disk = cache::OnDiskCache::in_directory(cache_dir, quick_options());
  ASSERT_TRUE(disk.insert(Value("present"), Value("value")));
  write_file(disk.path_of(Value("stale")), "no header");
  fs::permissions(cache_dir, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                                 fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
  fs::permissions(disk.lock_path(), fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
  // Exit codes name the first failed expectation.
  const int status = run_unprivileged([&] {
    auto reader = cache::OnDiskCache::in_directory(cache_dir, quick_options());
    std::optional<Value> hit = reader.get(Value("present"));
    if (!hit || hit->as_str() != "value") return 2;
    if (reader.get(Value("absent"))) return 3;
    if (reader.get(Value("stale"))) return 4;
    try {
      reader.insert(Value("new"), Value(1));
      return 5;
    } catch (const cache::CacheOSError& error) {
      if (error.python_class_name() != "PermissionError") return 6;
    }
    return 0;
  });
  if (status == -1) GTEST_SKIP() << "running as root and cannot drop privileges: permissions do not apply";
  EXPECT_EQ(status, 0);
  EXPECT_TRUE(fs::exists(disk.path_of(Value("stale"))));  // a reader without write access removes nothing
  fs::permissions(cache_dir, fs::perms::owner_all, fs::perm_options::add);
  fs::permissions(disk.lock_path(), fs::perms::owner_write, fs::perm_options::add);
  EXPECT_TRUE(disk.insert(Value("new"), Value(1)));
  EXPECT_EQ(disk.get(Value("new"))->as_int64(), 1);
}

TEST(OnDiskCache, ConcurrentThreadsInsertingOneKeyHaveOneWinnerAndNeverSeeAPartialEntry) {
  TempDir dir;
  std::atomic<int> winners{0};
  std::atomic<int> failures{0};
  const std::string big(100000, 'x');
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto disk = cache::OnDiskCache::in_directory(dir.path(), quick_options());
      for (int i = 0; i < 30; ++i) {
        const Value key = Value::tuple({Value("k"), Value(i)});
        if (disk.insert(key, Value::tuple({Value(t), Value::bytes(big)}))) ++winners;
        std::optional<Value> got = disk.get(key);
        if (!got || got->size() != 2 || got->at(1).as_bytes() != big) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(winners.load(), 30);
  EXPECT_EQ(failures.load(), 0);
}

// --- base directory ----------------------------------------------------------------------------

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) ::setenv(name, value, 1); else ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_, old_->c_str(), 1); else ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(BaseDir, TempDirUserAndSanitisingAsTorch) {
  TempDir dir;
  ScopedEnv tmpdir("TMPDIR", dir.path().c_str());
  ScopedEnv logname("LOGNAME", nullptr);
  ScopedEnv user("USER", "dom\\a/b:c*d?e\"f<g>h|i");
  EXPECT_EQ(cache::python_tempdir(), dir.path());
  EXPECT_EQ(cache::python_user_name(), "dom\\a/b:c*d?e\"f<g>h|i");
  EXPECT_EQ(cache::default_cache_dir(), dir.path() / "torchinductor_dom_a_b_c_d_e_f_g_h_i");
  {
    ScopedEnv first("LOGNAME", "first");
    EXPECT_EQ(cache::python_user_name(), "first");
  }
  {
    ScopedEnv unusable("TMPDIR", (dir.path() / "does-not-exist").c_str());
    ScopedEnv temp("TEMP", (dir.path().string() + "/").c_str());
    EXPECT_EQ(cache::python_tempdir(), dir.path());
  }
  cache::OnDiskCache disk("should_pad", quick_options());
  EXPECT_EQ(disk.cache_dir(), dir.path() / "torchinductor_dom_a_b_c_d_e_f_g_h_i" / "cache" / "should_pad");
}

TEST(BaseDir, DirectoriesOthersControlAreUntrusted) {
  TempDir dir;
  const fs::path cache_dir = dir.path() / "torchinductor_me" / "cache";
  EXPECT_EQ(cache::untrusted_directory_reason(cache_dir), std::nullopt);  // missing: nothing to read
  fs::create_directories(cache_dir);
  EXPECT_EQ(cache::untrusted_directory_reason(cache_dir), std::nullopt);
  fs::permissions(cache_dir.parent_path(), fs::perms::others_write, fs::perm_options::add);
  std::optional<std::string> reason = cache::untrusted_directory_reason(cache_dir);
  ASSERT_TRUE(reason.has_value());
  EXPECT_NE(reason->find("torchinductor_me is writable by other users"), std::string::npos) << *reason;
  fs::permissions(cache_dir.parent_path(), fs::perms::sticky_bit, fs::perm_options::add);  // as /tmp
  EXPECT_EQ(cache::untrusted_directory_reason(cache_dir), std::nullopt);
  fs::create_directory_symlink(cache_dir, dir.path() / "link");
  EXPECT_TRUE(cache::untrusted_directory_reason(dir.path() / "link").has_value());
  if (::geteuid() == 0) {
    ASSERT_EQ(::chown(cache_dir.c_str(), 12345, 12345), 0);
    reason = cache::untrusted_directory_reason(cache_dir);
    ASSERT_TRUE(reason.has_value());
    EXPECT_NE(reason->find("owned by uid 12345"), std::string::npos) << *reason;
  }
}

// --- pickletool cache ----------------------------------------------------------------------------

struct ToolResult {
  int status = -1;
  std::string out;
};

ToolResult run_tool(const std::string& arguments) {
  const char* tool = std::getenv("PICKLETOOL");
  if (tool == nullptr) return {};
  ToolResult result;
  FILE* pipe = ::popen((std::string(tool) + " " + arguments + " 2>&1").c_str(), "r");
  char buffer[4096];
  std::size_t got;
  while ((got = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.out.append(buffer, got);
  const int status = ::pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

TEST(PickletoolCache, PutGetLsRm) {
  if (std::getenv("PICKLETOOL") == nullptr) GTEST_SKIP() << "PICKLETOOL is not set";
  TempDir dir;
  const std::string d = "'" + dir.path().string() + "'";
  std::string name;
  for (const auto& row : read_tsv("keys.tsv")) {
    if (row[0] == "4" && row[1] == "((3, 'x'), {})") name = row[3];
  }
  ASSERT_FALSE(name.empty());
  const std::string value = "\"" + misc("cli_value_literal") + "\"";
  const std::string shown_repr = misc("cli_value_repr") + "\n";  // CPython's repr and json.dumps
  const std::string shown_json = misc("cli_value_json") + "\n";
  ToolResult put = run_tool("cache put " + d + " \"((3, 'x'), {})\" " + value);
  EXPECT_EQ(put.status, 0) << put.out;
  EXPECT_EQ(put.out, "inserted " + name + "\n");
  EXPECT_EQ(run_tool("cache put " + d + " \"((3, 'x'), {})\" 2").out, "exists " + name + "\n");
  ToolResult get = run_tool("cache get " + d + " \"((3, 'x'), {})\"");
  EXPECT_EQ(get.status, 0);
  EXPECT_EQ(get.out, shown_repr);
  EXPECT_EQ(run_tool("cache get " + d + " \"((3, 'x'), {})\" --json").out, shown_json);
  EXPECT_EQ(run_tool("cache get " + d + " " + name + " --name").out, shown_repr);
  EXPECT_EQ(run_tool("cache get " + d + " \"((3, 'x'), {})\" --protocol 5").status, 3);
  write_file(dir.path() / "notes.txt", "ignored");
  ToolResult ls = run_tool("cache ls " + d);
  EXPECT_EQ(ls.status, 0);
  const std::string listed = name + "\tvalid\t" + std::to_string(fs::file_size(dir.path() / name)) + "\t";
  EXPECT_EQ(ls.out, listed + shown_repr);
  EXPECT_EQ(run_tool("cache ls " + d + " --json").out, listed + shown_json);
  EXPECT_EQ(run_tool("cache rm " + d + " \"((3, 'x'), {})\"").out, "removed " + name + "\n");
  EXPECT_EQ(run_tool("cache rm " + d + " \"((3, 'x'), {})\"").status, 3);
  EXPECT_EQ(run_tool("cache get " + d + " \"((3, 'x'), {})\"").status, 3);
  EXPECT_EQ(run_tool("cache get " + d + " \"(3,\"").status, 1);  // not a literal
  EXPECT_EQ(run_tool("cache frob " + d).status, 2);
  EXPECT_EQ(run_tool("cache get " + d + " nothex --name").status, 2);
}

TEST(PickletoolCache, UnreadableValuesAndLockTimeoutsAreReported) {
  if (std::getenv("PICKLETOOL") == nullptr) GTEST_SKIP() << "PICKLETOOL is not set";
  TempDir dir;
  const std::string d = "'" + dir.path().string() + "'";
  auto disk = cache::OnDiskCache::in_directory(dir.path(), quick_options());
  ASSERT_TRUE(disk.insert(Value("k"), Value::list({Value(1), Value(2)})));
  const fs::path path = disk.path_of(Value("k"));
  const std::string whole = read_file(path);
  write_file(path, whole.substr(0, whole.size() - 2));
  ToolResult get = run_tool("cache get " + d + " \"'k'\"");
  EXPECT_EQ(get.status, 1);
  EXPECT_NE(get.out.find("ValueUnPicklingError"), std::string::npos) << get.out;
  ToolResult ls = run_tool("cache ls " + d);
  EXPECT_NE(ls.out.find("\tvalid\t" + std::to_string(whole.size() - 2) + "\t<unreadable: "), std::string::npos)
      << ls.out;
  cache::FileLock holder(disk.lock_path(), std::chrono::duration<double>(1.0));
  holder.acquire();
  ToolResult timed_out = run_tool("cache put " + d + " 1 2 --timeout 0.2");
  EXPECT_EQ(timed_out.status, 1);
  EXPECT_NE(timed_out.out.find("FileLockTimeoutError: Failed to acquire file lock"), std::string::npos)
      << timed_out.out;
}

}  // namespace
