// The scanner (pickle/scan.hpp): what it reports for pickles whose globals CPython itself resolved
// (tests/data/scan_cases.jsonl, written by tests/gen_scan_cases.py under CPython 3.11), the
// conformance corpus (all benign data), and the text / JSON / exit-status contract of
// `pickletool scan`.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "golden/golden_support.hpp"
#include "pickle/scan.hpp"

namespace {

std::string data_dir() {
  const char* dir = std::getenv("PICKLE_TEST_DATA");
  return dir ? dir : "tests";
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string unhex(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return out;
}

struct Case {
  std::string name, label, data, outcome;
  std::set<std::string> find_class;  // "module name"
};

std::vector<Case> load_cases() {
  std::vector<Case> cases;
  std::ifstream in(data_dir() + "/data/scan_cases.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    golden::Json json = golden::JsonParser(line).parse();
    Case c{json["name"].str(), json["label"].str(), unhex(json["data"].str()), json["outcome"].str(), {}};
    std::istringstream calls(json["find_class"].str());
    for (std::string call; std::getline(calls, call);) c.find_class.insert(call);
    cases.push_back(std::move(c));
  }
  return cases;
}

std::set<std::string> scanned_globals(const pickle::ScanReport& report) {
  std::set<std::string> globals;
  for (const pickle::ScanItem& item : report.items) {
    if (item.kind == pickle::ScanItemKind::global && !item.module.empty()) {
      globals.insert(item.module + " " + item.name);
    }
  }
  return globals;
}

std::string items_text(const pickle::ScanReport& report) { return pickle::format_scan_text(report); }

TEST(ScanCases, FileIsPresent) { EXPECT_GT(load_cases().size(), 100u); }

// Every global CPython asked find_class for is reported, and when the load ran to its end nothing
// else is (the scan knows STACK_GLOBAL operands exactly, through the memo and across pickles).
TEST(ScanCases, GlobalsAreExactlyWhatCPythonResolves) {
  for (const Case& c : load_cases()) {
    SCOPED_TRACE(c.name);
    pickle::ScanReport report = pickle::scan(c.data);
    std::set<std::string> globals = scanned_globals(report);
    for (const std::string& resolved : c.find_class) {
      EXPECT_TRUE(globals.count(resolved)) << "missing " << resolved << "\n" << items_text(report);
    }
    if (c.outcome == "ok") {
      EXPECT_EQ(globals, c.find_class) << items_text(report);
    }
  }
}

TEST(ScanCases, VerdictMatchesTheLabel) {
  for (const Case& c : load_cases()) {
    SCOPED_TRACE(c.name);
    pickle::ScanReport report = pickle::scan(c.data);
    const std::string text = items_text(report);
    if (c.label == "dangerous") {
      EXPECT_EQ(report.risk, pickle::Risk::dangerous) << text;
      EXPECT_EQ(pickle::scan_exit_code(report), 3) << text;
      EXPECT_EQ(pickle::scan_verdict(report), "dangerous");
    } else if (c.label == "benign") {
      EXPECT_FALSE(report.malformed()) << text;
      EXPECT_NE(report.risk, pickle::Risk::dangerous) << text;
      EXPECT_EQ(pickle::scan_exit_code(report), 0) << text;
      // Builtin data only ever uses the allowlisted constructors, written by one pickler.
      EXPECT_EQ(report.risk, pickle::Risk::safe) << text;
    } else if (c.label == "suspicious") {
      EXPECT_FALSE(report.malformed()) << text;
      EXPECT_EQ(report.risk, pickle::Risk::suspicious) << text;
      EXPECT_EQ(pickle::scan_exit_code(report), 0) << text;
      EXPECT_EQ(pickle::scan_verdict(report), "suspicious");
    } else {
      ASSERT_EQ(c.label, "malformed");
      ASSERT_TRUE(report.malformed()) << text;
      EXPECT_EQ(pickle::scan_exit_code(report), 1);
      EXPECT_EQ(pickle::scan_verdict(report), "malformed");
      // CPython's exception class and message for the same input.
      const std::string expected = std::string(pickle::py_exc_name(report.error->python_class)) + ": " +
                                   report.error->message;
      EXPECT_EQ(expected, c.outcome);
    }
  }
}

// A payload stays dangerous however the file is cut: every prefix that still holds the GLOBAL is
// flagged, and no prefix makes the scanner throw.
TEST(Scan, PrefixesOfADangerousPickle) {
  const std::string payload = std::string("\x80\x02") + "cos\nsystem\n(Vid\ntR.";
  const std::size_t global_end = 2 + std::string("cos\nsystem\n").size();
  for (std::size_t n = 0; n <= payload.size(); ++n) {
    SCOPED_TRACE(n);
    pickle::ScanReport report = pickle::scan(std::string_view(payload).substr(0, n));
    EXPECT_EQ(report.malformed(), n < payload.size());
    EXPECT_EQ(pickle::scan_exit_code(report), n >= global_end ? 3 : 1);
  }
}

TEST(Scan, ItemOffsetsAndCounts) {
  // 0: PROTO 2; 2: GLOBAL os system; 13: MARK; 14: UNICODE; 18: TUPLE; 19: REDUCE; 20: POP;
  // 21: GLOBAL os system again (merged, count 2); 32: STOP
  const std::string data = std::string("\x80\x02") + "cos\nsystem\n(Vid\ntR0cos\nsystem\n.";
  pickle::ScanReport report = pickle::scan(data);
  ASSERT_FALSE(report.malformed());
  ASSERT_EQ(report.items.size(), 2u) << items_text(report);
  EXPECT_EQ(report.items[0].kind, pickle::ScanItemKind::global);
  EXPECT_EQ(report.items[0].opcode, "GLOBAL");
  EXPECT_EQ(report.items[0].offset, 2u);
  EXPECT_EQ(report.items[0].count, 2u);
  EXPECT_EQ(report.items[1].kind, pickle::ScanItemKind::call);
  EXPECT_EQ(report.items[1].opcode, "REDUCE");
  EXPECT_EQ(report.items[1].offset, 19u);
  EXPECT_EQ(report.items[1].module, "os");
  EXPECT_EQ(report.items[1].name, "system");
}

TEST(Scan, ConcatenatedPicklesAndTrailingBytes) {
  const std::string one = "\x80\x04N.";
  pickle::ScanReport three = pickle::scan(one + one + one);
  EXPECT_EQ(three.pickles, 3u);
  ASSERT_EQ(three.items.size(), 1u);
  EXPECT_EQ(three.items[0].kind, pickle::ScanItemKind::anomaly);
  EXPECT_EQ(three.items[0].offset, one.size());
  EXPECT_EQ(three.items[0].count, 2u);

  pickle::ScanReport trailing = pickle::scan(one + "garbage");
  EXPECT_EQ(trailing.pickles, 1u);
  EXPECT_FALSE(trailing.malformed());
  ASSERT_EQ(trailing.items.size(), 1u);
  EXPECT_NE(trailing.items[0].detail.find("7 bytes after STOP"), std::string::npos);

  // A dangerous global in bytes after STOP that never form a pickle is still reported.
  pickle::ScanReport hidden = pickle::scan(one + "cos\nsystem\n");
  EXPECT_EQ(pickle::scan_exit_code(hidden), 3);
  EXPECT_EQ(hidden.items[0].pickle_index, 1u);
}

TEST(Scan, UnknownStackGlobalOperandsAreDangerous) {
  // STACK_GLOBAL on the result of a call: the name only exists at load time.
  const std::string data = std::string("\x80\x04") + "\x8c\x08" "builtins" "\x8c\x03" "str" "\x93" +
                           "\x8c\x02os\x85R" + "\x8c\x06system\x93.";
  pickle::ScanReport report = pickle::scan(data);
  EXPECT_EQ(pickle::scan_exit_code(report), 3) << items_text(report);
}

TEST(Scan, DeepAndWideInputsDoNotRecurse) {
  std::string deep = "\x80\x02";
  for (int i = 0; i < 1000000; ++i) deep += ']';
  for (int i = 0; i < 999999; ++i) deep += 'a';
  deep += '.';
  pickle::ScanReport report = pickle::scan(deep);
  EXPECT_FALSE(report.malformed());
  EXPECT_EQ(report.risk, pickle::Risk::safe);

  // The memo-doubling bomb costs the scan nothing.
  using namespace std::string_literals;
  std::string bomb = "\x80\x04Nq\x00"s;
  for (int i = 0; i < 40; ++i) bomb += "0h\x00h\x00\x86q\x00"s;
  bomb += ".";
  EXPECT_FALSE(pickle::scan(bomb).malformed());
}

// The conformance corpus (builtin values pickled by CPython 2.7 and 3.8-3.13) is benign data:
// nothing in it is dangerous.
TEST(Scan, ConformanceCorpusIsNeverDangerous) {
  std::ifstream manifest(data_dir() + "/golden/manifest.jsonl");
  if (!manifest) GTEST_SKIP() << "no tests/golden/manifest.jsonl";
  std::size_t scanned = 0;
  std::string line;
  while (std::getline(manifest, line)) {
    golden::Json entry = golden::JsonParser(line).parse();
    if (entry["category"].str_or("") != "corpus") continue;
    const std::string data = slurp(data_dir() + "/golden/" + entry["file"].str());
    pickle::ScanReport report = pickle::scan(data);
    ++scanned;
    EXPECT_NE(pickle::scan_exit_code(report), 3) << entry["file"].str() << "\n" << items_text(report);
    if (entry["outcome"].str_or("") == "accept") {
      EXPECT_FALSE(report.malformed()) << entry["file"].str() << "\n" << items_text(report);
    }
  }
  EXPECT_GT(scanned, 1000u);
}

TEST(ScanFormat, TextReport) {
  const std::string data = std::string("\x80\x02") + "cos\nsystem\n(Vid\ntR.";
  const std::string text = pickle::format_scan_text(pickle::scan(data), "evil.pkl");
  EXPECT_EQ(text.rfind("evil.pkl: dangerous (2 items, 1 pickle, 21 bytes)\n", 0), 0u) << text;
  EXPECT_NE(text.find("  dangerous  global        os.system"), std::string::npos) << text;
  EXPECT_NE(text.find("GLOBAL at 2"), std::string::npos) << text;
  EXPECT_NE(text.find("REDUCE at 19"), std::string::npos) << text;

  const std::string broken = pickle::format_scan_text(pickle::scan("N(."), "");
  EXPECT_EQ(broken.rfind("malformed (0 items, 0 pickles, 3 bytes)\n", 0), 0u) << broken;
  EXPECT_NE(broken.find("malformed: UnpicklingError: unexpected MARK found at offset 2"),
            std::string::npos)
      << broken;
}

TEST(ScanFormat, JsonReport) {
  const std::string data = std::string("\x80\x02") + "cos\nsystem\n(Vid\ntR.";
  golden::Json json = golden::JsonParser(pickle::format_scan_json(pickle::scan(data), "evil.pkl")).parse();
  EXPECT_EQ(json["source"].str(), "evil.pkl");
  EXPECT_EQ(json["verdict"].str(), "dangerous");
  EXPECT_EQ(json["risk"].str(), "dangerous");
  EXPECT_EQ(json["exit_code"].number, 3);
  EXPECT_EQ(json["size"].number, 21);
  EXPECT_EQ(json["pickles"].number, 1);
  EXPECT_TRUE(json["error"].is_null());
  ASSERT_EQ(json["items"].array.size(), 2u);
  const golden::Json& global = json["items"].array[0];
  EXPECT_EQ(global["kind"].str(), "global");
  EXPECT_EQ(global["opcode"].str(), "GLOBAL");
  EXPECT_EQ(global["offset"].number, 2);
  EXPECT_EQ(global["module"].str(), "os");
  EXPECT_EQ(global["name"].str(), "system");
  EXPECT_EQ(global["risk"].str(), "dangerous");
  EXPECT_EQ(json["items"].array[1]["kind"].str(), "call");

  golden::Json broken = golden::JsonParser(pickle::format_scan_json(pickle::scan("X\xff\xff\xff\xff."))).parse();
  EXPECT_EQ(broken["verdict"].str(), "malformed");
  EXPECT_EQ(broken["exit_code"].number, 1);
  EXPECT_EQ(broken["error"]["message"].str(), "pickle data was truncated");
  EXPECT_EQ(broken["error"]["opcode"].str(), "BINUNICODE");
  EXPECT_EQ(broken["error"]["offset"].number, 0);
  EXPECT_EQ(broken["error"]["python_class"].str(), "UnpicklingError");
}

TEST(ScanFormat, JsonEscapesNamesThatAreNotUtf8) {
  const std::string data = std::string("c\xff\"mod\nna\\me\n.");
  const std::string json_text = pickle::format_scan_json(pickle::scan(data));
  golden::Json json = golden::JsonParser(json_text).parse();
  ASSERT_EQ(json["items"].array.size(), 1u) << json_text;
  EXPECT_EQ(json["items"].array[0]["module"].str(), "\xc3\xbf\"mod");  // U+00FF for the stray byte
  EXPECT_EQ(json["items"].array[0]["name"].str(), "na\\me");
}

TEST(ScanFormat, ExitCodeRule) {
  struct Row {
    std::string data;
    int exit_code;
    std::string_view verdict;
  };
  const std::vector<Row> rows = {
      {"N.", 0, "clean"},
      {"\x80\x04\x8c\x08__main__\x8c\x01P\x93)\x81.", 0, "suspicious"},
      {"", 1, "malformed"},
      {"cos\nsystem\n", 3, "dangerous"},  // dangerous wins over malformed
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.data);
    pickle::ScanReport report = pickle::scan(row.data);
    EXPECT_EQ(pickle::scan_exit_code(report), row.exit_code);
    EXPECT_EQ(pickle::scan_verdict(report), row.verdict);
  }
}

}  // namespace
