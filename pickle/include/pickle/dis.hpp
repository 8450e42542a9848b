// Disassembly and inspection of pickle opcode streams, without building values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "pickle/opcodes.hpp"
#include "pickle/value.hpp"

namespace pickle {

// One decoded opcode of a stream.
struct Instruction {
  const OpcodeInfo* info;
  std::size_t offset;  // of the opcode byte
  std::size_t size;    // opcode byte plus argument
  // The decoded argument, as pickletools.genops gives it: an int, float, str, bytes, a
  // (module, name) pair joined by a space for GLOBAL/INST, or None when the opcode has none.
  Value arg;
};

// Walk the opcodes of one pickle up to and including STOP, like pickletools.genops.
// Throws UnpicklingError on a truncated or unknown opcode.
void genops(std::string_view data, const std::function<void(const Instruction&)>& visit);

struct DisOptions {
  int indentlevel = 4;  // pickletools.dis' default
  // Like `python -m pickletools -a` (annotation column hint 30), but the annotations are the
  // descriptions of this library's opcode table, not pickletools' docstrings.
  bool annotate = false;
};

// Exactly what pickletools.dis(data) prints (Python 3.11), including its error behaviour: on input
// pickletools rejects, the text printed so far is kept in `text` and `error` holds the message of
// the ValueError pickletools raises.
struct DisResult {
  std::string text;
  std::optional<std::string> error;
};
DisResult dis(std::string_view data, const DisOptions& options = {});

}  // namespace pickle
