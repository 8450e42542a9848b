// Typed pickling (pickle/native.hpp): dumps(x) byte for byte against CPython's pickles of the same
// values (tests/native/cases.tsv, made by tests/gen_native_cases.py for CPython 3.8-3.13), loads<T>
// of those pickles at every protocol, error paths, and a live differential when PICKLE_PYTHON is set.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <functional>
#include <list>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "pickle/native.hpp"

namespace geometry {
struct Point {
  std::int64_t x = 0;
  std::string name;
  friend bool operator==(const Point&, const Point&) = default;
};
PICKLE_DESCRIBE(Point, x, name)

struct Label {
  std::string text;
  friend bool operator==(const Label&, const Label&) = default;
};
PICKLE_DESCRIBE(Label, text)

struct Empty {
  friend bool operator==(const Empty&, const Empty&) = default;
};
PICKLE_DESCRIBE(Empty)

// No python_class: pickled as a dict.
struct Plain {
  int a = 0;
  std::vector<double> b;
  friend bool operator==(const Plain&, const Plain&) = default;
};
PICKLE_DESCRIBE(Plain, a, b)

// A user type with its own mapping (to a (x, y) tuple), found by argument-dependent lookup.
struct Vec2 {
  double x = 0, y = 0;
  friend bool operator==(const Vec2&, const Vec2&) = default;
};
void pickle_write(pickle::TypedWriter& w, const Vec2& v) { w.write(std::pair{v.x, v.y}); }
void pickle_read(pickle::TypedReader& r, Vec2& v) {
  auto xy = r.read<std::pair<double, double>>();
  v = {xy.first, xy.second};
}
}  // namespace geometry

template <>
struct pickle::python_class<geometry::Point> {
  static constexpr std::string_view module = "geometry", name = "Point";
};
template <>
struct pickle::python_class<geometry::Label> {
  static constexpr std::string_view module = "geometry", name = "Label";
};
template <>
struct pickle::python_class<geometry::Empty> {
  static constexpr std::string_view module = "geometry", name = "Empty";
};

// The example of pickle/NATIVE.md, compiled and run here.
namespace shop {
struct Item {
  std::string name;
  std::int64_t count = 0;
  std::vector<double> prices;
};
PICKLE_DESCRIBE(Item, name, count, prices)  // at namespace scope of Item
}  // namespace shop

template <>
struct pickle::python_class<shop::Item> {
  static constexpr std::string_view module = "shop", name = "Item";
};

