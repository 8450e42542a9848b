// Raw bytes → pickle::loads → the typed-view recognizers (pickle/types.hpp) on every object node.
// They must never crash or throw anything but pickle::Error; a recognised numpy array's view must
// stay inside its data (every element is read), and a typed value must convert back and print.
// Out-of-band buffers are supplied so that protocol 5 arrays are reached too.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "fuzz_common.hpp"
#include "pickle/reader.hpp"
#include "pickle/repr.hpp"
#include "pickle/types.hpp"
#include "pickle/writer.hpp"

namespace {

namespace types = pickle::types;
namespace numpy = pickle::types::numpy;

// Reads every element, through the typed accessor matching the dtype.
void touch_elements(const numpy::Array& array) {
  const char kind = array.dtype.kind;
  const std::size_t size = array.dtype.itemsize;
  if (kind == 'b') (void)array.to_vector<bool>();
  if (kind == 'i' && size == 4) (void)array.to_vector<std::int32_t>();
  if (kind == 'i' && size == 8) (void)array.to_vector<std::int64_t>();
  if (kind == 'u' && size == 1) (void)array.to_vector<std::uint8_t>();
  if (kind == 'f' && size == 8) (void)array.to_vector<double>();
  if (kind == 'c' && size == 16) (void)array.to_vector<std::complex<double>>();
  if (array.data.size() != array.size() * size) pickle_fuzz::finding("array data size disagrees with its shape");
  // The last element of every axis (an empty array has none).
  for (std::size_t axis = 0; axis < array.shape.size() && array.size() != 0; ++axis) {
    const std::size_t last = static_cast<std::size_t>(array.strides[axis]) * (array.shape[axis] - 1);
    if (last + size > array.data.size()) {
      pickle_fuzz::finding("array stride leaves its data");
    }
  }
}

void exercise(const pickle::Value& object) {
  std::optional<types::Typed> typed;
  try {
    typed = types::Registry::standard().recognize_or_throw(object);
  } catch (const pickle::Error&) {
    return;
  }
  if (!typed) return;
  try {
    if (const auto* array = std::get_if<numpy::Array>(&*typed)) touch_elements(*array);
    (void)types::repr(*typed);
    for (const int protocol : {1, 5}) {
      const pickle::Value again = types::to_value(*typed, {.protocol = protocol});
      pickle::WriteOptions options;
      options.protocol = protocol;
      (void)pickle::dumps(again, options);
    }
  } catch (const pickle::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  pickle_fuzz::HeapMeter::install();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  static const std::vector<std::string_view> buffers(8, std::string_view("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  static const pickle::ReadOptions options = [] {
    pickle::ReadOptions o = pickle_fuzz::fuzz_read_options();
    o.buffers = buffers;
    return o;
  }();
  pickle::Value root;
  try {
    root = pickle::loads(input, options);
  } catch (const pickle::Error&) {
    return 0;
  } catch (const std::exception& error) {
    pickle_fuzz::untyped("loads", error);
  }
  try {
    // Every object node, found with an explicit stack (no recursion over the input's nesting).
    std::vector<pickle::Value> stack{root};
    std::unordered_set<const void*> seen;
    std::size_t visited = 0;
    while (!stack.empty() && visited < 100000) {
      const pickle::Value value = stack.back();
      stack.pop_back();
      if (value.identity() != nullptr && !seen.insert(value.identity()).second) continue;
      ++visited;
      switch (value.kind()) {
        case pickle::Kind::tuple:
        case pickle::Kind::list:
          for (const auto& item : value.items()) stack.push_back(item);
          break;
        case pickle::Kind::dict:
          for (const auto& [key, item] : value.dict_items()) {
            stack.push_back(key);
            stack.push_back(item);
          }
          break;
        case pickle::Kind::object:
          exercise(value);
          if (value.object_form() != pickle::ObjectForm::ext) stack.push_back(value.args());
          for (const auto& [op, first, second] : value.object_ops()) {
            stack.push_back(first);
            stack.push_back(second);
          }
          break;
        default:
          break;
      }
    }
    pickle::ReprOptions repr_options;
    repr_options.max_size = std::size_t(1) << 20;
    (void)pickle::repr(root, repr_options);
  } catch (const pickle::Error&) {
  } catch (const std::exception& error) {
    pickle_fuzz::untyped("types", error);
  }
  return 0;
}
