// SHA-256 (FIPS 180-4), for the cache's file names and version header. Written here because the
// project's dependencies do not include a crypto library.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pickle::cache::detail {

class Sha256 {
 public:
  using Digest = std::array<std::uint8_t, 32>;

  Sha256() noexcept;
  void update(std::string_view data) noexcept;
  // Finishes the hash; the object must not be updated afterwards.
  Digest finish() noexcept;

 private:
  void compress(const std::uint8_t* block) noexcept;

  std::array<std::uint32_t, 8> state_;
  std::array<std::uint8_t, 64> pending_{};
  std::size_t pending_size_ = 0;
  std::uint64_t total_bytes_ = 0;
};

Sha256::Digest sha256(std::string_view data) noexcept;
// Lowercase hex of the whole digest (64 characters).
std::string sha256_hex(std::string_view data);

}  // namespace pickle::cache::detail
