// Differential test against a live CPython: tests/golden/random_values.py (run with
// $PICKLE_PYTHON) draws random builtin values — nested, shared, cyclic — pickles each at protocols
// 0-5 and prints the pickle with Python's repr of pickle.loads(pickle); pickle::loads must give a
// value with the same repr (order-insensitive for sets whose order depends on the hash seed).
//
// The first 2000 values come from a fixed seed; 200 more from a fresh seed printed in the output.
// To replay a failure: PICKLE_DIFFERENTIAL_SEED=<random seed> (and PICKLE_DIFFERENTIAL_COUNT to
// change the fixed series' size). Other interpreters under pyenv are tried with fewer values.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "golden/golden_support.hpp"
#include "pickle/errors.hpp"
#include "pickle/reader.hpp"
#include "pickle/repr.hpp"
#include "pickle/value.hpp"

namespace {

std::string script_path() {
  const char* root = std::getenv("PICKLE_TEST_DATA");
  return std::string(root ? root : "tests") + "/golden/random_values.py";
}

struct Outcome {
  std::size_t passed = 0, total = 0;
  std::vector<std::string> failures;
};

// Runs random_values.py under `python` and checks every pickle it prints, against the repr of
// `repr_python` when given (repr of str depends on the interpreter's Unicode version, and the
// library prints what the oracle prints). Returns false (with a gtest failure) when a script could
// not run.
bool check_interpreter(const std::string& python, int count, int random_count,
                       const std::vector<std::pair<std::string, std::string>>& env,
                       const std::string& repr_python = "") {
  std::vector<std::string> argv = {python, script_path(), "--count", std::to_string(count),
                                   "--random-count", std::to_string(random_count)};
  if (const char* seed = std::getenv("PICKLE_DIFFERENTIAL_SEED")) {
    argv.push_back("--random-seed");
    argv.push_back(seed);
  }
  golden::ProcessLimits limits;
  limits.wall_timeout_seconds = 300;
  auto run = golden::run_process(argv, "", limits, env);
  if (run.exit_code != 0) {
    ADD_FAILURE() << python << " random_values.py failed (exit " << run.exit_code << ", signal "
                  << run.signal << "): " << golden::escape_for_message(run.err, 2000);
    return false;
  }
  if (!repr_python.empty()) {
    auto rerun = golden::run_process({repr_python, script_path(), "--rerepr"}, run.out, limits, env);
    if (rerun.exit_code != 0) {
      ADD_FAILURE() << repr_python << " random_values.py --rerepr failed (exit "
                    << rerun.exit_code << "): " << golden::escape_for_message(rerun.err, 2000);
      return false;
    }
    run.out = std::move(rerun.out);
  }
  std::map<int, Outcome> per_proto;
  std::string header;
  std::size_t start = 0;
  while (start < run.out.size()) {
    std::size_t end = run.out.find('\n', start);
    if (end == std::string::npos) end = run.out.size();
    std::string_view line(run.out.data() + start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    golden::Json rec = golden::parse_json(line);
    if (rec.has("python")) {
      header = std::string(line);
      continue;
    }
    int proto = int(rec["proto"].number);
    Outcome& outcome = per_proto[proto];
    ++outcome.total;
    std::string data = golden::hex_decode(rec["hex"].str());
    std::string where = "seed " + std::to_string(std::int64_t(rec["seed"].number)) + " value " +
                        std::to_string(int(rec["index"].number)) + " protocol " +
                        std::to_string(proto);
    std::string problem;
    try {
      pickle::Value value = pickle::loads(data);
      bool unordered = rec["repr_mode"].str() == "unordered";
      std::string got = unordered ? golden::canonical_repr(value) : pickle::repr(value);
      const std::string& expected = unordered ? rec["canonical"].str() : rec["repr"].str();
      if (got != expected) {
        std::size_t at = 0;
        while (at < got.size() && at < expected.size() && got[at] == expected[at]) ++at;
        std::size_t from = at > 40 ? at - 40 : 0;
        problem = std::string(unordered ? "canonical repr" : "repr") + " differs at char " +
                  std::to_string(at) + ": got «" +
                  golden::escape_for_message(got.substr(from, 120)) + "», Python «" +
                  golden::escape_for_message(expected.substr(from, 120)) + "»";
      }
    } catch (const pickle::Error& e) {
      problem = "loads threw " + std::string(e.python_class_name()) + ": " + e.what();
    } catch (const std::exception& e) {
      problem = std::string("threw ") + e.what();
    }
    if (problem.empty()) {
      ++outcome.passed;
    } else {
      std::string hex = rec["hex"].str();
      outcome.failures.push_back(where + ": " + problem + " [pickle " +
                                 (hex.size() > 400 ? hex.substr(0, 400) + "…" : hex) + "]");
    }
  }
  std::cout << "[" << python << "] " << header << "\n";
  std::size_t failures = 0;
  for (const auto& [proto, outcome] : per_proto) {
    std::cout << "  protocol " << proto << ": " << outcome.passed << " passed / " << outcome.total
              << " total\n";
    for (std::size_t i = 0; i < outcome.failures.size() && i < 8; ++i)
      std::cout << "    FAIL " << outcome.failures[i] << "\n";
    if (outcome.failures.size() > 8)
      std::cout << "    … and " << outcome.failures.size() - 8 << " more\n";
    failures += outcome.failures.size();
  }
  EXPECT_FALSE(per_proto.empty()) << "random_values.py printed no pickles";
  EXPECT_EQ(failures, 0u) << "differences from " << python << " (" << header << ")";
  return true;
}

int env_int(const char* name, int fallback) {
  const char* text = std::getenv(name);
  return text ? std::atoi(text) : fallback;
}

TEST(Differential, RandomValuesMatchPythonsRepr) {
  const char* python = std::getenv("PICKLE_PYTHON");
  if (!python) GTEST_SKIP() << "PICKLE_PYTHON is not set";
  check_interpreter(python, env_int("PICKLE_DIFFERENTIAL_COUNT", 2000), 200,
                    {{"PYTHONHASHSEED", "0"}});
}

// The same, briefly, with every CPython 3 that pyenv provides (their picklers differ in small
// ways: batching, framing, memo use); the expected repr is PICKLE_PYTHON's.
TEST(Differential, RandomValuesFromOtherInterpreters) {
  const char* oracle = std::getenv("PICKLE_PYTHON");
  if (!oracle) GTEST_SKIP() << "PICKLE_PYTHON is not set";
  const char* home = std::getenv("HOME");
  std::string root = std::getenv("PYENV_ROOT") ? std::getenv("PYENV_ROOT")
                                               : std::string(home ? home : "") + "/.pyenv";
  std::vector<std::string> interpreters;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(root + "/versions", ec)) {
    std::string name = entry.path().filename().string();
    std::string python = entry.path().string() + "/bin/python3";
    // random_values.py runs on any Python 3 (3.6+); Python 2 is not tried.
    if (name.rfind("3.", 0) == 0 && std::filesystem::exists(python)) interpreters.push_back(python);
  }
  if (interpreters.empty()) GTEST_SKIP() << "no pyenv interpreters under " << root;
  std::sort(interpreters.begin(), interpreters.end());
  for (const auto& python : interpreters)
    check_interpreter(python, env_int("PICKLE_DIFFERENTIAL_OTHER_COUNT", 150), 50,
                      {{"PYTHONHASHSEED", "0"}}, oracle);
}

}  // namespace
