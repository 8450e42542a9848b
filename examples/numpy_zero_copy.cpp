// Reading a numpy array pickled by Python into C++ without copying its data.
//
//   Python:  pickle.dump(np.sin(np.arange(3000.0) / 100).reshape(1000, 3), f, protocol=4)
//   C++:     numpy_zero_copy examples/numpy_sample.pkl [EXPECTED_OUTPUT]
//
// The file is read once into a buffer the loaded value shares ownership of. pickle::loads with an
// owner returns large bytes payloads as views into that buffer, and the typed view
// pickle::types::numpy::Array points at those bytes: the 24,000 bytes of samples are never copied.
// Exits 1 if they were (or, given EXPECTED_OUTPUT, if the output differs from it).
#include <cstddef>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>

#include "pickle/reader.hpp"
#include "pickle/types.hpp"

namespace numpy = pickle::types::numpy;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: numpy_zero_copy FILE.pkl [EXPECTED_OUTPUT]\n";
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  auto file = std::make_shared<const std::string>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());

  // Zero-copy load: `file` stays alive as long as any part of the value does.
  pickle::ReadOptions options;
  options.zero_copy_min_bytes = 1024;  // payloads of 1 KiB or more are views (default 4 KiB)
  const pickle::Value value = pickle::loads(*file, file, options);

  // The ndarray as a typed view: shape, strides (bytes), dtype, and `data`, a span over the
  // element bytes. Throws pickle::TypeMismatch if the pickle holds something else.
  const numpy::Array samples = pickle::types::view_or_throw<numpy::Array>(value);

  std::ostringstream out;
  char number[64];
  out << "shape (" << samples.shape[0] << ", " << samples.shape[1] << ")\n";
  out << "dtype " << samples.dtype.name() << "\n";
  out << "strides (" << samples.strides[0] << ", " << samples.strides[1] << ")\n";
  // Element access: bounds-checked, the element type must match the dtype (float64 → double),
  // byte-swapped if the array was big-endian. The pickle gives no alignment, so elements are
  // read with memcpy rather than through a double*.
  std::snprintf(number, sizeof number, "%.17g", samples.at<double>({0, 1}));
  out << "a[0, 1] = " << number << "\n";
  std::snprintf(number, sizeof number, "%.17g", samples.at<double>({999, 2}));
  out << "a[999, 2] = " << number << "\n";
  double total = 0;
  for (std::size_t row = 0; row < samples.shape[0]; ++row) {
    for (std::size_t column = 0; column < samples.shape[1]; ++column) total += samples.at<double>({row, column});
  }
  std::snprintf(number, sizeof number, "%.17g", total);
  out << "sum = " << number << "\n";

  // The proof: the element bytes lie inside the buffer the file was read into.
  const auto* begin = reinterpret_cast<const std::byte*>(file->data());
  const bool zero_copy = samples.data.data() >= begin && samples.data.data() + samples.data.size() <= begin + file->size();
  out << (zero_copy ? "zero-copy: the data lies inside the input buffer\n" : "COPIED: the data is not in the input buffer\n");
  std::cout << out.str();

  if (argc > 2) {
    std::ifstream expected_file(argv[2], std::ios::binary);
    const std::string expected((std::istreambuf_iterator<char>(expected_file)), std::istreambuf_iterator<char>());
    if (out.str() != expected) {
      std::cerr << "output differs from " << argv[2] << ":\n" << expected;
      return 1;
    }
  }
  return zero_copy ? 0 : 1;
}
