// Raw bytes → pickle::loads. Must never crash, leak, throw anything but pickle::Error, or use more
// heap than its limits allow.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_common.hpp"
#include "pickle/reader.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  pickle_fuzz::HeapMeter::install();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  static const pickle::ReadOptions options = pickle_fuzz::fuzz_read_options();
  const long long baseline = pickle_fuzz::HeapMeter::start();
  try {
    pickle::Value value = pickle::loads(input, options);
  } catch (const pickle::Error&) {
  } catch (const std::exception& error) {
    pickle_fuzz::untyped("loads", error);
  }
  pickle_fuzz::check_heap_bound(baseline, size, options);
  return 0;
}
