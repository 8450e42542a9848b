// pickle::parse_literal against CPython: for each literal of tests/writer/gen_literal_cases.py,
// pickle.dumps(ast.literal_eval(LITERAL), protocol) under CPython 3.8–3.13 must equal
// pickle::dumps(parse_literal(LITERAL)) with CPython's identities, or both must reject it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "pickle/literal.hpp"
#include "pickle/writer.hpp"
#include "writer/description.hpp"

namespace {

struct Row {
  std::string literal;
  int protocol;
  std::string expected;  // packed hex or "-"
  std::string error;     // CPython's exception class or "-"
  bool complex;
};

std::string data_dir() {
  const char* dir = std::getenv("PICKLE_TEST_DATA");
  return std::string(dir != nullptr ? dir : "tests") + "/writer/";
}

std::vector<Row> rows(int minor) {
  std::ifstream in(data_dir() + "literals-3." + std::to_string(minor) + ".tsv");
  std::vector<Row> out;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::size_t start = 0;
    for (;;) {
      std::size_t tab = line.find('\t', start);
      f.push_back(line.substr(start, tab - start));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    if (f.size() != 5) continue;
    out.push_back(Row{pickle::testing::unpack_hex(f[0]), std::stoi(f[1]), f[2], f[3], f[4] == "complex"});
  }
  return out;
}

std::string interpreter_name(const ::testing::TestParamInfo<int>& param_info) {
  return "py3_" + std::to_string(param_info.param);
}

class LiteralTable : public ::testing::TestWithParam<int> {};

TEST_P(LiteralTable, EncodesAsCPython) {
  int minor = GetParam();
  std::vector<Row> table = rows(minor);
  ASSERT_FALSE(table.empty());
  // Literals an older interpreter rejects but 3.11 accepts (3.8 has no set() and does not strip
  // leading blanks) are a difference of versions, not of the parser.
  std::set<std::string> accepted_by_311;
  for (const Row& r : rows(11))
    if (r.error == "-") accepted_by_311.insert(r.literal);
  int passed = 0, rejected = 0, version_differences = 0, complex_rejected = 0;
  for (const Row& row : table) {
    SCOPED_TRACE("literal " + row.literal.substr(0, 80) + " protocol " + std::to_string(row.protocol));
    if (row.error != "-" && accepted_by_311.count(row.literal) != 0) {
      ++version_differences;
      continue;
    }
    if (row.error != "-" || row.complex) {
      try {
        pickle::parse_literal(row.literal);
        ADD_FAILURE() << "accepted; CPython: " << (row.complex ? "complex" : row.error);
      } catch (const pickle::Error& e) {
        if (row.error == "TypeError") EXPECT_EQ(e.python_class(), pickle::PyExc::TypeError) << e.what();
        else EXPECT_EQ(e.python_class(), pickle::PyExc::ValueError) << e.what();
        ++(row.complex ? complex_rejected : rejected);
      }
      continue;
    }
    std::string got;
    try {
      pickle::WriteOptions options;
      options.protocol = row.protocol;
      options.target_minor = minor;
      options.identities = pickle::Identities::cpython;
      got = pickle::dumps(pickle::parse_literal(row.literal), options);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "exception " << e.what();
      continue;
    }
    std::string expected = pickle::testing::unpack_hex(row.expected);
    if (got == expected) {
      ++passed;
    } else {
      ADD_FAILURE() << "expected " << pickle::testing::to_hex(expected).substr(0, 200) << "\n got      "
                    << pickle::testing::to_hex(got).substr(0, 200);
    }
  }
  std::printf("[literals 3.%d] %d encoded as CPython, %d rejected as CPython, %d complex rejected, "
              "%d version differences skipped, of %zu\n",
              minor, passed, rejected, complex_rejected, version_differences, table.size());
}

INSTANTIATE_TEST_SUITE_P(Interpreters, LiteralTable, ::testing::Values(8, 9, 10, 11, 12, 13),
                         interpreter_name);

TEST(Literal, MillionDeepListParses) {
  std::string text(1'000'000, '[');
  text.append(1'000'000, ']');
  pickle::Value v = pickle::parse_literal(text);
  std::size_t depth = 0;
  for (pickle::Value cur = v; cur.size() == 1; cur = cur[0]) ++depth;
  EXPECT_EQ(depth, 999'999u);
}

TEST(Literal, EqualStringsAreDistinctObjects) {
  pickle::Value v = pickle::parse_literal("['ab', 'ab']");
  EXPECT_FALSE(v[0].is(v[1]));
  EXPECT_EQ(v[0], v[1]);
}

}  // namespace