namespace {

using geometry::Point;

TEST(Native, DocumentationExample) {
  std::map<std::string, std::vector<shop::Item>> stock{{"fruit", {{"apple", 3, {0.5, 0.45}}}}};
  std::string bytes = pickle::dumps(stock);
  auto back = pickle::loads<std::map<std::string, std::vector<shop::Item>>>(bytes);
  ASSERT_EQ(back.at("fruit").size(), 1u);
  EXPECT_EQ(back.at("fruit")[0].name, "apple");
  EXPECT_EQ(back.at("fruit")[0].prices, (std::vector<double>{0.5, 0.45}));
  try {
    pickle::loads<std::vector<int>>(bytes);
    ADD_FAILURE();
  } catch (const pickle::LoadTypeError& e) {
    EXPECT_EQ(std::string(e.what()), "expected list, got dict");
  }
}

pickle::WriteOptions with_protocol(int protocol, int minor = 11) {
  pickle::WriteOptions options;
  options.protocol = protocol;
  options.target_minor = minor;
  return options;
}

std::string unhex(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

std::string hex(std::string_view data) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : data) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

// One C++ value of the table: how to dump it, and whether loads<T> of some bytes gives it back.
struct Case {
  std::function<std::string(const pickle::WriteOptions&)> dump;
  std::function<bool(const std::string&)> loads_back;
};

template <class T>
Case make_case(T value) {
  return Case{[value](const pickle::WriteOptions& o) { return pickle::dumps(value, o); },
              [value](const std::string& data) {
                if constexpr (std::is_floating_point_v<T>) {
                  T got = pickle::loads<T>(data);
                  return got == value && std::signbit(got) == std::signbit(value);
                } else {
                  return pickle::loads<T>(data) == value;
                }
              }};
}

std::vector<std::int64_t> range(std::int64_t n) {
  std::vector<std::int64_t> out;
  for (std::int64_t i = 0; i < n; ++i) out.push_back(i);
  return out;
}

// tests/gen_native_cases.py's int_widths(): both edges of BININT1, BININT2, BININT and of LONG1 of
// each length, within int64.
std::vector<std::int64_t> int_widths() {
  constexpr std::int64_t bit31 = std::int64_t{1} << 31;
  std::vector<std::int64_t> values = {0,       1,       0xFF,    0x100,   0xFFFF,   0x10000,
                                      bit31 - 1, bit31, -1,     -0x80,   -0x81,    -0x100,
                                      -0x101,  -0x8000, -0x8001, -0x10000, -bit31, -bit31 - 1};
  for (int n = 1; n <= 7; ++n) {
    const std::int64_t edge = std::int64_t{1} << (8 * n - 1);
    values.insert(values.end(), {edge - 1, edge, -edge, -edge - 1});
  }
  // Length 8: only 2**63 - 1 and -2**63 are in int64.
  values.insert(values.end(), {std::numeric_limits<std::int64_t>::max(), std::numeric_limits<std::int64_t>::min()});
  std::vector<std::int64_t> out;
  for (std::int64_t v : values)
    if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  return out;
}

std::map<std::string, Case> cases() {
  std::map<std::string, Case> c;
  c["none"] = make_case(nullptr);
  c["true"] = make_case(true);
  c["int_small"] = make_case(5);
  c["int_300"] = make_case(std::uint16_t{300});
  c["int_70000"] = make_case(70000L);
  c["int_negative"] = make_case(std::int8_t{-1});
  c["int_2p40"] = make_case(std::int64_t{1} << 40);
  c["int64_min"] = make_case(std::numeric_limits<std::int64_t>::min());
  c["uint64_max"] = make_case(std::numeric_limits<std::uint64_t>::max());
  c["float"] = make_case(1.5);
  c["float_negative_zero"] = make_case(-0.0);
  c["float_1e100"] = make_case(1e100);
  c["str_empty"] = make_case(std::string());
  c["str_char"] = make_case(std::string("a"));
  c["str_latin1"] = make_case(std::string("\xc3\xa9t\xc3\xa9"));
  c["str_euro"] = make_case(std::string("\xe2\x82\xac x"));
  std::string ab300;
  for (int i = 0; i < 150; ++i) ab300 += "ab";
  c["str_300"] = make_case(ab300);
  c["str_70000"] = make_case(std::string(70000, 'x'));
  c["bytes_empty"] = make_case(pickle::bytes());
  c["bytes_one"] = make_case(pickle::bytes("\xe9"));
  c["bytes_abc"] = make_case(pickle::bytes("abc"));
  std::string b300;
  for (int i = 0; i < 256; ++i) b300 += static_cast<char>(i);
  b300 += std::string(44, 'x');
  c["bytes_300"] = make_case(pickle::bytes(b300));
  c["bytearray"] = make_case(pickle::bytearray("ab"));
  c["list_empty"] = make_case(std::vector<int>{});
  c["list_one"] = make_case(std::deque<int>{1});
  c["list_three"] = make_case(std::array<int, 3>{1, 2, 3});
  c["list_1000"] = make_case(range(1000));
  std::list<std::int64_t> l1001;
  for (int i = 0; i < 1001; ++i) l1001.push_back(i);
  c["list_1001"] = make_case(l1001);
  c["list_2001"] = make_case(range(2001));
  c["list_strs_shared"] = make_case(std::vector<std::string>{"ab", "ab", "a", "a", "", ""});
  c["list_bytes_shared"] = make_case(std::vector<pickle::bytes>{
      pickle::bytes("ab"), pickle::bytes("ab"), pickle::bytes("a"), pickle::bytes("a"),
      pickle::bytes(""), pickle::bytes("")});
  c["list_nested"] = make_case(std::vector<std::vector<int>>{{}, {1}, {}, {2, 3}});
  c["list_optional"] = make_case(std::vector<std::optional<int>>{1, std::nullopt, 3});
  c["list_variant"] = make_case(std::vector<std::variant<int, std::string>>{1, "two", 3});
  std::vector<std::string> strs;
  for (int i = 0; i < 10000; ++i) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "s%05d", i);
    strs.push_back(buf);
  }
  c["list_10000_strs"] = make_case(strs);
  c["tuple_empty"] = make_case(std::tuple<>());
  c["tuple_one"] = make_case(std::tuple<int>(1));
  c["pair"] = make_case(std::pair<int, std::string>(1, "x"));
  c["tuple_three"] = make_case(std::tuple<int, double, std::string>(1, 2.5, "three"));
  c["tuple_four"] = make_case(std::tuple<int, int, int, int>(1, 2, 3, 4));
  c["dict_empty"] = make_case(std::map<std::string, int>{});
  c["dict_one"] = make_case(std::unordered_map<std::string, int>{{"a", 1}});
  c["dict_two"] = make_case(std::map<std::string, std::vector<double>>{{"a", {1.5}}, {"b", {}}});
  c["dict_int_keys"] = make_case(std::map<int, std::string>{{1, "one"}, {2, "two"}});
  std::map<std::string, int> d1000, d1001;
  for (int i = 0; i < 1001; ++i) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "k%04d", i);
    if (i < 1000) d1000[buf] = i;
    d1001[buf] = i;
  }
  c["dict_1000"] = make_case(d1000);
  c["dict_1001"] = make_case(d1001);
  c["records"] = make_case(std::vector<pickle::ordered_map<std::string, std::variant<std::string, int>>>{
      {{"name", "ann"}, {"id", 1}}, {{"name", "bob"}, {"id", 2}}});
  c["key_equals_value"] = make_case(std::map<std::string, std::string>{{"same", "same"}});
  c["set_empty"] = make_case(std::set<int>{});
  c["set_three"] = make_case(std::set<int>{3, 1, 2});
  std::set<int> s1000, s1001;
  for (int i = 0; i < 1001; ++i) {
    if (i < 1000) s1000.insert(i);
    s1001.insert(i);
  }
  c["set_1000"] = make_case(s1000);
  c["set_1001"] = make_case(s1001);
  c["points"] = make_case(std::vector<Point>{{1, "a"}, {2, "bc"}});
  c["point_and_label"] = make_case(std::pair<Point, geometry::Label>({7, "seven"}, {"hi"}));
  c["empty_object"] = make_case(geometry::Empty{});
  c["struct_as_dict"] = make_case(geometry::Plain{3, {1.0}});
  c["value_inside"] = make_case(std::vector<std::variant<std::string, pickle::Value>>{
      std::string("xy"), pickle::Value::list({pickle::Value("yz"), pickle::Value(1)})});
  c["value_shares_singletons"] = make_case(std::vector<std::variant<std::string, pickle::Value>>{
      std::string("x"), pickle::Value::list({pickle::Value("x"), pickle::Value(1)})});
  c["latin1_char_and_byte"] = make_case(
      std::tuple<std::string, pickle::bytes, std::string>("\xc3\xa9", pickle::bytes("\xe9"), "\xc3\xa9"));
  c["deep_types"] = make_case(
      std::map<std::string, std::vector<std::vector<std::tuple<int, std::string>>>>{{"m", {{{1, "pq"}}}}});
  const std::vector<std::int64_t> widths = int_widths();
  c["ints_every_width"] = make_case(widths);
  std::vector<std::int64_t> cycling_2500, cycling_14000;
  for (std::size_t i = 0; i < 2500; ++i) cycling_2500.push_back(widths[i % widths.size()]);
  for (std::size_t i = 0; i < 14000; ++i) cycling_14000.push_back(widths[i * 7 % widths.size()]);
  c["ints_cycling_widths_2500"] = make_case(cycling_2500);
  c["ints_cycling_widths_14000"] = make_case(cycling_14000);
  std::vector<std::int64_t> frame_after_mark;
  for (std::int64_t i = 0; i < 6104; ++i) frame_after_mark.push_back((std::int64_t{1} << 62) + i);
  for (std::int64_t i = 0; i < 896 + 500; ++i) frame_after_mark.push_back(100000 + i);
  c["ints_frame_after_mark"] = make_case(frame_after_mark);
  std::vector<std::int64_t> before_sibling;
  for (std::int64_t i = 0; i < 13102; ++i) before_sibling.push_back(100000 + i);
  c["ints_then_sibling_at_frame_end"] = make_case(std::pair<std::vector<std::int64_t>, int>(before_sibling, 5));
  std::vector<std::int32_t> int32s;
  for (std::int64_t v : widths)
    if (v >= std::numeric_limits<std::int32_t>::min() && v <= std::numeric_limits<std::int32_t>::max())
      int32s.push_back(static_cast<std::int32_t>(v));
  c["int32s_every_width"] = make_case(int32s);
  std::vector<std::uint8_t> uint8s;
  for (int i = 0; i < 256; ++i) uint8s.push_back(static_cast<std::uint8_t>(i));
  c["uint8s_all"] = make_case(uint8s);
  const std::uint64_t top = std::uint64_t{1} << 63;
  c["uint64s_above_int64"] = make_case(std::vector<std::uint64_t>{0, 255, top - 1, top, top + 1, ~std::uint64_t{0}});
  return c;
}

