// pickle::to_json / from_json and pickletool json / from-json.
//
// Expectations come from tests/gen_json_cases.py (CPython 3.11): the JSON of each pickle is computed
// there by a Python implementation of the mapping in pickle/JSON.md, and the pickles of plain JSON
// documents are pickle.dumps(json.loads(text), protocol). The live tests run $PICKLE_PYTHON.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "pickle/json.hpp"
#include "pickle/reader.hpp"
#include "pickle/value.hpp"
#include "pickle/writer.hpp"

namespace {

using pickle::from_json;
using pickle::JsonOptions;
using pickle::to_json;
using pickle::Value;

std::string data_dir() {
  const char* dir = std::getenv("PICKLE_TEST_DATA");
  return dir ? dir : "tests";
}

std::string from_hex(std::string_view hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  }
  return out;
}

std::string to_hex(std::string_view data) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : data) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::vector<std::vector<std::string>> read_tsv(const std::string& name) {
  std::ifstream in(data_dir() + "/json/" + name, std::ios::binary);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::size_t start = 0;
    while (true) {
      const std::size_t tab = line.find('\t', start);
      fields.push_back(line.substr(start, tab - start));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    rows.push_back(std::move(fields));
  }
  return rows;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_file(const std::string& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

// Runs a shell command; its standard output and exit status.
std::pair<std::string, int> run(const std::string& command) {
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return {"", -1};
  std::string out;
  char buffer[4096];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  const int status = ::pclose(pipe);
  return {out, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("json_test_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

bool valid_utf8_without_surrogates(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t length = c < 0x80 ? 1 : c < 0xC2 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
    if (length == 0 || i + length > text.size()) return false;
    for (std::size_t k = 1; k < length; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return false;
    }
    if (c == 0xED && static_cast<unsigned char>(text[i + 1]) >= 0xA0) return false;  // surrogate
    i += length;
  }
  return true;
}

// --- to_json against the Python implementation of the mapping -----------------------------------

TEST(ToJson, MatchesThePythonMappingForEveryCase) {
  const auto rows = read_tsv("to_json.tsv");
  ASSERT_GT(rows.size(), 100u);
  for (const auto& row : rows) {
    ASSERT_EQ(row.size(), 5u);
    SCOPED_TRACE(row[0] + " protocol " + row[1]);
    const Value value = pickle::loads(from_hex(row[2]));
    EXPECT_EQ(to_json(value), row[3]);
    EXPECT_EQ(to_json(value, {.indent = 2}), from_hex(row[4]));
    EXPECT_TRUE(valid_utf8_without_surrogates(to_json(value)));
  }
}

// from_json reads back everything to_json writes: the JSON of the value read is the same text.
TEST(ToJson, FromJsonReadsEveryCaseBack) {
  for (const auto& row : read_tsv("to_json.tsv")) {
    SCOPED_TRACE(row[0] + " protocol " + row[1]);
    const Value value = from_json(row[3]);
    EXPECT_EQ(to_json(value), row[3]);
    EXPECT_EQ(to_json(from_json(from_hex(row[4]))), row[3]);
  }
}

// For values without objects, reading back gives an equal value that pickles to the same bytes at
// the protocol it came from (objects compare by identity, so those are checked by the text above).
TEST(ToJson, RoundTripRepicklesBuiltinValuesIdentically) {
  for (const auto& row : read_tsv("to_json.tsv")) {
    if (row[3].find("$object") != std::string::npos || row[3].find("$global") != std::string::npos ||
        row[3].find("nan") != std::string::npos) {
      continue;
    }
    SCOPED_TRACE(row[0] + " protocol " + row[1]);
    const std::string data = from_hex(row[2]);
    const Value loaded = pickle::loads(data);
    const Value back = from_json(row[3]);
    EXPECT_TRUE(loaded == back);
  }
}

// --- from_json against pickle.dumps(json.loads(text)) ----------------------------------------------

std::string pickle_of_json(std::string_view text, int protocol) {
  pickle::WriteOptions options;
  options.protocol = protocol;
  options.identities = pickle::Identities::cpython;
  return pickle::dumps(from_json(text), options);
}

TEST(FromJson, PicklesAsCPythonPicklesJsonLoads) {
  const auto rows = read_tsv("from_json.tsv");
  ASSERT_GE(rows.size(), 60u);
  for (const auto& row : rows) {
    ASSERT_EQ(row.size(), 4u);
    SCOPED_TRACE(row[0] + " protocol " + row[1]);
    EXPECT_EQ(to_hex(pickle_of_json(from_hex(row[2]), std::stoi(row[1]))), row[3]);
  }
}

TEST(FromJson, EqualKeysOfOneDocumentAreOneStr) {
  const Value value = from_json(R"([{"name": 1}, {"name": 2}, "name"])");
  const Value first = value[0].dict_items()[0].first;
  const Value second = value[1].dict_items()[0].first;
  EXPECT_TRUE(first.is(second));
  EXPECT_FALSE(first.is(value[2]));  // values are fresh, as in json.loads
}

TEST(FromJson, ScalarsAsJsonLoads) {
  struct Case {
    std::string_view text;
    Value expected;
  };
  const Case cases[] = {
      {"0", Value(0)},
      {"-0", Value(0)},
      {"-0.0", Value(-0.0)},
      {"1e2", Value(100.0)},
      {"1E+2", Value(100.0)},
      {"2.5", Value(2.5)},
      {"5e-324", Value(5e-324)},
      {"1e400", Value(std::numeric_limits<double>::infinity())},
      {"-1e400", Value(-std::numeric_limits<double>::infinity())},
      {"1e-400", Value(0.0)},
      {"0.000e999999999999999999", Value(0.0)},
      {"Infinity", Value(std::numeric_limits<double>::infinity())},
      {"9223372036854775808", Value(pickle::BigInt("9223372036854775808"))},
      {"-9223372036854775809", Value(pickle::BigInt("-9223372036854775809"))},
      {R"("\u00e9\ud83d\ude00")", Value("\xc3\xa9\xf0\x9f\x98\x80")},
      {R"("\ud800x")", Value("\xed\xa0\x80x")},
      {R"({"$int": "-0x10"})", Value(-16)},
      {R"({"$codepoints": [55357, 56832]})", Value("\xed\xa0\xbd\xed\xb8\x80")},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.text));
    const Value value = from_json(c.text);
    EXPECT_TRUE(same_graph(value, c.expected)) << pickle::repr(value);
    if (c.expected.is_float()) {
      EXPECT_EQ(std::signbit(value.as_float()), std::signbit(c.expected.as_float()));
    }
  }
  EXPECT_TRUE(std::isnan(from_json("NaN").as_float()));
  EXPECT_TRUE(std::signbit(from_json(R"({"$float": "-nan"})").as_float()));
}

// --- values built in C++ ---------------------------------------------------------------------------

TEST(ToJson, StrEscapesAndSurrogates) {
  struct Case {
    std::string_view utf8;
    std::string_view json;
  };
  const Case cases[] = {
      {"\xed\xa0\x80", R"("\ud800")"},
      {"a\xed\xbf\xbf", R"("a\udfff")"},
      {"\xed\x9f\xbf", "\"\xed\x9f\xbf\""},  // U+D7FF is no surrogate
      {std::string_view("\x00\x1f\x7f", 3), "\"\\u0000\\u001f\x7f\""},
      {"\xed\xa0\xbd\xed\xb8\x80", R"({"$codepoints": [55357, 56832]})"},
  };
  for (const Case& c : cases) {
    const std::string text = to_json(Value(c.utf8));
    EXPECT_EQ(text, c.json);
    EXPECT_TRUE(valid_utf8_without_surrogates(text));
    EXPECT_TRUE(same_graph(from_json(text), Value(c.utf8)));
  }
}

TEST(ToJson, BuffersAndIndentZero) {
  const Value buffer = Value::buffer("ab", 3, true);
  const Value value = Value::list({buffer, buffer});
  const std::string text = to_json(value);
  EXPECT_EQ(text,
            R"([{"$id": 0, "$value": {"$buffer": {"data": "YWI=", "index": 3, "readonly": true}}}, {"$ref": 0}])");
  const Value back = from_json(text);
  EXPECT_TRUE(back[0].is(back[1]));
  EXPECT_EQ(back[0].as_bytes(), "ab");
  EXPECT_EQ(back[0].buffer_index(), 3u);
  EXPECT_TRUE(back[0].buffer_readonly());
  EXPECT_EQ(to_json(Value::list({1, Value::list()}), {.indent = 0}), "[\n1,\n[]\n]");
}

TEST(ToJson, ObjectFormsRoundTrip) {
  const Value cls = Value::global("m", "C");
  Value reduce = Value::object(pickle::ObjectForm::reduce, cls, Value::tuple({1}));
  reduce.add_object_op(pickle::ObjectOp::build, Value::dict({{Value("me"), reduce}}));
  reduce.add_object_op(pickle::ObjectOp::setitem, Value("k"), Value::list());
  reduce.add_object_op(pickle::ObjectOp::additem, Value(2));
  const Value ex = Value::object(pickle::ObjectForm::newobj_ex, cls, Value::tuple(), Value::dict());
  const Value pid = Value::object(pickle::ObjectForm::binpersid, Value(), Value::tuple({Value("x")}));
  const Value list = Value::list({reduce, ex, pid});
  const std::string text = to_json(list);
  const Value back = from_json(text);
  EXPECT_EQ(to_json(back), text);
  EXPECT_EQ(back[0].object_form(), pickle::ObjectForm::reduce);
  EXPECT_TRUE(back[0].state().get(Value("me"))->is(back[0]));
  EXPECT_EQ(back[1].object_form(), pickle::ObjectForm::newobj_ex);
  EXPECT_EQ(back[2].object_form(), pickle::ObjectForm::binpersid);
  EXPECT_EQ(back[0].object_ops().size(), 3u);
}

// --- depth, size and hostile input -----------------------------------------------------------------

TEST(Json, MillionDeepListBothWays) {
  constexpr std::size_t depth = 1'000'000;
  std::string text(depth, '[');
  text.append(depth, ']');
  const Value value = from_json(text);
  EXPECT_EQ(to_json(value), text);
  std::string tagged;
  for (std::size_t i = 0; i < depth; ++i) tagged += R"({"$tuple": [)";
  for (std::size_t i = 0; i < depth; ++i) tagged += "]}";
  EXPECT_EQ(to_json(from_json(tagged)), tagged);
  // A pickle of the same depth, loaded by the reader.
  std::string pickled = "\x80\x04";
  for (std::size_t i = 0; i < depth; ++i) pickled += "]";   // EMPTY_LIST
  for (std::size_t i = 1; i < depth; ++i) pickled += "a";   // APPEND
  pickled += ".";
  EXPECT_EQ(to_json(pickle::loads(pickled)), text);
}

TEST(Json, MemoDoublingStaysLinear) {
  // Each level holds the previous one twice: 2^60 paths, 60 nodes.
  Value level = Value::list();
  for (int i = 0; i < 60; ++i) level = Value::list({level, level});
  pickle::WriteOptions protocol4;
  protocol4.protocol = 4;
  const std::string bytes = pickle::dumps(level, protocol4);
  const std::string text = to_json(pickle::loads(bytes));
  EXPECT_LT(text.size(), 5000u);
  EXPECT_EQ(to_json(from_json(text)), text);
  EXPECT_EQ(pickle::dumps(from_json(text), protocol4), bytes);
}

TEST(Json, OutputLimit) {
  const Value big(std::string(1000, 'x'));
  std::vector<Value> items(1000, big);
  const Value list = Value::list(items);
  EXPECT_THROW(to_json(list, {.max_output_bytes = 100'000}), pickle::LimitError);
  EXPECT_NO_THROW(to_json(list, {.max_output_bytes = 2'000'000}));
  // A large indent is refused before its spaces are allocated.
  EXPECT_THROW(to_json(Value::list({Value::list({1})}), {.indent = 1 << 30, .max_output_bytes = 1 << 20}),
               pickle::LimitError);
}

TEST(FromJson, HostileInputRaisesTypedErrors) {
  struct Case {
    std::string text;
    std::string message_part;
  };
  const Case cases[] = {
      {"", "Expecting value"},
      {"[1,]", "Expecting value"},
      {"[1 2]", "Expecting ',' delimiter"},
      {"{\"a\" 1}", "Expecting ':' delimiter"},
      {"{1: 2}", "Expecting property name"},
      {"\"abc", "Unterminated string"},
      {"\"a\x01\"", "Invalid control character"},
      {"\"\\x\"", "Invalid \\escape"},
      {"\"\\u12g4\"", "Invalid \\uXXXX escape"},
      {"[] []", "Extra data"},
      {"01", "Extra data"},
      {"-", "Expecting value"},
      {"1.", "Extra data"},
      {"nul", "Expecting value"},
      {"\xff", "invalid start byte"},
      {R"({"$ref": 0})", "refers to no earlier $id"},
      {R"([{"$id": 0, "$value": []}, {"$id": 0, "$value": []}])", "defined twice"},
      {R"({"$id": -1, "$value": []})", "non-negative integer"},
      {R"({"$id": 1, "$value": [], "x": 1})", "$id object"},
      {R"({"$tuple": [], "x": 1})", "takes no other key"},
      {R"({"$schema": 1})", "unknown tag"},
      {R"({"$bytes": "abc"})", "invalid base64"},
      {R"({"$bytes": "ab=c"})", "invalid base64"},
      {R"({"$float": "NaN"})", "$float takes"},
      {R"({"$int": "12"})", "hex()"},
      {R"({"$codepoints": [1114112]})", "code point"},
      {R"({"$dict": [[1]]})", "[key, value] pairs"},
      {R"({"$global": ["m", 1]})", "two str"},
      {R"({"$object": {"form": "nope"}})", "unknown object form"},
      {R"({"$object": {"form": "reduce", "args": []}})", "wrong keys"},
      {R"({"$object": {"form": "reduce", "callable": null, "args": [], "ops": [["fly", 1]]}})", "unknown op"},
      {R"({"$object": {"form": "reduce", "callable": null, "args": [], "ops": [["setitem", 1]]}})", "malformed op"},
      {R"({"$buffer": {"data": "", "index": -1, "readonly": false}})", "buffer index"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    try {
      from_json(c.text);
      ADD_FAILURE() << "no error";
    } catch (const pickle::JsonError& error) {
      EXPECT_NE(std::string(error.what()).find(c.message_part), std::string::npos) << error.what();
      EXPECT_EQ(error.python_class(), pickle::PyExc::ValueError);
      EXPECT_LE(error.offset(), c.text.size());
    }
  }
  EXPECT_THROW(from_json(R"({"$set": [[1]]})"), pickle::UnhashableError);
  EXPECT_THROW(from_json(R"({"$dict": [[{}, 1]]})"), pickle::UnhashableError);
  EXPECT_THROW(from_json("[" + std::string(4301, '7') + "]"), pickle::LimitError);
  EXPECT_NO_THROW(from_json("[" + std::string(4300, '7') + "]"));
  EXPECT_THROW(from_json("[[[1]]]", {.max_depth = 2}), pickle::LimitError);
  EXPECT_NO_THROW(from_json("[[[1]]]", {.max_depth = 3}));
  EXPECT_THROW(from_json("[1, 2]", {.max_input_bytes = 3}), pickle::LimitError);
  // Every prefix of a valid document fails cleanly.
  const std::string document = R"({"a": [1, 2.5e3, "x\u00e9", {"$tuple": [true, null]}], "b": {"$bytes": "YWI="}})";
  for (std::size_t n = 0; n < document.size(); ++n) {
    EXPECT_THROW(from_json(document.substr(0, n)), pickle::JsonError) << document.substr(0, n);
  }
}

// A tuple reached from inside itself (through a list), as CPython's pickler writes one.
TEST(FromJson, ReferenceIntoATupleUnderConstruction) {
  const Value back = from_json(R"({"$id": 0, "$value": {"$tuple": [[{"$ref": 0}], "x"]}})");
  EXPECT_EQ(back.kind(), pickle::Kind::tuple);
  EXPECT_TRUE(back[0][0].is(back));
  EXPECT_EQ(back.size(), 2u);
}

// --- pickletool ------------------------------------------------------------------------------------

TEST(Cli, JsonAndFromJson) {
  const char* tool = std::getenv("PICKLETOOL");
  if (tool == nullptr) GTEST_SKIP() << "PICKLETOOL is not set";
  const auto rows = read_tsv("to_json.tsv");
  for (const auto& row : rows) {
    if (row[0] != "shared_and_cycles" || row[1] != "2") continue;
    const std::string pkl = temp_path("in.pkl");
    write_file(pkl, from_hex(row[2]));
    auto [out, status] = run(std::string(tool) + " json " + pkl);
    EXPECT_EQ(status, 0);
    EXPECT_EQ(out, row[3] + "\n");
    auto [indented, status2] = run(std::string(tool) + " json --indent 2 " + pkl);
    EXPECT_EQ(status2, 0);
    EXPECT_EQ(indented, from_hex(row[4]) + "\n");
    std::filesystem::remove(pkl);
  }
  for (const auto& row : read_tsv("from_json.tsv")) {
    if (row[0] != "keys") continue;
    const std::string doc = data_dir() + "/json/documents/keys.json";
    const std::string out = temp_path("out.pkl");
    auto [text, status] = run(std::string(tool) + " from-json --protocol " + row[1] + " " + doc + " " + out);
    EXPECT_EQ(status, 0);
    EXPECT_EQ(to_hex(read_file(out)), row[3]) << "protocol " << row[1];
    std::filesystem::remove(out);
  }
  const std::string bad = temp_path("bad.json");
  write_file(bad, "[1,");
  auto [text, status] = run(std::string(tool) + " from-json " + bad + " - 2>/dev/null");
  EXPECT_EQ(status, 1);
  std::filesystem::remove(bad);
  EXPECT_EQ(run(std::string(tool) + " json --indent -3 " + bad + " 2>/dev/null").second, 2);
}

// --- live: CPython as the oracle ---------------------------------------------------------------

const char* python() { return std::getenv("PICKLE_PYTHON"); }

// Random plain JSON documents: the pickle of from_json is pickle.dumps(json.loads(text)).
std::string random_document(std::mt19937_64& rng, int budget) {
  std::string out;
  std::vector<std::pair<char, int>> open;  // bracket, items written
  const char* words[] = {"a", "b", "ab", "key", "", "\\u00e9", "x y", "\\ud800", "\\n"};
  auto scalar = [&] {
    switch (rng() % 7) {
      case 0: return std::string("null");
      case 1: return std::string(rng() % 2 ? "true" : "false");
      case 2: return std::to_string(static_cast<std::int64_t>(rng() % 2000) - 1000);
      case 3: return std::to_string(rng()) + std::to_string(rng());  // a big int
      case 4: return std::to_string(static_cast<int>(rng() % 1000)) + "." + std::to_string(rng() % 100) + "e" + std::to_string(static_cast<int>(rng() % 40) - 20);
      default: return "\"" + std::string(words[rng() % std::size(words)]) + "\"";
    }
  };
  auto value_start = [&] {
    if (!open.empty() && open.back().second++ > 0) out += ", ";
    if (!open.empty() && open.back().first == '{') {
      out += "\"" + std::string(words[rng() % std::size(words)]) + "\": ";
    }
  };
  value_start();
  out += '[';
  open.push_back({'[', 0});
  while (!open.empty()) {
    const unsigned choice = static_cast<unsigned>(rng() % 10);
    if (budget-- <= 0 || choice < 2) {
      out += open.back().first == '[' ? ']' : '}';
      open.pop_back();
    } else if (choice < 4) {
      value_start();
      const char bracket = rng() % 2 ? '[' : '{';
      out += bracket;
      open.push_back({bracket, 0});
    } else {
      value_start();
      out += scalar();
    }
  }
  return out;
}

TEST(Live, FromJsonMatchesPickleDumpsOfJsonLoads) {
  if (python() == nullptr) GTEST_SKIP() << "PICKLE_PYTHON is not set";
  std::mt19937_64 rng(20261127);
  std::vector<std::string> documents;
  for (const auto& entry : std::filesystem::directory_iterator(data_dir() + "/json/documents")) {
    documents.push_back(read_file(entry.path().string()));
  }
  for (int i = 0; i < 200; ++i) documents.push_back(random_document(rng, 5 + i));
  const std::string input = temp_path("documents.txt");
  std::string lines;
  for (const auto& document : documents) lines += to_hex(document) + "\n";
  write_file(input, lines);
  const std::string script =
      "import json, pickle, sys\n"
      "for line in open(sys.argv[1]):\n"
      "    value = json.loads(bytes.fromhex(line.strip()).decode('utf-8', 'surrogatepass'))\n"
      "    print(' '.join(pickle.dumps(value, p).hex() for p in range(6)))\n";
  const std::string script_path = temp_path("dumps.py");
  write_file(script_path, script);
  auto [out, status] = run(std::string(python()) + " " + script_path + " " + input);
  ASSERT_EQ(status, 0);
  std::istringstream expected(out);
  for (const auto& document : documents) {
    std::string line;
    ASSERT_TRUE(std::getline(expected, line));
    std::istringstream fields(line);
    for (int protocol = 0; protocol < 6; ++protocol) {
      std::string hex;
      fields >> hex;
      EXPECT_EQ(to_hex(pickle_of_json(document, protocol)), hex)
          << "protocol " << protocol << ": " << document;
    }
  }
  std::filesystem::remove(input);
  std::filesystem::remove(script_path);
}

// Random values with sharing and cycles, pickled by CPython; the expected JSON is the Python
// implementation's (tests/gen_json_cases.py --random COUNT SEED).
TEST(Live, ToJsonMatchesThePythonMappingOnRandomValues) {
  if (python() == nullptr) GTEST_SKIP() << "PICKLE_PYTHON is not set";
  auto [out, status] = run(std::string(python()) + " " + data_dir() + "/gen_json_cases.py --random 300 20261127");
  ASSERT_EQ(status, 0);
  std::istringstream lines(out);
  std::string line;
  std::size_t count = 0;
  while (std::getline(lines, line)) {
    std::vector<std::string> row;
    std::size_t start = 0;
    for (std::size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1) {
      row.push_back(line.substr(start, tab - start));
    }
    row.push_back(line.substr(start));
    ASSERT_EQ(row.size(), 5u) << line;
    SCOPED_TRACE(row[0] + " protocol " + row[1] + ": " + row[3]);
    const Value value = pickle::loads(from_hex(row[2]));
    EXPECT_EQ(to_json(value), row[3]);
    EXPECT_EQ(to_json(value, {.indent = 2}), from_hex(row[4]));
    EXPECT_EQ(to_json(from_json(row[3])), row[3]);
    ++count;
  }
  EXPECT_EQ(count, 1800u);
}

// Whatever the reader loads, the JSON is valid: Python's json.loads accepts every output, and the
// output is valid UTF-8 (Python decodes it strictly).
TEST(Live, OutputOfCorpusPicklesIsValidJson) {
  if (python() == nullptr) GTEST_SKIP() << "PICKLE_PYTHON is not set";
  std::string lines;
  std::size_t count = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(data_dir() + "/golden")) {
    if (!entry.is_regular_file() || entry.path().extension() != ".pkl" || entry.file_size() > 65536) continue;
    Value value;
    try {
      value = pickle::loads(read_file(entry.path().string()));
    } catch (const pickle::Error&) {
      continue;
    }
    std::string text;
    try {
      text = to_json(value, {.max_output_bytes = 1 << 20});
    } catch (const pickle::LimitError&) {
      continue;
    }
    EXPECT_EQ(to_json(from_json(text)), text) << entry.path();
    lines += to_hex(text) + "\n";
    ++count;
  }
  ASSERT_GT(count, 10u);
  const std::string input = temp_path("outputs.txt");
  write_file(input, lines);
  const std::string check =
      std::string(python()) + " -c \"import json, sys\n"
                              "for line in open(sys.argv[1]): json.loads(bytes.fromhex(line.strip()).decode('utf-8'))\" " +
      input;
  EXPECT_EQ(run(check).second, 0);
  std::filesystem::remove(input);
}

}  // namespace
