// Whatever loads is written back (at the protocol the input's length picks) and loaded again:
// the second load must equal the first, and writing it again must give the same bytes
// (pickle_fuzz::check_round_trip).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "fuzz_common.hpp"
#include "pickle/reader.hpp"
#include "pickle/value.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The protocol to write comes from the length, so that every seed pickle is used as it is.
  int protocol = static_cast<int>(size % 6);
  // Protocol 0 writes a persistent id as the text str(pid), as CPython does, so a BINPERSID of
  // anything but a str cannot come back the same through it.
  if (protocol == 0 && std::memchr(data, 'Q', size) != nullptr) protocol = 1;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  static const pickle::ReadOptions options = pickle_fuzz::fuzz_read_options();
  pickle::Value first;
  try {
    first = pickle::loads(input, options);
  } catch (const pickle::Error&) {
    return 0;
  } catch (const std::exception& error) {
    pickle_fuzz::untyped("loads", error);
  }
  try {
    pickle_fuzz::check_round_trip(first, protocol, options);
  } catch (const pickle::LimitError&) {
  } catch (const pickle::Error& error) {
    pickle_fuzz::finding(std::string("round trip threw: ") + error.what());
  } catch (const std::exception& error) {
    pickle_fuzz::untyped("round trip", error);
  }
  return 0;
}