struct Row {
  std::string name;
  int protocol;
  std::vector<int> minors;
  std::string data;
};

std::vector<Row> rows() {
  const char* dir = std::getenv("PICKLE_TEST_DATA");
  std::ifstream in(std::string(dir ? dir : "tests") + "/native/cases.tsv");
  std::vector<Row> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    Row r;
    std::string protocol, minors, data;
    std::getline(fields, r.name, '\t');
    std::getline(fields, protocol, '\t');
    std::getline(fields, minors, '\t');
    std::getline(fields, data, '\t');
    r.protocol = std::stoi(protocol);
    std::istringstream m(minors);
    for (std::string v; std::getline(m, v, ',');) r.minors.push_back(std::stoi(v));
    r.data = unhex(data);
    out.push_back(std::move(r));
  }
  return out;
}

TEST(NativeGolden, EveryCaseHasRowsAtEveryProtocol) {
  auto table = cases();
  std::map<std::string, int> seen;
  for (const Row& r : rows()) ++seen[r.name];
  for (const auto& [name, c] : table) EXPECT_GE(seen[name], 2) << name;
  for (const auto& [name, n] : seen) EXPECT_TRUE(table.count(name)) << "no C++ value for " << name;
}

TEST(NativeGolden, DumpsMatchesCPython) {
  auto table = cases();
  std::size_t checked = 0;
  for (const Row& r : rows()) {
    auto it = table.find(r.name);
    ASSERT_NE(it, table.end()) << r.name;
    for (int minor : r.minors) {
      std::string got = it->second.dump(with_protocol(r.protocol, minor));
      EXPECT_EQ(hex(got), hex(r.data)) << r.name << " protocol " << r.protocol << " 3." << minor;
      ++checked;
    }
  }
  EXPECT_GT(checked, 300u);
}

TEST(NativeGolden, LoadsReadsCPythonsBytesBack) {
  auto table = cases();
  for (const Row& r : rows()) {
    const Case& c = table.at(r.name);
    EXPECT_TRUE(c.loads_back(r.data)) << r.name << " protocol " << r.protocol;
  }
}

