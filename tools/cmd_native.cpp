// pickletool bench-native: times typed loads<T> / dumps(x) (pickle/native.hpp) on a file, for
// bench/compare.py's typed rows. Times as `pickletool bench` does (the same time_median) and prints
// the same JSON line.
#include <cstdint>
#include <iostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli.hpp"
#include "emit.hpp"
#include "pickle/native.hpp"

namespace pickletool {
namespace {

// --op floor: what any loads into the C++ type costs at least, without a pickle: building the same
// vector from the items laid out in one buffer (reserve, then emplace_back of each from the buffer,
// as a loads does) and destroying it, timed like a loads. The vector's storage is advised into huge
// pages as loads<T> advises it, so that the floor is one for loads, not a slower plain loop.
template <class Item>
std::vector<Item> reserved(std::size_t n) {
  std::vector<Item> value;
  value.reserve(n);
  if (value.capacity() * sizeof(Item) >= pickle::detail::huge_page_worthwhile)
    pickle::detail::advise_huge_pages(value.data(), value.capacity() * sizeof(Item));
  return value;
}

Timing time_floor(const std::vector<std::int64_t>& items, const BenchSettings& settings) {
  return time_median(settings, [&] {
    std::vector<std::int64_t> value = reserved<std::int64_t>(items.size());
    value.insert(value.end(), items.begin(), items.end());
  });
}

Timing time_floor(const std::vector<std::string>& items, const BenchSettings& settings) {
  std::string buffer;
  std::vector<std::pair<std::size_t, std::size_t>> spans;  // offset, length
  for (const std::string& item : items) {
    spans.emplace_back(buffer.size(), item.size());
    buffer += item;
  }
  return time_median(settings, [&] {
    std::vector<std::string> value = reserved<std::string>(spans.size());
    for (const auto& [offset, length] : spans) value.emplace_back(buffer.data() + offset, length);
  });
}

Timing time_floor(const std::vector<std::string_view>& items, const BenchSettings& settings) {
  std::string buffer;
  std::vector<std::pair<std::size_t, std::size_t>> spans;  // offset, length
  for (std::string_view item : items) {
    spans.emplace_back(buffer.size(), item.size());
    buffer += item;
  }
  return time_median(settings, [&] {
    std::vector<std::string_view> value = reserved<std::string_view>(spans.size());
    for (const auto& [offset, length] : spans) value.emplace_back(buffer.data() + offset, length);
  });
}

template <class T>
Timing time_typed(const std::string& op, const std::string& data, const BenchSettings& settings) {
  if (op == "floor") return time_floor(pickle::loads<T>(data), settings);
  if (op == "loads") {
    // The value is destroyed inside the timed run, as CPython's loads + decref is.
    return time_median(settings, [&] { T value = pickle::loads<T>(data); });
  }
  if (op == "dumps") {
    T value = pickle::loads<T>(data);
    pickle::WriteOptions options;
    int protocol = data.size() >= 2 && static_cast<unsigned char>(data[0]) == 0x80 ? data[1] : 4;
    options.protocol = protocol >= 2 && protocol <= 5 ? protocol : 4;
    return time_median(settings, [&] { std::string out = pickle::dumps(value, options); });
  }
  throw UsageError("--op must be loads, dumps or floor");
}

int command_bench_native(const std::vector<std::string>& argv) {
  Arguments args(argv, {}, {"op", "type", "min-time", "clock"});
  const std::string& path = args.only_positional("FILE");
  const std::string op = args.value("op").value_or("loads");
  const std::string type = args.value("type").value_or("list-int");
  const BenchSettings settings = bench_settings(args);
  std::string data = read_input(path);
  Timing timing;
  try {
    if (type == "list-int") {
      timing = time_typed<std::vector<std::int64_t>>(op, data, settings);
    } else if (type == "list-str") {
      timing = time_typed<std::vector<std::string>>(op, data, settings);
    } else if (type == "list-str-view") {
      timing = time_typed<std::vector<std::string_view>>(op, data, settings);
    } else {
      throw UsageError("--type must be list-int, list-str or list-str-view");
    }
  } catch (const pickle::UnpicklingError& error) {
    return report_malformed(error);
  } catch (const pickle::LoadTypeError& error) {
    std::cerr << "pickletool: " << error.what() << '\n';
    return exit_malformed;
  }
  std::cout << "{\"op\": " << json_string(op) << ", \"type\": " << json_string(type)
            << ", \"clock\": " << json_string(settings.clock_name) << ", \"file\": " << json_string(path)
            << ", \"bytes\": " << data.size() << ", \"iterations\": " << timing.runs
            << ", \"ns_per_op\": " << static_cast<long long>(timing.ns_per_run)
            << ", \"value_heap_bytes\": 0}\n";
  return exit_ok;
}

const CommandRegistration registration({
    "bench-native",
    "bench-native --op loads|dumps|floor --type list-int|list-str|list-str-view [--min-time SECONDS] "
    "[--clock wall|cpu] FILE",
    "Time typed loads<T> / dumps(x) of the file's list as std::vector<std::int64_t> (list-int),\n"
    "std::vector<std::string> (list-str) or std::vector<std::string_view> (list-str-view: views\n"
    "into the input); prints the JSON line of `bench`. Timing as `bench`: the\n"
    "median of batches of runs lasting at least 200 µs, on the wall clock or (--clock cpu) the\n"
    "thread's CPU time.\n"
    "  --op floor   no pickle: build the same vector from its items laid out in one buffer and\n"
    "               destroy it (the least any loads into that type costs)\n",
    command_bench_native,
});

}  // namespace
}  // namespace pickletool
