// Typed pickling: ordinary C++ values straight to pickle bytes and back, without a Value tree.
//
//   std::string bytes = pickle::dumps(std::map<std::string, std::vector<double>>{{"a", {1.5}}});
//   auto m = pickle::loads<std::map<std::string, std::vector<double>>>(bytes);
//
// The bytes are those of CPython's pickle.dumps for the Python value built the natural way:
//   bool → bool, integers → int, floating point → float, std::string / string_view / const char* →
//   str (UTF-8), pickle::bytes → bytes, pickle::bytearray → bytearray, std::nullptr_t /
//   std::monostate / an empty std::optional → None, vector / array / deque / list → list,
//   tuple / pair → tuple, map / unordered_map / pickle::ordered_map (any type with key_type and
//   mapped_type) → dict in the container's iteration order, set / unordered_set → set,
//   std::variant → its alternative, pickle::Value → as pickle::dumps(Value) writes it.
//
// Object identity (which decides memoization, so the bytes): every C++ object is a distinct Python
// object, except what CPython itself shares — the empty str and 1-character latin-1 strs, b'' and
// 1-byte bytes — and str dict keys and field names, which are shared by value as if sys.intern'ed
// (as Python literals, json.loads keys and attribute names are). See pickle/NATIVE.md.
//
// User types:
//   * a described struct needs no code:   PICKLE_DESCRIBE(Point, x, y)   (at namespace scope of
//     Point). It is pickled as a dict of its fields, or, when pickle::python_class<Point> names a
//     class, like an instance of that Python dataclass (NEWOBJ + BUILD with the field dict);
//   * anything else through two functions found by argument-dependent lookup:
//       void pickle_write(pickle::TypedWriter& w, const T& x);   // e.g. w.write(std::tuple{…})
//       void pickle_read(pickle::TypedReader& r, T& x);          // e.g. r.read(tuple), then assign
//
// A std::string_view read by loads<T> is a view into the pickle's bytes, which must outlive the
// result (loads<T> of a temporary std::string does not compile when T holds views).
//
// loads<T> parses the opcodes directly into T. Pickles it cannot take in one pass (shared
// containers fetched from the memo, protocol 0 text opcodes, builtin reductions, …) are loaded as a
// pickle::Value and converted; the result is the same. A value of the wrong type raises
// pickle::LoadTypeError with the path to it: "at [3]['name']: expected str, got int".
#pragma once

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <iterator>
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "pickle/errors.hpp"
#include "pickle/reader.hpp"
#include "pickle/value.hpp"
#include "pickle/writer.hpp"

namespace pickle {

// Python bytes and bytearray (std::string is str).
struct bytes {
  std::string data;
  bytes() = default;
  explicit bytes(std::string d) : data(std::move(d)) {}
  explicit bytes(std::string_view d) : data(d) {}
  explicit bytes(const char* d) : data(d) {}
  friend auto operator<=>(const bytes&, const bytes&) = default;
};
struct bytearray {
  std::string data;
  bytearray() = default;
  explicit bytearray(std::string d) : data(std::move(d)) {}
  explicit bytearray(std::string_view d) : data(d) {}
  explicit bytearray(const char* d) : data(d) {}
  friend auto operator<=>(const bytearray&, const bytearray&) = default;
};

// An insertion-ordered map, like a Python dict: lookups are linear, so it suits the small
// record-like dicts it is meant for. Assigning an existing key keeps its position (as dict does).
template <class K, class V>
class ordered_map {
 public:
  using key_type = K;
  using mapped_type = V;
  using value_type = std::pair<K, V>;
  using iterator = typename std::vector<value_type>::iterator;
  using const_iterator = typename std::vector<value_type>::const_iterator;

  ordered_map() = default;
  ordered_map(std::initializer_list<value_type> items) {
    for (const auto& item : items) insert_or_assign(item.first, item.second);
  }
  iterator begin() noexcept { return items_.begin(); }
  iterator end() noexcept { return items_.end(); }
  const_iterator begin() const noexcept { return items_.begin(); }
  const_iterator end() const noexcept { return items_.end(); }
  std::size_t size() const noexcept { return items_.size(); }
  bool empty() const noexcept { return items_.empty(); }
  void clear() noexcept { items_.clear(); }
  iterator find(const K& key) {
    return std::find_if(items_.begin(), items_.end(), [&](const value_type& e) { return e.first == key; });
  }
  const_iterator find(const K& key) const {
    return std::find_if(items_.begin(), items_.end(), [&](const value_type& e) { return e.first == key; });
  }
  bool contains(const K& key) const { return find(key) != end(); }
  template <class M>
  std::pair<iterator, bool> insert_or_assign(const K& key, M&& value) {
    if (auto it = find(key); it != end()) {
      it->second = std::forward<M>(value);
      return {it, false};
    }
    items_.emplace_back(key, std::forward<M>(value));
    return {items_.end() - 1, true};
  }
  V& operator[](const K& key) {
    if (auto it = find(key); it != end()) return it->second;
    items_.emplace_back(key, V{});
    return items_.back().second;
  }
  friend bool operator==(const ordered_map&, const ordered_map&) = default;

 private:
  std::vector<value_type> items_;
};

// A loaded value does not fit the C++ type asked for. path() is Python-like: [3]['name'].x
class LoadTypeError : public Error {
 public:
  LoadTypeError(std::string path, std::string expected, std::string got)
      : Error(PyExc::TypeError, (path.empty() ? std::string() : "at " + path + ": ") + "expected " +
                                    expected + ", got " + got),
        path_(std::move(path)), expected_(std::move(expected)), got_(std::move(got)) {}
  const std::string& path() const noexcept { return path_; }
  const std::string& expected() const noexcept { return expected_; }
  const std::string& got() const noexcept { return got_; }

