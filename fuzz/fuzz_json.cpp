// Any bytes → pickle::from_json, and any bytes → pickle::loads → pickle::to_json. Neither may throw
// anything but pickle::Error. Whatever either side produces must convert to JSON that from_json
// reads back to the same text (the tags, $id/$ref and escapes are an exact inverse).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_common.hpp"
#include "pickle/json.hpp"
#include "pickle/reader.hpp"

namespace {

// Small pickles may reference one long str many times; the harness stays well inside its RSS limit.
constexpr std::size_t max_json_bytes = std::size_t(16) << 20;

void check_fixpoint(const pickle::Value& value, const char* where) {
  std::string text;
  try {
    text = pickle::to_json(value, {.max_output_bytes = max_json_bytes});
  } catch (const pickle::LimitError&) {
    return;
  } catch (const std::exception& error) {
    pickle_fuzz::untyped(where, error);
  }
  try {
    const std::string again = pickle::to_json(pickle::from_json(text));
    if (again != text) {
      pickle_fuzz::finding(std::string(where) + ": from_json(to_json(v)) writes different JSON\n" +
                           text.substr(0, 2000) + "\n" + again.substr(0, 2000));
    }
  } catch (const std::exception& error) {
    pickle_fuzz::finding(std::string(where) + ": from_json cannot read to_json's output (" + error.what() +
                         ")\n" + text.substr(0, 2000));
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  pickle_fuzz::HeapMeter::install();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  static const pickle::ReadOptions options = pickle_fuzz::fuzz_read_options();
  static const pickle::FromJsonOptions json_options = [] {
    pickle::FromJsonOptions o;
    o.max_depth = 50'000;
    return o;
  }();

  pickle::Value from_text;
  bool parsed = false;
  try {
    from_text = pickle::from_json(input, json_options);
    parsed = true;
  } catch (const pickle::Error&) {
  } catch (const std::exception& error) {
    pickle_fuzz::untyped("from_json", error);
  }
  if (parsed) check_fixpoint(from_text, "from_json");

  pickle::Value loaded;
  bool loaded_ok = false;
  try {
    loaded = pickle::loads(input, options);
    loaded_ok = true;
  } catch (const pickle::Error&) {
  } catch (const std::exception& error) {
    pickle_fuzz::untyped("loads", error);
  }
  if (loaded_ok) check_fixpoint(loaded, "loads");
  return 0;
}