TEST(Native, DefaultProtocolFollowsTargetVersion) {
  pickle::WriteOptions o;
  o.target_minor = 14;
  EXPECT_EQ(pickle::dumps(1, o), std::string("\x80\x05K\x01.", 5));
  EXPECT_EQ(pickle::dumps(1), std::string("\x80\x04K\x01.", 5));
}

TEST(Native, CustomTypeThroughArgumentDependentLookup) {
  std::vector<geometry::Vec2> v{{1, 2}, {3, 4}};
  auto expected = std::vector<std::pair<double, double>>{{1, 2}, {3, 4}};
  EXPECT_EQ(pickle::dumps(v), pickle::dumps(expected));
  EXPECT_EQ(pickle::loads<std::vector<geometry::Vec2>>(pickle::dumps(expected)), v);
}

TEST(Native, RoundTripsOtherContainers) {
  std::unordered_set<int> us{1, 2, 3};
  EXPECT_EQ(pickle::loads<std::unordered_set<int>>(pickle::dumps(us)), us);
  std::unordered_map<int, std::vector<std::string>> um{{1, {"a"}}, {2, {}}};
  EXPECT_EQ((pickle::loads<std::unordered_map<int, std::vector<std::string>>>(pickle::dumps(um))), um);
  std::vector<bool> vb{true, false, true};
  EXPECT_EQ(pickle::loads<std::vector<bool>>(pickle::dumps(vb)), vb);
  std::optional<std::vector<std::string>> none;
  EXPECT_EQ(pickle::loads<std::optional<std::vector<std::string>>>(pickle::dumps(none)), none);
  // An empty container followed by a sibling that begins like its items.
  std::vector<std::tuple<std::vector<int>, std::tuple<int, int, int, int>>> tricky{{{}, {1, 2, 3, 4}}};
  for (int p = 0; p <= 5; ++p)
    EXPECT_EQ(pickle::loads<decltype(tricky)>(pickle::dumps(tricky, with_protocol(p))), tricky) << p;
  std::vector<std::pair<std::map<int, int>, int>> tricky2{{{}, 5}, {{{1, 2}}, 6}};
  for (int p = 0; p <= 5; ++p)
    EXPECT_EQ(pickle::loads<decltype(tricky2)>(pickle::dumps(tricky2, with_protocol(p))), tricky2) << p;
  std::vector<std::vector<std::string>> tricky3{{}, {"x"}, {}, {"y", "z"}, {}};
  for (int p = 0; p <= 5; ++p)
    EXPECT_EQ(pickle::loads<decltype(tricky3)>(pickle::dumps(tricky3, with_protocol(p))), tricky3) << p;
}

// --- std::string_view: strs borrowed from the input -------------------------------------------

// Whether every view lies inside `input` (an empty one may be anywhere).
bool views_into(std::string_view input, const std::vector<std::string_view>& views) {
  const std::less<const char*> before;
  for (std::string_view v : views) {
    if (v.empty()) continue;
    if (before(v.data(), input.data()) || before(input.data() + input.size(), v.data() + v.size()))
      return false;
  }
  return true;
}

template <class T>
concept loads_from_a_temporary = requires { pickle::loads<T>(std::string()); };
// Views into a string destroyed at the end of the call do not compile; copies do.
static_assert(!loads_from_a_temporary<std::vector<std::string_view>>);
static_assert(!loads_from_a_temporary<std::string_view>);
static_assert(!loads_from_a_temporary<std::map<std::string_view, int>>);
static_assert(!loads_from_a_temporary<std::optional<std::tuple<int, std::string_view>>>);
static_assert(!loads_from_a_temporary<std::array<std::string_view, 2>>);
static_assert(loads_from_a_temporary<std::vector<std::string>>);
static_assert(loads_from_a_temporary<std::map<std::string, int>>);

// The str cases of the golden table as views: dumps gives CPython's bytes, and loads gives views
// into those bytes with the same text, at every protocol where the UTF-8 is in the pickle (1-5).
TEST(NativeStringView, DumpsAndLoadsTheGoldenStrs) {
  std::vector<std::string> strs10000;
  for (int i = 0; i < 10000; ++i) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "s%05d", i);
    strs10000.push_back(buf);
  }
  std::string ab300;
  for (int i = 0; i < 150; ++i) ab300 += "ab";
  const std::string x70000(70000, 'x');
  const std::map<std::string, std::vector<std::string>> lists = {
      {"list_strs_shared", {"ab", "ab", "a", "a", "", ""}},
      {"list_10000_strs", strs10000},
      {"str_empty", {""}},
      {"str_char", {"a"}},
      {"str_latin1", {"\xc3\xa9t\xc3\xa9"}},
      {"str_euro", {"\xe2\x82\xac x"}},
      {"str_300", {ab300}},
      {"str_70000", {x70000}},
  };
  std::size_t checked = 0;
  for (const Row& r : rows()) {
    auto it = lists.find(r.name);
    if (it == lists.end()) continue;
    const std::vector<std::string>& text = it->second;
    const std::vector<std::string_view> views(text.begin(), text.end());
    const bool single = r.name.rfind("str_", 0) == 0;
    for (int minor : r.minors) {
      const pickle::WriteOptions options = with_protocol(r.protocol, minor);
      EXPECT_EQ(hex(single ? pickle::dumps(views[0], options) : pickle::dumps(views, options)), hex(r.data))
          << r.name << " protocol " << r.protocol;
    }
    if (r.protocol == 0) continue;  // text opcodes: nothing to borrow (see the error test)
    std::vector<std::string_view> loaded;
    if (single) {
      loaded.push_back(pickle::loads<std::string_view>(r.data));
    } else {
      loaded = pickle::loads<std::vector<std::string_view>>(r.data);
    }
    EXPECT_EQ(loaded, views) << r.name << " protocol " << r.protocol;
    EXPECT_TRUE(views_into(r.data, loaded)) << r.name << " protocol " << r.protocol;
    ++checked;
  }
  EXPECT_GE(checked, 30u);
}