 private:
  std::string path_, expected_, got_;
};

// Specialize for a described struct to pickle it as an instance of module.name (a dataclass-like
// class whose __dict__ holds the fields); without a specialization it is pickled as a dict.
//   template <> struct pickle::python_class<Point> {
//     static constexpr std::string_view module = "geometry", name = "Point";
//   };
template <class T>
struct python_class;

class TypedWriter;
class TypedReader;

namespace native_detail {

template <class S, class M>
struct Field {
  std::string_view name;
  M S::*member;
};
template <class S, class M>
constexpr Field<S, M> field(std::string_view name, M S::*member) {
  return {name, member};
}

// --- the byte-level cores (pickle/src/native.cpp) -------------------------------------------------

// The integral types whose contiguous lists the cores write and read in bulk (one loop over the
// items, no per-item call); native.cpp instantiates the bulk functions for each.
#define PICKLE_NATIVE_FOR_EACH_BULK_INTEGER(X)                                                  \
  X(char) X(signed char) X(unsigned char) X(short) X(unsigned short) X(int) X(unsigned int)      \
  X(long) X(unsigned long) X(long long) X(unsigned long long)
template <class T>
concept bulk_integer =
    std::is_same_v<T, char> || std::is_same_v<T, signed char> || std::is_same_v<T, unsigned char> ||
    std::is_same_v<T, short> || std::is_same_v<T, unsigned short> || std::is_same_v<T, int> ||
    std::is_same_v<T, unsigned int> || std::is_same_v<T, long> || std::is_same_v<T, unsigned long> ||
    std::is_same_v<T, long long> || std::is_same_v<T, unsigned long long>;
// A contiguous container of them (std::vector, std::array, …): its items are read through data().
template <class T>
concept contiguous_of_bulk_integers = requires(const T& c) {
  { c.data() } -> std::same_as<const typename T::value_type*>;
  requires std::contiguous_iterator<decltype(c.begin())>;
} && bulk_integer<typename T::value_type>;

class WriterCore {
 public:
  explicit WriterCore(const WriteOptions& options);
  ~WriterCore();
  WriterCore(const WriterCore&) = delete;
  WriterCore& operator=(const WriterCore&) = delete;
  int protocol() const noexcept { return protocol_; }

  void none();
  void boolean(bool b);
  void integer(std::int64_t v);
  void unsigned_integer(std::uint64_t v);
  void floating(double f);
  void str(std::string_view utf8);
  void key_str(std::string_view utf8);  // a dict key or field name: shared by value
  void bytes(std::string_view data);
  void bytearray(std::string_view data);
  void value(const Value& v);
  // Bulk forms of the commonest lists: integers (I a bulk_integer) and strs.
  template <class I>
  void integer_list(const I* items, std::size_t n);
  template <class S>
  void str_list(const S* items, std::size_t n);  // S: std::string or std::string_view

  void list_open();
  void tuple_open(std::size_t n);
  void tuple_close(std::size_t n);
  void dict_open();
  void set_open();   // protocol ≥ 4: EMPTY_SET; below, the set(list) reduction's head
  void set_close();  // below protocol 4: the reduction's tail
  void object_open(std::string_view module, std::string_view qualname);
  void object_close(bool has_state);
  void mark();
  void append();
  void appends();
  void setitem();
  void setitems();
  void additems();

  void enter();  // nesting depth of the C++ value (recursive user types)
  void leave() noexcept { --depth_; }
  std::string finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
  int protocol_ = 4;
  std::size_t depth_ = 0;
};

class ReaderCore {
 public:
  ReaderCore(std::string_view data, const ReadOptions& options);
  ~ReaderCore();
  ReaderCore(const ReaderCore&) = delete;
  ReaderCore& operator=(const ReaderCore&) = delete;

  // Every method throws Fallback when the input is not in the form this parser takes.
  struct Fallback {};

  void start();
  void stop();
  std::uint8_t peek();
  bool at_none();  // consumes a NONE
  void none();
  bool boolean();
  std::int64_t integer();
  std::uint64_t unsigned_integer();
  double floating();
  std::string_view str();
  std::string_view bytes();
  std::string_view bytearray();
  template <class I>
  void integer_list(std::vector<I>& out);  // I a bulk_integer
  template <class S>
  void str_list(std::vector<S>& out);  // S: std::string or std::string_view

  void list_open();
  // After list_open / a batch: true when another APPENDS batch starts (its MARK consumed) — or a
  // single item follows, reported by `single`.
  bool list_more(bool& single, std::size_t batch_items);
  void append();
  void appends();
  bool tuple_open(std::size_t n);  // true: MARK form
  void tuple_close(std::size_t n, bool marked);
  void dict_open();
  bool dict_more(bool& single, std::size_t batch_items);
  void setitem();
  void setitems();
  bool set_open(bool& frozen);   // true when items follow in a MARK batch
  bool set_more(bool frozen, std::size_t batch_items);  // after a batch's items: close it
  bool at_batch_end();  // the next opcode closes a batch (APPENDS/SETITEMS/ADDITEMS/FROZENSET)
  void object_open(std::string_view module, std::string_view qualname);
  bool object_has_state();
  void object_close();

