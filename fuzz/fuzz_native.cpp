// Raw bytes → typed pickle::loads<T> for a few composite types. Must never crash, or throw anything
// but pickle::Error; and whatever loads must write back and read back to an equal value (the direct
// parser and the Value path must agree).
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <variant>
#include <vector>

#include "fuzz_common.hpp"
#include "pickle/native.hpp"

namespace {

struct Record {
  std::int64_t id = 0;
  std::string name;
  std::vector<double> scores;
};
PICKLE_DESCRIBE(Record, id, name, scores)

// The Value path alone: pickle::loads, then the conversion loads<T> falls back on.
template <class T>
T through_value(std::string_view input, const pickle::ReadOptions& options) {
  pickle::Value loaded = pickle::loads(input, options);
  pickle::native_detail::Path path;
  T converted{};
  pickle::TypedReader(loaded, path).read(converted);
  return converted;
}

template <class T>
void exercise(std::string_view input, const pickle::ReadOptions& options) {
  T value{};
  bool direct_ok = true;
  try {
    value = pickle::loads<T>(input, options);
  } catch (const pickle::Error&) {
    direct_ok = false;
  } catch (const std::exception& error) {
    pickle_fuzz::untyped("loads<T>", error);
  }
  T reference{};
  bool value_ok = true;
  try {
    reference = through_value<T>(input, options);
  } catch (const pickle::Error&) {
    value_ok = false;
  } catch (const std::exception& error) {
    pickle_fuzz::untyped("Value path", error);
  }
  if (direct_ok != value_ok)
    pickle_fuzz::finding(direct_ok ? "loads<T> accepted what the Value path rejects"
                                   : "loads<T> rejected what the Value path accepts");
  if (!direct_ok) return;
  // Compared as bytes: NaN scores make == useless.
  try {
    std::string bytes = pickle::dumps(value);
    if (bytes != pickle::dumps(reference)) pickle_fuzz::finding("loads<T> and the Value path disagree");
    if (pickle::dumps(pickle::loads<T>(bytes)) != bytes) pickle_fuzz::finding("typed round trip changed the value");
  } catch (const pickle::Error& error) {
    pickle_fuzz::finding(std::string("typed re-dump failed: ") + error.what());
  } catch (const std::exception& error) {
    pickle_fuzz::untyped("dumps(T)", error);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  pickle_fuzz::HeapMeter::install();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // The first byte picks the type, so one corpus reaches all of them.
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  // Default options: limits tighter than the defaults send every input to the Value path, and the
  // direct parser is what this harness is for (its memory is linear in the input by itself).
  static const pickle::ReadOptions options;
  switch (data[0] % 5) {
    case 0:
      exercise<std::vector<std::int64_t>>(input, options);
      break;
    case 1:
      exercise<std::vector<std::string>>(input, options);
      break;
    case 2:
      exercise<std::map<std::string, std::vector<std::optional<int>>>>(input, options);
      break;
    case 3:
      exercise<std::vector<std::tuple<std::variant<std::int64_t, std::string>, std::set<int>, pickle::bytes>>>(
          input, options);
      break;
    default:
      exercise<std::vector<Record>>(input, options);
      break;
  }
  return 0;
}
