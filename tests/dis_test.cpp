// pickle::dis and pickle::genops against pickletools.dis / pickletools.genops of CPython 3.11, on the
// cases tests/gen_repr_dis_cases.py recorded (valid pickles of every kind at protocols 0-5, Python 2
// pickles, objects, malformed and truncated inputs).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "pickle/dis.hpp"
#include "pickle/repr.hpp"
#include "repr_dis_jsonl.hpp"

namespace {

using repr_dis_test::from_hex;
using repr_dis_test::read_rows;
using repr_dis_test::Row;

const std::vector<Row>& cases() {
  static const std::vector<Row> rows = read_rows("dis_cases.jsonl");
  return rows;
}

std::string genops_listing(const std::string& data) {
  std::string out;
  try {
    pickle::genops(data, [&](const pickle::Instruction& ins) {
      if (!out.empty()) out += '\n';
      out += std::to_string(ins.offset) + " " + std::string(ins.info->name) + " " + pickle::repr(ins.arg);
    });
  } catch (const pickle::UnpicklingError& e) {
    if (!out.empty()) out += '\n';
    out += "error " + std::string(e.python_class_name()) + ": " + e.what();
  }
  return out;
}

TEST(Dis, MatchesPickletoolsOnEveryRecordedCase) {
  ASSERT_GT(cases().size(), 1000u);
  std::size_t failures = 0;
  for (const Row& row : cases()) {
    const std::string data = from_hex(row.at("data"));
    const pickle::DisResult result = pickle::dis(data);
    const auto error = row.find("error");
    const bool text_ok = result.text == row.at("text");
    const bool error_ok = error == row.end() ? !result.error.has_value()
                                             : result.error && *result.error == error->second;
    if (!text_ok || !error_ok) {
      if (++failures <= 20) {
        ADD_FAILURE() << row.at("name") << "\n--- expected text\n" << row.at("text")
                      << "--- actual text\n" << result.text << "--- expected error: "
                      << (error == row.end() ? "(none)" : error->second)
                      << "\n--- actual error: " << result.error.value_or("(none)");
      }
    }
  }
  EXPECT_EQ(failures, 0u) << "of " << cases().size() << " cases";
}

TEST(Genops, MatchesPickletoolsOnEveryRecordedCase) {
  std::size_t checked = 0;
  std::size_t failures = 0;
  for (const Row& row : cases()) {
    const auto expected = row.find("genops");
    if (expected == row.end()) continue;
    ++checked;
    const std::string& want = expected->second;
    const std::string got = genops_listing(from_hex(row.at("data")));
    if (got != want && ++failures <= 20) {
      ADD_FAILURE() << row.at("name") << "\n--- expected\n" << want << "\n--- actual\n" << got;
    }
  }
  EXPECT_GT(checked, 500u);
  EXPECT_EQ(failures, 0u) << "of " << checked << " cases";
}

TEST(Genops, SizesTileTheStream) {
  // Offsets are checked against pickletools above; sizes must make each opcode end where the next
  // begins, and the last (STOP) end the pickle.
  for (const Row& row : cases()) {
    const std::string data = from_hex(row.at("data"));
    if (pickle::dis(data).error) continue;
    std::size_t next = 0;
    pickle::genops(data, [&](const pickle::Instruction& ins) {
      EXPECT_EQ(ins.offset, next) << row.at("name");
      next = ins.offset + ins.size;
    });
    EXPECT_EQ(data.substr(next - 1, 1), ".") << row.at("name");
  }
}

TEST(Genops, ErrorCarriesTheOffsetWhereDecodingFailed) {
  try {
    pickle::genops(std::string("N\xff.", 3), [](const pickle::Instruction&) {});
    FAIL() << "no error";
  } catch (const pickle::UnpicklingError& e) {
    EXPECT_EQ(e.offset(), 1u);
    EXPECT_EQ(e.python_class(), pickle::PyExc::ValueError);
  }
}

TEST(Dis, MillionMarksDeepDoesNotRecurse) {
  const std::size_t depth = 1'000'000;
  std::string data(depth, '(');
  data += std::string(depth, 'l');
  data += '.';
  // Valid up to the outermost list; each line is indented by its depth, so only look at the end.
  const pickle::DisResult result = pickle::dis(data, {.indentlevel = 0});
  EXPECT_FALSE(result.error.has_value()) << *result.error;
  const std::string tail = "highest protocol among opcodes = 0\n";
  ASSERT_GE(result.text.size(), tail.size());
  EXPECT_EQ(result.text.substr(result.text.size() - tail.size()), tail);
}

TEST(Dis, IndentLevelOption) {
  // One level of MARK indentation is `indentlevel` blanks: relative to the default (4, checked
  // against pickletools above), indentlevel 2 removes two blanks before each name inside the mark.
  const std::string data = "(I1\nl.";
  std::string want = pickle::dis(data).text;
  for (const char* inside_mark : {"    INT", "    LIST"}) {  // LIST is printed before it pops the mark
    const auto at = want.find(inside_mark);
    ASSERT_NE(at, std::string::npos);
    want.erase(at, 2);
  }
  EXPECT_EQ(pickle::dis(data, {.indentlevel = 2}).text, want);
}

TEST(Dis, AnnotateAppendsTheOpcodeDescriptionToEachLine) {
  for (const Row& row : cases()) {
    if (row.count("error")) continue;
    const std::string data = from_hex(row.at("data"));
    const std::string plain = pickle::dis(data).text;
    const std::string annotated = pickle::dis(data, {.annotate = true}).text;
    std::size_t p = 0, a = 0;
    while (p < plain.size()) {
      const std::size_t p_end = plain.find('\n', p);
      const std::size_t a_end = annotated.find('\n', a);
      const std::string plain_line = plain.substr(p, p_end - p);
      const std::string annotated_line = annotated.substr(a, a_end - a);
      if (plain_line.rfind("highest protocol", 0) == 0) {
        EXPECT_EQ(annotated_line, plain_line);
      } else {
        ASSERT_EQ(annotated_line.rfind(plain_line, 0), 0u) << annotated_line;
        const auto* op = pickle::find_opcode(static_cast<std::uint8_t>(data[std::stoul(plain_line)]));
        ASSERT_NE(op, nullptr);
        const std::string suffix = " " + std::string(op->description);
        ASSERT_GE(annotated_line.size(), plain_line.size() + suffix.size());
        EXPECT_EQ(annotated_line.substr(annotated_line.size() - suffix.size()), suffix);
        EXPECT_EQ(annotated_line.substr(plain_line.size(), annotated_line.size() - plain_line.size() - suffix.size())
                      .find_first_not_of(' '),
                  std::string::npos);
      }
      p = p_end + 1;
      a = a_end + 1;
    }
    EXPECT_EQ(a, annotated.size());
  }
}

TEST(Dis, HugeLong4IsRefusedLikeTheRecordedOneWithoutQuadraticWork) {
  // The recorded case: a LONG4 of 0x800 bytes, past CPython's 4300-digit repr limit.
  const Row* recorded = nullptr;
  for (const Row& row : cases()) {
    if (row.at("data").rfind("8b00080000", 0) == 0) recorded = &row;
  }
  ASSERT_NE(recorded, nullptr);
  ASSERT_TRUE(recorded->count("error"));
  std::string data = "\x8b";
  const std::uint32_t size = 4'000'000;
  for (int i = 0; i < 4; ++i) data += static_cast<char>((size >> (8 * i)) & 0xFF);
  data += std::string(size, '\x01');
  data += '.';
  const pickle::DisResult result = pickle::dis(data);
  ASSERT_TRUE(result.error.has_value());
  EXPECT_EQ(*result.error, recorded->at("error"));
  EXPECT_EQ(result.text, recorded->at("text"));  // only the offset: printed before repr(arg) fails
}

}  // namespace
