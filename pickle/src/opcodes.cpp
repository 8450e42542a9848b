#include "pickle/opcodes.hpp"

#include <array>

namespace pickle {
namespace {

constexpr std::array<const OpcodeInfo*, 256> make_byte_index() {
  std::array<const OpcodeInfo*, 256> index{};
  for (const OpcodeInfo& info : opcode_table) {
    index[static_cast<std::uint8_t>(info.op)] = &info;
  }
  return index;
}

constexpr std::array<const OpcodeInfo*, 256> byte_index = make_byte_index();

}  // namespace

const OpcodeInfo* find_opcode(std::uint8_t byte) noexcept { return byte_index[byte]; }

const OpcodeInfo* find_opcode(std::string_view name) noexcept {
  for (const OpcodeInfo& info : opcode_table) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

}  // namespace pickle
