// Typed views of numpy arrays, dtypes and scalars as numpy pickles them — read without numpy.
//
// numpy's reductions (numpy/core/src/multiarray/methods.c, descriptor.c, scalartypes.c):
//   ndarray, protocols 0–4 and non-contiguous arrays:
//     numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b'b')
//       BUILD (1, shape, dtype, is_fortran, raw_bytes)          raw_bytes in C or Fortran order
//   ndarray, protocol 5, contiguous:
//     numpy.core.numeric._frombuffer(PickleBuffer(array), dtype, shape, 'C' | 'F')
//       (in band: BYTEARRAY8, or READONLY/NEXT_BUFFER when the data travels out of band)
//   dtype:  numpy.dtype('f8', False, True) BUILD (3, '<', None, None, None, -1, -1, 0)
//   scalar: numpy.core.multiarray.scalar(dtype, raw_bytes)
// numpy 2 writes numpy._core.… for numpy.core.…; both are read, and written back as loaded.
//
// Arrays of every fixed-size dtype (bool, signed and unsigned ints, floats, complex, bytes 'S',
// str 'U', void 'V', datetime64 'M', timedelta64 'm'), either byte order, C or Fortran order, any
// shape including 0-d and empty, are views: `data` points into the loaded value's bytes, bytearray
// or out-of-band buffer node, without copying. Object arrays and structured dtypes are recognised but
// refused with pickle::TypeMismatch (their items are Python objects: use the generic Value).
// Malformed shapes, sizes and dtype strings are pickle::Error(ValueError), never an out-of-bounds
// view.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "pickle/errors.hpp"
#include "pickle/value.hpp"

namespace pickle::types::numpy {

// Which module names to write: numpy 1.x's numpy.core.* or numpy 2.x's numpy._core.*.
enum class Generation : std::uint8_t { numpy1, numpy2 };

struct Dtype {
  char kind = 'f';       // b i u f c S U V M m (O for object, refused by Array)
  char byteorder = '<';  // '<', '>' or '|' (not applicable: 1-byte types, S, V)
  std::size_t itemsize = 8;  // bytes per element ('U': 4 per character)
  // The ninth item of a version-4 dtype state (datetime64/timedelta64 unit metadata, as pickled);
  // None for the usual version-3 state.
  Value metadata;
  // The dtype object this was read from: written again, unchanged, so that arrays which shared one
  // dtype object (numpy's builtin dtypes are singletons) still do.
  Value source;

  // numpy's str(dtype): 'int32', 'float64', '<U3', '>i4', 'bool', 'complex128', 'S5', …
  std::string name() const;
  // The dtype string numpy's constructor takes, as pickled: 'i4', 'f8', 'b1', 'U3', 'S5', …
  std::string code() const;
  bool is_native() const { return byteorder != '>'; }  // this library assumes a little-endian host
  // Parses a dtype code with optional byte order ('<i4', 'f8', 'U3'); ValueError for garbage.
  static Dtype parse(std::string_view code);
  friend bool operator==(const Dtype& a, const Dtype& b) {
    return a.kind == b.kind && a.byteorder == b.byteorder && a.itemsize == b.itemsize;
  }
};

struct Array {
  Dtype dtype;
  std::vector<std::size_t> shape;
  std::vector<std::ptrdiff_t> strides;  // in bytes, as numpy computes them for the order
  bool fortran_order = false;
  // The element bytes, in memory order (Fortran order when fortran_order): a view into `storage`.
  std::span<const std::byte> data;
  // What `data` points into (a bytes, bytearray or buffer Value of the loaded graph); keep it.
  Value storage;
  // How it was pickled, to write it back the same way.
  bool from_buffer = false;        // protocol 5 _frombuffer form
  Generation generation = Generation::numpy1;

  std::size_t size() const;  // number of elements
  std::size_t ndim() const { return shape.size(); }

  // Element at a multi-index (bounds-checked: pickle::Error(IndexError)), as T, which must match
  // the dtype's size and kind (bool for 'b', signed ints for 'i', unsigned for 'u', float/double
  // for 'f', std::complex for 'c'); byte-swapped to native when the dtype is big-endian.
  template <class T>
  T at(std::span<const std::size_t> index) const;
  template <class T>
  T at(std::initializer_list<std::size_t> index) const {
    return at<T>(std::span<const std::size_t>(index.begin(), index.size()));
  }
  // All elements in C (row-major) order, whatever the memory order.
  template <class T>
  std::vector<T> to_vector() const;

  // Builds an array owning a copy of `data` (C order unless fortran_order).
  static Array from_bytes(Dtype dtype, std::vector<std::size_t> shape, std::string_view data,
                          bool fortran_order = false);

 private:
  void check_element_type(std::size_t size, char type_kind) const;
  std::size_t byte_offset(std::span<const std::size_t> index) const;
  void read_element(std::size_t offset, void* out, std::size_t size) const;
  template <class T>
  T load(std::size_t offset) const {
    if constexpr (std::is_same_v<T, bool>) {
      // Any byte may arrive; only 0 and 1 are bools in C++.
      unsigned char byte;
      read_element(offset, &byte, 1);
      return byte != 0;
    } else {
      T element;
      read_element(offset, &element, sizeof(T));
      return element;
    }
  }
};

// A numpy scalar (numpy.float64(1.5), numpy.int32(7), …): its dtype and raw bytes.
struct Scalar {
  Dtype dtype;
  std::string data;  // dtype.itemsize bytes, in the dtype's byte order
  Generation generation = Generation::numpy1;
  template <class T>
  T as() const {
    Array array;
    array.dtype = dtype;
    array.data = std::as_bytes(std::span<const char>(data.data(), data.size()));
    return array.at<T>(std::span<const std::size_t>());
  }
};

namespace detail {
template <class T>
constexpr char element_kind() {
  if constexpr (std::is_same_v<T, bool>) return 'b';
  else if constexpr (std::is_floating_point_v<T>) return 'f';
  else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) return 'i';
  else if constexpr (std::is_integral_v<T>) return 'u';
  else return 'c';  // std::complex<float/double>
}
}  // namespace detail

template <class T>
T Array::at(std::span<const std::size_t> index) const {
  static_assert(std::is_trivially_copyable_v<T>);
  check_element_type(sizeof(T), detail::element_kind<T>());
  return load<T>(byte_offset(index));
}

template <class T>
std::vector<T> Array::to_vector() const {
  check_element_type(sizeof(T), detail::element_kind<T>());
  std::vector<T> out;
  const std::size_t count = size();
  out.reserve(count);
  std::vector<std::size_t> index(shape.size(), 0);
  for (std::size_t n = 0; n < count; ++n) {
    out.push_back(load<T>(byte_offset(index)));
    for (std::size_t axis = shape.size(); axis-- > 0;) {
      if (++index[axis] < shape[axis]) break;
      index[axis] = 0;
    }
  }
  return out;
}

// Python's repr of the array as numpy prints it (array([[1, 2], [3, 4]], dtype=int32)), for
// numeric and bool arrays with at most 1000 elements; nullopt otherwise. Written from numpy's
// arrayprint rules without numpy to check against: see pickle/TYPES.md.
std::optional<std::string> array_repr(const Array& array);

}  // namespace pickle::types::numpy