TEST(NativeStringView, ViewsInOtherTypes) {
  using Record = std::map<std::string_view, std::variant<std::int64_t, std::string_view>>;
  const std::vector<Record> records = {{{"name", "ann"}, {"id", 1}}, {{"name", "bob"}, {"id", 2}}};
  for (int protocol = 1; protocol <= 5; ++protocol) {
    const std::string data = pickle::dumps(records, with_protocol(protocol));
    const auto back = pickle::loads<std::vector<Record>>(data);
    EXPECT_EQ(back, records) << protocol;
    std::vector<std::string_view> views;
    for (const Record& record : back) {
      for (const auto& [k, v] : record) {
        views.push_back(k);
        if (const auto* text = std::get_if<std::string_view>(&v)) views.push_back(*text);
      }
    }
    EXPECT_EQ(views.size(), 6u);
    EXPECT_TRUE(views_into(data, views)) << protocol;
  }
  const std::string pair_data = pickle::dumps(std::pair<std::string, int>("key", 7));
  const auto pair = pickle::loads<std::tuple<std::string_view, int>>(pair_data);
  EXPECT_EQ(std::get<0>(pair), "key");
  EXPECT_TRUE(views_into(pair_data, {std::get<0>(pair)}));
  const std::string set_data = pickle::dumps(std::set<std::string>{"p", "qr"});
  EXPECT_EQ(pickle::loads<std::set<std::string_view>>(set_data), (std::set<std::string_view>{"p", "qr"}));
  const std::string none = pickle::dumps(nullptr);
  EXPECT_EQ(pickle::loads<std::optional<std::string_view>>(none), std::nullopt);
  using Lists = std::unordered_map<std::string_view, std::vector<std::string_view>>;
  const std::string lists_data = pickle::dumps(std::map<std::string, std::vector<std::string>>{{"k", {"v", "w"}}});
  EXPECT_EQ(pickle::loads<Lists>(lists_data), (Lists{{"k", {"v", "w"}}}));
}

// Pickles the direct parser leaves to the Value path (a list fetched twice from the memo, a lone
// surrogate) still give views into the input: the Value is loaded zero-copy for the conversion.
TEST(NativeStringView, ViewsThroughTheValuePath) {
  pickle::Value inner = pickle::Value::list({pickle::Value("ab"), pickle::Value("cd")});
  const std::string shared = pickle::dumps(pickle::Value::list({inner, inner}));
  const auto lists = pickle::loads<std::vector<std::vector<std::string_view>>>(shared);
  ASSERT_EQ(lists.size(), 2u);
  EXPECT_EQ(lists[0], (std::vector<std::string_view>{"ab", "cd"}));
  EXPECT_EQ(lists[1], lists[0]);
  EXPECT_TRUE(views_into(shared, lists[0]));
  // BINUNICODE of U+D800 alone (CPython writes it with surrogatepass): not UTF-8, so the direct
  // parser declines it; the view holds the same bytes the std::string gets.
  const std::string surrogate("\x80\x04X\x03\x00\x00\x00\xed\xa0\x80\x94" ".", 13);
  EXPECT_EQ(pickle::loads<std::string_view>(surrogate), pickle::loads<std::string>(surrogate));
  EXPECT_TRUE(views_into(surrogate, {pickle::loads<std::string_view>(surrogate)}));
}

