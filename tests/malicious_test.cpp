// The 13 classes of malicious input of the hardening reference (shared/reference/hardening.md §1.3),
// one named test each, with the concrete inputs given there (tests/data/malicious_cases.jsonl,
// written by tests/gen_malicious_cases.py with CPython 3.11's outcome for each), plus the inputs the
// fuzzers found (fuzz/regressions/).
//
// Every input is loaded in a child process with default options: it must load or be rejected with a
// pickle::Error, within 1 s of CPU time, without a signal, and (outside sanitizer builds) within 256 MB of
// address space. Where the library follows CPython's C unpickler ("strict" cases) the accept/reject
// decision and the exception class must be CPython's.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ctime>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "golden/golden_support.hpp"
#include "pickle/dis.hpp"
#include "pickle/policy.hpp"
#include "pickle/reader.hpp"
#include "pickle/repr.hpp"
#include "pickle/scan.hpp"
#include "pickle/writer.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define PICKLE_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PICKLE_UNDER_ASAN 1
#endif
#endif

namespace {

// The time bound for one input: 1 s of CPU, four times that under the sanitizers' instrumentation.
#ifdef PICKLE_UNDER_ASAN
constexpr double time_bound = 4.0;
#else
constexpr double time_bound = 1.0;
#endif

std::string data_dir() {
  const char* dir = std::getenv("PICKLE_TEST_DATA");
  return dir ? dir : "tests";
}

std::string unhex(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return out;
}

struct Case {
  int klass = 0;
  std::string name, data, outcome;
  bool strict = false;
};

const std::vector<Case>& all_cases() {
  static const std::vector<Case> cases = [] {
    std::vector<Case> out;
    std::ifstream in(data_dir() + "/data/malicious_cases.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      golden::Json json = golden::JsonParser(line).parse();
      out.push_back(Case{std::stoi(json["class"].str()), json["name"].str(), unhex(json["data"].str()),
                         json["outcome"].str(), json["strict"].str() == "yes"});
    }
    return out;
  }();
  return cases;
}

// What happened to one input in the child.
struct Outcome {
  enum class Status { loaded, typed_error, untyped_error, signaled, timed_out } status = Status::signaled;
  std::string python_class;  // of the typed error
  std::string message;
  double seconds = 0;
  int signal = 0;
};

std::string describe(const Outcome& outcome) {
  switch (outcome.status) {
    case Outcome::Status::loaded: return "loaded";
    case Outcome::Status::typed_error: return outcome.python_class + ": " + outcome.message;
    case Outcome::Status::untyped_error: return "untyped exception: " + outcome.message;
    case Outcome::Status::signaled: return "signal " + std::to_string(outcome.signal);
    case Outcome::Status::timed_out: return "killed after 10 s";
  }
  return "?";
}

// Runs `work` in a child process with a memory cap and a hard time limit; `work` returns the typed
// error's class ("" when it loaded) and message through the result pipe.
template <class Work>
Outcome in_child(Work work) {
  int fds[2];
  if (::pipe(fds) != 0) return {};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
#ifndef PICKLE_UNDER_ASAN
    // 256 MB of address space for the load, on top of what the test binary already maps.
    std::size_t mapped_pages = 0;
    std::ifstream("/proc/self/statm") >> mapped_pages;
    const rlim_t cap = static_cast<rlim_t>(mapped_pages * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE))) +
                       (rlim_t{256} << 20);
    rlimit memory{cap, cap};
    ::setrlimit(RLIMIT_AS, &memory);
