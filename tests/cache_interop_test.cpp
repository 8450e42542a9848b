// The cache module against the Python side of the format (tests/inductor_cache.py, run with the
// interpreter PICKLE_PYTHON names): entries written by either side are found and read by the other,
// for the key table of tests/cache/keys.tsv at protocols 4 and 5; the base directory is the one
// Python computes; dir.lock excludes across languages; and C++ and Python processes inserting and
// reading the same keys at once lose nothing and never read a partial entry. Tests that need
// Python skip without it; the concurrency test then runs with C++ processes only.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "pickle/cache.hpp"
#include "pickle/literal.hpp"
#include "pickle/repr.hpp"

namespace {

namespace fs = std::filesystem;
using pickle::Value;
namespace cache = pickle::cache;

fs::path test_data_dir() {
  const char* dir = std::getenv("PICKLE_TEST_DATA");
  return dir != nullptr ? fs::path(dir) : fs::path(__FILE__).parent_path();
}

std::optional<std::string> python() {
  const char* interpreter = std::getenv("PICKLE_PYTHON");
  if (interpreter == nullptr || *interpreter == '\0') return std::nullopt;
  return std::string(interpreter);
}

#define REQUIRE_PYTHON()                                                                   \
  if (!python()) GTEST_SKIP() << "PICKLE_PYTHON is not set: the Python side is not run"

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

std::vector<std::string> split(const std::string& line, char separator) {
  std::vector<std::string> fields;
  std::size_t start = 0;
  for (;;) {
    const std::size_t at = line.find(separator, start);
    fields.push_back(line.substr(start, at - start));
    if (at == std::string::npos) return fields;
    start = at + 1;
  }
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

struct KeyCase {
  int protocol;
  std::string key, pickled_key_hex, name, value, file_hex;
};

std::vector<KeyCase> key_cases(int protocol) {
  std::vector<KeyCase> cases;
  std::ifstream in(test_data_dir() / "cache" / "keys.tsv");
  std::string line;
  while (std::getline(in, line)) {
    auto f = split(line, '\t');
    if (std::stoi(f[0]) == protocol) cases.push_back({protocol, f[1], f[2], f[3], f[4], f[5]});
  }
  return cases;
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "pickle_cache_interop.XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code error;
    fs::remove_all(path_, error);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += "'\\''"; else out += c;
  }
  return out + "'";
}

struct PythonRun {
  int status = -1;
  std::string out;
};

// Runs inductor_cache.py with `arguments`, feeding it `input`; `environment` is prefixed (VAR=x …).
PythonRun run_python(const std::string& arguments, const std::string& input = {},
               const std::string& environment = {}) {
  TempDir scratch;
  const fs::path input_file = scratch.path() / "stdin";
  write_file(input_file, input);
  const std::string command = (environment.empty() ? "" : "env " + environment + " ") +
                              quoted(*python()) + " " +
                              quoted((test_data_dir() / "inductor_cache.py").string()) + " " +
                              arguments + " < " + quoted(input_file.string()) + " 2>&1";
  PythonRun run;
  FILE* pipe = ::popen(command.c_str(), "r");
  char buffer[4096];
  std::size_t got;
  while ((got = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) run.out.append(buffer, got);
  const int status = ::pclose(pipe);
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

cache::OnDiskCacheOptions options_for(int protocol) {
  cache::OnDiskCacheOptions options;
  options.protocol = protocol;
  options.lock_timeout = std::chrono::duration<double>(10.0);
  return options;
}

class Interop : public ::testing::TestWithParam<int> {};

TEST_P(Interop, PythonWritesCppReadsByKeyAndByScan) {
  REQUIRE_PYTHON();
  const int protocol = GetParam();
  const auto cases = key_cases(protocol);
  ASSERT_GE(cases.size(), 30u);
  TempDir dir;
  std::string input;
  for (const auto& c : cases) input += c.key + "\t" + c.value + "\n";
  PythonRun put = run_python("put " + quoted(dir.path().string()) + " " + std::to_string(protocol), input);
  ASSERT_EQ(put.status, 0) << put.out;
  EXPECT_EQ(lines_of(put.out), std::vector<std::string>(cases.size(), "inserted")) << put.out;
  auto disk = cache::OnDiskCache::in_directory(dir.path(), options_for(protocol));
  EXPECT_EQ(disk.scan().size(), cases.size());
  for (const auto& c : cases) {
    // The live Python wrote what the committed expectations say.
    EXPECT_EQ(to_hex(read_file(dir.path() / c.name)), c.file_hex) << c.key;
    std::optional<Value> got = disk.get(pickle::parse_literal(c.key));
    ASSERT_TRUE(got.has_value()) << c.key << " protocol " << protocol;
    EXPECT_EQ(pickle::repr(*got), pickle::repr(pickle::parse_literal(c.value))) << c.key;
    EXPECT_EQ(cache::entry_name(pickle::parse_literal(c.key), protocol), c.name);
  }
}

TEST_P(Interop, CppWritesPythonReads) {
  REQUIRE_PYTHON();
  const int protocol = GetParam();
  const auto cases = key_cases(protocol);
  TempDir dir;
  auto disk = cache::OnDiskCache::in_directory(dir.path(), options_for(protocol));
  std::string input;
  for (const auto& c : cases) {
    ASSERT_TRUE(disk.insert(pickle::parse_literal(c.key), pickle::parse_literal(c.value))) << c.key;
    input += c.key + "\t" + c.value + "\n";
  }
  PythonRun check = run_python("check " + quoted(dir.path().string()) + " " + std::to_string(protocol), input);
  ASSERT_EQ(check.status, 0) << check.out;
  EXPECT_EQ(lines_of(check.out), std::vector<std::string>(cases.size(), "ok")) << check.out;
}

TEST_P(Interop, FirstWriterWinsAcrossLanguages) {
  REQUIRE_PYTHON();
  const int protocol = GetParam();
  const auto cases = key_cases(protocol);
  TempDir dir;
  auto disk = cache::OnDiskCache::in_directory(dir.path(), options_for(protocol));
  std::string input;
  std::vector<std::string> expected;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    if (i % 2 == 0) {
      ASSERT_TRUE(disk.insert(pickle::parse_literal(cases[i].key), Value("from C++")));
    }
    input += cases[i].key + "\t" + cases[i].value + "\n";
    expected.push_back(i % 2 == 0 ? "exists" : "inserted");
  }
  PythonRun put = run_python("put " + quoted(dir.path().string()) + " " + std::to_string(protocol), input);
  EXPECT_EQ(lines_of(put.out), expected) << put.out;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    std::optional<Value> got = disk.get(pickle::parse_literal(cases[i].key));
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(pickle::repr(*got), i % 2 == 0 ? "'from C++'" : pickle::repr(pickle::parse_literal(cases[i].value)));
    EXPECT_FALSE(disk.insert(pickle::parse_literal(cases[i].key), Value(0)));
  }
}

INSTANTIATE_TEST_SUITE_P(Protocols, Interop, ::testing::Values(4, 5));

TEST(InteropStale, PythonRemovesWhatCppCallsStaleAndTheReverse) {
  REQUIRE_PYTHON();
  TempDir dir;
  auto disk = cache::OnDiskCache::in_directory(dir.path(), options_for(4));
  write_file(disk.path_of(Value("a")), cache::version_header(1) + cache::pickle_value(Value(1)));
  write_file(disk.path_of(Value("b")), cache::version_header());
  PythonRun check = run_python("check " + quoted(dir.path().string()) + " 4", "'a'\t1\n'b'\t1\n");
  EXPECT_EQ(lines_of(check.out), (std::vector<std::string>{"miss 'a'", "miss 'b'"})) << check.out;
  EXPECT_FALSE(fs::exists(disk.path_of(Value("a"))));
  EXPECT_FALSE(fs::exists(disk.path_of(Value("b"))));
  write_file(disk.path_of(Value("a")), "foreign content");
  PythonRun put = run_python("put " + quoted(dir.path().string()) + " 4", "'a'\t'python'\n");
  EXPECT_EQ(put.out, "inserted\n");
  EXPECT_EQ(disk.get(Value("a"))->as_str(), "python");
}

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) ::setenv(name, value, 1); else ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_, old_->c_str(), 1); else ::unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(InteropBaseDir, DefaultCacheDirIsTheOnePythonComputes) {
  REQUIRE_PYTHON();
  TempDir dir;
  struct Case {
    std::string tmpdir, logname, user;
  };
  const std::vector<Case> cases = {
      {dir.path().string(), "", "plain"},
      {dir.path().string() + "/", "", "dom\\a/b:c*d?e<f>g|h\"i"},
      {(dir.path() / "missing").string(), "", "fallback-to-tmp"},
      {dir.path().string(), "from-logname", "ignored"},
  };
  for (const auto& c : cases) {
    const std::string environment = "TMPDIR=" + quoted(c.tmpdir) + " TEMP= TMP= LOGNAME=" + quoted(c.logname) +
                                    " USER=" + quoted(c.user) + " LNAME= USERNAME=";
    PythonRun printed = run_python("default-cache-dir", "", environment);
    ASSERT_EQ(printed.status, 0) << printed.out;
    std::string out = printed.out;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    ScopedEnv tmpdir("TMPDIR", c.tmpdir.c_str()), temp("TEMP", nullptr), tmp("TMP", nullptr);
    ScopedEnv logname("LOGNAME", c.logname.c_str()), user("USER", c.user.c_str());
    ScopedEnv lname("LNAME", nullptr), username("USERNAME", nullptr);
    EXPECT_EQ(cache::default_cache_dir().string(), out) << c.tmpdir << ' ' << c.user;
  }
}