  // Speculation (an empty container followed by a sibling looks like the start of its items).
  struct Checkpoint {
    std::size_t pos, memo_size, frame_end;
  };
  Checkpoint checkpoint() const noexcept;
  void rollback(const Checkpoint& c);
  void enter();
  void leave() noexcept { --depth_; }

 private:
  struct State;
  std::unique_ptr<State> state_;
  std::size_t depth_ = 0;
};

// --- conversion from a loaded Value, with the path for errors ---------------------------------------

class Path {
 public:
  void push_index(std::size_t i) { parts_.push_back("[" + std::to_string(i) + "]"); }
  void push_key(const Value& key);
  void push_field(std::string_view name) { parts_.push_back("." + std::string(name)); }
  void pop() noexcept { parts_.pop_back(); }
  std::string text() const;
  [[noreturn]] void fail(std::string_view expected, const Value& got) const;
  [[noreturn]] void fail_text(std::string_view expected, std::string_view got) const;
  void enter();
  void leave() noexcept { --depth_; }

 private:
  std::vector<std::string> parts_;
  std::size_t depth_ = 0;
};

std::string_view kind_name_of(const Value& v);

// --- type classification ------------------------------------------------------------------------

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};
template <class T>
struct is_variant : std::false_type {};
template <class... T>
struct is_variant<std::variant<T...>> : std::true_type {};
template <class T>
struct is_std_array : std::false_type {};
template <class T, std::size_t N>
struct is_std_array<std::array<T, N>> : std::true_type {};

template <class T>
concept string_like = std::is_same_v<T, std::string> || std::is_same_v<T, std::string_view>;
template <class T>
concept map_like = requires {
  typename T::key_type;
  typename T::mapped_type;
} && requires(const T& m) { m.begin(); m.end(); m.size(); };
template <class T>
concept set_like = requires {
  typename T::key_type;
  typename T::value_type;
} && !map_like<T> && std::is_same_v<typename T::key_type, typename T::value_type> &&
                   requires(const T& s) { s.begin(); s.size(); };
template <class T>
concept sequence_like = !string_like<T> && !map_like<T> && !set_like<T> && requires(const T& c) {
  typename T::value_type;
  c.begin();
  c.end();
  c.size();
};
template <class T>
concept tuple_like = !is_std_array<T>::value && requires { std::tuple_size<T>::value; };
template <class T>
concept integer_type = std::is_integral_v<T> && !std::is_same_v<T, bool>;

template <class T>
concept described = requires(const T* p) { pickle_describe(p); };
template <class T>
concept has_python_class = requires {
  python_class<T>::module;
  python_class<T>::name;
};
template <class T>
concept custom_writable = requires(TypedWriter& w, const T& x) { pickle_write(w, x); };
template <class T>
concept custom_readable = requires(TypedReader& r, T& x) { pickle_read(r, x); };

template <class T>
inline constexpr bool always_false = false;

// Whether T holds a std::string_view, itself or as a template argument of a standard type
// (containers, optional, variant, tuple, pair, array): loads<T> of a temporary is then an error.
// Described structs and pickle_read types are not looked into (their fields may be recursive).
template <class T>
struct borrows_input : std::false_type {};
template <>
struct borrows_input<std::string_view> : std::true_type {};
template <template <class...> class C, class... Args>
struct borrows_input<C<Args...>> : std::disjunction<borrows_input<Args>...> {};
template <class T, std::size_t N>
struct borrows_input<std::array<T, N>> : borrows_input<T> {};

// The Python type a C++ type stands for, for messages.
template <class T>
std::string expected_name();

}  // namespace native_detail

// What pickle_write receives: write() any supported value.
class TypedWriter {
 public:
  explicit TypedWriter(native_detail::WriterCore& core) noexcept : core_(core) {}
  template <class T>
  void write(const T& x);
  int protocol() const noexcept { return core_.protocol(); }

 private:
  template <class Range, class Each>
  void list_items(const Range& range, std::size_t n, Each each);
  template <class Range, class Each>
  void dict_items(const Range& range, std::size_t n, Each each);
  template <class S>
  void described_struct(const S& x);
  native_detail::WriterCore& core_;
};

// What pickle_read receives: read() any supported value. A std::string_view read borrows the
// pickle's bytes, as loads<T> documents.
class TypedReader {
 public:
  explicit TypedReader(native_detail::ReaderCore& core) noexcept : core_(&core) {}
  // Converting a loaded Value; `input` is the pickle it was loaded from, that std::string_views
  // may point into (its strs are views of it).
  explicit TypedReader(const Value& value, native_detail::Path& path, std::string_view input = {}) noexcept
      : value_(&value), path_(&path), input_(input) {}
  template <class T>
  void read(T& x);
  template <class T>
  T read() {
    T x{};
    read(x);
    return x;
  }

 private:
  template <class T>
  void read_direct(T& x);
  template <class T>
  void convert(const Value& v, T& x);
  template <class S>
  void read_struct_direct(S& x);
  template <class S>
  void convert_struct(const Value& v, S& x);
  native_detail::ReaderCore* core_ = nullptr;
  const Value* value_ = nullptr;
  native_detail::Path* path_ = nullptr;
  std::string_view input_;
};

// --- dumps / loads ------------------------------------------------------------------------------

template <class T>
  requires(!std::is_same_v<std::remove_cvref_t<T>, Value>)
std::string dumps(const T& x, const WriteOptions& options = {}) {
  native_detail::WriterCore core(options);
  TypedWriter writer(core);
  writer.write(x);
  return core.finish();
}

