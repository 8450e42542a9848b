// numpy arrays, dtypes and scalars, read from numpy's reductions without numpy (see
// pickle/types/numpy.hpp) and written back in them.
#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <complex>
#include <limits>

#include "pickle/types.hpp"
#include "repr_text.hpp"
#include "types_internal.hpp"

namespace pickle::types {

using internal::GlobalPool;
using internal::is_global;
using internal::malformed;
using internal::small_int;

namespace numpy {

namespace {

// numpy 2 allows 64 dimensions (numpy 1: 32).
constexpr std::size_t max_dimensions = 64;

bool valid_kind(char kind) {
  switch (kind) {
    case 'b': case 'i': case 'u': case 'f': case 'c': case 'S': case 'U': case 'V': case 'M':
    case 'm': case 'O':
      return true;
    default:
      return false;
  }
}

bool valid_itemsize(char kind, std::size_t size) {
  switch (kind) {
    case 'b': return size == 1;
    case 'i': case 'u': return size == 1 || size == 2 || size == 4 || size == 8;
    case 'f': return size == 2 || size == 4 || size == 8 || size == 16;
    case 'c': return size == 8 || size == 16 || size == 32;
    case 'M': case 'm': case 'O': return size == 8;
    case 'U': return size != 0 && size % 4 == 0;
    default: return size != 0;  // S, V: any size but 0 (numpy's unsized flexible dtypes)
  }
}

bool has_byte_order(char kind, std::size_t itemsize) {
  return !(kind == 'S' || kind == 'V' || kind == 'O' || kind == 'b' || itemsize == 1);
}

}  // namespace

Dtype Dtype::parse(std::string_view code) {
  const auto garbage = [&]() -> Error {
    return Error(PyExc::TypeError, "data type '" + std::string(code) + "' not understood");
  };
  Dtype d;
  std::string_view rest = code;
  char order = 0;
  if (!rest.empty() && (rest[0] == '<' || rest[0] == '>' || rest[0] == '|' || rest[0] == '=')) {
    order = rest[0] == '=' ? '<' : rest[0];
    rest.remove_prefix(1);
  }
  if (rest.size() < 2 || !valid_kind(rest[0])) throw garbage();
  d.kind = rest[0];
  std::size_t count = 0;
  const auto result = std::from_chars(rest.data() + 1, rest.data() + rest.size(), count);
  if (result.ec != std::errc() || result.ptr != rest.data() + rest.size() || count > (std::size_t(1) << 31)) {
    throw garbage();
  }
  d.itemsize = d.kind == 'U' ? count * 4 : count;
  if (!valid_itemsize(d.kind, d.itemsize)) throw garbage();
  d.byteorder = has_byte_order(d.kind, d.itemsize) ? (order == '>' ? '>' : '<') : '|';
  return d;
}

std::string Dtype::code() const {
  return std::string(1, kind) + std::to_string(kind == 'U' ? itemsize / 4 : itemsize);
}

std::string Dtype::name() const {
  std::string base;
  switch (kind) {
    case 'b': return "bool";
    case 'i': base = "int" + std::to_string(itemsize * 8); break;
    case 'u': base = "uint" + std::to_string(itemsize * 8); break;
    case 'f': base = "float" + std::to_string(itemsize * 8); break;
    case 'c': base = "complex" + std::to_string(itemsize * 8); break;
    case 'O': return "object";
    case 'S': return "S" + std::to_string(itemsize);
    case 'V': return "V" + std::to_string(itemsize);
    default: return std::string(1, byteorder) + code();
  }
  if (byteorder == '>') return std::string(">") + code();
  return base;
}

std::size_t Array::size() const {
  std::size_t count = 1;
  for (const std::size_t dim : shape) count *= dim;
  return count;
}

void Array::check_element_type(std::size_t element_size, char type_kind) const {
  const bool kind_ok = dtype.kind == type_kind;
  if (!kind_ok || element_size != dtype.itemsize) {
    throw TypeMismatch("the array's dtype is " + dtype.name() + "; the element type asked for differs");
  }
}

std::size_t Array::byte_offset(std::span<const std::size_t> index) const {
  if (index.size() != shape.size()) {
    throw Error(PyExc::IndexError, "an index of " + std::to_string(index.size()) + " numbers for a " +
                                       std::to_string(shape.size()) + "-dimensional array");
  }
  std::size_t offset = 0;
  for (std::size_t axis = 0; axis < shape.size(); ++axis) {
    if (index[axis] >= shape[axis]) {
      throw Error(PyExc::IndexError, "index " + std::to_string(index[axis]) + " is out of bounds for axis " +
                                         std::to_string(axis) + " with size " + std::to_string(shape[axis]));
    }
    offset += index[axis] * static_cast<std::size_t>(strides[axis]);
  }
  if (offset + dtype.itemsize > data.size()) throw Error(PyExc::IndexError, "element outside the array's data");
  return offset;
}

void Array::read_element(std::size_t offset, void* out, std::size_t element_size) const {
  auto* bytes = static_cast<unsigned char*>(out);
  std::memcpy(bytes, data.data() + offset, element_size);
  if (dtype.byteorder == '>') {
    // Complex numbers swap each part on its own.
    const std::size_t part = dtype.kind == 'c' ? element_size / 2 : element_size;
    for (std::size_t start = 0; start < element_size; start += part) std::reverse(bytes + start, bytes + start + part);
  }
}

namespace {

std::vector<std::ptrdiff_t> contiguous_strides(const std::vector<std::size_t>& shape, std::size_t itemsize,
                                               bool fortran) {
  std::vector<std::ptrdiff_t> strides(shape.size());
  std::size_t step = itemsize;
  // numpy's rule: a zero-length dimension counts as 1 when computing the other strides.
  if (fortran) {
    for (std::size_t axis = 0; axis < shape.size(); ++axis) {
      strides[axis] = static_cast<std::ptrdiff_t>(step);
      if (shape[axis] != 0) step *= shape[axis];
    }
  } else {
    for (std::size_t axis = shape.size(); axis-- > 0;) {
      strides[axis] = static_cast<std::ptrdiff_t>(step);
      if (shape[axis] != 0) step *= shape[axis];
    }
  }
  return strides;
}

// The byte size shape × itemsize, refusing what does not fit (numpy: "array is too big").
std::size_t checked_byte_size(const std::vector<std::size_t>& shape, std::size_t itemsize) {
  std::size_t total = itemsize;
  bool empty = false;
  std::size_t nonzero = itemsize;
  for (const std::size_t dim : shape) {
    if (dim == 0) empty = true;
    if (dim != 0 && nonzero > static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max()) / dim) {
      throw Error(PyExc::ValueError, "array is too big; `arr.size * arr.dtype.itemsize` is larger than the maximum possible size.");
    }
    if (dim != 0) nonzero *= dim;
  }
  total = empty ? 0 : nonzero;
  return total;
}

}  // namespace

Array Array::from_bytes(Dtype dtype, std::vector<std::size_t> shape, std::string_view bytes, bool fortran_order) {
  if (dtype.kind == 'O') throw TypeMismatch("object arrays hold Python objects: build them as generic Values");
  if (shape.size() > max_dimensions) throw Error(PyExc::ValueError, "too many dimensions");
  if (checked_byte_size(shape, dtype.itemsize) != bytes.size()) {
    throw Error(PyExc::ValueError, "buffer size does not match array size");
  }
  Array array;
  array.dtype = std::move(dtype);
  array.dtype.source = Value();
  array.storage = Value::bytearray(bytes);  // a numpy array's memory is writable
  const std::string_view stored = array.storage.as_bytes();
  array.data = std::as_bytes(std::span<const char>(stored.data(), stored.size()));
  array.shape = std::move(shape);
  array.fortran_order = fortran_order;
  array.strides = contiguous_strides(array.shape, array.dtype.itemsize, fortran_order);
  return array;
}

}  // namespace numpy

