// What the pickletool commands share: option parsing, input and output, error reporting, and the
// command table. A command defined in its own file registers itself with a static
// CommandRegistration, so adding a command touches only its file and tools/meson.build.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "pickle/errors.hpp"
#include "pickle/reader.hpp"

namespace pickletool {

constexpr int exit_ok = 0;
constexpr int exit_malformed = 1;
constexpr int exit_usage = 2;

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The command line of one command: options (--name value / --flag) and positional arguments.
class Arguments {
 public:
  Arguments(std::vector<std::string> args, std::vector<std::string> flags,
            std::vector<std::string> valued)
      : flags_(std::move(flags)), valued_(std::move(valued)) {
    for (std::size_t i = 0; i < args.size(); ++i) {
      const std::string& arg = args[i];
      if (arg == "-" || arg.rfind("--", 0) != 0) {
        positional_.push_back(arg);
        continue;
      }
      std::string name = arg.substr(2);
      std::optional<std::string> inline_value;
      if (auto eq = name.find('='); eq != std::string::npos) {
        inline_value = name.substr(eq + 1);
        name.resize(eq);
      }
      if (contains(flags_, name) && !inline_value) {
        options_[name] = "";
      } else if (contains(valued_, name)) {
        if (inline_value) {
          options_[name] = *inline_value;
        } else if (i + 1 < args.size()) {
          options_[name] = args[++i];
        } else {
          throw UsageError("option --" + name + " needs a value");
        }
        repeated_[name].push_back(options_[name]);
      } else {
        throw UsageError("unknown option --" + name);
      }
    }
  }

  bool has(const std::string& name) const { return options_.count(name) != 0; }
  std::optional<std::string> value(const std::string& name) const {
    auto it = options_.find(name);
    if (it == options_.end()) return std::nullopt;
    return it->second;
  }
  // Every value a repeatable option was given, in order (value() is the last one).
  std::vector<std::string> values(const std::string& name) const {
    auto it = repeated_.find(name);
    return it == repeated_.end() ? std::vector<std::string>{} : it->second;
  }
  int integer(const std::string& name, int fallback) const {
    auto text = value(name);
    if (!text) return fallback;
    try {
      std::size_t used = 0;
      int result = std::stoi(*text, &used);
      if (used != text->size()) throw std::invalid_argument("trailing");
      return result;
    } catch (const std::exception&) {
      throw UsageError("--" + name + " needs an integer, got '" + *text + "'");
    }
  }
  const std::vector<std::string>& positional() const { return positional_; }
  const std::string& only_positional(std::string_view what) const {
    if (positional_.size() != 1) throw UsageError("expected exactly one " + std::string(what));
    return positional_[0];
  }

 private:
  static bool contains(const std::vector<std::string>& names, const std::string& name) {
    for (const auto& n : names) {
      if (n == name) return true;
    }
    return false;
  }
  std::vector<std::string> flags_;
  std::vector<std::string> valued_;
  std::map<std::string, std::string> options_;
  std::map<std::string, std::vector<std::string>> repeated_;
  std::vector<std::string> positional_;
};

// The whole of a file, or of standard input for "-".
std::string read_input(const std::string& path);
// Writes to a file, or to standard output for "-".
void write_output(const std::string& path, std::string_view data);

// --encoding and --no-fix-imports, shared by every command that loads.
pickle::ReadOptions read_options(const Arguments& args);

// The opcode's name for an error report ("end of input" or 0xNN when there is no such opcode).
std::string opcode_label(const pickle::UnpicklingError& error);

// Prints the one-line report of a malformed pickle and returns exit_malformed.
int report_malformed(const pickle::UnpicklingError& error);

// --- benchmark timing (`bench`, `bench-native`) ------------------------------------------------

// --min-time SECONDS (default 1) and --clock wall|cpu (default wall) of a benchmark command, which
// must list both among its valued options.
struct BenchSettings {
  double min_seconds = 1.0;
  bool cpu_clock = false;
  std::string clock_name = "wall";
};
BenchSettings bench_settings(const Arguments& args);

// Nanoseconds on the chosen clock. The CPU clock is the calling thread's CPU time (user + system,
// page faults included): on a machine shared by busy processes, wall time mostly measures the
// scheduler.
double clock_ns(bool cpu_clock);

struct Timing {
  double ns_per_run = 0;  // the median
  std::size_t runs = 0;
};

// Times `op` repeatedly for at least settings.min_seconds (and at least 5 samples) and returns the
// median nanoseconds of one run together with the run count. A sample times a batch of runs lasting
// at least 200 µs: reading the thread's CPU clock is a system call here (about 1.5 µs in this VM, as
// long as a whole small dumps), which would otherwise be most of what a sample of a small pickle
// measures. bench/compare.py batches CPython's runs the same way. `before_sample(i)` runs, untimed,
// before the i-th timed batch.
struct NoSetup {
  void operator()(std::size_t) const noexcept {}
};
template <class Op, class Setup = NoSetup>
Timing time_median(const BenchSettings& settings, Op op, Setup before_sample = {}) {
  using wall = std::chrono::steady_clock;
  const bool cpu = settings.cpu_clock;
  std::size_t batch = 1;
  for (;;) {
    const double before = clock_ns(cpu);
    for (std::size_t i = 0; i < batch; ++i) op();
    if (clock_ns(cpu) - before >= 200e3 || batch >= (std::size_t{1} << 20)) break;
    batch *= 2;
  }
  std::vector<double> samples;
  Timing timing;
  const auto start = wall::now();
  while (samples.size() < 5 ||
         std::chrono::duration<double>(wall::now() - start).count() < settings.min_seconds) {
    before_sample(samples.size());
    const double before = clock_ns(cpu);
    for (std::size_t i = 0; i < batch; ++i) op();
    samples.push_back((clock_ns(cpu) - before) / static_cast<double>(batch));
    timing.runs += batch;
  }
  std::nth_element(samples.begin(), samples.begin() + samples.size() / 2, samples.end());
  timing.ns_per_run = samples[samples.size() / 2];
  return timing;
}

struct Command {
  std::string_view name;
  std::string_view synopsis;
  std::string_view help;
  std::function<int(const std::vector<std::string>&)> run;
};

// `text` as a JSON string literal: quotes, backslashes and control characters escaped.
std::string json_string(std::string_view text);

// Every command, in registration order after pickletool.cpp's own.
std::vector<Command>& registered_commands();

struct CommandRegistration {
  explicit CommandRegistration(Command command) {
    registered_commands().push_back(std::move(command));
  }
};

}  // namespace pickletool
