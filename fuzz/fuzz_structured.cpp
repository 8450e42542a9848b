// Structure-aware: the input is a program for pickle_fuzz::PickleGenerator, which emits only opcode
// streams CPython loads (shared references, cycles, inert objects, frames, every protocol). So the
// reader must accept every one, and everything downstream runs on deep, valid data: write at every
// protocol and read back (same graph), repr, dis, scan (never malformed here).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_common.hpp"
#include "pickle/dis.hpp"
#include "pickle/reader.hpp"
#include "pickle/repr.hpp"
#include "pickle/scan.hpp"
#include "pickle/writer.hpp"
#include "pickle_generator.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string pickle_bytes = pickle_fuzz::generate_pickle(data, size);
  static const pickle::ReadOptions options = pickle_fuzz::fuzz_read_options();
  pickle::Value value;
  try {
    value = pickle::loads(pickle_bytes, options);
  } catch (const pickle::LimitError&) {
    return 0;
  } catch (const pickle::UnpicklingError& error) {
    pickle_fuzz::finding(std::string("the reader rejects a valid generated pickle: ") + error.what() +
                         " at offset " + std::to_string(error.offset()));
  } catch (const pickle::Error& error) {
    pickle_fuzz::finding(std::string("the reader rejects a valid generated pickle: ") + error.what());
  } catch (const std::exception& error) {
    pickle_fuzz::untyped("loads", error);
  }
  try {
    (void)pickle::repr(value);
    pickle::DisResult listing = pickle::dis(pickle_bytes);
    if (listing.error) pickle_fuzz::finding("dis rejects a valid generated pickle: " + *listing.error);
    pickle::ScanReport report = pickle::scan(pickle_bytes);
    if (report.malformed()) {
      pickle_fuzz::finding("scan calls a valid generated pickle malformed: " + report.error->message);
    }
    for (int protocol = 0; protocol <= 5; ++protocol) pickle_fuzz::check_round_trip(value, protocol, options);
  } catch (const pickle::LimitError&) {
  } catch (const pickle::Error& error) {
    pickle_fuzz::finding(std::string("a typed error on valid data: ") + error.what());
  } catch (const std::exception& error) {
    pickle_fuzz::untyped("repr / dis / scan / dumps", error);
  }
  return 0;
}
