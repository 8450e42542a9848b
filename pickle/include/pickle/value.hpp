// pickle::Value — a dynamic value for Python data, with Python's reference semantics.
//
// A Value is a handle. Copying a handle shares the object it refers to, as assigning a name does in
// Python: `Value a = Value::list(); Value b = a; b.append(1);` leaves `a == [1]`, and `a.is(b)`.
// None, bools, ints and floats are atoms stored in the handle itself (no heap allocation); every
// other kind lives in a heap region shared by everything it is linked with, so shared references
// and cycles (a list that contains itself) are represented exactly and freed without leaks when the
// last handle into the region goes away. Nothing here recurses over user data: equality, hashing,
// destruction and printing are iterative, so a 1,000,000-deep nested list is an ordinary value.
//
// Thread safety: like std::shared_ptr, distinct handles may be used from distinct threads, and
// concurrent reads of one value are fine; mutating a value while another thread reads it is not.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/multiprecision/cpp_int.hpp>

#include "pickle/errors.hpp"

namespace pickle {

using BigInt = boost::multiprecision::cpp_int;

enum class Kind : std::uint8_t {
  none,
  boolean,
  integer,
  floating,
  str,
  bytes,
  bytearray,
  tuple,
  list,
  dict,
  set,
  frozenset,
  global,  // a reference to a module attribute: (module, qualified name)
  object,  // an inert object built by REDUCE / NEWOBJ / NEWOBJ_EX / INST / OBJ / PERSID / EXT
  buffer,  // a protocol 5 out-of-band buffer (NEXT_BUFFER, optionally READONLY_BUFFER)
};

// The Python type name of a kind, as used in Python messages: "NoneType", "bool", "int", …
std::string_view type_name(Kind kind) noexcept;

// How an inert object node was created; the writer re-emits the same form.
enum class ObjectForm : std::uint8_t {
  reduce,     // callable args REDUCE
  newobj,     // cls args NEWOBJ
  newobj_ex,  // cls args kwargs NEWOBJ_EX
  inst,       // MARK args… INST module name   (protocol 0)
  obj,        // MARK cls args… OBJ           (protocol 1)
  persid,     // PERSID text   (pid is a str holding the ASCII text)
  binpersid,  // pid BINPERSID
  ext,        // EXT1 / EXT2 / EXT4 code
};

// An operation applied to an object after it was created, kept in order so a writer can replay it.
enum class ObjectOp : std::uint8_t {
  build,    // BUILD with state `first`
  append,   // APPEND / APPENDS item `first`
  setitem,  // SETITEM / SETITEMS key `first`, value `second`
  additem,  // ADDITEMS item `first`
  // A __reduce__ state setter (Python 3.8+): `first`(obj, `second`) was called in place of BUILD
  // and its result popped (setter obj state TUPLE2 REDUCE POP).
  state_setter,
};

namespace detail {
struct Node;
struct Heap;

enum class Tag : std::uint8_t {
  none,
  boolean,
  small_int,
  floating,
  big_int,
  str,
  bytes,
  bytearray,
  tuple,
  list,
  dict,
  set,
  frozenset,
  global,
  object,
  buffer,
};

// The unit of storage inside containers: an atom or a pointer to a node. Trivially copyable;
// holds no ownership (ownership is the heap region's).
struct Slot {
  union {
    bool b;
    std::int64_t i;
    double f;
    Node* p;
  };
  Tag tag = Tag::none;

  Slot() noexcept : i(0) {}
  bool is_node() const noexcept { return tag >= Tag::big_int; }
};
static_assert(sizeof(Slot) == 16);
}  // namespace detail

class Value {
 public:
  // --- construction ------------------------------------------------------------------------
  Value() noexcept {}  // None
  Value(std::nullptr_t) noexcept {}
  Value(bool b) noexcept { slot_.tag = detail::Tag::boolean, slot_.b = b; }
  template <class T>
    requires(std::is_integral_v<T> && !std::is_same_v<T, bool> && !std::is_same_v<T, char>)
  Value(T v) {
    if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(std::int64_t)) {
      if (v > static_cast<std::uint64_t>(INT64_MAX)) {
        *this = Value(BigInt(v));
        return;
      }
    }
    slot_.tag = detail::Tag::small_int;
    slot_.i = static_cast<std::int64_t>(v);
  }
  Value(double f) noexcept { slot_.tag = detail::Tag::floating, slot_.f = f; }
  explicit Value(const BigInt& v);
  // A str from UTF-8; lone surrogates may be given in their 3-byte "surrogatepass" form
  // (ED A0 80 for U+D800). Throws pickle::Error(ValueError) on invalid UTF-8.
  Value(std::string_view utf8);
  Value(const char* utf8) : Value(std::string_view(utf8)) {}
  Value(const std::string& utf8) : Value(std::string_view(utf8)) {}

