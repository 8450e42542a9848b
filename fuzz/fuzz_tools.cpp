// scan, dis and genops on any bytes; repr and ascii on whatever loads. None may throw anything but
// pickle::Error (scan and dis nothing at all). A pickle the reader accepts must not be malformed to
// the scanner, which is at most as strict as CPython.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_common.hpp"
#include "pickle/dis.hpp"
#include "pickle/reader.hpp"
#include "pickle/repr.hpp"
#include "pickle/scan.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  static const pickle::ReadOptions options = pickle_fuzz::fuzz_read_options();

  pickle::ScanReport report;
  try {
    report = pickle::scan(input);
    (void)pickle::format_scan_text(report, "input");
    (void)pickle::format_scan_json(report, "input");
  } catch (const std::exception& error) {
    pickle_fuzz::untyped("scan", error);
  }
  try {
    (void)pickle::dis(input);
  } catch (const std::exception& error) {
    pickle_fuzz::untyped("dis", error);
  }
  try {
    std::size_t count = 0;
    pickle::genops(input, [&count](const pickle::Instruction&) { ++count; });
  } catch (const pickle::Error&) {
  } catch (const std::exception& error) {
    pickle_fuzz::untyped("genops", error);
  }
  try {
    pickle::Value value = pickle::loads(input, options);
    (void)pickle::repr(value);
    (void)pickle::ascii(value);
    if (report.malformed()) {
      pickle_fuzz::finding("the reader loads what the scanner calls malformed: " + report.error->message +
                           " at offset " + std::to_string(report.error->offset));
    }
  } catch (const pickle::Error&) {
  } catch (const std::exception& error) {
    pickle_fuzz::untyped("loads / repr", error);
  }
  return 0;
}