TEST(NativeStringView, ErrorsGiveThePath) {
  std::map<std::pair<std::string, int>, std::string> golden;
  for (const Row& r : rows()) golden[{r.name, r.protocol}] = r.data;
  auto message = [](const std::function<void()>& load) -> std::string {
    try {
      load();
    } catch (const pickle::LoadTypeError& e) {
      return e.what();
    }
    return "no error";
  };
  const std::string borrow_failure =
      "expected str stored as UTF-8 in the input (a std::string_view borrows it), got str built by "
      "loading (protocol 0 text, a Python 2 string, a reduction)";
  const std::string& ints = golden.at({"list_three", 4});
  EXPECT_EQ(message([&] { pickle::loads<std::vector<std::string_view>>(ints); }), "at [0]: expected str, got int");
  const std::string& variant = golden.at({"list_variant", 4});
  EXPECT_EQ(message([&] { pickle::loads<std::vector<std::string_view>>(variant); }), "at [0]: expected str, got int");
  const std::string& bytes = golden.at({"bytes_abc", 4});
  EXPECT_EQ(message([&] { pickle::loads<std::string_view>(bytes); }), "expected str, got bytes");
  // Protocol 0 writes strs as raw-unicode-escape text: decoded, not borrowable.
  const std::string& text = golden.at({"list_strs_shared", 0});
  EXPECT_EQ(message([&] { pickle::loads<std::vector<std::string_view>>(text); }), "at [0]: " + borrow_failure);
  const std::string& records = golden.at({"records", 0});
  EXPECT_EQ(message([&] { pickle::loads<std::vector<std::map<std::string, std::string_view>>>(records); }),
            "at [0]['name']: " + borrow_failure);
  // A Python 2 str (SHORT_BINSTRING) is decoded to a str on loading.
  const std::string python2("\x80\x02U\x02" "abq\x00" ".", 9);
  EXPECT_EQ(pickle::loads<std::string>(python2), "ab");
  EXPECT_EQ(message([&] { pickle::loads<std::string_view>(python2); }), borrow_failure);
}

TEST(Native, SharedReferencesLoadThroughTheValuePath) {
  // [x, x] with x = [1, 2]: the second is a memo GET of a list.
  pickle::Value inner = pickle::Value::list({pickle::Value(1), pickle::Value(2)});
  pickle::Value outer = pickle::Value::list({inner, inner});
  auto got = pickle::loads<std::vector<std::vector<int>>>(pickle::dumps(outer));
  EXPECT_EQ(got, (std::vector<std::vector<int>>{{1, 2}, {1, 2}}));
}

struct ErrorCase {
  std::string pickle_hex_or_name;  // a row name of cases.tsv (protocol 4 bytes)
  std::function<void(const std::string&)> load;
  std::string message;
};

TEST(Native, TypeErrorsGiveThePath) {
  std::map<std::string, std::string> p4;
  for (const Row& r : rows())
    if (r.protocol == 4) p4[r.name] = r.data;
  const std::vector<ErrorCase> table = {
      {"list_variant", [](const std::string& d) { pickle::loads<std::vector<int>>(d); },
       "at [1]: expected int, got str"},
      {"records",
       [](const std::string& d) { pickle::loads<std::vector<std::map<std::string, std::string>>>(d); },
       "at [0]['id']: expected str, got int"},
      {"dict_two", [](const std::string& d) { pickle::loads<std::map<std::string, std::vector<int>>>(d); },
       "at ['a'][0]: expected int, got float"},
      {"int_small", [](const std::string& d) { pickle::loads<std::string>(d); },
       "expected str, got int"},
      {"pair", [](const std::string& d) { pickle::loads<std::tuple<int, std::string, int>>(d); },
       "expected tuple of 3, got tuple of 2"},
      {"uint64_max", [](const std::string& d) { pickle::loads<std::int64_t>(d); },
       "expected int that fits int64_t, got int 18446744073709551615"},
      {"points", [](const std::string& d) { pickle::loads<std::vector<geometry::Label>>(d); },
       "at [0]: expected geometry.Label, got geometry.Point object"},
      {"points",
       [](const std::string& d) { pickle::loads<std::vector<std::map<std::string, int>>>(d); },
       "at [0]: expected dict, got geometry.Point object"},
      {"struct_as_dict", [](const std::string& d) { pickle::loads<geometry::Point>(d); },
       "expected geometry.Point, got dict"},
      {"set_three", [](const std::string& d) { pickle::loads<std::vector<int>>(d); },
       "expected list, got set"},
      {"list_optional", [](const std::string& d) { pickle::loads<std::vector<int>>(d); },
       "at [1]: expected int, got NoneType"},
      {"bytes_abc", [](const std::string& d) { pickle::loads<std::string>(d); },
       "expected str, got bytes"},
      // The bulk int parser leaves an item that does not fit to the Value path, which names it.
      {"ints_every_width", [](const std::string& d) { pickle::loads<std::vector<std::uint8_t>>(d); },
       "at [3]: expected int that fits uint8_t, got int 256"},
      {"ints_every_width", [](const std::string& d) { pickle::loads<std::vector<std::int32_t>>(d); },
       "at [7]: expected int that fits int32_t, got int 2147483648"},
      {"ints_every_width", [](const std::string& d) { pickle::loads<std::vector<std::uint64_t>>(d); },
       "at [8]: expected int that fits uint64_t, got int -1"},
      {"uint64s_above_int64", [](const std::string& d) { pickle::loads<std::vector<std::int64_t>>(d); },
       "at [3]: expected int that fits int64_t, got int 9223372036854775808"},
      {"ints_frame_after_mark", [](const std::string& d) { pickle::loads<std::vector<std::int32_t>>(d); },
       "at [0]: expected int that fits int32_t, got int 4611686018427387904"},
      {"list_variant", [](const std::string& d) { pickle::loads<std::vector<std::int64_t>>(d); },
       "at [1]: expected int, got str"},
  };
  for (const ErrorCase& e : table) {
    ASSERT_TRUE(p4.count(e.pickle_hex_or_name)) << e.pickle_hex_or_name;
    try {
      e.load(p4[e.pickle_hex_or_name]);
      ADD_FAILURE() << e.pickle_hex_or_name << ": no error";
    } catch (const pickle::LoadTypeError& error) {
      EXPECT_EQ(std::string(error.what()), e.message) << e.pickle_hex_or_name;
      EXPECT_EQ(error.python_class(), pickle::PyExc::TypeError);
    }
  }
}