  static Value none() noexcept { return Value(); }
  static Value integer(const BigInt& v) { return Value(v); }
  static Value str(std::string_view utf8) { return Value(utf8); }
  static Value bytes(std::string_view data);
  static Value bytes(std::span<const std::byte> data);
  static Value bytearray(std::string_view data);
  static Value tuple(std::initializer_list<Value> items = {});
  static Value tuple(std::span<const Value> items);
  static Value list(std::initializer_list<Value> items = {});
  static Value list(std::span<const Value> items);
  static Value dict(std::initializer_list<std::pair<Value, Value>> items = {});
  static Value set(std::initializer_list<Value> items = {});
  static Value frozenset(std::initializer_list<Value> items = {});
  static Value frozenset(std::span<const Value> items);
  static Value global(std::string_view module, std::string_view qualname);
  // An inert object: `callable(*args)` (reduce), `cls.__new__(cls, *args)` (newobj), …
  static Value object(ObjectForm form, Value callable, Value args, Value kwargs = Value());
  // A protocol 5 out-of-band buffer; `index` is its position in the buffers given to the reader.
  static Value buffer(std::string_view data, std::size_t index, bool readonly);

  Value(const Value& other) noexcept;
  Value(Value&& other) noexcept;
  Value& operator=(const Value& other) noexcept;
  Value& operator=(Value&& other) noexcept;
  ~Value();

  // --- inspection ----------------------------------------------------------------------------
  Kind kind() const noexcept;
  std::string_view type_name() const noexcept { return pickle::type_name(kind()); }
  bool is_none() const noexcept { return slot_.tag == detail::Tag::none; }
  bool is_bool() const noexcept { return slot_.tag == detail::Tag::boolean; }
  bool is_int() const noexcept {
    return slot_.tag == detail::Tag::small_int || slot_.tag == detail::Tag::big_int;
  }
  bool is_float() const noexcept { return slot_.tag == detail::Tag::floating; }
  bool is_str() const noexcept { return slot_.tag == detail::Tag::str; }

  bool as_bool() const;                       // bool only
  std::optional<std::int64_t> as_int64() const;  // int or bool; nullopt when out of range
  BigInt as_bigint() const;                   // int or bool
  double as_float() const;                    // float only
  std::string_view as_str() const;            // str: UTF-8 (surrogatepass)
  std::string_view as_bytes() const;          // bytes, bytearray, buffer: the raw bytes

  // Number of items of a tuple, list, dict, set, frozenset; length of str (code points),
  // bytes, bytearray, buffer.
  std::size_t size() const;
  // Item i of a tuple or list (throws std::out_of_range).
  Value operator[](std::size_t i) const;
  Value at(std::size_t i) const { return (*this)[i]; }
  // Items of a tuple, list, set or frozenset, in order.
  std::vector<Value> items() const;
  // Pairs of a dict, in insertion order.
  std::vector<std::pair<Value, Value>> dict_items() const;
  // Dict lookup with Python's key rules; nullopt when absent. Throws UnhashableError.
  std::optional<Value> get(const Value& key) const;
  bool contains(const Value& key) const;  // dict, set, frozenset

  // global: (module, qualified name)
  std::string_view module() const;
  std::string_view qualname() const;

  // object: how it was made and what it was made from
  ObjectForm object_form() const;
  Value callable() const;  // reduce: the callable; newobj/obj/inst: the class; ext: the global
  Value args() const;      // the argument tuple (persid/binpersid: the persistent id)
  Value kwargs() const;    // newobj_ex: the keyword dict; else None
  std::int32_t ext_code() const;
  // Operations applied after creation (BUILD, APPEND(S), SETITEM(S), ADDITEMS), in order.
  std::vector<std::tuple<ObjectOp, Value, Value>> object_ops() const;
  // The state of the last BUILD, or None.
  Value state() const;

  // buffer
  std::size_t buffer_index() const;
  bool buffer_readonly() const;

  // --- mutation (Python's semantics; mutable kinds only) --------------------------------------
  void append(Value item);                     // list
  void set_item(Value key, Value value);       // dict (throws UnhashableError)
  void add(Value item);                        // set
  void set_list_item(std::size_t i, Value item);  // list
  // Record an operation on an object node (used by the reader; public for writers of objects).
  void add_object_op(ObjectOp op, Value first, Value second = Value());

  // --- identity, equality, hashing -------------------------------------------------------------
  // Python's `is`: atoms compare by value and kind; everything else by object identity.
  bool is(const Value& other) const noexcept;
  // An identity for non-atoms (nullptr for atoms).
  const void* identity() const noexcept;
  // Python's `==` for the builtin kinds: 1 == 1.0 == True, containers compared item by item,
  // cycles handled (a pair already being compared counts as equal). Objects compare by identity,
  // globals by name. Iterative.
  friend bool operator==(const Value& a, const Value& b);
  // Same structure *and* same sharing: the object graphs reachable from a and b are isomorphic,
  // atoms equal by value and kind (so 1 and True differ). What a round trip must preserve.
  friend bool same_graph(const Value& a, const Value& b);
  // Python's hash rules for the hashable kinds (equal values hash equal; hash(1) == hash(1.0));
  // throws UnhashableError for list, dict, set, bytearray (and tuples containing them).
  std::size_t hash() const;
  bool hashable() const;

  // --- internals, for the library's reader, writer and tools ---------------------------------
  Value(detail::Slot slot, detail::Heap* heap) noexcept;  // takes a new reference on heap
  const detail::Slot& slot() const noexcept { return slot_; }
  detail::Heap* heap() const noexcept { return heap_; }

 private:
  detail::Slot slot_;
  detail::Heap* heap_ = nullptr;  // null for atoms
};

// Python's repr() of the value (pickle/repr.hpp documents the form used for objects).
std::string repr(const Value& value);

}  // namespace pickle

template <>
struct std::hash<pickle::Value> {
  std::size_t operator()(const pickle::Value& v) const { return v.hash(); }
};