namespace {

using numpy::Array;
using numpy::Dtype;
using numpy::Generation;
using numpy::Scalar;

std::string_view core_module(Generation g, std::string_view submodule) {
  if (submodule == "multiarray") return g == Generation::numpy2 ? "numpy._core.multiarray" : "numpy.core.multiarray";
  return g == Generation::numpy2 ? "numpy._core.numeric" : "numpy.core.numeric";
}

std::optional<Generation> generation_of(const Value& callable, std::string_view submodule,
                                        std::string_view name) {
  if (callable.kind() != Kind::global || callable.qualname() != name) return std::nullopt;
  if (callable.module() == core_module(Generation::numpy1, submodule)) return Generation::numpy1;
  if (callable.module() == core_module(Generation::numpy2, submodule)) return Generation::numpy2;
  return std::nullopt;
}

// The numbers numpy writes in a dtype state for what it does not compute from the code.
int state_elsize(const Dtype& d) { return d.kind == 'S' || d.kind == 'U' || d.kind == 'V' ? static_cast<int>(d.itemsize) : -1; }
int state_alignment(const Dtype& d) {
  if (d.kind == 'U') return 4;
  return d.kind == 'S' || d.kind == 'V' ? 1 : -1;
}
int state_flags(const Dtype& d) { return d.kind == 'O' ? 63 : 0; }

Dtype read_dtype(const Value& object) {
  constexpr std::string_view type = "numpy.dtype";
  if (object.kind() != Kind::object || object.object_form() != ObjectForm::reduce ||
      !is_global(object.callable(), "numpy", "dtype")) {
    malformed(type, "not a numpy.dtype(...) call");
  }
  const auto args = internal::tuple_items(object.args(), type);
  if (args.size() != 3 || !args[0].is_str() || !args[1].is_bool() || args[1].as_bool() || !args[2].is_bool() ||
      !args[2].as_bool()) {
    malformed(type, "arguments are not (code, False, True)");
  }
  const auto ops = object.object_ops();
  if (ops.size() != 1 || std::get<0>(ops[0]) != ObjectOp::build) malformed(type, "no state");
  const Value& state = std::get<1>(ops[0]);
  if (state.kind() != Kind::tuple || (state.size() != 8 && state.size() != 9)) malformed(type, "state is not an 8- or 9-tuple");
  const auto items = state.items();
  const std::int64_t version = small_int(items[0], type, "version");
  if (version != (items.size() == 9 ? 4 : 3)) malformed(type, "unsupported state version");
  Dtype d;
  const std::string_view code = args[0].as_str();
  if (code.size() > 1 && code[0] == 'V' && !(items[3].is_none() && items[4].is_none())) {
    throw TypeMismatch("a structured dtype (fields " + pickle::repr(items[3]) +
                       "): its records are kept as the generic Value");
  }
  try {
    d = Dtype::parse(code);
  } catch (const Error& e) {
    malformed(type, e.what());
  }
  if (!items[1].is_str() || items[1].as_str().size() != 1) malformed(type, "byte order is not a 1-character str");
  const char order = items[1].as_str()[0];
  if (order != '<' && order != '>' && order != '|') malformed(type, "unknown byte order");
  if (order == '|' ? numpy::has_byte_order(d.kind, d.itemsize) : !numpy::has_byte_order(d.kind, d.itemsize)) {
    // numpy writes '|' exactly for the types without a byte order.
    malformed(type, "byte order '" + std::string(1, order) + "' for " + std::string(code));
  }
  d.byteorder = order;
  if (!items[2].is_none()) throw TypeMismatch("a subarray dtype: kept as the generic Value");
  if (!items[3].is_none() || !items[4].is_none()) throw TypeMismatch("a structured dtype: kept as the generic Value");
  if (small_int(items[5], type, "elsize") != state_elsize(d) || small_int(items[6], type, "alignment") != state_alignment(d) ||
      small_int(items[7], type, "flags") != state_flags(d)) {
    malformed(type, "element size, alignment or flags differ from numpy's for " + std::string(code));
  }
  if (items.size() == 9) d.metadata = items[8];
  if ((d.kind == 'M' || d.kind == 'm') && items.size() != 9) malformed(type, "datetime dtype without its unit");
  d.source = object;
  return d;
}

std::vector<std::size_t> read_shape(const Value& shape_value, std::string_view type) {
  if (shape_value.kind() != Kind::tuple) malformed(type, "shape is not a tuple");
  if (shape_value.size() > numpy::max_dimensions) malformed(type, "too many dimensions");
  std::vector<std::size_t> shape;
  for (const Value& dim : shape_value.items()) {
    const std::int64_t n = small_int(dim, type, "a dimension");
    if (n < 0) malformed(type, "negative dimensions are not allowed");
    shape.push_back(static_cast<std::size_t>(n));
  }
  return shape;
}

void attach_data(Array& array, const Value& storage, std::string_view type) {
  if (array.dtype.kind == 'O') throw TypeMismatch("an object array: its items are Python objects, kept as the generic Value");
  const std::string_view bytes = storage.as_bytes();
  if (numpy::checked_byte_size(array.shape, array.dtype.itemsize) != bytes.size()) {
    malformed(type, "buffer size does not match array size");
  }
  array.storage = storage;
  array.data = std::as_bytes(std::span<const char>(bytes.data(), bytes.size()));
  array.strides = numpy::contiguous_strides(array.shape, array.dtype.itemsize, array.fortran_order);
}

std::optional<Typed> recognize_reconstruct(const Value& object) {
  constexpr std::string_view type = "numpy.ndarray";
  if (object.object_form() != ObjectForm::reduce) return std::nullopt;
  const auto generation = generation_of(object.callable(), "multiarray", "_reconstruct");
  if (!generation) return std::nullopt;
  const auto args = internal::tuple_items(object.args(), type);
  if (args.size() != 3 || !is_global(args[0], "numpy", "ndarray")) {
    // A subclass (numpy.ma, numpy.matrix, …) or another _reconstruct call: generic.
    throw TypeMismatch("a numpy.ndarray subclass or unusual _reconstruct call: kept as the generic Value");
  }
  if (args[1].kind() != Kind::tuple || args[1].size() != 1 || !(args[1][0] == Value(0)) ||
      args[2].kind() != Kind::bytes || args[2].as_bytes() != "b") {
    malformed(type, "_reconstruct arguments are not (ndarray, (0,), b'b')");
  }
  const auto ops = object.object_ops();
  if (ops.size() != 1 || std::get<0>(ops[0]) != ObjectOp::build) malformed(type, "no state");
  const Value& state = std::get<1>(ops[0]);
  if (state.kind() != Kind::tuple || state.size() != 5) malformed(type, "state is not a 5-tuple");
  const auto items = state.items();
  if (small_int(items[0], type, "version") != 1) malformed(type, "unsupported state version");
  Array array;
  array.generation = *generation;
  array.shape = read_shape(items[1], type);
  array.dtype = read_dtype(items[2]);
  if (!items[3].is_bool()) malformed(type, "is_fortran is not a bool");
  array.fortran_order = items[3].as_bool();
  if (array.dtype.kind == 'O') {
    throw TypeMismatch("an object array (dtype=object): its items are Python objects, kept as the generic Value");
  }
  if (items[4].kind() != Kind::bytes) malformed(type, "data is not bytes");
  attach_data(array, items[4], type);
  return Typed(std::move(array));
}

std::optional<Typed> recognize_frombuffer(const Value& object) {
  constexpr std::string_view type = "numpy.ndarray";
  if (object.object_form() != ObjectForm::reduce) return std::nullopt;
  const auto generation = generation_of(object.callable(), "numeric", "_frombuffer");
  if (!generation) return std::nullopt;
  if (!object.object_ops().empty()) malformed(type, "unexpected state after _frombuffer");
  const auto args = internal::tuple_items(object.args(), type);
  if (args.size() != 4) malformed(type, "_frombuffer takes 4 arguments");
  const Kind buffer_kind = args[0].kind();
  if (buffer_kind != Kind::buffer && buffer_kind != Kind::bytes && buffer_kind != Kind::bytearray) {
    malformed(type, "_frombuffer data is not a buffer");
  }
  Array array;
  array.generation = *generation;
  array.from_buffer = true;
  array.dtype = read_dtype(args[1]);
  array.shape = read_shape(args[2], type);
  if (!args[3].is_str() || (args[3].as_str() != "C" && args[3].as_str() != "F")) malformed(type, "order is not 'C' or 'F'");
  array.fortran_order = args[3].as_str() == "F";
  attach_data(array, args[0], type);
  return Typed(std::move(array));
}

std::optional<Typed> recognize_scalar(const Value& object) {
  constexpr std::string_view type = "numpy scalar";
  if (object.object_form() != ObjectForm::reduce) return std::nullopt;
  const auto generation = generation_of(object.callable(), "multiarray", "scalar");
  if (!generation) return std::nullopt;
  if (!object.object_ops().empty()) malformed(type, "unexpected state");
  const auto args = internal::tuple_items(object.args(), type);
  if (args.size() != 2) malformed(type, "scalar takes 2 arguments");
  Scalar scalar;
  scalar.generation = *generation;
  scalar.dtype = read_dtype(args[0]);
  if (scalar.dtype.kind == 'O') throw TypeMismatch("an object scalar: kept as the generic Value");
  if (args[1].kind() != Kind::bytes) malformed(type, "data is not bytes");
  scalar.data = std::string(args[1].as_bytes());
  if (scalar.data.size() != scalar.dtype.itemsize) malformed(type, "data size does not match the dtype");
  return Typed(std::move(scalar));
}

std::optional<Typed> recognize_dtype(const Value& object) { return Typed(read_dtype(object)); }

}  // namespace