// A std::string_view in T (read from a str) points into `data`, without a copy: the bytes must
// outlive the result (loads of a temporary std::string does not compile when T holds views in
// standard types: see the deleted overload below). A str whose UTF-8 is not in the pickle as it is
// (protocol 0 text, Python 2 strings, strs built by reductions) cannot be borrowed: LoadTypeError.
template <class T>
T loads(std::string_view data, const ReadOptions& options = {}) {
  T result{};
  try {
    native_detail::ReaderCore core(data, options);
    TypedReader reader(core);
    core.start();
    reader.read(result);
    core.stop();
    return result;
  } catch (const native_detail::ReaderCore::Fallback&) {
  }
  // The Value lives only for the conversion: its strs and bytes can all be views of `data` (a
  // non-owning owner), which is what a std::string_view needs and spares copying the rest twice.
  ReadOptions borrowing = options;
  borrowing.zero_copy_min_bytes = 0;
  Value loaded = pickle::loads(data, std::shared_ptr<const void>(std::shared_ptr<const void>(), data.data()), borrowing);
  native_detail::Path path;
  T converted{};
  TypedReader(loaded, path, data).read(converted);
  return converted;
}

// The views would point into a string destroyed at the end of the call.
template <class T, class S>
  requires native_detail::borrows_input<T>::value && std::is_same_v<S, std::string>
T loads(S&& data, const ReadOptions& options = {}) = delete;

// ================================================================================================
// Implementation.

namespace native_detail {

template <class T>
std::string expected_name() {
  using U = std::remove_cvref_t<T>;
  if constexpr (std::is_same_v<U, bool>) return "bool";
  else if constexpr (integer_type<U>) return "int";
  else if constexpr (std::is_floating_point_v<U>) return "float";
  else if constexpr (string_like<U>) return "str";
  else if constexpr (std::is_same_v<U, pickle::bytes>) return "bytes";
  else if constexpr (std::is_same_v<U, pickle::bytearray>) return "bytearray";
  else if constexpr (std::is_same_v<U, std::nullptr_t> || std::is_same_v<U, std::monostate>) return "None";
  else if constexpr (is_optional<U>::value) return expected_name<typename U::value_type>() + " or None";
  else if constexpr (map_like<U>) return "dict";
  else if constexpr (set_like<U>) return "set";
  else if constexpr (sequence_like<U>) return "list";
  else if constexpr (tuple_like<U>) return "tuple of " + std::to_string(std::tuple_size_v<U>);
  else if constexpr (has_python_class<U>)
    return std::string(python_class<U>::module) + "." + std::string(python_class<U>::name);
  else if constexpr (described<U>) return "dict";
  else return "value";
}

template <class T>
struct DepthGuard {
  T& owner;
  explicit DepthGuard(T& o) : owner(o) { owner.enter(); }
  ~DepthGuard() { owner.leave(); }
};

}  // namespace native_detail

// --- writing ----------------------------------------------------------------------------------------

template <class Range, class Each>
void TypedWriter::list_items(const Range& range, std::size_t n, Each each) {
  if (core_.protocol() == 0) {
    for (const auto& x : range) {
      each(x);
      core_.append();
    }
    return;
  }
  if (n == 1) {
    each(*range.begin());
    core_.append();
    return;
  }
  if (n == 0) return;
  std::size_t in_batch = 0;
  for (const auto& x : range) {
    if (in_batch == 0) core_.mark();
    each(x);
    if (++in_batch == 1000) {
      core_.appends();
      in_batch = 0;
    }
  }
  if (in_batch != 0) core_.appends();
}

template <class Range, class Each>
void TypedWriter::dict_items(const Range& range, std::size_t n, Each each) {
  if (core_.protocol() == 0) {
    for (const auto& x : range) {
      each(x);
      core_.setitem();
    }
    return;
  }
  if (n == 1) {
    each(*range.begin());
    core_.setitem();
    return;
  }
  if (n == 0) return;
  // CPython's exact-dict loop: a batch follows every full batch, even an empty one.
  std::size_t in_batch = 0;
  core_.mark();
  for (const auto& x : range) {
    if (in_batch == 1000) {
      core_.setitems();
      core_.mark();
      in_batch = 0;
    }
    each(x);
    ++in_batch;
  }
  core_.setitems();
  if (in_batch == 1000) {
    core_.mark();
    core_.setitems();
  }
}

template <class S>
void TypedWriter::described_struct(const S& x) {
  auto fields = pickle_describe(static_cast<const S*>(nullptr));
  constexpr std::size_t n = std::tuple_size_v<decltype(fields)>;
  auto write_fields = [&] {
    if constexpr (n == 0) {
      return;
    } else if constexpr (n == 1) {
      if (core_.protocol() != 0) {
        std::apply([&](const auto& f) {
          core_.key_str(f.name);
          write(x.*(f.member));
        }, fields);
        core_.setitem();
        return;
      }
    }
    if (core_.protocol() == 0) {
      std::apply([&](const auto&... f) {
        ((core_.key_str(f.name), write(x.*(f.member)), core_.setitem()), ...);
      }, fields);
      return;
    }
    // Up to 1000 fields: one batch (a struct never has 1000).
    static_assert(n < 1000, "a described struct with 1000 fields or more");
    core_.mark();
    std::apply([&](const auto&... f) { ((core_.key_str(f.name), write(x.*(f.member))), ...); }, fields);
    core_.setitems();
  };
  if constexpr (native_detail::has_python_class<S>) {
    core_.object_open(python_class<S>::module, python_class<S>::name);
    if constexpr (n != 0) {
      core_.dict_open();
      write_fields();
    }
    core_.object_close(n != 0);
  } else {
    core_.dict_open();
    write_fields();
  }
}

