// Scanning a pickle for what it would import and call, without building any value.
//
//   pickle::ScanReport report = pickle::scan(bytes);
//   std::cout << pickle::format_scan_text(report, "model.pkl");
//   return pickle::scan_exit_code(report);     // 0 clean, 3 dangerous, 1 malformed
//
// The scan is an opcode walk that keeps an abstract stack, mark stack and memo exactly as CPython's
// C unpickler (3.11) does, so it knows the real operands of every STACK_GLOBAL (memoized strings,
// GET/PUT games included), what every REDUCE / NEWOBJ / NEWOBJ_EX / INST / OBJ calls and what every
// BUILD applies state to. It reports every global, call, persistent id and extension code, with a
// risk per item (safe / suspicious / dangerous, from pickle::assess_global), and what scanners are
// known to miss: pickles concatenated in one file (the memo carries over, as in Unpickler.load()),
// bytes after STOP, duplicate or misplaced PROTO, frames that overlap, overwritten memo slots and
// values left on the stack at STOP.
//
// Where CPython's loader may or may not fail depending on load-time options (no persistent_load,
// an unregistered extension code, REDUCE on a value that is not callable, …) the scan keeps going,
// so nothing after such a point goes unreported. It stops only where every loader stops: truncated
// data, an unknown opcode, stack or MARK underflow, a missing memo entry, an unsupported protocol.
// Dangerous items seen before that point are still reported (an error raised after a dangerous
// REDUCE does not undo it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pickle/errors.hpp"
#include "pickle/policy.hpp"

namespace pickle {

enum class ScanItemKind : std::uint8_t {
  global,         // GLOBAL, STACK_GLOBAL, INST: a module attribute the pickle imports
  call,           // REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ: something the pickle calls
  build,          // BUILD: state applied to an object (its class's __setstate__ runs)
  persistent_id,  // PERSID, BINPERSID
  extension,      // EXT1, EXT2, EXT4
  anomaly,        // a structural oddity of the file (concatenation, trailing bytes, PROTO, FRAME, …)
};

std::string_view scan_item_kind_name(ScanItemKind kind) noexcept;  // "global", "call", …

struct ScanItem {
  ScanItemKind kind = ScanItemKind::anomaly;
  std::string opcode;            // name of the opcode of the first occurrence
  std::size_t offset = 0;        // of that opcode, from the start of the file
  std::size_t pickle_index = 0;  // which pickle of the file (0 = the first)
  std::size_t count = 1;         // occurrences merged into this item (same kind, target and detail)
  std::string module;            // the global (for call / build: the global that was called)
  std::string name;
  std::string detail;  // a persistent id, an extension code, what a call targets when it is not a
                       // global, or the anomaly
  Risk risk = Risk::suspicious;
  std::string reason;
};

// Why the walk had to stop.
struct ScanError {
  std::string message;  // CPython's message for the same input where it has one
  std::size_t offset = 0;
  std::optional<std::uint8_t> opcode;
  PyExc python_class = PyExc::UnpicklingError;
};

struct ScanReport {
  std::size_t size = 0;     // bytes scanned
  std::size_t pickles = 0;  // complete pickles (ending in STOP) found in the file
  std::vector<ScanItem> items;
  Risk risk = Risk::safe;           // the highest risk of any item (safe when there is none)
  std::optional<ScanError> error;   // set when the first pickle is malformed
  bool malformed() const noexcept { return error.has_value(); }
};

ScanReport scan(std::string_view data);

// The overall verdict: "dangerous" when any item is dangerous, else "malformed" when the pickle is
// malformed, else "suspicious" or "clean".
std::string_view scan_verdict(const ScanReport& report) noexcept;

// The exit status of `pickletool scan`: 3 when something dangerous is referenced (even if the data
// is also malformed), 1 when malformed, 0 otherwise (suspicious items are reported, not failed).
int scan_exit_code(const ScanReport& report) noexcept;

// Human-readable report, one item per line. `source` names the file in the heading (may be empty).
std::string format_scan_text(const ScanReport& report, std::string_view source = {});

// The same as one JSON object (UTF-8; bytes of names that are not UTF-8 are written as \u00XX):
// {"source":…, "size":…, "pickles":…, "verdict":…, "risk":…, "exit_code":…, "error":null|{…},
//  "items":[{"kind","opcode","offset","pickle","count","module","name","detail","risk","reason"}…]}
std::string format_scan_json(const ScanReport& report, std::string_view source = {});

}  // namespace pickle