#endif
    ::alarm(10);
    std::string report;
    // CPU time, so that a busy machine does not fail the bound.
    const std::clock_t start = std::clock();
    char status = 'L';
    try {
      work();
    } catch (const pickle::Error& error) {
      status = 'E';
      report = std::string(error.python_class_name()) + "\n" + error.what();
    } catch (const std::exception& error) {
      status = 'U';
      report = std::string("\n") + error.what();
    }
    const double seconds = static_cast<double>(std::clock() - start) / CLOCKS_PER_SEC;
    std::string message = std::string(1, status) + std::to_string(seconds) + "\n" + report;
    const char* p = message.data();
    std::size_t left = message.size();
    while (left > 0) {
      const ssize_t n = ::write(fds[1], p, left);
      if (n <= 0) break;
      p += n;
      left -= static_cast<std::size_t>(n);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string received;
  char buffer[4096];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;) received.append(buffer, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int wait_status = 0;
  ::waitpid(pid, &wait_status, 0);
  Outcome outcome;
  if (WIFSIGNALED(wait_status)) {
    outcome.signal = WTERMSIG(wait_status);
    outcome.status = outcome.signal == SIGALRM ? Outcome::Status::timed_out : Outcome::Status::signaled;
    return outcome;
  }
  if (received.empty()) return outcome;
  const std::size_t first_newline = received.find('\n');
  outcome.seconds = std::stod(received.substr(1, first_newline - 1));
  const std::string rest = received.substr(first_newline + 1);
  switch (received[0]) {
    case 'L': outcome.status = Outcome::Status::loaded; break;
    case 'E': outcome.status = Outcome::Status::typed_error; break;
    default: outcome.status = Outcome::Status::untyped_error; break;
  }
  const std::size_t split = rest.find('\n');
  outcome.python_class = rest.substr(0, split);
  outcome.message = split == std::string::npos ? "" : rest.substr(split + 1);
  return outcome;
}

Outcome load_in_child(const std::string& data, const pickle::ReadOptions& options = {}) {
  return in_child([&] {
    pickle::Value value = pickle::loads(data, options);
    (void)value;  // destroyed inside the measured time too
  });
}

// The CPython exception class of a recorded outcome ("" for "ok").
std::string cpython_class(const std::string& outcome) {
  if (outcome == "ok") return "";
  return outcome.substr(0, outcome.find(':'));
}

void check_case(const Case& c, const std::string& data, const std::string& label) {
  SCOPED_TRACE(label);
  const Outcome outcome = load_in_child(data);
  ASSERT_TRUE(outcome.status == Outcome::Status::loaded || outcome.status == Outcome::Status::typed_error)
      << describe(outcome);
  EXPECT_LT(outcome.seconds, time_bound) << describe(outcome);
  if (c.strict && c.outcome != "not run") {
    const std::string expected = cpython_class(c.outcome);
    if (expected.empty()) {
      EXPECT_EQ(outcome.status, Outcome::Status::loaded) << "CPython loads it; the library: " << describe(outcome);
    } else {
      ASSERT_EQ(outcome.status, Outcome::Status::typed_error) << "CPython: " << c.outcome;
      EXPECT_EQ(outcome.python_class, expected) << "CPython: " << c.outcome << "\nlibrary: " << describe(outcome);
    }
  }
}

void check_class(int klass) {
  std::size_t count = 0;
  for (const Case& c : all_cases()) {
    if (c.klass != klass) continue;
    ++count;
    check_case(c, c.data, c.name);
  }
  EXPECT_GT(count, 0u) << "no case of class " << klass << " in malicious_cases.jsonl";
}