TEST(InteropLock, DirLockExcludesAcrossLanguages) {
  REQUIRE_PYTHON();
  TempDir dir;
  cache::OnDiskCacheOptions options = options_for(4);
  options.lock_timeout = std::chrono::duration<double>(0.3);
  auto disk = cache::OnDiskCache::in_directory(dir.path(), options);
  ASSERT_TRUE(disk.insert(Value("k"), Value(1)));

  // Python holds the lock: C++ times out, then gets in once Python lets go.
  const std::string hold = "env " + quoted(*python()) + " " +
                           quoted((test_data_dir() / "inductor_cache.py").string()) + " hold-lock " +
                           quoted(disk.lock_path().string()) + " 1.5";
  FILE* holder = ::popen(hold.c_str(), "r");
  char line[64] = {};
  ASSERT_NE(std::fgets(line, sizeof line, holder), nullptr);
  ASSERT_EQ(std::string(line), "locked\n");
  EXPECT_THROW(disk.insert(Value("k2"), Value(2)), cache::FileLockTimeoutError);
  EXPECT_THROW(disk.get(Value("k")), cache::FileLockTimeoutError);
  ::pclose(holder);
  EXPECT_TRUE(disk.insert(Value("k2"), Value(2)));

  // C++ holds it: Python times out, then gets in.
  {
    cache::FileLock lock(disk.lock_path(), std::chrono::duration<double>(1.0));
    lock.acquire();
    EXPECT_EQ(run_python("try-lock " + quoted(disk.lock_path().string()) + " 0.3").out, "timeout\n");
  }
  EXPECT_EQ(run_python("try-lock " + quoted(disk.lock_path().string()) + " 0.3").out, "acquired\n");
}