template <class T>
void TypedWriter::write(const T& x) {
  using namespace native_detail;
  using U = std::remove_cvref_t<T>;
  if constexpr (std::is_same_v<U, Value>) {
    core_.value(x);
  } else if constexpr (custom_writable<U>) {
    DepthGuard<WriterCore> guard(core_);
    pickle_write(*this, x);
  } else if constexpr (std::is_same_v<U, bool>) {
    core_.boolean(x);
  } else if constexpr (integer_type<U>) {
    if constexpr (std::is_unsigned_v<U> && sizeof(U) >= sizeof(std::int64_t)) {
      core_.unsigned_integer(x);
    } else {
      core_.integer(static_cast<std::int64_t>(x));
    }
  } else if constexpr (std::is_floating_point_v<U>) {
    core_.floating(static_cast<double>(x));
  } else if constexpr (string_like<U>) {
    core_.str(x);
  } else if constexpr (std::is_same_v<std::decay_t<U>, const char*> || std::is_same_v<std::decay_t<U>, char*>) {
    core_.str(std::string_view(x));
  } else if constexpr (std::is_same_v<U, pickle::bytes>) {
    core_.bytes(x.data);
  } else if constexpr (std::is_same_v<U, pickle::bytearray>) {
    core_.bytearray(x.data);
  } else if constexpr (std::is_same_v<U, std::nullptr_t> || std::is_same_v<U, std::monostate>) {
    core_.none();
  } else if constexpr (is_optional<U>::value) {
    if (x) {
      write(*x);
    } else {
      core_.none();
    }
  } else if constexpr (is_variant<U>::value) {
    std::visit([&](const auto& alternative) { write(alternative); }, x);
  } else if constexpr (map_like<U>) {
    DepthGuard<WriterCore> guard(core_);
    core_.dict_open();
    dict_items(x, x.size(), [&](const auto& item) {
      if constexpr (string_like<std::remove_cvref_t<decltype(item.first)>>) {
        core_.key_str(item.first);
      } else {
        write(item.first);
      }
      write(item.second);
    });
  } else if constexpr (set_like<U>) {
    DepthGuard<WriterCore> guard(core_);
    core_.set_open();
    if (core_.protocol() >= 4) {
      std::size_t in_batch = 0;
      bool open = false;
      for (const auto& item : x) {
        if (!open) {
          core_.mark();
          open = true;
        }
        write(item);
        if (++in_batch == 1000) {
          core_.additems();
          open = false;
          in_batch = 0;
        }
      }
      // CPython's exact-set loop: a batch follows every full batch, even an empty one.
      if (open || (x.size() != 0 && in_batch == 0)) {
        if (!open) core_.mark();
        core_.additems();
      }
    } else {
      list_items(x, x.size(), [&](const auto& item) { write(item); });
      core_.set_close();
    }
  } else if constexpr (sequence_like<U>) {
    DepthGuard<WriterCore> guard(core_);
    using Item = typename U::value_type;
    if constexpr (contiguous_of_bulk_integers<U>) {
      core_.integer_list(x.data(), x.size());
    } else if constexpr (std::is_same_v<U, std::vector<Item>> && string_like<Item>) {
      core_.str_list(x.data(), x.size());
    } else {
      core_.list_open();
      list_items(x, x.size(), [&](const auto& item) { write(static_cast<const Item&>(item)); });
    }
  } else if constexpr (tuple_like<U>) {
    DepthGuard<WriterCore> guard(core_);
    constexpr std::size_t n = std::tuple_size_v<U>;
    core_.tuple_open(n);
    std::apply([&](const auto&... items) { (write(items), ...); }, x);
    core_.tuple_close(n);
  } else if constexpr (described<U>) {
    DepthGuard<WriterCore> guard(core_);
    described_struct(x);
  } else if constexpr (std::is_array_v<U>) {
    static_assert(std::is_same_v<std::remove_cv_t<std::remove_extent_t<U>>, char>,
                  "pickle::dumps: arrays other than string literals are not supported");
    core_.str(std::string_view(x));
  } else {
    static_assert(always_false<U>,
                  "pickle::dumps: unsupported type (describe it with PICKLE_DESCRIBE or give it a "
                  "pickle_write found by argument-dependent lookup)");
  }
}

// --- reading ------------------------------------------------------------------------------------

template <class T>
void TypedReader::read(T& x) {
  if (core_ != nullptr) {
    read_direct(x);
  } else {
    convert(*value_, x);
  }
}

template <class S>
void TypedReader::read_struct_direct(S& x) {
  auto fields = pickle_describe(static_cast<const S*>(nullptr));
  constexpr std::size_t n = std::tuple_size_v<decltype(fields)>;
  native_detail::ReaderCore& c = *core_;
  if constexpr (native_detail::has_python_class<S>) {
    c.object_open(python_class<S>::module, python_class<S>::name);
    if (!c.object_has_state()) {
      if constexpr (n != 0) throw native_detail::ReaderCore::Fallback{};
      return;
    }
  }
  c.dict_open();
  std::array<bool, n == 0 ? 1 : n> seen{};
  auto read_pair = [&] {
    std::string_view key = c.str();
    bool found = false;
    std::size_t index = 0;
    std::apply([&](const auto&... f) {
      ((!found && f.name == key ? (found = true, seen[index] = true, read_direct(x.*(f.member)), 0)
                                : (++index, 0)),
       ...);
    }, fields);
    if (!found) throw native_detail::ReaderCore::Fallback{};
  };
  bool single = false;
  std::size_t batch = 0;
  while (c.dict_more(single, batch)) {
    if (single) {
      read_pair();
      c.setitem();
      break;
    }
    batch = 0;
    while (!c.at_batch_end()) {
      read_pair();
      ++batch;
    }
    c.setitems();
  }
  for (std::size_t i = 0; i < n; ++i)
    if (!seen[i]) throw native_detail::ReaderCore::Fallback{};
  if constexpr (native_detail::has_python_class<S>) c.object_close();
}