TEST(Malicious, C01_TruncationAtEveryOffset) {
  check_class(1);
  // Every strict prefix of the valid pickles is rejected with a typed error, as in CPython's
  // test_truncated_data.
  for (const Case& c : all_cases()) {
    if (c.klass != 1 || c.outcome != "ok") continue;
    for (std::size_t n = 0; n < c.data.size(); ++n) {
      SCOPED_TRACE(c.name + " cut at " + std::to_string(n));
      try {
        pickle::loads(std::string_view(c.data).substr(0, n));
        ADD_FAILURE() << "a truncated pickle loaded";
      } catch (const pickle::UnpicklingError&) {
      }
    }
  }
}
TEST(Malicious, C02_LengthFieldsLargerThanTheInput) { check_class(2); }
TEST(Malicious, C03_MemoAbuse) { check_class(3); }
TEST(Malicious, C04_StackAndMarkDiscipline) {
  check_class(4);
  try {
    pickle::loads("N(.");
    FAIL() << "N(. loaded";
  } catch (const pickle::UnpicklingError& error) {
    EXPECT_EQ(std::string(error.what()), "unexpected MARK found");  // the MARK is never an operand
  }
}
TEST(Malicious, C05_TypeConfusion) { check_class(5); }
TEST(Malicious, C06_DeepNesting) { check_class(6); }
TEST(Malicious, C07_Cycles) { check_class(7); }
TEST(Malicious, C08_AmplificationThroughSharedReferences) { check_class(8); }
TEST(Malicious, C09_ExpensiveNumbers) { check_class(9); }
TEST(Malicious, C10_HashFlooding) { check_class(10); }
TEST(Malicious, C11_TextEncoding) { check_class(11); }
TEST(Malicious, C12_ProtocolAndFraming) { check_class(12); }
TEST(Malicious, C13_ParserDifferentials) {
  check_class(13);
  // A dangerous payload followed by an error: the library never runs it, and a deny policy refuses
  // it before the error is reached, naming the global and where it is.
  pickle::ReadOptions options;
  options.policy = std::make_shared<pickle::SafeLoadPolicy>(pickle::PolicyPreset::deny_unknown);
  for (const std::string& data : {std::string("cos\nsystem\n(Vid\ntRX."), std::string("F1.5\n0cos\nsystem\n(Vid\ntR.")}) {
    SCOPED_TRACE(data);
    try {
      pickle::loads(data, options);
      FAIL() << "a denied global loaded";
    } catch (const pickle::PolicyError& error) {
      EXPECT_EQ(error.module(), "os");
      EXPECT_EQ(error.name(), "system");
      EXPECT_EQ(error.offset(), data.find("cos"));
    }
    // The scanner flags it either way.
    EXPECT_EQ(pickle::scan_exit_code(pickle::scan(data)), 3);
  }
}

// Inputs the fuzzers found (fuzz/regressions/): loads, dis, genops, scan and repr take only typed
// errors.
TEST(FuzzRegressions, EveryFindingIsHandled) {
  const std::filesystem::path dir = std::filesystem::path(data_dir()) / ".." / "fuzz" / "regressions";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "no " << dir;
  std::size_t count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(entry.path().filename().string());
    ++count;
    const Outcome outcome = in_child([&] {
      (void)pickle::scan(data);
      (void)pickle::dis(data);
      try {
        pickle::genops(data, [](const pickle::Instruction&) {});
      } catch (const pickle::Error&) {
      }
      pickle::Value value = pickle::loads(data);
      (void)pickle::repr(value);
    });
    EXPECT_TRUE(outcome.status == Outcome::Status::loaded || outcome.status == Outcome::Status::typed_error)
        << describe(outcome);
    EXPECT_LT(outcome.seconds, time_bound);
  }
  EXPECT_GT(count, 0u);
}

// What the fuzz regressions load as is written at every protocol into a pickle that loads again (or
// the writer refuses it with PicklingError, as CPython's pickler refuses a global it cannot name).
TEST(FuzzRegressions, WrittenPicklesLoadAgain) {
  const std::filesystem::path dir = std::filesystem::path(data_dir()) / ".." / "fuzz" / "regressions";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "no " << dir;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(entry.path().filename().string());
    const Outcome outcome = in_child([&] {
      pickle::Value value;
      try {
        value = pickle::loads(data);
      } catch (const pickle::Error&) {
        return;
      }
      for (int protocol = 0; protocol <= 5; ++protocol) {
        pickle::WriteOptions options;
        options.protocol = protocol;
        std::string written;
        try {
          written = pickle::dumps(value, options);
        } catch (const pickle::PicklingError&) {
          continue;  // not representable at this protocol
        }
        try {
          (void)pickle::loads(written);
        } catch (const pickle::Error& error) {
          // Below protocol 3 a name read unmapped at protocol 3 (__builtin__.frozenset taking
          // APPENDs as an inert call) reads back through the Python 2 name mapping as the real
          // builtin, as it would in CPython: our pickle must load without the mapping.
          pickle::ReadOptions unmapped;
          unmapped.fix_imports = false;
          try {
            if (protocol >= 3) throw;
            (void)pickle::loads(written, unmapped);
          } catch (const pickle::Error&) {
            throw std::runtime_error("protocol " + std::to_string(protocol) +
                                     ": the written pickle does not load: " + error.what());
          }
        }
      }
    });
    EXPECT_TRUE(outcome.status == Outcome::Status::loaded) << describe(outcome);
  }
}

}  // namespace
