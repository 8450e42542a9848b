// pickletool — inspect and convert Python pickles without Python.
//
//   pickletool COMMAND [OPTIONS] FILE      FILE may be '-' for standard input
//
// Exit status: 0 success; 1 malformed input, with one line on stderr:
//   pickletool: <CPython exception class> at offset <N> (<OPCODE>): <message>
// 2 usage error; 3 (scan only) something dangerous is referenced.
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "pickle/dis.hpp"
#include "pickle/errors.hpp"
#include "pickle/literal.hpp"
#include "pickle/opcodes.hpp"
#include "pickle/reader.hpp"
#include "pickle/repr.hpp"
#include "pickle/scan.hpp"
#include "pickle/value.hpp"
#include "pickle/writer.hpp"
#include "value_impl.hpp"

#include "cli.hpp"

namespace {

using namespace pickletool;

const std::vector<std::string> read_flags = {"no-fix-imports", "all"};
const std::vector<std::string> read_valued = {"encoding", "max-size"};

// A shared sub-object prints in full at every reference, so a tiny hostile pickle can have an
// astronomically long repr; the CLI refuses to print more than this unless told otherwise.
constexpr std::size_t default_repr_max_size = std::size_t(256) << 20;

// --- commands --------------------------------------------------------------------------------

int command_repr(const std::vector<std::string>& argv) {
  Arguments args(argv, read_flags, read_valued);
  std::string data = read_input(args.only_positional("FILE"));
  pickle::ReadOptions options = read_options(args);
  pickle::ReprOptions repr_options;
  repr_options.max_size = default_repr_max_size;
  if (args.has("max-size")) {
    repr_options.max_size = static_cast<std::size_t>(args.integer("max-size", 0));
  }
  if (!args.has("all")) {
    std::cout << pickle::repr(pickle::loads(data, options), repr_options) << '\n';
    return exit_ok;
  }
  pickle::Unpickler unpickler(std::string_view(data), options);
  do {
    std::cout << pickle::repr(unpickler.load(), repr_options) << '\n';
  } while (!unpickler.at_end());
  return exit_ok;
}

int command_dis(const std::vector<std::string>& argv) {
  Arguments args(argv, {"annotate"}, {"indent"});
  std::string data = read_input(args.only_positional("FILE"));
  pickle::DisOptions options;
  options.indentlevel = args.integer("indent", options.indentlevel);
  options.annotate = args.has("annotate");
  pickle::DisResult result = pickle::dis(data, options);
  std::cout << result.text;
  std::cout.flush();
  if (result.error) {
    std::string message = *result.error;
    for (char& c : message) {
      if (c == '\n') c = ' ';
    }
    std::cerr << "pickletool: ValueError: " << message << '\n';
    return exit_malformed;
  }
  return exit_ok;
}

pickle::WriteOptions write_options(const Arguments& args, int input_protocol) {
  pickle::WriteOptions options;
  options.target_minor = 11;
  if (auto target = args.value("target")) {
    int minor = -1;
    if (target->rfind("3.", 0) == 0) {
      try {
        minor = std::stoi(target->substr(2));
      } catch (const std::exception&) {
        minor = -1;
      }
    }
    if (minor < 8 || minor > 14) throw UsageError("--target must be 3.8 … 3.14");
    options.target_minor = minor;
  }
  int protocol = args.integer("protocol", -1);
  if (protocol == -1) {
    protocol = input_protocol >= 2 && input_protocol <= 5
                   ? input_protocol
                   : pickle::default_protocol(options.target_minor);
  }
  if (protocol < 0 || protocol > 5) throw UsageError("--protocol must be 0 … 5");
  options.protocol = protocol;
  return options;
}

// The protocol a pickle declares: its leading PROTO, or 0/1 when it has none (1 when it uses any
// protocol 1 opcode).
int declared_protocol(std::string_view data) {
  if (data.size() >= 2 && static_cast<unsigned char>(data[0]) == 0x80) {
    return static_cast<unsigned char>(data[1]);
  }
  return -1;
}

// --ext CODE=module:name (repeatable): the copyreg extension registry the pickle was written with,
// which only the writing process knows.
void add_extensions(const Arguments& args, pickle::ReadOptions& options) {
  for (const std::string& entry : args.values("ext")) {
    const std::size_t eq = entry.find('=');
    const std::size_t colon = entry.find(':', eq == std::string::npos ? 0 : eq);
    long long code = 0;
    bool valid = eq != std::string::npos && colon != std::string::npos && eq > 0 &&
                 colon > eq + 1 && colon + 1 < entry.size();
    if (valid) {
      const char* first = entry.data();
      auto [end, error] = std::from_chars(first, first + eq, code);
      valid = error == std::errc() && end == first + eq && code >= 1 && code <= 0x7FFFFFFF;
    }
    if (!valid) throw UsageError("--ext needs CODE=module:name with CODE in 1 … 2147483647, got '" + entry + "'");
    options.extensions[static_cast<std::int32_t>(code)] = {entry.substr(eq + 1, colon - eq - 1),
                                                           entry.substr(colon + 1)};
  }
}

int command_convert(const std::vector<std::string>& argv) {
  Arguments args(argv, {"no-fix-imports"}, {"protocol", "target", "encoding", "ext"});
  if (args.positional().size() != 2) throw UsageError("expected IN and OUT");
  std::string data = read_input(args.positional()[0]);
  pickle::ReadOptions read = read_options(args);
  add_extensions(args, read);
  // Without --protocol the input is reproduced; with it, the output is what Python writes for the
  // objects pickle.loads makes: with their sharing, and sets iterating in the order loading them
  // gave.
  read.reloaded_identities = args.has("protocol");
  pickle::Value value = pickle::loads(data, read);
  pickle::WriteOptions options = write_options(args, declared_protocol(data));
  options.reloaded_set_order = args.has("protocol");
  write_output(args.positional()[1], pickle::dumps(value, options));
  return exit_ok;
}

int command_encode(const std::vector<std::string>& argv) {
  Arguments args(argv, {}, {"protocol", "target"});
  const std::string& literal = args.only_positional("LITERAL");
  pickle::Value value = pickle::parse_literal(literal);
  pickle::WriteOptions options = write_options(args, -1);
  // A literal is built the way CPython builds ast.literal_eval's result, so it shares what
  // CPython shares ('' , 1-character strs, …), not what a loaded graph shares.
  options.identities = pickle::Identities::cpython;
  write_output("-", pickle::dumps(value, options));
  return exit_ok;
}

// Bytes of heap the loaded value holds (its region's chunks), for the memory comparison.
// What the value's nodes take (the bytes handed out by its region, as tracemalloc counts CPython's
// objects) and what its region holds from the system (chunks, free tails included).
std::pair<std::size_t, std::size_t> value_heap_bytes(const pickle::Value& value) {
  pickle::detail::Heap* heap = value.heap();
  if (heap == nullptr) return {0, 0};
  return {heap->root()->used_bytes, heap->root()->allocated_bytes};
}

int command_bench(const std::vector<std::string>& argv) {
  Arguments args(argv, {"zero-copy"}, {"op", "min-time", "clock"});
  const std::string& path = args.only_positional("FILE");
  const std::string op = args.value("op").value_or("loads");
  const BenchSettings settings = bench_settings(args);
  // Shared, so that a zero-copy load's value can keep the input alive.
  const auto input = std::make_shared<const std::string>(read_input(path));
  const std::string& data = *input;
  const bool zero_copy = args.has("zero-copy");
  auto load = [&] { return zero_copy ? pickle::loads(data, input) : pickle::loads(data); };
  // A small input is loaded from a copy at another 256-byte offset modulo 4096 for each sample (one
  // copy per sample, so the input stays in cache): where its address falls relative to the
  // reader's buffers decides whether loads wait on stores to addresses equal in their low 12 bits
  // ("4K aliasing"), by up to 1.6x on some pickles, so one placement measures the layout as much
  // as the code. The median is then over placements; compare.py does the same for CPython.
  constexpr std::size_t placements = 16;
  constexpr std::size_t placed_input_max = std::size_t{1} << 20;
  const bool placed = data.size() <= placed_input_max;
  auto placed_storage = std::make_shared<std::string>();
  std::vector<std::string_view> copies;
  if (placed) {
    // Each copy in pages of its own, the k-th 256 k bytes into its first page.
    const std::size_t stride = (data.size() + 4095) / 4096 * 4096 + 4096;
    placed_storage->assign(4096 + placements * stride, '\0');
    char* base = placed_storage->data();
    base += (4096 - reinterpret_cast<std::uintptr_t>(base) % 4096) % 4096;
    for (std::size_t k = 0; k < placements; ++k) {
      char* at = base + k * stride + k * (4096 / placements);
      std::memcpy(at, data.data(), data.size());
      copies.emplace_back(at, data.size());
    }
  }
  const std::shared_ptr<const void> placed_owner = placed_storage;
  Timing timing;
  std::pair<std::size_t, std::size_t> heap_bytes;
  if (op == "loads" && placed) {
    std::string_view copy = copies[0];
    // The value is destroyed inside the timed run, as CPython's loads + decref is.
    timing = time_median(
        settings,
        [&] { pickle::Value v = zero_copy ? pickle::loads(copy, placed_owner) : pickle::loads(copy); },
        [&](std::size_t sample) { copy = copies[sample % placements]; });
    heap_bytes = value_heap_bytes(load());
  } else if (op == "loads") {
    timing = time_median(settings, [&] { pickle::Value v = load(); });
    heap_bytes = value_heap_bytes(load());
  } else if (op == "dumps") {
    pickle::Value value = load();
    pickle::WriteOptions options;
    const int protocol = declared_protocol(data);
    options.protocol = protocol >= 2 && protocol <= 5 ? protocol : 4;
    timing = time_median(settings, [&] { std::string out = pickle::dumps(value, options); });
    heap_bytes = value_heap_bytes(value);
  } else {
    throw UsageError("--op must be loads or dumps");
  }
  std::cout << "{\"op\": " << json_string(op) << ", \"clock\": " << json_string(settings.clock_name)
            << ", \"file\": " << json_string(path)
            << ", \"bytes\": " << data.size() << ", \"iterations\": " << timing.runs
            << ", \"ns_per_op\": " << static_cast<long long>(timing.ns_per_run)
            << ", \"value_heap_bytes\": " << heap_bytes.first
            << ", \"value_system_bytes\": " << heap_bytes.second << "}\n";
  return exit_ok;
}

int command_scan(const std::vector<std::string>& argv) {
  Arguments args(argv, {"json"}, {});
  const std::string& path = args.only_positional("FILE");
  std::string data = read_input(path);
  pickle::ScanReport report = pickle::scan(data);
  const std::string source = path == "-" ? "<stdin>" : path;
  std::cout << (args.has("json") ? pickle::format_scan_json(report, source)
                                 : pickle::format_scan_text(report, source));
  std::cout.flush();
  if (report.error && !args.has("json")) {
    std::string message = report.error->message;
    for (char& c : message) {
      if (c == '\n') c = ' ';
    }
    std::cerr << "pickletool: " << pickle::py_exc_name(report.error->python_class) << " at offset "
              << report.error->offset << " ("
              << opcode_label(pickle::UnpicklingError(report.error->python_class, message,
                                                      report.error->offset, report.error->opcode))
              << "): " << message << '\n';
  }
  return pickle::scan_exit_code(report);
}

const std::vector<Command>& commands() {
  static const std::vector<Command> table = [] {
    std::vector<Command> all = {
        {"repr", "repr [--encoding E] [--no-fix-imports] [--all] [--max-size N] FILE",
         "Print Python's repr() of the unpickled value, as `python3 -c "
         "'print(repr(pickle.load(f)))'`.\n"
         "  --encoding E       how Python 2 str is decoded: ASCII (default), latin1, bytes\n"
         "  --no-fix-imports   keep Python 2 module names as they are\n"
         "  --all              print every pickle of a file holding several, one per line\n"
         "  --max-size N       fail (exit 1) rather than print more than N bytes (default 256 "
         "MiB;\n"
         "                     shared references make some tiny pickles' reprs astronomically "
         "long)\n",
         command_repr},
        {"dis", "dis [--annotate] [--indent N] FILE",
         "Disassemble the opcodes, exactly as `python3 -m pickletools FILE` (pickletools.dis).\n",
         command_dis},
        {"convert", "convert [--protocol N] [--target 3.X] [--ext CODE=module:name]... IN OUT",
         "Load IN and write it to OUT at protocol N, byte for byte as CPython 3.X's pickle.dumps\n"
         "(default 3.11). Without --protocol, a pickle at protocol 2-5 is written back exactly as\n"
         "it is (others at the target's default protocol); with it, OUT is what\n"
         "pickle.dumps(pickle.loads(IN), N) writes, with sets in the order loading gives them.\n"
         "  --ext CODE=module:name   a copyreg extension code of the writing process (repeatable);\n"
         "                           EXT1/EXT2/EXT4 of an unregistered code fail as in CPython\n",
         command_convert},
        {"encode", "encode [--protocol N] [--target 3.X] 'LITERAL'",
         "Write a Python literal (as ast.literal_eval accepts it) as a pickle to standard output,\n"
         "identical to pickle.dumps(ast.literal_eval(LITERAL), N).\n",
         command_encode},
        {"scan", "scan [--json] FILE",
         "List every global, call, persistent id and extension code the pickle would use, without\n"
         "loading it, with a verdict per item and overall. Exit 0 clean, 3 dangerous, 1 "
         "malformed.\n"
         "  --json   one JSON object for machines\n",
         command_scan},
        {"bench", "bench --op loads|dumps [--min-time SECONDS] [--clock wall|cpu] [--zero-copy] FILE",
         "Time pickle.loads (or dumps of the loaded value at the file's protocol) in-process and\n"
         "print one JSON line: op, clock, file, bytes, iterations, ns_per_op (median),\n"
         "value_heap_bytes (what the loaded value's nodes take), value_system_bytes (its chunks).\n"
         "  --clock cpu   time the thread's CPU time instead of wall time (for a busy machine)\n"
         "  --zero-copy   load with pickle::loads(data, owner): large bytes/str are views of the "
         "input\n",
         command_bench},
    };
    // The commands defined in their own files (tools/cmd_*.cpp) follow.
    for (const Command& command : registered_commands()) all.push_back(command);
    return all;
  }();
  return table;
}

void print_usage(std::ostream& out) {
  out << "usage: pickletool COMMAND [OPTIONS] FILE   (FILE may be '-' for standard input)\n\n"
         "commands:\n";
  for (const Command& command : commands()) out << "  pickletool " << command.synopsis << '\n';
  out << "\nRun 'pickletool COMMAND --help' for a command's options.\n"
         "Exit status: 0 ok, 1 malformed input, 2 usage error.\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    print_usage(std::cerr);
    return exit_usage;
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_usage(std::cout);
    return exit_ok;
  }
  const Command* command = nullptr;
  for (const Command& candidate : commands()) {
    if (candidate.name == args[0]) command = &candidate;
  }
  if (command == nullptr) {
    std::cerr << "pickletool: unknown command '" << args[0] << "'\n";
    print_usage(std::cerr);
    return exit_usage;
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  for (const std::string& arg : rest) {
    if (arg == "--help" || arg == "-h") {
      std::cout << "usage: pickletool " << command->synopsis << "\n\n" << command->help;
      return exit_ok;
    }
  }
  try {
    return command->run(rest);
  } catch (const UsageError& error) {
    std::cerr << "pickletool " << command->name << ": " << error.what() << '\n';
    return exit_usage;
  } catch (const pickle::UnpicklingError& error) {
    return report_malformed(error);
  } catch (const pickle::Error& error) {
    std::cerr << "pickletool: " << error.python_class_name() << ": " << error.what() << '\n';
    return exit_malformed;
  } catch (const std::bad_alloc&) {
    std::cerr << "pickletool: MemoryError: out of memory\n";
    return exit_malformed;
  } catch (const std::exception& error) {
    std::cerr << "pickletool: error: " << error.what() << '\n';
    return exit_malformed;
  }
}