template <class T>
void TypedReader::read_direct(T& x) {
  using namespace native_detail;
  using U = std::remove_cvref_t<T>;
  ReaderCore& c = *core_;
  if constexpr (std::is_same_v<U, Value>) {
    throw ReaderCore::Fallback{};
  } else if constexpr (custom_readable<U>) {
    DepthGuard<ReaderCore> guard(c);
    pickle_read(*this, x);
  } else if constexpr (std::is_same_v<U, bool>) {
    x = c.boolean();
  } else if constexpr (integer_type<U>) {
    if constexpr (std::is_unsigned_v<U>) {
      std::uint64_t v = c.unsigned_integer();
      if (v > static_cast<std::uint64_t>(std::numeric_limits<U>::max())) throw ReaderCore::Fallback{};
      x = static_cast<U>(v);
    } else {
      std::int64_t v = c.integer();
      if (v < static_cast<std::int64_t>(std::numeric_limits<U>::min()) ||
          v > static_cast<std::int64_t>(std::numeric_limits<U>::max()))
        throw ReaderCore::Fallback{};
      x = static_cast<U>(v);
    }
  } else if constexpr (std::is_floating_point_v<U>) {
    x = static_cast<U>(c.floating());
  } else if constexpr (string_like<U>) {
    x = U(c.str());  // a std::string_view points into the input
  } else if constexpr (std::is_same_v<U, pickle::bytes>) {
    x.data = c.bytes();
  } else if constexpr (std::is_same_v<U, pickle::bytearray>) {
    x.data = c.bytearray();
  } else if constexpr (std::is_same_v<U, std::nullptr_t> || std::is_same_v<U, std::monostate>) {
    c.none();
  } else if constexpr (is_optional<U>::value) {
    if (c.at_none()) {
      x.reset();
    } else {
      x.emplace();
      read_direct(*x);
    }
  } else if constexpr (is_variant<U>::value) {
    DepthGuard<ReaderCore> guard(c);
    bool done = false;
    ReaderCore::Checkpoint at = c.checkpoint();
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (([&] {
         if (done) return;
         try {
           x.template emplace<I>();
           read_direct(std::get<I>(x));
           done = true;
         } catch (const ReaderCore::Fallback&) {
           c.rollback(at);
         }
       }()),
       ...);
    }(std::make_index_sequence<std::variant_size_v<U>>{});
    if (!done) throw ReaderCore::Fallback{};
  } else if constexpr (map_like<U>) {
    DepthGuard<ReaderCore> guard(c);
    x.clear();
    c.dict_open();
    auto read_pair = [&] {
      typename U::key_type key{};
      read_direct(key);
      typename U::mapped_type value{};
      read_direct(value);
      x.insert_or_assign(std::move(key), std::move(value));
    };
    bool single = false;
    std::size_t batch = 0;
    for (;;) {
      ReaderCore::Checkpoint at = c.checkpoint();
      std::size_t size_before = x.size();
      bool more = c.dict_more(single, batch);
      if (!more) break;
      try {
        if (single) {
          read_pair();
          c.setitem();
          break;
        }
        batch = 0;
        while (!c.at_batch_end()) {
          read_pair();
          ++batch;
        }
        c.setitems();
      } catch (const ReaderCore::Fallback&) {
        // Only an empty dict can be followed by something that looked like its items.
        if (size_before != 0) throw;
        c.rollback(at);
        x.clear();
        break;
      }
    }
  } else if constexpr (set_like<U>) {
    DepthGuard<ReaderCore> guard(c);
    x.clear();
    bool frozen = false;
    if (c.set_open(frozen)) {
      std::size_t batch;
      do {
        batch = 0;
        while (!c.at_batch_end()) {
          typename U::value_type item{};
          read_direct(item);
          x.insert(std::move(item));
          ++batch;
        }
      } while (c.set_more(frozen, batch));
    }
  } else if constexpr (sequence_like<U>) {
    DepthGuard<ReaderCore> guard(c);
    using Item = typename U::value_type;
    if constexpr (std::is_same_v<U, std::vector<Item>> && bulk_integer<Item>) {
      c.integer_list(x);
    } else if constexpr (std::is_same_v<U, std::vector<Item>> && string_like<Item>) {
      c.str_list(x);
    } else {
      std::vector<Item> items;
      c.list_open();
      bool single = false;
      std::size_t batch = 0;
      for (;;) {
        ReaderCore::Checkpoint at = c.checkpoint();
        std::size_t size_before = items.size();
        if (!c.list_more(single, batch)) break;
        try {
          if (single) {
            Item item{};
            read_direct(item);
            c.append();
            items.push_back(std::move(item));
            break;
          }
          batch = 0;
          while (!c.at_batch_end()) {
            Item item{};
            read_direct(item);
            items.push_back(std::move(item));
            ++batch;
          }
          c.appends();
        } catch (const ReaderCore::Fallback&) {
          // What follows a list that is empty or ends on a full batch may be its next sibling.
          if (size_before % 1000 != 0) throw;
          c.rollback(at);
          items.resize(size_before);
          break;
        }
      }
      if constexpr (is_std_array<U>::value) {
        if (items.size() != x.size()) throw ReaderCore::Fallback{};
        std::move(items.begin(), items.end(), x.begin());
      } else if constexpr (std::is_same_v<U, std::vector<Item>>) {
        x = std::move(items);
      } else {
        x = U(std::make_move_iterator(items.begin()), std::make_move_iterator(items.end()));
      }
    }
  } else if constexpr (tuple_like<U>) {
    DepthGuard<ReaderCore> guard(c);
    constexpr std::size_t n = std::tuple_size_v<U>;
    bool marked = c.tuple_open(n);
    std::apply([&](auto&... items) { (read_direct(items), ...); }, x);
    c.tuple_close(n, marked);
  } else if constexpr (described<U>) {
    DepthGuard<ReaderCore> guard(c);
    read_struct_direct(x);
  } else {
    static_assert(always_false<U>,
                  "pickle::loads: unsupported type (describe it with PICKLE_DESCRIBE or give it a "
                  "pickle_read found by argument-dependent lookup)");
  }
}

