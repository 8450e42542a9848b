// pickletool bench-native: times typed loads<T> / dumps(x) (pickle/native.hpp) on a file, for
// bench/compare.py's typed rows. Prints the same JSON line as `pickletool bench`.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "cli.hpp"
#include "pickle/native.hpp"

namespace pickletool {
namespace {

template <class Op>
std::pair<double, std::size_t> median_ns(double min_seconds, Op op) {
  using clock = std::chrono::steady_clock;
  std::vector<double> samples;
  const auto start = clock::now();
  while (samples.size() < 5 ||
         std::chrono::duration<double>(clock::now() - start).count() < min_seconds) {
    const auto before = clock::now();
    op();
    samples.push_back(std::chrono::duration<double, std::nano>(clock::now() - before).count());
  }
  std::nth_element(samples.begin(), samples.begin() + samples.size() / 2, samples.end());
  return {samples[samples.size() / 2], samples.size()};
}

template <class T>
std::pair<double, std::size_t> time_typed(const std::string& op, const std::string& data,
                                          double min_seconds) {
  if (op == "loads") {
    // The value is destroyed inside the timed run, as CPython's loads + decref is.
    return median_ns(min_seconds, [&] { T value = pickle::loads<T>(data); });
  }
  if (op == "dumps") {
    T value = pickle::loads<T>(data);
    pickle::WriteOptions options;
    int protocol = data.size() >= 2 && static_cast<unsigned char>(data[0]) == 0x80 ? data[1] : 4;
    options.protocol = protocol >= 2 && protocol <= 5 ? protocol : 4;
    return median_ns(min_seconds, [&] { std::string out = pickle::dumps(value, options); });
  }
  throw UsageError("--op must be loads or dumps");
}

int command_bench_native(const std::vector<std::string>& argv) {
  Arguments args(argv, {}, {"op", "type", "min-time"});
  const std::string& path = args.only_positional("FILE");
  const std::string op = args.value("op").value_or("loads");
  const std::string type = args.value("type").value_or("list-int");
  double min_seconds = 1.0;
  if (auto text = args.value("min-time")) {
    try {
      min_seconds = std::stod(*text);
    } catch (const std::exception&) {
      throw UsageError("--min-time needs a number of seconds");
    }
  }
  std::string data = read_input(path);
  std::pair<double, std::size_t> timing;
  try {
    if (type == "list-int") {
      timing = time_typed<std::vector<std::int64_t>>(op, data, min_seconds);
    } else if (type == "list-str") {
      timing = time_typed<std::vector<std::string>>(op, data, min_seconds);
    } else {
      throw UsageError("--type must be list-int or list-str");
    }
  } catch (const pickle::UnpicklingError& error) {
    return report_malformed(error);
  } catch (const pickle::LoadTypeError& error) {
    std::cerr << "pickletool: " << error.what() << '\n';
    return exit_malformed;
  }
  std::cout << "{\"op\": \"" << op << "\", \"type\": \"" << type << "\", \"bytes\": " << data.size()
            << ", \"iterations\": " << timing.second
            << ", \"ns_per_op\": " << static_cast<long long>(timing.first)
            << ", \"value_heap_bytes\": 0}\n";
  return exit_ok;
}

const CommandRegistration registration({
    "bench-native",
    "bench-native --op loads|dumps --type list-int|list-str [--min-time SECONDS] FILE",
    "Time typed loads<T> / dumps(x) of the file's list as std::vector<std::int64_t> (list-int) or\n"
    "std::vector<std::string> (list-str); prints the JSON line of `bench`.\n",
    command_bench_native,
});

}  // namespace
}  // namespace pickletool
