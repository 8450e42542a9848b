// Per-rule goldens: values described by tests/writer/gen_writer_cases.py under CPython 3.8–3.13,
// rebuilt here as pickle::Value graphs (tests/writer/description.hpp) and written with dumps at the
// same protocol and target version; the bytes (or the exception) must be CPython's.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "pickle/writer.hpp"
#include "writer/description.hpp"

namespace {

struct Case {
  std::string file;
  int target_minor;
  std::string name;
  int protocol;
  std::string description;
  std::string expected;  // packed hex, or "-"
  std::string error;     // "Class: message", or "-"
};

std::string data_dir() {
  const char* dir = std::getenv("PICKLE_TEST_DATA");
  return std::string(dir != nullptr ? dir : "tests") + "/writer/";
}

std::vector<Case> load_cases(const std::string& file, int target_minor) {
  std::ifstream in(data_dir() + file);
  std::vector<Case> cases;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::size_t start = 0;
    for (;;) {
      std::size_t tab = line.find('\t', start);
      fields.push_back(line.substr(start, tab - start));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    if (fields.size() != 5) continue;
    cases.push_back(Case{file, target_minor, fields[0], std::stoi(fields[1]), fields[2], fields[3],
                         fields[4]});
  }
  return cases;
}

struct Tally {
  int passed = 0;
  int failed = 0;
};

void run_file(const std::string& file, int target_minor, Tally& tally) {
  std::vector<Case> cases = load_cases(file, target_minor);
  ASSERT_FALSE(cases.empty()) << file;
  for (const Case& c : cases) {
    if (c.description == "-") continue;
    SCOPED_TRACE(file + " " + c.name + " protocol " + std::to_string(c.protocol));
    pickle::Value value = pickle::testing::build_description(c.description);
    pickle::WriteOptions options;
    options.protocol = c.protocol;
    options.target_minor = target_minor;
    std::string got;
    std::string error = "-";
    try {
      got = pickle::dumps(value, options);
    } catch (const pickle::Error& e) {
      error = std::string(e.python_class_name()) + ": " + e.what();
    }
    bool ok;
    if (c.error != "-") {
      ok = error == c.error;
      EXPECT_EQ(error, c.error);
    } else {
      std::string expected = pickle::testing::unpack_hex(c.expected);
      ok = error == "-" && got == expected;
      EXPECT_EQ(error, "-");
      if (got != expected) {
        std::size_t at = 0;
        while (at < got.size() && at < expected.size() && got[at] == expected[at]) ++at;
        ADD_FAILURE() << "differs at byte " << at << " of " << expected.size() << "\n  expected "
                      << pickle::testing::to_hex(expected.substr(at > 16 ? at - 16 : 0, 64))
                      << "\n  got      "
                      << pickle::testing::to_hex(got.substr(at > 16 ? at - 16 : 0, 64));
      }
    }
    (ok ? tally.passed : tally.failed)++;
  }
}

std::string interpreter_name(const ::testing::TestParamInfo<int>& param_info) {
  return "py3_" + std::to_string(param_info.param);
}

class WriterGolden : public ::testing::TestWithParam<int> {};

TEST_P(WriterGolden, MatchesCPython) {
  int minor = GetParam();
  Tally tally;
  run_file("cases-3." + std::to_string(minor) + ".tsv", minor, tally);
  std::printf("[writer golden 3.%d] %d passed, %d failed\n", minor, tally.passed, tally.failed);
  EXPECT_GT(tally.passed, 300);
}

INSTANTIATE_TEST_SUITE_P(Interpreters, WriterGolden, ::testing::Values(8, 9, 10, 11, 12, 13),
                         interpreter_name);

// Identities::cpython shares what CPython shares in a value built without sharing: up to 3.9 every
// empty frozenset is one object (so the corpus value's four empty frozensets are one), from 3.10
// they are four. The expected bytes are the corpus's, written by each interpreter.
TEST_P(WriterGolden, CPythonIdentitiesShareTheEmptyFrozensetUpTo39) {
  const int minor = GetParam();
  const std::string unshared = "(l (Z ) (Z ) (l (Z ) ) (Z ) (S ) )";
  int checked = 0;
  for (const Case& c : load_cases("cases-3." + std::to_string(minor) + ".tsv", minor)) {
    if (c.name != "empty_frozensets") continue;
    SCOPED_TRACE("protocol " + std::to_string(c.protocol));
    pickle::WriteOptions options;
    options.protocol = c.protocol;
    options.target_minor = minor;
    options.identities = pickle::Identities::cpython;
    EXPECT_EQ(pickle::testing::to_hex(pickle::dumps(pickle::testing::build_description(unshared), options)),
              pickle::testing::to_hex(pickle::testing::unpack_hex(c.expected)));
    ++checked;
  }
  EXPECT_EQ(checked, 6);
}

TEST(WriterGoldenBig, FramesBatchesAndLargePayloads) {
  Tally tally;
  run_file("cases-big.tsv", 11, tally);
  std::printf("[writer golden big] %d passed, %d failed\n", tally.passed, tally.failed);
  EXPECT_GT(tally.passed, 40);
}

}  // namespace
