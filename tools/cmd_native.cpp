// pickletool bench-native: times typed loads<T> / dumps(x) (pickle/native.hpp) on a file, for
// bench/compare.py's typed rows. Times as `pickletool bench` does (the same time_median) and prints
// the same JSON line.
#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "pickle/native.hpp"

namespace pickletool {
namespace {

template <class T>
Timing time_typed(const std::string& op, const std::string& data, const BenchSettings& settings) {
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
  throw UsageError("--op must be loads or dumps");
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
    } else {
      throw UsageError("--type must be list-int or list-str");
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
    "bench-native --op loads|dumps --type list-int|list-str [--min-time SECONDS] [--clock wall|cpu] FILE",
    "Time typed loads<T> / dumps(x) of the file's list as std::vector<std::int64_t> (list-int) or\n"
    "std::vector<std::string> (list-str); prints the JSON line of `bench`. Timing as `bench`: the\n"
    "median of batches of runs lasting at least 200 µs, on the wall clock or (--clock cpu) the\n"
    "thread's CPU time.\n",
    command_bench_native,
});

}  // namespace
}  // namespace pickletool
