#include "cli.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "pickle/opcodes.hpp"

namespace pickletool {

std::vector<Command>& registered_commands() {
  static std::vector<Command> commands;
  return commands;
}

std::string read_input(const std::string& path) {
  if (path == "-") {
    std::ostringstream buffer;
    buffer << std::cin.rdbuf();
    return std::move(buffer).str();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError("cannot open '" + path + "': " + std::strerror(errno));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_output(const std::string& path, std::string_view data) {
  if (path == "-") {
    std::cout.write(data.data(), static_cast<std::streamsize>(data.size()));
    std::cout.flush();
    return;
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw UsageError("cannot write '" + path + "': " + std::strerror(errno));
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!out) throw std::runtime_error("writing '" + path + "' failed");
}

pickle::ReadOptions read_options(const Arguments& args) {
  pickle::ReadOptions options;
  if (auto encoding = args.value("encoding")) {
    if (*encoding == "ASCII" || *encoding == "ascii") {
      options.py2_strings = pickle::Py2Strings::ascii;
    } else if (*encoding == "latin1" || *encoding == "latin-1") {
      options.py2_strings = pickle::Py2Strings::latin1;
    } else if (*encoding == "bytes") {
      options.py2_strings = pickle::Py2Strings::bytes;
    } else {
      throw UsageError("--encoding must be ASCII, latin1 or bytes");
    }
  }
  if (args.has("no-fix-imports")) options.fix_imports = false;
  return options;
}

std::string opcode_label(const pickle::UnpicklingError& error) {
  if (!error.opcode()) return "end of input";
  if (const pickle::OpcodeInfo* info = pickle::find_opcode(*error.opcode())) {
    return std::string(info->name);
  }
  char text[8];
  std::snprintf(text, sizeof text, "0x%02x", *error.opcode());
  return text;
}

int report_malformed(const pickle::UnpicklingError& error) {
  std::string message = error.what();
  for (char& c : message) {
    if (c == '\n') c = ' ';  // the contract is one line
  }
  std::cerr << "pickletool: " << error.python_class_name() << " at offset " << error.offset()
            << " (" << opcode_label(error) << "): " << message << '\n';
  return exit_malformed;
}

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\u%04x", u);
      out += buffer;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

BenchSettings bench_settings(const Arguments& args) {
  BenchSettings settings;
  if (auto text = args.value("min-time")) {
    try {
      settings.min_seconds = std::stod(*text);
    } catch (const std::exception&) {
      throw UsageError("--min-time needs a number of seconds");
    }
  }
  settings.clock_name = args.value("clock").value_or("wall");
  if (settings.clock_name != "wall" && settings.clock_name != "cpu")
    throw UsageError("--clock must be wall or cpu");
  settings.cpu_clock = settings.clock_name == "cpu";
  return settings;
}

double clock_ns(bool cpu_clock) {
  if (cpu_clock) {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
  }
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace pickletool