template <class S>
void TypedReader::convert_struct(const Value& v, S& x) {
  using namespace native_detail;
  auto fields = pickle_describe(static_cast<const S*>(nullptr));
  Path& path = *path_;
  Value state = v;
  if constexpr (has_python_class<S>) {
    if (v.kind() != Kind::object || v.object_form() != ObjectForm::newobj ||
        v.callable().kind() != Kind::global || v.callable().module() != python_class<S>::module ||
        v.callable().qualname() != python_class<S>::name)
      path.fail(expected_name<S>(), v);
    state = v.state();
    if (state.is_none() && std::tuple_size_v<decltype(fields)> == 0) return;
  }
  if (state.kind() != Kind::dict) path.fail("dict", state);
  std::apply([&](const auto&... f) {
    ([&] {
      std::optional<Value> item = state.get(Value(f.name));
      path.push_field(f.name);
      if (!item) path.fail_text("a value", "nothing (missing field)");
      convert(*item, x.*(f.member));
      path.pop();
    }(), ...);
  }, fields);
  if (state.size() != std::tuple_size_v<decltype(fields)>) {
    for (const auto& item : state.dict_items()) {
      const Value& key = item.first;
      bool known = false;
      if (key.is_str())
        std::apply([&](const auto&... f) { ((known = known || f.name == key.as_str()), ...); }, fields);
      if (!known) {
        path.push_key(key);
        path.fail_text("a field of " + expected_name<S>(), "an unknown key");
      }
    }
  }
}