TEST(Native, DescribedStructFieldErrors) {
  // A dict with a field missing, and one with an extra key.
  std::string missing = pickle::dumps(std::map<std::string, int>{{"a", 1}});
  try {
    pickle::loads<geometry::Plain>(missing);
    ADD_FAILURE();
  } catch (const pickle::LoadTypeError& e) {
    EXPECT_EQ(std::string(e.what()), "at .b: expected a value, got nothing (missing field)");
  }
  std::string extra = pickle::dumps(pickle::ordered_map<std::string, std::variant<int, std::vector<double>>>{
      {"a", 1}, {"b", std::vector<double>{}}, {"c", 2}});
  try {
    pickle::loads<geometry::Plain>(extra);
    ADD_FAILURE();
  } catch (const pickle::LoadTypeError& e) {
    EXPECT_EQ(std::string(e.what()), "at ['c']: expected a field of dict, got an unknown key");
  }
}

TEST(Native, MalformedInputIsAnUnpicklingError) {
  const std::vector<std::string> inputs = {
      std::string("\x80\x04]", 3), std::string("\x80\x04\x95\xff\x00\x00\x00\x00\x00\x00\x00]", 12), "",
      std::string("\x80\x04]\x94(K\x01K\x02", 9)};
  for (const std::string& input : inputs) {
    EXPECT_THROW(pickle::loads<std::vector<int>>(input), pickle::UnpicklingError) << hex(input);
  }
}

TEST(Native, DeepValuesInsideTypedContainers) {
  // The Value parts are read and written by the iterative Value code.
  pickle::Value deep = pickle::Value::list();
  for (int i = 0; i < 20000; ++i) deep = pickle::Value::list({deep});
  using Nested = std::vector<pickle::Value>;
  EXPECT_NO_THROW(pickle::loads<Nested>(pickle::dumps(deep)));
}

// The typed writer's result buffer is handed over as the returned string; an embedded Value
// writes into it (and grows it) through the Value writer. A large one gives the Value writer's
// own bytes for the same list.
TEST(Native, LargeEmbeddedValueGrowsTheHandedOverBuffer) {
  pickle::Value big = pickle::Value::list();
  for (int i = 0; i < 100000; ++i) big.append(pickle::Value(i % 3 == 0 ? 70000 + i : i));
  for (int protocol = 0; protocol <= 5; ++protocol) {
    const pickle::WriteOptions options = with_protocol(protocol);
    EXPECT_EQ(pickle::dumps(std::vector<pickle::Value>{big}, options),
              pickle::dumps(pickle::Value::list({big}), options))
        << protocol;
  }
}

TEST(Native, WritesProtocolsBelowTwoForObjectsAsAnError) {
  EXPECT_THROW(pickle::dumps(Point{1, "a"}, with_protocol(1)), pickle::PicklingError);
}

// --- live differential ----------------------------------------------------------------------------