// --- concurrency ---------------------------------------------------------------------------------
// The C++ twin of inductor_cache.py's run_worker: the same keys, values and report lines.

constexpr int keys_per_round = 6;
constexpr std::size_t payload_size = 24000;

Value worker_key(long round, int index) { return Value::tuple({Value("concurrency"), Value(round), Value(index)}); }

Value worker_value(long round, int index, long worker) {
  const char fill = static_cast<char>((worker * 7 + index * 3 + round) % 251);
  return Value::tuple({Value("v"), Value(round), Value(index), Value(worker),
                       Value::bytes(std::string(payload_size, fill))});
}

// The writer id of a whole value for this key; throws otherwise.
long check_worker_value(const Value& value, long round, int index) {
  if (value.kind() != pickle::Kind::tuple || value.size() != 5 || value[0].kind() != pickle::Kind::str ||
      value[0].as_str() != "v" || value[1].as_int64() != round || value[2].as_int64() != index) {
    throw std::runtime_error("not a worker value: " + pickle::repr(value).substr(0, 80));
  }
  const long worker = static_cast<long>(*value[3].as_int64());
  if (!(value == worker_value(round, index, worker))) throw std::runtime_error("corrupt worker value");
  return worker;
}

void run_cpp_worker(const fs::path& dir, int protocol, long worker, double seconds, const fs::path& report) {
  auto disk = cache::OnDiskCache::in_directory(dir, options_for(protocol));
  std::ofstream out(report);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  for (long round = 0; std::chrono::steady_clock::now() < deadline; ++round) {
    for (int step = 0; step < keys_per_round; ++step) {
      const int index = static_cast<int>((step + worker) % keys_per_round);
      const Value key = worker_key(round, index);
      try {
        std::optional<Value> value = disk.get(key);
        if (!value) {
          if (disk.insert(key, worker_value(round, index, worker))) {
            out << "inserted " << round << ' ' << index << ' ' << worker << '\n';
          }
          value = disk.get(key);
          if (!value) {
            out << "error " << round << ' ' << index << " miss after insert\n";
            continue;
          }
        }
        out << "seen " << round << ' ' << index << ' ' << check_worker_value(*value, round, index) << '\n';
      } catch (const std::exception& error) {
        out << "error " << round << ' ' << index << ' ' << error.what() << '\n';
      }
    }
  }
}