template <class T>
void TypedReader::convert(const Value& v, T& x) {
  using namespace native_detail;
  using U = std::remove_cvref_t<T>;
  Path& path = *path_;
  if constexpr (std::is_same_v<U, Value>) {
    x = v;
  } else if constexpr (custom_readable<U>) {
    DepthGuard<Path> guard(path);
    TypedReader inner(v, path, input_);
    pickle_read(inner, x);
  } else if constexpr (std::is_same_v<U, bool>) {
    if (!v.is_bool()) path.fail("bool", v);
    x = v.as_bool();
  } else if constexpr (integer_type<U>) {
    if (!v.is_int()) path.fail("int", v);
    BigInt big = v.as_bigint();
    if (big < BigInt(std::numeric_limits<U>::min()) || big > BigInt(std::numeric_limits<U>::max()))
      path.fail_text(std::string("int that fits ") + (std::is_signed_v<U> ? "int" : "uint") +
                         std::to_string(sizeof(U) * 8) + "_t",
                     "int " + big.str());
    x = static_cast<U>(big);
  } else if constexpr (std::is_floating_point_v<U>) {
    if (!v.is_float()) path.fail("float", v);
    x = static_cast<U>(v.as_float());
  } else if constexpr (std::is_same_v<U, std::string>) {
    if (!v.is_str()) path.fail("str", v);
    x = std::string(v.as_str());
  } else if constexpr (std::is_same_v<U, std::string_view>) {
    if (!v.is_str()) path.fail("str", v);
    const std::string_view text = v.as_str();
    const std::less<const char*> before;
    const bool in_input = !before(text.data(), input_.data()) &&
                          !before(input_.data() + input_.size(), text.data() + text.size());
    if (!text.empty() && !in_input)
      path.fail_text("str stored as UTF-8 in the input (a std::string_view borrows it)",
                     "str built by loading (protocol 0 text, a Python 2 string, a reduction)");
    x = text;
  } else if constexpr (std::is_same_v<U, pickle::bytes>) {
    if (v.kind() != Kind::bytes) path.fail("bytes", v);
    x.data = std::string(v.as_bytes());
  } else if constexpr (std::is_same_v<U, pickle::bytearray>) {
    if (v.kind() != Kind::bytearray) path.fail("bytearray", v);
    x.data = std::string(v.as_bytes());
  } else if constexpr (std::is_same_v<U, std::nullptr_t> || std::is_same_v<U, std::monostate>) {
    if (!v.is_none()) path.fail("None", v);
  } else if constexpr (is_optional<U>::value) {
    if (v.is_none()) {
      x.reset();
    } else {
      x.emplace();
      convert(v, *x);
    }
  } else if constexpr (is_variant<U>::value) {
    bool done = false;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (([&] {
         if (done) return;
         try {
           x.template emplace<I>();
           convert(v, std::get<I>(x));
           done = true;
         } catch (const LoadTypeError&) {
         }
       }()),
       ...);
    }(std::make_index_sequence<std::variant_size_v<U>>{});
    if (!done) {
      std::string names;
      [&]<std::size_t... I>(std::index_sequence<I...>) {
        ((names += (I == 0 ? "" : " or ") + expected_name<std::variant_alternative_t<I, U>>()), ...);
      }(std::make_index_sequence<std::variant_size_v<U>>{});
      path.fail(names, v);
    }
  } else if constexpr (map_like<U>) {
    if (v.kind() != Kind::dict) path.fail("dict", v);
    DepthGuard<Path> guard(path);
    x.clear();
    for (const auto& [key, value] : v.dict_items()) {
      typename U::key_type k{};
      path.push_key(key);
      convert(key, k);
      typename U::mapped_type m{};
      convert(value, m);
      path.pop();
      x.insert_or_assign(std::move(k), std::move(m));
    }
  } else if constexpr (set_like<U>) {
    if (v.kind() != Kind::set && v.kind() != Kind::frozenset) path.fail("set", v);
    DepthGuard<Path> guard(path);
    x.clear();
    std::size_t i = 0;
    for (const Value& item : v.items()) {
      typename U::value_type k{};
      path.push_index(i++);
      convert(item, k);
      path.pop();
      x.insert(std::move(k));
    }
  } else if constexpr (sequence_like<U>) {
    if (v.kind() != Kind::list) path.fail("list", v);
    DepthGuard<Path> guard(path);
    using Item = typename U::value_type;
    std::vector<Item> items(v.size());
    for (std::size_t i = 0; i < items.size(); ++i) {
      path.push_index(i);
      Item item{};
      convert(v[i], item);
      items[i] = std::move(item);
      path.pop();
    }
    if constexpr (is_std_array<U>::value) {
      if (items.size() != x.size())
        path.fail_text("list of " + std::to_string(x.size()), "list of " + std::to_string(items.size()));
      std::move(items.begin(), items.end(), x.begin());
    } else if constexpr (std::is_same_v<U, std::vector<Item>>) {
      x = std::move(items);
    } else {
      x = U(std::make_move_iterator(items.begin()), std::make_move_iterator(items.end()));
    }
  } else if constexpr (tuple_like<U>) {
    constexpr std::size_t n = std::tuple_size_v<U>;
    if (v.kind() != Kind::tuple) path.fail(expected_name<U>(), v);
    if (v.size() != n) path.fail_text(expected_name<U>(), "tuple of " + std::to_string(v.size()));
    DepthGuard<Path> guard(path);
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (([&] {
         path.push_index(I);
         convert(v[I], std::get<I>(x));
         path.pop();
       }()),
       ...);
    }(std::make_index_sequence<n>{});
  } else if constexpr (described<U>) {
    DepthGuard<Path> guard(path);
    convert_struct(v, x);
  } else {
    static_assert(always_false<U>, "pickle::loads: unsupported type");
  }
}

}  // namespace pickle

// PICKLE_DESCRIBE(Type, field1, field2, …): at namespace scope of Type (argument-dependent lookup
// finds it there), like BOOST_DESCRIBE_STRUCT. Up to 32 fields.
#define PICKLE_DETAIL_FIELD(Type, f) ::pickle::native_detail::field(#f, &Type::f)
#define PICKLE_DETAIL_EXPAND(...) PICKLE_DETAIL_EXPAND4(PICKLE_DETAIL_EXPAND4(PICKLE_DETAIL_EXPAND4(PICKLE_DETAIL_EXPAND4(__VA_ARGS__))))
#define PICKLE_DETAIL_EXPAND4(...) PICKLE_DETAIL_EXPAND3(PICKLE_DETAIL_EXPAND3(PICKLE_DETAIL_EXPAND3(PICKLE_DETAIL_EXPAND3(__VA_ARGS__))))
#define PICKLE_DETAIL_EXPAND3(...) PICKLE_DETAIL_EXPAND2(PICKLE_DETAIL_EXPAND2(__VA_ARGS__))
#define PICKLE_DETAIL_EXPAND2(...) PICKLE_DETAIL_EXPAND1(PICKLE_DETAIL_EXPAND1(__VA_ARGS__))
#define PICKLE_DETAIL_EXPAND1(...) __VA_ARGS__
#define PICKLE_DETAIL_PARENS ()
#define PICKLE_DETAIL_FOR_EACH(Type, ...) __VA_OPT__(PICKLE_DETAIL_EXPAND(PICKLE_DETAIL_FOR_EACH_HELPER(Type, __VA_ARGS__)))
#define PICKLE_DETAIL_FOR_EACH_HELPER(Type, f, ...) \
  , PICKLE_DETAIL_FIELD(Type, f) __VA_OPT__(PICKLE_DETAIL_FOR_EACH_AGAIN PICKLE_DETAIL_PARENS(Type, __VA_ARGS__))
#define PICKLE_DETAIL_FOR_EACH_AGAIN() PICKLE_DETAIL_FOR_EACH_HELPER

#define PICKLE_DESCRIBE(Type, ...)                                                         \
  [[maybe_unused]] inline auto pickle_describe(const Type*) {                              \
    return ::pickle::native_detail::make_fields(0 PICKLE_DETAIL_FOR_EACH(Type, __VA_ARGS__)); \
  }

namespace pickle::native_detail {
template <class... F>
auto make_fields(int, F... fields) {
  return std::tuple<F...>(fields...);
}
}  // namespace pickle::native_detail