std::string json_str(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// Runs `script` under `python` with an input file holding `input` and an output file as its two
// arguments (files named after `name` in the test's temporary directory); returns the output's lines.
std::vector<std::string> run_python(const char* python, const std::string& name, const std::string& script,
                                    const std::string& input) {
  const std::string script_path = testing::TempDir() + name + ".py";
  const std::string input_path = testing::TempDir() + name + ".in";
  const std::string output_path = testing::TempDir() + name + ".out";
  std::ofstream(input_path) << input;
  std::ofstream(script_path) << script;
  const std::string command = std::string(python) + " " + script_path + " " + input_path + " " + output_path;
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  std::ifstream output(output_path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(output, line);) lines.push_back(line);
  return lines;
}

TEST(NativeDifferential, RandomRecordsAgainstLiveCPython) {
  const char* python = std::getenv("PICKLE_PYTHON");
  if (python == nullptr) GTEST_SKIP() << "PICKLE_PYTHON is not set";
  using Record = pickle::ordered_map<std::string, std::variant<std::int64_t, std::string, std::vector<std::string>, double, bool, std::nullptr_t>>;
  std::mt19937_64 rng(7);
  const char* words[] = {"", "a", "b", "ab", "name", "id", "x\xc3\xa9", "long word here", "\xe2\x82\xac"};
  auto word = [&] { return std::string(words[rng() % std::size(words)]); };
  std::ostringstream input;
  std::vector<std::string> expected;
  for (int n = 0; n < 200; ++n) {
    std::vector<Record> records(rng() % 5);
    std::string json = "[";
    for (std::size_t i = 0; i < records.size(); ++i) {
      json += i ? ",{" : "{";
      std::size_t fields = rng() % 4;
      bool first = true;
      for (std::size_t f = 0; f < fields; ++f) {
        std::string k = word();
        if (records[i].contains(k)) continue;
        json += (first ? "" : ",") + json_str(k) + ":";
        first = false;
        switch (rng() % 6) {
          case 0: {
            auto v = static_cast<std::int64_t>(rng()) >> (rng() % 64);
            records[i].insert_or_assign(k, v);
            json += std::to_string(v);
            break;
          }
          case 1: {
            std::string v = word();
            records[i].insert_or_assign(k, v);
            json += json_str(v);
            break;
          }
          case 2: {
            std::vector<std::string> v;
            json += "[";
            for (std::size_t j = rng() % 4; j > 0; --j) {
              v.push_back(word());
              json += (v.size() > 1 ? "," : "") + json_str(v.back());
            }
            json += "]";
            records[i].insert_or_assign(k, v);
            break;
          }
          case 3: {
            double v = static_cast<double>(rng() % 1000) / 8;
            records[i].insert_or_assign(k, v);
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.17g", v);
            json += std::string(buf) + (std::string(buf).find('.') == std::string::npos ? ".0" : "");
            break;
          }
          case 4:
            records[i].insert_or_assign(k, rng() % 2 == 0);
            json += std::get<bool>(records[i].find(k)->second) ? "true" : "false";
            break;
          default:
            records[i].insert_or_assign(k, nullptr);
            json += "null";
        }
      }
      json += "}";
    }
    json += "]";
    int protocol = static_cast<int>(rng() % 6);
    input << protocol << "\t" << json << "\n";
    expected.push_back(hex(pickle::dumps(records, with_protocol(protocol))));
  }
  const std::vector<std::string> lines = run_python(
      python, "native_diff",
      "import json, pickle, sys\n"
      "with open(sys.argv[1], encoding='utf-8') as f, open(sys.argv[2], 'w') as out:\n"
      "    for line in f:\n"
      "        p, text = line.rstrip('\\n').split('\\t', 1)\n"
      "        out.write(pickle.dumps(json.loads(text), int(p)).hex() + '\\n')\n",
      input.str());
  ASSERT_EQ(lines.size(), expected.size());
  for (std::size_t i = 0; i < lines.size(); ++i) EXPECT_EQ(expected[i], lines[i]) << "case " << i;
}

// Integral vectors (the typed writer's and parser's int loops) against CPython: random lengths
// around batch and frame sizes, random mixes of every encoding's range, every protocol; CPython's
// bytes must equal ours and load back to the same vector.
TEST(NativeDifferential, RandomIntVectorsAgainstLiveCPython) {
  const char* python = std::getenv("PICKLE_PYTHON");
  if (python == nullptr) GTEST_SKIP() << "PICKLE_PYTHON is not set";
  std::mt19937_64 rng(11);
  const std::vector<std::int64_t> widths = int_widths();
  // An int of a random encoding: near one of the edges, or anywhere in a random bit width.
  auto random_int = [&]() -> std::int64_t {
    // An edge or a neighbour (wrapping around at the ends of int64: C++20 conversions are modular).
    if (rng() % 2 == 0) {
      const auto edge = static_cast<std::uint64_t>(widths[rng() % widths.size()]);
      return static_cast<std::int64_t>(edge + rng() % 3 - 1);
    }
    const int bits = static_cast<int>(rng() % 64);
    const auto v = static_cast<std::int64_t>(rng() >> (63 - bits));
    return rng() % 2 == 0 ? v : ~v;
  };
  const std::size_t lengths[] = {0, 1, 2, 999, 1000, 1001, 2000, 13107, 13108};
  std::ostringstream input;
  std::vector<std::vector<std::int64_t>> vectors;
  std::vector<int> protocols;
  for (int n = 0; n < 40; ++n) {
    std::size_t length = n < static_cast<int>(std::size(lengths)) ? lengths[n] : rng() % 20000;
    // Runs of one width (as real data has) or every item drawn afresh.
    const bool runs = rng() % 2 == 0;
    std::vector<std::int64_t> v;
    std::int64_t run_base = random_int();
    for (std::size_t i = 0; i < length; ++i) {
      if (runs && rng() % 500 == 0) run_base = random_int();
      v.push_back(runs ? run_base : random_int());
    }
    const int protocol = static_cast<int>(rng() % 6);
    input << protocol;
    for (std::int64_t x : v) input << ' ' << x;
    input << '\n';
    vectors.push_back(std::move(v));
    protocols.push_back(protocol);
  }
  const std::vector<std::string> lines = run_python(
      python, "native_ints",
      "import pickle, sys\n"
      "with open(sys.argv[1]) as f, open(sys.argv[2], 'w') as out:\n"
      "    for line in f:\n"
      "        p, *items = line.split()\n"
      "        out.write(pickle.dumps([int(x) for x in items], int(p)).hex() + '\\n')\n",
      input.str());
  ASSERT_EQ(lines.size(), vectors.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const pickle::WriteOptions options = with_protocol(protocols[i]);
    EXPECT_EQ(hex(pickle::dumps(vectors[i], options)), lines[i])
        << "case " << i << ", " << vectors[i].size() << " ints, protocol " << protocols[i];
    EXPECT_EQ(pickle::loads<std::vector<std::int64_t>>(unhex(lines[i])), vectors[i]) << "case " << i;
  }
}

}  // namespace