TEST(Concurrency, CppAndPythonProcessesLoseNothingAndNeverReadAPartialEntry) {
  TempDir dir;
  const fs::path cache_dir = dir.path() / "cache" / "concurrency";
  const int protocol = 4;
  const double seconds = 3.0;
  const int cpp_workers = python() ? 3 : 4;
  const int python_workers = python() ? 3 : 0;
  std::vector<pid_t> children;
  std::vector<fs::path> reports;
  for (int w = 0; w < cpp_workers + python_workers; ++w) {
    const fs::path report = dir.path() / ("report." + std::to_string(w));
    reports.push_back(report);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      if (w < cpp_workers) {
        run_cpp_worker(cache_dir, protocol, w, seconds, report);
        ::_exit(0);
      }
      const int fd = ::open(report.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      const std::string script = (test_data_dir() / "inductor_cache.py").string();
      const std::string worker_id = std::to_string(w);
      const std::string duration = std::to_string(seconds);
      // Every other Python worker unlinks dir.lock on release, as newer filelock versions do.
      const char* unlink_lock = (w % 2 == 0) ? "1" : "0";
      ::execl(python()->c_str(), python()->c_str(), script.c_str(), "worker", cache_dir.c_str(), "4",
              worker_id.c_str(), duration.c_str(), unlink_lock, static_cast<char*>(nullptr));
      ::_exit(127);
    }
    children.push_back(child);
  }
  for (pid_t child : children) {
    int status = 0;
    ::waitpid(child, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "worker exit status " << status;
  }

  std::map<std::pair<long, int>, std::set<long>> inserters;  // key → workers whose insert won
  std::map<std::pair<long, int>, std::set<long>> seen;      // key → writers whose value was read
  std::map<long, std::size_t> operations;
  for (std::size_t w = 0; w < reports.size(); ++w) {
    for (const std::string& line : lines_of(read_file(reports[w]))) {
      const auto f = split(line, ' ');
      ASSERT_GE(f.size(), 3u) << line;
      ASSERT_NE(f[0], "error") << "worker " << w << ": " << line;
      ASSERT_EQ(f.size(), 4u) << "worker " << w << ": " << line;
      const std::pair<long, int> key{std::stol(f[1]), std::stoi(f[2])};
      if (f[0] == "inserted") inserters[key].insert(std::stol(f[3]));
      if (f[0] == "seen") seen[key].insert(std::stol(f[3]));
      ++operations[static_cast<long>(w)];
    }
  }
  ASSERT_FALSE(seen.empty());
  std::size_t python_wins = 0;
  for (const auto& [key, writers] : seen) {
    const auto& won = inserters[key];
    ASSERT_EQ(won.size(), 1u) << "key " << key.first << ',' << key.second << " inserted by " << won.size();
    EXPECT_EQ(writers, won) << "key " << key.first << ',' << key.second << ": readers saw other values";
    if (*won.begin() >= cpp_workers) ++python_wins;
  }
  for (const auto& [key, won] : inserters) EXPECT_TRUE(seen.count(key)) << key.first << ',' << key.second;
  // Nothing lost: every winning value is on disk.
  auto disk = cache::OnDiskCache::in_directory(cache_dir, options_for(protocol));
  for (const auto& [key, won] : inserters) {
    std::optional<Value> value = disk.get(worker_key(key.first, key.second));
    ASSERT_TRUE(value.has_value()) << key.first << ',' << key.second;
    EXPECT_EQ(check_worker_value(*value, key.first, key.second), *won.begin());
  }
  for (const auto& [worker, count] : operations) EXPECT_GT(count, 0u) << "worker " << worker << " did nothing";
  std::cout << "[ concurrency ] " << seen.size() << " keys, " << python_wins << " won by Python workers, "
            << (seen.size() - python_wins) << " by C++ workers\n";
  EXPECT_EQ(disk.scan().size(), seen.size());
  for (const auto& entry : fs::directory_iterator(cache_dir)) {
    const std::string name = entry.path().filename().string();
    EXPECT_TRUE(cache::is_entry_name(name) || name == "dir.lock") << "left behind: " << name;
  }
}

}  // namespace