namespace internal {

void add_numpy_recognizers(Registry& registry) {
  for (const Generation g : {Generation::numpy1, Generation::numpy2}) {
    registry.add(std::string(core_module(g, "multiarray")), "_reconstruct", recognize_reconstruct);
    registry.add(std::string(core_module(g, "numeric")), "_frombuffer", recognize_frombuffer);
    registry.add(std::string(core_module(g, "multiarray")), "scalar", recognize_scalar);
  }
  registry.add("numpy", "dtype", recognize_dtype);
}

Value numpy_to_value(const Dtype& d, const ConvertOptions& options) {
  const GlobalPool pool(options.original);
  if (!d.source.is_none()) {
    try {
      if (read_dtype(d.source) == d && same_graph(read_dtype(d.source).metadata, d.metadata)) return d.source;
    } catch (const Error&) {
    }
  }
  if (!numpy::valid_kind(d.kind) || !numpy::valid_itemsize(d.kind, d.itemsize)) {
    throw TypeMismatch("not a numpy dtype numpy could pickle: " + std::string(1, d.kind) + std::to_string(d.itemsize));
  }
  if ((d.kind == 'M' || d.kind == 'm') && d.metadata.is_none()) {
    throw TypeMismatch("a datetime64/timedelta64 dtype needs its unit metadata (load one to copy it)");
  }
  Value object = Value::object(ObjectForm::reduce, pool.get("numpy", "dtype"),
                               Value::tuple({Value(d.code()), Value(false), Value(true)}));
  const char order = numpy::has_byte_order(d.kind, d.itemsize) ? (d.byteorder == '>' ? '>' : '<') : '|';
  std::vector<Value> state{Value(d.metadata.is_none() ? 3 : 4), Value(std::string(1, order)), Value(), Value(), Value(),
                           Value(state_elsize(d)), Value(state_alignment(d)), Value(state_flags(d))};
  if (!d.metadata.is_none()) state.push_back(d.metadata);
  object.add_object_op(ObjectOp::build, Value::tuple(std::span<const Value>(state)));
  return object;
}

Value numpy_to_value(const Array& a, const ConvertOptions& options) {
  const GlobalPool pool(options.original);
  if (a.dtype.kind == 'O') throw TypeMismatch("object arrays are written from their generic Value");
  if (numpy::checked_byte_size(a.shape, a.dtype.itemsize) != a.data.size()) {
    throw Error(PyExc::ValueError, "buffer size does not match array size");
  }
  std::vector<Value> dims;
  for (const std::size_t dim : a.shape) dims.emplace_back(dim);
  const Value shape = Value::tuple(std::span<const Value>(dims));
  const Value dtype = numpy_to_value(a.dtype, options);
  const std::string_view bytes(reinterpret_cast<const char*>(a.data.data()), a.data.size());
  const bool storage_is_data = a.storage.kind() != Kind::none && a.storage.as_bytes().data() == bytes.data() &&
                               a.storage.as_bytes().size() == bytes.size();
  if (a.from_buffer && options.protocol >= 5) {
    // A PickleBuffer of a writable array: BYTEARRAY8 in band (or the out-of-band buffer as loaded).
    const bool reusable = storage_is_data && a.storage.kind() != Kind::bytes;
    const Value buffer = reusable ? a.storage : Value::bytearray(bytes);
    // 'C' and 'F' are CPython's cached 1-character strs: reuse the loaded one, shared as it was.
    Value order(a.fortran_order ? "F" : "C");
    if (options.original.kind() == Kind::object && options.original.object_form() == ObjectForm::reduce &&
        options.original.args().kind() == Kind::tuple && options.original.args().size() == 4 &&
        options.original.args()[3] == order) {
      order = options.original.args()[3];
    }
    return Value::object(ObjectForm::reduce, pool.get(core_module(a.generation, "numeric"), "_frombuffer"),
                         Value::tuple({buffer, dtype, shape, order}));
  }
  const Value data = storage_is_data && a.storage.kind() == Kind::bytes ? a.storage : Value::bytes(bytes);
  // CPython's 1-byte bytes are one object: an array loaded from a pickle with other arrays may
  // have fetched its b'b' from the memo, and must again.
  Value dummy_type_code = Value::bytes("b");
  if (options.original.kind() == Kind::object && options.original.object_form() == ObjectForm::reduce &&
      options.original.args().kind() == Kind::tuple && options.original.args().size() == 3 &&
      options.original.args()[2].kind() == Kind::bytes && options.original.args()[2].as_bytes() == "b") {
    dummy_type_code = options.original.args()[2];
  }
  Value object = Value::object(
      ObjectForm::reduce, pool.get(core_module(a.generation, "multiarray"), "_reconstruct"),
      Value::tuple({pool.get("numpy", "ndarray"), Value::tuple({Value(0)}), dummy_type_code}));
  const bool fortran = a.fortran_order && a.shape.size() > 1;
  object.add_object_op(ObjectOp::build, Value::tuple({Value(1), shape, dtype, Value(fortran), data}));
  return object;
}

Value numpy_to_value(const Scalar& s, const ConvertOptions& options) {
  if (s.data.size() != s.dtype.itemsize) throw Error(PyExc::ValueError, "scalar data size does not match the dtype");
  const GlobalPool pool(options.original);
  return Value::object(ObjectForm::reduce, pool.get(core_module(s.generation, "multiarray"), "scalar"),
                       Value::tuple({numpy_to_value(s.dtype, options), Value::bytes(s.data)}));
}

std::optional<std::string> numpy_repr(const Dtype& d) {
  if (d.kind == 'M' || d.kind == 'm' || d.kind == 'O') return std::nullopt;
  std::string out = "dtype(";
  pickle::detail::append_str_repr(out, d.name());
  return out + ")";
}

}  // namespace internal

}  // namespace pickle::types
