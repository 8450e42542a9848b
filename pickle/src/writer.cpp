// The pickler: protocols 0–5, byte for byte as CPython's C pickler (Modules/_pickle.c) writes them.
//
// The value graph is walked with an explicit stack of tasks (no recursion over user data). Each task
// is a small state machine; a step performs at most one nested `save` as its last action, so a task
// never touches the stack after pushing onto it.
//
// Identity. CPython memoizes by object identity, so the bytes depend on which objects are shared.
// Graph nodes are identified by their address. Objects CPython creates while reducing a value
// (the latin-1 str and 'latin1' of a bytes at protocol < 3, the list of a set at protocol < 4, the
// argument tuples, the globals `_codecs.encode`, `builtins.set`, …) consume memo slots like in
// CPython; those that are shared singletons in CPython (interned names, 1-character latin-1 strs,
// 1-byte bytes, the type objects) are shared here too, see `SingletonEntry`.
#include "pickle/writer.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <new>
#include <utility>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "compat.hpp"
#include "emit.hpp"
#include "pickle/opcodes.hpp"
#include "set_order.hpp"
#include "value_impl.hpp"

namespace pickle {

int default_protocol(int target_minor) noexcept { return target_minor >= 14 ? 5 : 4; }

namespace {

using detail::DictEntry;
using detail::DictNode;
using detail::GlobalNode;
using detail::Heap;
using detail::ObjectNode;
using detail::ObjectOpEntry;
using detail::SeqNode;
using detail::Slot;
using detail::StringNode;
using detail::Tag;

using detail::batch_size;
using detail::is_ascii;
using detail::op;
using detail::Output;
using detail::single_latin1_char;

// ---------------------------------------------------------------------------------------------
// Identity memo: node address → memo index, open addressing with linear probing. Keys are nodes.
class IdentityMemo {
 public:
  static constexpr std::uint64_t missing = ~std::uint64_t(0);

  // For one dumps of `root`: nodes that containers hold once (Node::refs) are reached once, so
  // they are neither looked up nor kept; their memo indices are still counted and written. Not for
  // a Pickler or several values written into one pickle, whose walks may reach a node again.
  void elide_single_references(const void* root) noexcept {
    elide_ = true;
    root_ = root;
  }
  void keep_every_node() noexcept { elide_ = false; }
  bool elided(const void* key) const noexcept {
    return elide_ && suspended_ == 0 && key != root_ && static_cast<const detail::Node*>(key)->refs <= 1;
  }
  // A node memoized only after its children (a tuple, frozenset or reduced object) that may lie on
  // a cycle is entered again from below before it is memoized, and its children are then walked
  // twice, however rarely each is held: while one is open, every node is kept.
  void suspend_elision() noexcept { ++suspended_; }
  void resume_elision() noexcept { --suspended_; }
  void reset_elision() noexcept { suspended_ = 0; }

  std::uint64_t find(const void* key) const noexcept {
    if (count_ == 0 || elided(key)) return missing;
    std::size_t i = hash(key);
    for (;;) {
      const Entry& e = table_[i];
      if (e.key == key) return e.index;
      if (e.key == nullptr) return missing;
      i = (i + 1) & mask_;
    }
  }
  void insert(const void* key, std::uint64_t index) {
    if (elided(key)) return;
    insert_kept(key, index);
  }
  // find, and insert `index` when absent (one probe sequence for both).
  std::uint64_t find_or_insert(const void* key, std::uint64_t index) {
    if (elided(key)) return missing;
    if ((count_ + 1) * 3 > table_.size() * 2) rehash();
    std::size_t i = hash(key);
    for (;;) {
      Entry& e = table_[i];
      if (e.key == key) return e.index;
      if (e.key == nullptr) {
        e.key = key;
        e.index = index;
        ++count_;
        return missing;
      }
      i = (i + 1) & mask_;
    }
  }
  void clear() {
    table_.clear();
    mask_ = 0;
    count_ = 0;
  }

 private:
  void insert_kept(const void* key, std::uint64_t index) {
    if ((count_ + 1) * 3 > table_.size() * 2) rehash();
    std::size_t i = hash(key);
    for (;;) {
      Entry& e = table_[i];
      if (e.key == key) {
        e.index = index;
        return;
      }
      if (e.key == nullptr) {
        e.key = key;
        e.index = index;
        ++count_;
        return;
      }
      i = (i + 1) & mask_;
    }
  }
 public:
  struct Entry {
    const void* key = nullptr;
    std::uint64_t index = 0;
  };
  // Empty the table for the next dumps on this thread, keeping its size: growing it from 64
  // entries by rehashing took a fifth of a large dumps. Emptying costs the table's size, so a table
  // much larger than its last use is dropped instead.
  void empty_keeping_table() {
    if (count_ == 0) return;
    if (table_.size() > 1024 && count_ * 8 < table_.size()) {
      // Emptying a 16 MiB table left by an earlier large dump cost a 8-item dumps 0.6 ms: shrink
      // to what the last dump used instead.
      std::size_t size = 64;
      while (size * 2 < count_ * 3) size *= 2;
      std::vector<Entry>(size).swap(table_);
      mask_ = size - 1;
      count_ = 0;
      return;
    }
    // All-zero bytes are the empty entry; memset, where the element loop was a fifth of a
    // 120-byte dumps.
    std::memset(static_cast<void*>(table_.data()), 0, table_.size() * sizeof(Entry));
    count_ = 0;
  }

 private:
  // The address itself, as CPython's memo hashes object pointers: nodes are allocated in the
  // order a pickle creates them, which is the order a dump visits them, so consecutive lookups
  // touch consecutive slots and the table is walked nearly sequentially. A mixing hash sent every
  // lookup to a random cache line and TLB page (records_30k dumps: 91 % of `save` was that probe).
  // Memoized nodes are at least 32 bytes apart, so slots of one arena stretch are at most half full and
  // stretches that alias modulo the table size interleave without long runs.
  std::size_t hash(const void* key) const noexcept {
    return static_cast<std::size_t>(reinterpret_cast<std::uintptr_t>(key) >> 3) & mask_;
  }
  void rehash() {
    std::vector<Entry> old = std::move(table_);
    std::size_t n = old.empty() ? 64 : old.size() * 2;
    table_.assign(n, Entry{});
    mask_ = n - 1;
    count_ = 0;
    for (const Entry& e : old)
      if (e.key != nullptr) insert_kept(e.key, e.index);
  }
  std::vector<Entry> table_;
  std::size_t mask_ = 0;
  std::size_t count_ = 0;
  bool elide_ = false;
  const void* root_ = nullptr;
  std::size_t suspended_ = 0;
};

// An object CPython shares by value (a singleton or an interned str). `index` is its memo index once
// written; `claimed` says a graph node already stands for it (see Writer::claim).
struct SingletonEntry {
  std::uint64_t index = IdentityMemo::missing;
  bool claimed = false;
};

enum class SingletonClass : std::uint16_t {
  empty_str = 0,
  latin1_char = 1,      // + code point, 256 of them
  empty_bytes = 257,
  one_byte = 258,       // + byte, 256 of them
  latin1_name = 514,    // the interned 'latin1' of the bytes reduce
  empty_frozenset = 515,
  count = 516,
};

// ---------------------------------------------------------------------------------------------
// CPython's builtin functions share the builtins module's own name str as __module__, while builtin
// types (and Ellipsis, NotImplemented, the exceptions) give an interned 'builtins': two different
// objects, so a protocol 4 pickle of [int, len] writes 'builtins' twice. Module-name strs are
// therefore shared per (module, group).
bool is_builtin_function(std::string_view name) noexcept {
  static constexpr std::string_view types[] = {
      "bool", "bytearray", "bytes", "classmethod", "complex", "dict", "enumerate", "filter",
      "float", "frozenset", "int", "list", "map", "memoryview", "object", "property", "range",
      "reversed", "set", "slice", "staticmethod", "str", "super", "tuple", "type", "zip"};
  if (name.empty() || !(name[0] >= 'a' && name[0] <= 'z')) return false;
  for (std::string_view t : types)
    if (name == t) return false;
  return name.find('.') == std::string_view::npos;
}

std::string module_name_key(std::string_view module, std::string_view qualname) {
  std::string key(module);
  if (module == "builtins" && is_builtin_function(qualname)) key += "\n(function)";
  return key;
}

// ---------------------------------------------------------------------------------------------
// Tasks of the explicit stack.

enum class Step : std::uint8_t {
  seq_items,      // save items[pos..end) of a slot array, then `close`
  list_exact,     // exact list batching (§7.2) over a slot array
  dict_exact,     // exact dict batching (§7.3)
  set_exact,      // exact set batching, protocol ≥ 4 (§7.5)
  object,         // an object node: phases of its creation, then its ops
  close_reduce,   // after callable and args of a temporary reduce: R, recursion check, memoize
};

// What a seq_items task does once its items are saved.
enum class Close : std::uint8_t {
  none,
  tuple,         // an exact tuple node: TUPLEn/TUPLE or the recursion form, memoize
  args_tuple,    // a tuple saved as the arguments of `owner`
  frozenset,     // FROZENSET or the recursion form, memoize
  temp_tuple,    // a temporary tuple: TUPLEn/TUPLE, memoize without a key
};

struct Task {
  explicit Task(Step s) noexcept : step(s) {}
  Step step;
  Close close = Close::none;
  std::uint8_t phase = 0;
  bool flag = false;
  Slot slot;              // the node the task belongs to
  const char* base = nullptr;
  std::size_t stride = 0;
  std::size_t pos = 0;
  std::size_t end = 0;
  std::size_t batch_end = 0;
  std::size_t batch_start = 0;
  const void* owner = nullptr;  // args_tuple: the object node whose arguments these are
  bool reentrant = false;       // its node may be entered again before it is memoized
};

std::string_view string_of(Slot s) {
  const auto& n = detail::node<StringNode>(s);
  return {n.data, n.size};
}

// Whether the UTF-8 text, encoded as latin-1, is `bytes`.
bool latin1_text_equals(std::string_view utf8, std::string_view bytes) {
  std::size_t i = 0;
  for (char ch : bytes) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      if (i >= utf8.size() || static_cast<unsigned char>(utf8[i]) != c) return false;
      ++i;
    } else {
      if (i + 1 >= utf8.size() || static_cast<unsigned char>(utf8[i]) != (0xC0 | (c >> 6)) ||
          static_cast<unsigned char>(utf8[i + 1]) != (0x80 | (c & 0x3F)))
        return false;
      i += 2;
    }
  }
  return i == utf8.size();
}

// Item i of an array of cells, or of the keys of an array of entries (a stride apart).
Slot slot_at(const char* base, std::size_t stride, std::size_t i) {
  return detail::load(*reinterpret_cast<const detail::Cell*>(base + i * stride));
}

// ---------------------------------------------------------------------------------------------

struct Writer {
  explicit Writer(WriteOptions o) : options(std::move(o)) {}

  WriteOptions options;
  int protocol = 4;
  IdentityMemo memo;
  std::uint64_t next_index = 0;
  // Persistent-id objects already written. CPython never memoizes a persistent id, so a graph
  // that shares one (only a hand-made pickle can) is written again at every reference; when the
  // shared object has state or a pid that is itself an object, that repetition can be endless (a
  // BUILD whose state is the object) or exponential (chains of pids), so it is refused.
  std::unordered_set<const void*> persistent_ids_written;
  // Class → 1 + position in singleton_entries; allocated on first use (most pickles never need it).
  std::unique_ptr<std::uint16_t[]> singleton_slots;
  std::deque<SingletonEntry> singleton_entries;  // a deque: references stay valid as it grows
  std::unordered_map<std::string, SingletonEntry> module_names;  // interned module-name strs
  std::unordered_map<std::string, std::uint64_t> globals_by_name;  // "module\nqualname" → index
  std::vector<Value> keepalive;  // values whose nodes are memo keys (dumped values, persistent ids)
  Output out;
  std::vector<Task> stack;
  // With reloaded_set_order: the sets' items in CPython's iteration order, alive until the dump ends.
  std::deque<std::vector<DictEntry>> reordered_sets;
  Heap* heap = nullptr;
  // The argument tuples of the calls the reader folded (Heap::folded_arguments) of the value being
  // written, by built node.
  std::unordered_map<const void*, Slot> folded;
  bool cpython_identities = false;
  bool streaming = false;  // a Pickler (the memo persists across dumps)
  const void* root_node = nullptr;  // the node of the value being written

  void configure();
  void begin(const Value& value);
  void run();
  std::string finish();
  // dumps() reuses one Writer per thread: a fresh state for each call that keeps memory.
  void start_call(const WriteOptions& o) {
    options = o;
    memo.empty_keeping_table();
    next_index = 0;
    if (singleton_slots)
      std::fill_n(singleton_slots.get(), static_cast<std::size_t>(SingletonClass::count), std::uint16_t{0});
    if (!singleton_entries.empty()) singleton_entries.clear();
    if (!module_names.empty()) module_names.clear();  // clear() zeroes the buckets even when empty
    if (!globals_by_name.empty()) globals_by_name.clear();
    configure();
  }
  // Drop what refers to the caller's values; an output buffer over 256 MiB is freed, so an idle
  // thread does not hold one.
  void end_call() noexcept {
    keepalive.clear();
    if (!reordered_sets.empty()) reordered_sets.clear();
    if (!persistent_ids_written.empty()) persistent_ids_written.clear();
    heap = nullptr;
    out.reset();
    out.release_if_larger_than(std::size_t{256} << 20);
  }
  void reset_memo() {
    memo.clear();
    next_index = 0;
    singleton_slots.reset();
    singleton_entries.clear();
    module_names.clear();
    globals_by_name.clear();
    keepalive.clear();
  }

  // --- memo ------------------------------------------------------------------------------
  std::uint64_t memoize_anonymous() {
    std::uint64_t index = next_index++;
    detail::emit_memoize(out, protocol, index);
    return index;
  }
  std::uint64_t memoize(const void* key) {
    std::uint64_t index = memoize_anonymous();
    memo.insert(key, index);
    return index;
  }
  void get(std::uint64_t index) { detail::emit_get(out, protocol, index); }

  SingletonEntry& singleton(SingletonClass c, int offset = 0) {
    if (!singleton_slots)
      singleton_slots = std::make_unique<std::uint16_t[]>(static_cast<std::size_t>(SingletonClass::count));
    std::uint16_t& slot = singleton_slots[static_cast<std::size_t>(c) + static_cast<std::size_t>(offset)];
    if (slot == 0) {
      singleton_entries.emplace_back();
      slot = static_cast<std::uint16_t>(singleton_entries.size());
    }
    return singleton_entries[slot - 1u];
  }
  // A graph node that CPython would hold as the shared object `entry` stands for. With
  // cpython_identities every such node is that object. Otherwise graph identities are taken as
  // exact, and a node is linked only to a singleton first written as a temporary (the reader folded
  // away the reduction that referenced the node): the first node of the class claims it.
  // Returns true when a GET was written.
  bool claim(SingletonEntry& entry, const void* key) {
    if (entry.index == IdentityMemo::missing) return false;
    if (!cpython_identities && entry.claimed) return false;
    entry.claimed = true;
    get(entry.index);
    memo.insert(key, entry.index);
    return true;
  }
  void record(SingletonEntry& entry, std::uint64_t index) {
    if (entry.index == IdentityMemo::missing) {
      entry.index = index;
      entry.claimed = true;
    }
  }
  // A temporary that is a shared object in CPython: GET when already written.
  bool temp_singleton(SingletonEntry& entry) {
    if (entry.index == IdentityMemo::missing) return false;
    get(entry.index);
    return true;
  }

  // --- the per-item fast path ---------------------------------------------------------------
  // What save() writes for the commonest items, inlined into the container loops: atoms and, at
  // protocol ≥ 4, strs of 3–255 bytes (shorter ones may be CPython singletons, see
  // save_str_node). Returns false for everything else, which then goes through save().
  bool fast_items = false;  // protocol ≥ 2 and no persistent_id (configure)
  bool fast_strs = false;   // protocol ≥ 4 as well
  // save_inline of what a container's cell holds, without unpacking the common atoms (the atom
  // cases repeat save_inline's: going through load() and save_inline made MICRO_DICT's dumps 42%
  // more instructions).
  [[gnu::always_inline]] bool save_inline_cell(detail::Cell c) {
    if (!fast_items) return false;
    switch (c.tag()) {
      case Tag::small_int:
        out.boundary();
        detail::emit_int_protocol2(out, c.inline_int_value());
        return true;
      case Tag::none:
        out.boundary();
        out.put(op(Op::NONE));
        return true;
      case Tag::boolean:
        out.boundary();
        out.put(c.bool_value() ? op(Op::NEWTRUE) : op(Op::NEWFALSE));
        return true;
      case Tag::str: return save_inline(detail::load(c));
      default: return c.tag() == detail::boxed_float || c.tag() == detail::boxed_int ? save_inline(detail::load(c)) : false;
    }
  }
  // Runs `container`'s cells base[pos], base[pos + stride], … below `end` through save_inline_cell
  // and save: the loop of the list, tuple and set steps. Returns false when a save pushed a task
  // (the step resumes at `pos` later).
  bool save_cells(const char* base, std::size_t stride, std::size_t& pos, std::size_t end) {
    const std::size_t depth = stack.size();
    std::size_t i = pos;
    while (i < end) {
      if (fast_items) i = write_atom_run(base, stride, i, end);
      if (i == end) break;
      const detail::Cell c = *reinterpret_cast<const detail::Cell*>(base + i * stride);
      ++i;
      if (save_inline_cell(c)) continue;
      pos = i;
      save(detail::load(c));
      if (stack.size() != depth) return false;
    }
    pos = i;
    return true;
  }
  // Writes the cells from i on while they are None, bools, floats or ints of the int64 range (at
  // most 10 bytes each) straight into the output, checking room once per run and the frame boundary
  // against a pointer; returns the position of the first cell it did not write.
  static bool is_run_atom(detail::Cell c) noexcept {
    const Tag tag = c.tag();
    return tag == Tag::small_int || tag == Tag::none || tag == Tag::boolean || tag == detail::boxed_float ||
           tag == detail::boxed_int;
  }
  std::size_t write_atom_run(const char* base, std::size_t stride, std::size_t i, std::size_t end) {
    constexpr std::size_t run_items = 256;
    // A run costs a room check: not worth it for an item of another kind.
    while (i < end && is_run_atom(*reinterpret_cast<const detail::Cell*>(base + i * stride))) {
      const std::size_t stop = std::min(end, i + run_items);
      char* p = out.run_begin((stop - i) * 10);
      const char* const frame_full = out.run_boundary();
      for (; i < stop && p < frame_full; ++i) {
        const detail::Cell c = *reinterpret_cast<const detail::Cell*>(base + i * stride);
        const Tag tag = c.tag();
        if (tag == Tag::small_int) {
          p = detail::put_int_protocol2(p, c.inline_int_value());
        } else if (tag == Tag::none) {
          *p++ = op(Op::NONE);
        } else if (tag == Tag::boolean) {
          *p++ = c.bool_value() ? op(Op::NEWTRUE) : op(Op::NEWFALSE);
        } else if (tag == detail::boxed_float) {
          p = detail::put_binfloat(p, *static_cast<const double*>(c.pointer()));
        } else if (tag == detail::boxed_int) {
          p = detail::put_int_protocol2(p, *static_cast<const std::int64_t*>(c.pointer()));
        } else {
          break;
        }
      }
      out.run_end(p);
      if (i < stop) return i;  // another kind of item, or a full frame (save_inline_cell commits it)
    }
    return i;
  }

  [[gnu::always_inline]] bool save_inline(Slot s) {
    if (!fast_items) return false;
    switch (s.tag) {
      case Tag::none:
        out.boundary();
        out.put(op(Op::NONE));
        return true;
      case Tag::boolean:
        out.boundary();
        out.put(s.b ? op(Op::NEWTRUE) : op(Op::NEWFALSE));
        return true;
      case Tag::small_int:
        out.boundary();
        detail::emit_int_protocol2(out, s.i);
        return true;
      case Tag::floating:
        out.boundary();
        detail::emit_float(out, 2, s.f);
        return true;
      case Tag::str: {
        if (!fast_strs) return false;
        const auto& n = detail::node<StringNode>(s);
        if (n.size > 0xFF) return false;
        // '' and 1-character latin-1 strs (1 or 2 bytes) may stand for CPython's cached objects:
        // written by save_str_node, unless memoized already (what save does first).
        if (n.size == 0 || n.size == 1 ||
            (n.size == 2 && (static_cast<unsigned char>(n.data[0]) & 0xFE) == 0xC2)) {
          const std::uint64_t hit = memo.find(s.p);
          if (hit == IdentityMemo::missing) return false;
          out.boundary();
          get(hit);
          return true;
        }
        out.boundary();
        if (std::uint64_t hit = memo.find_or_insert(s.p, next_index); hit != IdentityMemo::missing) {
          get(hit);
          return true;
        }
        ++next_index;
        char* p = out.reserve(3 + n.size);
        p[0] = op(Op::SHORT_BINUNICODE);
        p[1] = static_cast<char>(n.size);
        std::memcpy(p + 2, n.data, n.size);
        p[2 + n.size] = op(Op::MEMOIZE);
        return true;
      }
      default:
        return false;
    }
  }

  // --- scalars ---------------------------------------------------------------------------
  void save_bool(bool b) { detail::emit_bool(out, protocol, b); }
  void save_small_int(std::int64_t v) { detail::emit_small_int(out, protocol, v); }
  void save_big_int(const detail::BigIntNode& n) { detail::emit_big_int(out, protocol, n); }
  void save_float(double f) { detail::emit_float(out, protocol, f); }
  // The opcodes of a str (without memoizing).
  void write_str(std::string_view utf8) { detail::emit_str(out, protocol, utf8); }
  // The opcodes of a bytes, protocol ≥ 3 (without memoizing).
  void write_bytes_opcode(std::string_view data) { detail::emit_bytes_opcode(out, protocol, data); }
  void write_bytearray8(std::string_view data) { detail::emit_bytearray8(out, data); }

  // --- temporaries (objects CPython creates while reducing) -------------------------------
  // A fresh str (memoized, never shared).
  void save_temp_str(std::string_view utf8) {
    out.boundary();
    write_str(utf8);
    memoize_anonymous();
  }
  // The latin-1 str CPython decodes from a bytes at protocol < 3.
  void save_temp_latin1(std::string_view data) {
    out.boundary();
    if (data.size() == 1) {
      SingletonEntry& e = singleton(SingletonClass::latin1_char, static_cast<unsigned char>(data[0]));
      if (temp_singleton(e)) return;
      std::string utf8;
      auto c = static_cast<unsigned char>(data[0]);
      if (c < 0x80) {
        utf8 += static_cast<char>(c);
      } else {
        utf8 += static_cast<char>(0xC0 | (c >> 6));
        utf8 += static_cast<char>(0x80 | (c & 0x3F));
      }
      write_str(utf8);
      e.index = memoize_anonymous();
      e.claimed = false;
      return;
    }
    std::string utf8;
    utf8.reserve(data.size() * 2);
    for (char ch : data) {
      auto c = static_cast<unsigned char>(ch);
      if (c < 0x80) {
        utf8 += static_cast<char>(c);
      } else {
        utf8 += static_cast<char>(0xC0 | (c >> 6));
        utf8 += static_cast<char>(0x80 | (c & 0x3F));
      }
    }
    write_str(utf8);
    memoize_anonymous();
  }
  void save_temp_latin1_name() {
    out.boundary();
    SingletonEntry& e = singleton(SingletonClass::latin1_name);
    if (temp_singleton(e)) return;
    write_str("latin1");
    e.index = memoize_anonymous();
    e.claimed = false;
  }
  // A module-name str (interned in CPython: classes of one module share their __module__).
  void save_temp_module_name(std::string_view module, std::string_view qualname) {
    out.boundary();
    SingletonEntry& e = module_names[module_name_key(module, qualname)];
    if (temp_singleton(e)) return;
    write_str(module);
    e.index = memoize_anonymous();
    e.claimed = false;
  }
  // With graph identities, a value loaded from a pickle is written with the arguments its folded
  // calls had, as those objects: the argument tuple of `built` when it has n items.
  void learn_folded_arguments() {
    // Learnt afresh for every value: a region freed since may have had the same address.
    if (!folded.empty()) folded.clear();
    const Heap* root = heap != nullptr ? heap->root() : nullptr;
    if (cpython_identities || root == nullptr || root->folded_arguments.empty()) return;
    folded.reserve(root->folded_arguments.size());
    for (const auto& [built, args] : root->folded_arguments) folded.emplace(built, args);
  }
  const SeqNode* folded_arguments(const void* built, std::size_t n) const {
    if (folded.empty()) return nullptr;
    auto it = folded.find(built);
    if (it == folded.end() || it->second.tag != Tag::tuple) return nullptr;
    const auto& args = detail::node<SeqNode>(it->second);
    return args.size == n ? &args : nullptr;
  }
  // Memoizes a folded call's argument tuple under its node, unless it was written before.
  void close_folded_tuple(std::size_t n, const SeqNode& args) {
    write_tuple_opcode(n);
    std::uint64_t index = memoize_anonymous();
    if (memo.find(&args) == IdentityMemo::missing) memo.insert(&args, index);
  }
  void write_empty_tuple() {
    if (protocol >= 1) {
      out.put(op(Op::EMPTY_TUPLE));
    } else {
      out.put(op(Op::MARK), op(Op::TUPLE));
    }
  }
  // Closing a temporary tuple of n items (its MARK was written before the items below protocol 2).
  void close_temp_tuple(std::size_t n) {
    write_tuple_opcode(n);
    memoize_anonymous();
  }
  // The opcode that makes a tuple of the n items on the stack: TUPLE1-3 from protocol 2, else
  // TUPLE (after a MARK: temp_tuple_needs_mark).
  void write_tuple_opcode(std::size_t n) {
    if (protocol >= 2 && n >= 1 && n <= 3) {
      static constexpr char ops[] = {0, op(Op::TUPLE1), op(Op::TUPLE2), op(Op::TUPLE3)};
      out.put(ops[n]);
    } else {
      out.put(op(Op::TUPLE));
    }
  }
  bool temp_tuple_needs_mark(std::size_t n) const { return !(protocol >= 2 && n <= 3); }

  // A global by name (a type or function CPython refers to; one object per name).
  // `node`: the graph node, if any. `module_slot`/`name_slot`: its str nodes (protocol ≥ 4).
  void save_global(std::string_view module, std::string_view qualname, const void* node,
                   const Slot* module_slot, const Slot* name_slot);
  void write_global_opcode(std::string_view module, std::string_view name);
  void save_builtin_global(std::string_view name) {
    out.boundary();
    save_global("builtins", name, nullptr, nullptr, nullptr);
  }

  // --- graph values ------------------------------------------------------------------------
  void save(Slot s, bool consult_persistent_id = true, const void* args_owner = nullptr);
  void save_str_node(Slot s);
  void save_bytes_node(Slot s);
  void save_bytearray_node(Slot s);
  void save_tuple_node(Slot s, const void* args_owner);
  void save_list_node(Slot s);
  void save_dict_node(Slot s);
  void save_set_node(Slot s, bool frozen);
  void save_global_node(Slot s);
  void save_object_node(Slot s);
  void write_getattr_chain(Slot s, const std::vector<const ObjectNode*>& chain);
  void save_buffer_node(Slot s);
  bool save_persistent(Slot s);

  // PERSID: str(pid) as ASCII text (repr() for anything but a str, as str() is in Python).
  void write_persid_text(const Value& pid) {
    std::string text = pid.is_str() ? std::string(pid.as_str()) : repr(pid);
    if (!is_ascii(text) || text.find('\n') != std::string::npos)
      throw PicklingError("persistent IDs in protocol 0 must be ASCII strings");
    out.put(op(Op::PERSID));
    out.write(text);
    out.put('\n');
  }

  void step_seq(Task& t);
  void step_list(Task& t);
  void step_dict(Task& t);
  void step_set(Task& t);
  void step_object(Task& t);
  void step_close_reduce(Task& t);

  void push(Task t) {
    t.reentrant = may_be_reentered(t);
    if (t.reentrant) memo.suspend_elision();
    stack.push_back(t);
  }
  void pop_task() {
    if (stack.back().reentrant) memo.resume_elision();
    stack.pop_back();
  }
  void clear_tasks() {
    stack.clear();
    memo.reset_elision();
  }
  // The task of a node memoized after its children, that other nodes also hold (or the value
  // written, held by anything): see IdentityMemo::suspend_elision.
  bool may_be_reentered(const Task& t) const noexcept {
    const bool memoized_after =
        t.step == Step::object || t.step == Step::close_reduce ||
        (t.step == Step::seq_items &&
         (t.close == Close::tuple || t.close == Close::args_tuple || t.close == Close::frozenset));
    if (!memoized_after || !t.slot.is_node()) return false;
    const std::uint8_t refs = static_cast<const detail::Node*>(t.slot.p)->refs;
    return refs >= 2 || (refs == 1 && t.slot.p == root_node);
  }
  Value value_of(Slot s) const { return Value(s, s.is_node() ? heap : nullptr); }
};

// ---------------------------------------------------------------------------------------------

void Writer::write_global_opcode(std::string_view module, std::string_view name) {
  if (protocol < 3) {
    if (options.fix_imports) {
      detail::QualifiedName mapped = detail::py3_to_py2({module, name}, options.target_minor);
      module = mapped.module;
      name = mapped.name;
    }
    if (!is_ascii(module))
      throw PicklingError("can't pickle module identifier '" + std::string(module) +
                          "' using pickle protocol " + std::to_string(protocol));
    if (!is_ascii(name))
      throw PicklingError("can't pickle global identifier '" + std::string(name) +
                          "' using pickle protocol " + std::to_string(protocol));
  }
  // GLOBAL's two text lines cannot hold an empty or multi-line name: such a pickle would not load
  // (CPython's pickler fails the attribute lookup for them instead).
  if (module.empty() || name.empty() || module.find('\n') != std::string_view::npos ||
      name.find('\n') != std::string_view::npos) {
    throw PicklingError("can't pickle global '" + std::string(module) + "." + std::string(name) +
                        "' using pickle protocol " + std::to_string(protocol) +
                        ": GLOBAL needs a non-empty module and name without newlines");
  }
  char* p = out.reserve(3 + module.size() + name.size());
  p[0] = op(Op::GLOBAL);
  std::memcpy(p + 1, module.data(), module.size());
  p[1 + module.size()] = '\n';
  std::memcpy(p + 2 + module.size(), name.data(), name.size());
  p[2 + module.size() + name.size()] = '\n';
}

void Writer::save_global(std::string_view module, std::string_view qualname, const void* node,
                                 const Slot* module_slot, const Slot* name_slot) {
  std::string key;
  key.reserve(module.size() + qualname.size() + 1);
  key.append(module).append(1, '\n').append(qualname);
  if (auto it = globals_by_name.find(key); it != globals_by_name.end()) {
    get(it->second);
    if (node != nullptr) memo.insert(node, it->second);
    return;
  }
  auto remember = [&](std::uint64_t index) {
    globals_by_name.emplace(key, index);
    if (node != nullptr) memo.insert(node, index);
  };

  if (protocol >= 4) {
    // Module and name are saved as ordinary str objects.
    if (module_slot != nullptr) {
      out.boundary();
      if (std::uint64_t hit = memo.find(module_slot->p); hit != IdentityMemo::missing) {
        get(hit);
      } else {
        SingletonEntry& e = module_names[module_name_key(module, qualname)];
        if (!claim(e, module_slot->p)) {
          write_str(module);
          std::uint64_t index = memoize(module_slot->p);
          record(e, index);
        }
      }
    } else {
      save_temp_module_name(module, qualname);
    }
    if (name_slot != nullptr) {
      save(*name_slot, false);
      // The name is a str node: save() wrote it inline (str nodes never push tasks).
    } else {
      save_temp_str(qualname);
    }
    out.put(op(Op::STACK_GLOBAL));
    remember(memoize_anonymous());
    return;
  }

  std::size_t dot = qualname.find('.');
  if (dot == std::string_view::npos) {
    write_global_opcode(module, qualname);
    remember(memoize_anonymous());
    return;
  }

  // A nested name below protocol 4: getattr(parent, name) for each component after the first.
  // Components are found without recursion: levels[0] is the top-level name.
  std::vector<std::string_view> prefixes;  // qualname prefixes, shortest first
  for (std::size_t i = 0; i <= qualname.size(); ++i)
    if (i == qualname.size() || qualname[i] == '.') prefixes.push_back(qualname.substr(0, i));
  std::size_t levels = prefixes.size();  // the last one is qualname itself

  if (options.target_minor >= 13) {
    for (std::size_t i = 1; i < levels; ++i) {
      save_builtin_global("getattr");
      if (protocol < 2) out.put(op(Op::MARK));
    }
    write_global_opcode(module, prefixes[0]);
    for (std::size_t i = 1; i < levels; ++i) {
      std::size_t from = prefixes[i - 1].size() + 1;
      save_temp_str(qualname.substr(from, prefixes[i].size() - from));
      out.put(protocol >= 2 ? op(Op::TUPLE2) : op(Op::TUPLE));
      out.put(op(Op::REDUCE));
    }
    remember(memoize_anonymous());
    return;
  }

  // 3.8–3.12: the parent is saved as an object of its own (memoized); start from the longest
  // prefix already written.
  std::size_t known = 0;  // prefixes[known] is written (or will be written as the base)
  std::uint64_t known_index = IdentityMemo::missing;
  for (std::size_t i = levels - 1; i-- > 0;) {
    std::string prefix_key = std::string(module) + '\n' + std::string(prefixes[i]);
    if (auto it = globals_by_name.find(prefix_key); it != globals_by_name.end()) {
      known = i;
      known_index = it->second;
      break;
    }
  }
  for (std::size_t i = known + 1; i < levels; ++i) {
    save_builtin_global("getattr");
    out.boundary();  // save of the (parent, name) tuple
    if (protocol < 2) out.put(op(Op::MARK));
    if (i > known + 1) out.boundary();  // save of the parent, itself reduced
  }
  out.boundary();
  if (known_index != IdentityMemo::missing) {
    get(known_index);
  } else {
    write_global_opcode(module, prefixes[0]);
    globals_by_name.emplace(std::string(module) + '\n' + std::string(prefixes[0]), memoize_anonymous());
  }
  for (std::size_t i = known + 1; i < levels; ++i) {
    std::size_t from = prefixes[i - 1].size() + 1;
    save_temp_str(qualname.substr(from, prefixes[i].size() - from));
    out.put(protocol >= 2 ? op(Op::TUPLE2) : op(Op::TUPLE));
    memoize_anonymous();
    out.put(op(Op::REDUCE));
    std::uint64_t index = memoize_anonymous();
    if (i + 1 < levels) {
      globals_by_name.emplace(std::string(module) + '\n' + std::string(prefixes[i]), index);
    } else {
      remember(index);
    }
  }
}

// ---------------------------------------------------------------------------------------------

bool Writer::save_persistent(Slot s) {
  std::optional<Value> pid = options.persistent_id(value_of(s));
  if (!pid) return false;
  keepalive.push_back(*pid);
  if (protocol == 0) {
    write_persid_text(*pid);
    return true;
  }
  // The pid and everything in it are saved without consulting persistent_id. BINPERSID follows
  // once the pid is complete: queue it under the pid's own tasks.
  Task t(Step::seq_items);
  t.close = Close::none;
  t.base = nullptr;
  t.pos = t.end = 0;
  t.phase = 1;  // marks "emit BINPERSID when done"
  push(t);
  Heap* saved_heap = heap;
  heap = pid->heap();
  save(pid->slot(), false);
  heap = saved_heap;
  return true;
}

void Writer::save(Slot s, bool consult_persistent_id, const void* args_owner) {
  out.boundary();
  if (consult_persistent_id && options.persistent_id && save_persistent(s)) return;
  switch (s.tag) {
    case Tag::none:
      out.put(op(Op::NONE));
      return;
    case Tag::boolean:
      save_bool(s.b);
      return;
    case Tag::small_int:
      save_small_int(s.i);
      return;
    case Tag::floating:
      save_float(s.f);
      return;
    case Tag::big_int:
      save_big_int(detail::node<detail::BigIntNode>(s));
      return;
    default:
      break;
  }
  if (std::uint64_t hit = memo.find(s.p); hit != IdentityMemo::missing) {
    get(hit);
    return;
  }
  switch (s.tag) {
    case Tag::str:
      save_str_node(s);
      return;
    case Tag::bytes:
      save_bytes_node(s);
      return;
    case Tag::bytearray:
      save_bytearray_node(s);
      return;
    case Tag::tuple:
      save_tuple_node(s, args_owner);
      return;
    case Tag::list:
      save_list_node(s);
      return;
    case Tag::dict:
      save_dict_node(s);
      return;
    case Tag::set:
      save_set_node(s, false);
      return;
    case Tag::frozenset:
      save_set_node(s, true);
      return;
    case Tag::global:
      save_global_node(s);
      return;
    case Tag::object:
      save_object_node(s);
      return;
    case Tag::buffer:
      save_buffer_node(s);
      return;
    default:
      throw PicklingError("cannot pickle a value of unknown kind");
  }
}

void Writer::save_str_node(Slot s) {
  const auto& n = detail::node<StringNode>(s);
  std::string_view text(n.data, n.size);
  SingletonEntry* entry = nullptr;
  if (text.empty()) {
    entry = &singleton(SingletonClass::empty_str);
  } else if (int c = single_latin1_char(text); c >= 0) {
    entry = &singleton(SingletonClass::latin1_char, c);
  }
  if (entry != nullptr && claim(*entry, s.p)) return;
  {
    detail::Output::Borrowing borrow(out);  // the node's text outlives the dump
    write_str(text);
  }
  std::uint64_t index = memoize(s.p);
  if (entry != nullptr) record(*entry, index);
}

void Writer::save_bytes_node(Slot s) {
  const auto& n = detail::node<StringNode>(s);
  std::string_view data(n.data, n.size);
  SingletonEntry* entry = nullptr;
  if (data.empty()) {
    entry = &singleton(SingletonClass::empty_bytes);
  } else if (data.size() == 1) {
    entry = &singleton(SingletonClass::one_byte, static_cast<unsigned char>(data[0]));
  }
  if (entry != nullptr && claim(*entry, s.p)) return;
  if (protocol >= 3) {
    detail::Output::Borrowing borrow(out);
    write_bytes_opcode(data);
  } else if (data.empty()) {
    save_builtin_global("bytes");
    out.boundary();
    write_empty_tuple();
    out.put(op(Op::REDUCE));
  } else {
    out.boundary();
    save_global("_codecs", "encode", nullptr, nullptr, nullptr);
    out.boundary();  // the (str, 'latin1') tuple
    if (protocol < 2) out.put(op(Op::MARK));
    const SeqNode* args = folded_arguments(s.p, 2);
    const Slot text = args != nullptr ? detail::load(args->items[0]) : Slot();
    const Slot encoding = args != nullptr ? detail::load(args->items[1]) : Slot();
    if (args != nullptr && text.tag == Tag::str && encoding.tag == Tag::str &&
        string_of(encoding) == "latin1" && latin1_text_equals(string_of(text), data)) {
      save(text, false);
      save(encoding, false);
      SingletonEntry& name = singleton(SingletonClass::latin1_name);
      if (name.index == IdentityMemo::missing) name.index = memo.find(encoding.p);
      close_folded_tuple(2, *args);
    } else {
      save_temp_latin1(data);
      save_temp_latin1_name();
      close_temp_tuple(2);
    }
    out.put(op(Op::REDUCE));
  }
  std::uint64_t index = memoize(s.p);
  if (entry != nullptr) record(*entry, index);
}

void Writer::save_bytearray_node(Slot s) {
  const auto& n = detail::node<StringNode>(s);
  std::string_view data(n.data, n.size);
  if (protocol >= 5) {
    {
      detail::Output::Borrowing borrow(out);
      write_bytearray8(data);
    }
    memoize(s.p);
    return;
  }
  save_builtin_global("bytearray");
  out.boundary();
  if (data.empty()) {
    write_empty_tuple();
  } else {
    if (protocol < 2) out.put(op(Op::MARK));
    // The temporary bytes(obj) is always a fresh object, even of one byte: CPython copies the
    // buffer (PyBytes_FromObject), which bypasses its cache of 1-byte bytes.
    out.boundary();
    const SeqNode* args = folded_arguments(s.p, 1);
    const Slot source = args != nullptr ? detail::load(args->items[0]) : Slot();
    if (args != nullptr && source.tag == Tag::bytes && string_of(source) == data) {
      save(source, false);
      close_folded_tuple(1, *args);
      out.put(op(Op::REDUCE));
      memoize(s.p);
      return;
    }
    if (protocol >= 3) {
      write_bytes_opcode(data);
    } else {
      save_global("_codecs", "encode", nullptr, nullptr, nullptr);
      out.boundary();
      if (protocol < 2) out.put(op(Op::MARK));
      save_temp_latin1(data);
      save_temp_latin1_name();
      close_temp_tuple(2);
      out.put(op(Op::REDUCE));
    }
    memoize_anonymous();
    close_temp_tuple(1);
  }
  out.put(op(Op::REDUCE));
  memoize(s.p);
}

void Writer::save_tuple_node(Slot s, const void* args_owner) {
  const auto& n = detail::node<SeqNode>(s);
  if (n.size == 0) {
    write_empty_tuple();
    return;
  }
  Task t(Step::seq_items);
  t.close = args_owner != nullptr ? Close::args_tuple : Close::tuple;
  t.owner = args_owner;
  t.slot = s;
  t.base = reinterpret_cast<const char*>(n.items);
  t.stride = sizeof(detail::Cell);
  t.end = n.size;
  if (temp_tuple_needs_mark(n.size)) out.put(op(Op::MARK));
  if (fast_items && args_owner == nullptr) {
    // A tuple of atoms needs no task, and cannot have been memoized through its items.
    t.pos = write_atom_run(t.base, t.stride, 0, n.size);
    if (t.pos == n.size) {
      write_tuple_opcode(n.size);
      memoize(s.p);
      return;
    }
  }
  push(t);
}

void Writer::save_list_node(Slot s) {
  const auto& n = detail::node<SeqNode>(s);
  if (protocol >= 1) {
    out.put(op(Op::EMPTY_LIST));
  } else {
    out.put(op(Op::MARK), op(Op::LIST));
  }
  memoize(s.p);
  if (n.size == 0) return;
  Task t(Step::list_exact);
  t.slot = s;
  t.base = reinterpret_cast<const char*>(n.items);
  t.stride = sizeof(detail::Cell);
  t.end = n.size;
  if (fast_items && n.size >= 2 && n.size <= batch_size) {
    // One batch of atoms needs no task: MARK, the items, APPENDS. Otherwise the task goes on from
    // the first other item, inside the batch opened here.
    out.put(op(Op::MARK));
    t.pos = write_atom_run(t.base, t.stride, 0, n.size);
    if (t.pos == n.size) {
      out.put(op(Op::APPENDS));
      return;
    }
    t.flag = true;
    t.batch_end = n.size;
  }
  push(t);
}

void Writer::save_dict_node(Slot s) {
  const auto& n = detail::node<DictNode>(s);
  if (protocol >= 1) {
    out.put(op(Op::EMPTY_DICT));
  } else {
    out.put(op(Op::MARK), op(Op::DICT));
  }
  memoize(s.p);
  if (n.size == 0) return;
  Task t(Step::dict_exact);
  t.slot = s;
  t.base = reinterpret_cast<const char*>(n.entries);
  t.stride = sizeof(DictEntry);
  t.end = n.size;
  if (fast_items && n.size >= 2 && n.size < batch_size) {
    // One batch of atoms and short strs needs no task: MARK, the pairs, SETITEMS. Otherwise the task
    // goes on from the first other key or value, inside the batch opened here.
    out.put(op(Op::MARK));
    for (; t.pos < n.size; ++t.pos) {
      if (!save_inline_cell(n.entries[t.pos].key)) break;
      if (!save_inline_cell(n.entries[t.pos].value)) {
        t.phase = 1;  // the value of entry pos - 1 is next
        ++t.pos;
        break;
      }
    }
    if (t.pos == n.size && t.phase == 0) {
      out.put(op(Op::SETITEMS));
      return;
    }
    t.flag = true;
    t.batch_start = 0;
    t.batch_end = n.size;
  }
  push(t);
}

void Writer::save_set_node(Slot s, bool frozen) {
  const auto& n = detail::node<DictNode>(s);
  SingletonEntry* entry = nullptr;
  if (frozen && n.size == 0 && cpython_identities && options.target_minor <= 9) {
    entry = &singleton(SingletonClass::empty_frozenset);
    if (claim(*entry, s.p)) return;
  }
  const char* base = reinterpret_cast<const char*>(n.entries);
  if (options.reloaded_set_order && n.size > 1) {
    detail::FixedHashes hashes;
    if (auto order = hashes.set_positions(n)) {
      std::vector<DictEntry>& entries = reordered_sets.emplace_back();
      entries.reserve(order->size());
      for (const std::size_t position : *order) entries.push_back(n.entries[position]);
      base = reinterpret_cast<const char*>(entries.data());
    }
  }
  if (protocol >= 4) {
    if (!frozen) {
      out.put(op(Op::EMPTY_SET));
      memoize(s.p);
      if (n.size == 0) return;
      Task t(Step::set_exact);
      t.slot = s;
      t.base = base;
      t.stride = sizeof(DictEntry);
      t.end = n.size;
      push(t);
      return;
    }
    out.put(op(Op::MARK));
    Task t(Step::seq_items);
    t.close = Close::frozenset;
    t.slot = s;
    t.base = base;
    t.stride = sizeof(DictEntry);
    t.end = n.size;
    push(t);
    return;
  }
  // (set, (list(obj),)) / (frozenset, (list(obj),))
  save_builtin_global(frozen ? "frozenset" : "set");
  out.boundary();  // the 1-tuple
  if (protocol < 2) out.put(op(Op::MARK));
  Task close(Step::close_reduce);
  close.slot = s;
  close.phase = 0;
  push(close);
  out.boundary();  // the list
  if (protocol >= 1) {
    out.put(op(Op::EMPTY_LIST));
  } else {
    out.put(op(Op::MARK), op(Op::LIST));
  }
  memoize_anonymous();
  if (n.size == 0) return;
  Task t(Step::list_exact);
  t.base = base;
  t.stride = sizeof(DictEntry);
  t.end = n.size;
  push(t);
}

void Writer::step_close_reduce(Task& t) {
  // After the list of a set reduce: close the 1-tuple, REDUCE, memoize or the recursion form.
  Slot s = t.slot;
  pop_task();
  close_temp_tuple(1);
  out.put(op(Op::REDUCE));
  if (std::uint64_t hit = memo.find(s.p); hit != IdentityMemo::missing) {
    out.put(op(Op::POP));
    get(hit);
    return;
  }
  const std::uint64_t index = memoize(s.p);
  // Up to 3.9 the empty frozenset is a singleton: later empty frozensets are GETs of this one.
  if (s.tag == Tag::frozenset && detail::node<DictNode>(s).size == 0 && cpython_identities &&
      options.target_minor <= 9) {
    record(singleton(SingletonClass::empty_frozenset), index);
  }
}

void Writer::save_global_node(Slot s) {
  const auto& g = detail::node<GlobalNode>(s);
  const auto& m = detail::node<StringNode>(g.module);
  const auto& q = detail::node<StringNode>(g.name);
  save_global(std::string_view(m.data, m.size), std::string_view(q.data, q.size), s.p, &g.module,
              &g.name);
}

void Writer::save_buffer_node(Slot s) {
  const auto& b = detail::node<detail::BufferNode>(s);
  if (protocol < 5)
    throw PicklingError(options.target_minor >= 13
                            ? "PickleBuffer can only be pickled with protocol >= 5"
                            : "PickleBuffer can only pickled with protocol >= 5");
  bool in_band = true;
  if (options.buffer_callback) in_band = options.buffer_callback(value_of(s));
  std::string_view data(b.data, b.size);
  if (in_band) {
    detail::Output::Borrowing borrow(out);
    if (b.readonly) {
      write_bytes_opcode(data);
    } else {
      write_bytearray8(data);
    }
    memoize(s.p);
    return;
  }
  out.put(op(Op::NEXT_BUFFER));
  if (b.readonly) out.put(op(Op::READONLY_BUFFER));
}

namespace {

bool str_equals(Slot s, std::string_view text) {
  if (s.tag != Tag::str) return false;
  const auto& n = detail::node<StringNode>(s);
  return std::string_view(n.data, n.size) == text;
}

// `getattr(parent, 'name')` with parent a global or another such call: how CPython ≤ 3.12 writes
// a nested qualified name below protocol 4, and what the reader loads from 3.13's form. Returns the
// calls from the outermost inwards, or nothing.
std::vector<const ObjectNode*> getattr_chain(Slot s) {
  std::vector<const ObjectNode*> chain;
  for (;;) {
    if (s.tag != Tag::object) return {};
    const auto& o = detail::node<ObjectNode>(s);
    if (o.form != ObjectForm::reduce || o.op_count != 0 || o.callable.tag != Tag::global) return {};
    const auto& g = detail::node<GlobalNode>(o.callable);
    if (!str_equals(g.module, "builtins") || !str_equals(g.name, "getattr")) return {};
    if (o.args.tag != Tag::tuple) return {};
    const auto& args = detail::node<SeqNode>(o.args);
    if (args.size != 2 || args.items[1].tag() != Tag::str) return {};
    chain.push_back(&o);
    const Slot target = detail::load(args.items[0]);
    if (target.tag == Tag::global) {
      // Methods of builtin types (dict.get, int.from_bytes) reduce to getattr explicitly, which
      // memoizes as usual; the graph cannot tell the two apart, the module is a good guess.
      if (str_equals(detail::node<GlobalNode>(target).module, "builtins")) return {};
      return chain;
    }
    s = target;
  }
}

}  // namespace

// 3.13's nested-name form below protocol 4: every getattr first, the top-level global written
// without memoizing it, then each name with TUPLE2 (TUPLE below protocol 2) and REDUCE, none of them
// memoized but the final object.
void Writer::write_getattr_chain(Slot s, const std::vector<const ObjectNode*>& chain) {
  for (const ObjectNode* level : chain) {
    save(level->callable);
    if (protocol < 2) out.put(op(Op::MARK));
  }
  const auto& base = detail::node<GlobalNode>(detail::load(detail::node<SeqNode>(chain.back()->args).items[0]));
  const auto& m = detail::node<StringNode>(base.module);
  const auto& q = detail::node<StringNode>(base.name);
  write_global_opcode(std::string_view(m.data, m.size), std::string_view(q.data, q.size));
  for (std::size_t i = chain.size(); i-- > 0;) {
    save(detail::load(detail::node<SeqNode>(chain[i]->args).items[1]));
    out.put(protocol >= 2 ? op(Op::TUPLE2) : op(Op::TUPLE));
    out.put(op(Op::REDUCE));
  }
  memoize(s.p);
}

void Writer::save_object_node(Slot s) {
  const auto& o = detail::node<ObjectNode>(s);
  if (options.target_minor >= 13 && protocol < 4 && o.form == ObjectForm::reduce) {
    std::vector<const ObjectNode*> chain = getattr_chain(s);
    if (!chain.empty()) {
      write_getattr_chain(s, chain);
      return;
    }
  }
  Task t(Step::object);
  t.slot = s;
  t.phase = 0;
  switch (o.form) {
    case ObjectForm::ext: {
      std::int32_t code = o.ext_code;
      if (protocol >= 2) {
        if (code >= 0 && code <= 0xFF) {
          out.put(op(Op::EXT1), static_cast<char>(code));
        } else if (code >= 0 && code <= 0xFFFF) {
          char* p = out.reserve(3);
          p[0] = op(Op::EXT2);
          p[1] = static_cast<char>(code);
          p[2] = static_cast<char>(code >> 8);
        } else {
          out.op_u32(op(Op::EXT4), static_cast<std::uint32_t>(code));
        }
        t.phase = 10;  // straight to the ops
        push(t);
        return;
      }
      // No EXT opcodes below protocol 2: the global itself.
      t.phase = 11;
      push(t);
      return;
    }
    case ObjectForm::persid:
    case ObjectForm::binpersid:
      if (!persistent_ids_written.insert(s.p).second &&
          (o.op_count != 0 || (o.args.is_node() && o.args.tag != Tag::str &&
                               o.args.tag != Tag::bytes && o.args.tag != Tag::big_int))) {
        throw PicklingError(
            "a persistent-id object with state or an object pid is referenced more than once; "
            "pickle has no way to share it (CPython never memoizes persistent ids)");
      }
      if (protocol == 0) {
        write_persid_text(value_of(o.args));
        t.phase = 10;
        push(t);
        return;
      }
      t.phase = 20;  // BINPERSID form
      push(t);
      return;
    case ObjectForm::inst:
    case ObjectForm::obj:
      out.put(op(Op::MARK));
      push(t);
      return;
    default:
      push(t);
      return;
  }
}

// Object creation phases:
//   reduce:    0 save callable, 1 save args, 2 REDUCE + memo
//   newobj:    0 save cls, 1 save args, 2 NEWOBJ + memo           (protocol < 2: copyreg.__newobj__)
//   newobj_ex: 0 save cls, 1 save args, 3 save kwargs, 2 NEWOBJ_EX + memo
//   inst:      (MARK written) 30.. save each arg, then INST module name + memo
//   obj:       (MARK written) 0 save cls, 30.. args, then OBJ + memo
//   ext/persid: 10 ops; 11 global below protocol 2; 20 save pid, 21 BINPERSID
//   10: the ops, `pos` = next op
void Writer::step_object(Task& t) {
  const auto& o = detail::node<ObjectNode>(t.slot);
  // Forms that write the items of the argument tuple or keyword dict, not the tuple or dict
  // itself, walk those items again when the graph holds the tuple or dict elsewhere too.
  const bool copies_arguments = (t.phase >= 29 && t.phase <= 30) || (t.phase >= 40 && t.phase <= 41) ||
                                (t.phase >= 60 && t.phase <= 61);
  if (copies_arguments && !t.reentrant) {
    t.reentrant = true;
    memo.suspend_elision();
  }
  switch (t.phase) {
    case 0: {
      if (o.form == ObjectForm::newobj && protocol < 2) {
        // copyreg.__newobj__(cls, *args)
        t.phase = 40;
        out.boundary();
        save_global("copyreg", "__newobj__", nullptr, nullptr, nullptr);
        return;
      }
      if (o.form == ObjectForm::newobj_ex && protocol >= 2 && protocol < 4 &&
          o.callable.tag == Tag::global) {
        t.phase = 60;
        step_object(t);
        return;
      }
      if (o.form == ObjectForm::newobj_ex && protocol < 4) {
        // Generic reduce with copyreg.__newobj_ex__ and the tuple (cls, args, kwargs).
        t.phase = 50;
        out.boundary();
        save_global("copyreg", "__newobj_ex__", nullptr, nullptr, nullptr);
        return;
      }
      t.phase = o.form == ObjectForm::inst ? 30 : (o.form == ObjectForm::obj ? 29 : 1);
      if (o.form == ObjectForm::inst) return;  // INST has no callable on the stack
      save(o.callable);
      return;
    }
    case 1:
      t.phase = o.form == ObjectForm::newobj_ex ? 3 : 2;
      save(o.args, true, t.slot.p);
      return;
    case 3:
      t.phase = 2;
      save(o.kwargs);
      return;
    case 29:
      t.phase = 30;
      t.pos = 0;
      [[fallthrough]];
    case 30: {
      // Arguments of INST / OBJ, spread on the stack.
      std::size_t count = o.args.tag == Tag::tuple ? detail::node<SeqNode>(o.args).size : 0;
      if (t.pos < count) {
        Slot item = detail::load(detail::node<SeqNode>(o.args).items[t.pos++]);
        save(item);
        return;
      }
      if (o.form == ObjectForm::inst) {
        const auto& g = detail::node<GlobalNode>(o.callable);
        const auto& m = detail::node<StringNode>(g.module);
        const auto& q = detail::node<StringNode>(g.name);
        std::string text = "i";
        text.append(m.data, m.size).append(1, '\n').append(q.data, q.size).append(1, '\n');
        out.write(text);
      } else {
        out.put(op(Op::OBJ));
      }
      t.phase = 2;
      [[fallthrough]];
    }
    case 2: {
      if (o.form == ObjectForm::reduce || o.form == ObjectForm::newobj ||
          o.form == ObjectForm::newobj_ex) {
        out.put(o.form == ObjectForm::reduce   ? op(Op::REDUCE)
                : o.form == ObjectForm::newobj ? op(Op::NEWOBJ)
                                               : op(Op::NEWOBJ_EX));
      }
      if (std::uint64_t hit = memo.find(t.slot.p); hit != IdentityMemo::missing) {
        // Reached again while saving its own callable/arguments: CPython discards this copy
        // and writes neither list/dict items nor state.
        out.put(op(Op::POP));
        get(hit);
        pop_task();
        return;
      }
      memoize(t.slot.p);
      t.phase = 10;
      t.pos = 0;
      [[fallthrough]];
    }
    case 10: {
      // The ops, batched like CPython's generic list/dict items (§7.4): `batch_end` ends the batch
      // being written, `end` holds its closing opcode, `flag` = the value of a SETITEM is next.
      if (t.flag) {
        t.flag = false;
        save(o.ops[t.pos - 1].second);
        return;
      }
      if (t.pos < t.batch_end) {
        const ObjectOpEntry& e = o.ops[t.pos++];
        t.flag = e.op == ObjectOp::setitem;
        save(e.first);
        return;
      }
      if (t.end != 0) {
        out.put(static_cast<char>(t.end));
        t.end = 0;
      }
      if (t.pos >= o.op_count) {
        pop_task();
        return;
      }
      const ObjectOpEntry& e = o.ops[t.pos];
      if (e.op == ObjectOp::build) {
        t.batch_end = t.pos + 1;
        t.end = static_cast<unsigned char>(op(Op::BUILD));
        return;
      }
      if (e.op == ObjectOp::state_setter) {
        t.phase = 12;
        return;
      }
      std::size_t run = t.pos;
      while (run < o.op_count && run - t.pos < batch_size && o.ops[run].op == e.op) ++run;
      if (protocol == 0) run = t.pos + 1;  // no batches in protocol 0
      std::size_t count = run - t.pos;
      t.batch_end = run;
      if (count == 1 && e.op != ObjectOp::additem) {
        t.end = static_cast<unsigned char>(e.op == ObjectOp::append ? op(Op::APPEND) : op(Op::SETITEM));
      } else {
        out.put(op(Op::MARK));
        t.end = static_cast<unsigned char>(e.op == ObjectOp::append    ? op(Op::APPENDS)
                                           : e.op == ObjectOp::setitem ? op(Op::SETITEMS)
                                                                       : op(Op::ADDITEMS));
      }
      return;
    }
    case 11: {
      t.phase = 10;
      t.pos = 0;
      save(o.callable);
      return;
    }
    // A state setter: setter, the object itself (memoized: a GET), the state, then the call whose
    // result is discarded. CPython writes TUPLE2 at every protocol here.
    case 12:
      t.phase = 13;
      save(o.ops[t.pos].first);
      return;
    case 13:
      t.phase = 14;
      save(t.slot);
      return;
    case 14:
      t.phase = 15;
      save(o.ops[t.pos].second);
      return;
    case 15: {
      const char call[] = {op(Op::TUPLE2), op(Op::REDUCE), op(Op::POP)};
      out.write(call, sizeof call);
      ++t.pos;
      t.batch_end = t.pos;
      t.phase = 10;
      return;
    }
    case 20:
      t.phase = 21;
      save(o.args, false);
      return;
    case 21:
      out.put(op(Op::BINPERSID));
      t.phase = 10;
      t.pos = 0;
      return;
    // protocol < 2 newobj: copyreg.__newobj__ (cls, *args) REDUCE
    case 40: {
      std::size_t count = o.args.tag == Tag::tuple ? detail::node<SeqNode>(o.args).size : 0;
      out.boundary();
      if (temp_tuple_needs_mark(count + 1)) out.put(op(Op::MARK));
      t.phase = 41;
      t.pos = 0;
      save(o.callable);
      return;
    }
    case 41: {
      std::size_t count = o.args.tag == Tag::tuple ? detail::node<SeqNode>(o.args).size : 0;
      if (t.pos < count) {
        Slot item = detail::load(detail::node<SeqNode>(o.args).items[t.pos++]);
        save(item);
        return;
      }
      close_temp_tuple(count + 1);
      t.pos = 0;
      t.batch_end = 0;
      t.end = 0;
      out.put(op(Op::REDUCE));
      if (std::uint64_t hit = memo.find(t.slot.p); hit != IdentityMemo::missing) {
        out.put(op(Op::POP));
        get(hit);
        pop_task();
        return;
      }
      memoize(t.slot.p);
      t.phase = 10;
      return;
    }
    // protocol < 4 newobj_ex: copyreg.__newobj_ex__ (cls, args, kwargs) REDUCE
    case 50:
      out.boundary();
      if (temp_tuple_needs_mark(3)) out.put(op(Op::MARK));
      t.phase = 51;
      save(o.callable);
      return;
    case 51:
      t.phase = 52;
      save(o.args);
      return;
    case 52:
      t.phase = 53;
      save(o.kwargs);
      return;
    case 53:
      close_temp_tuple(3);
      out.put(op(Op::REDUCE));
      if (std::uint64_t hit = memo.find(t.slot.p); hit != IdentityMemo::missing) {
        out.put(op(Op::POP));
        get(hit);
        pop_task();
        return;
      }
      memoize(t.slot.p);
      t.phase = 10;
      t.pos = 0;
      return;
    // protocol 2–3 newobj_ex: functools.partial(cls.__new__, cls, *args, **kwargs)() — the partial
    // pickles as (partial, (func,)) with state (func, (cls, *args), kwargs copy, None).
    case 60: {
      const auto& g = detail::node<GlobalNode>(o.callable);
      std::string_view module(detail::node<StringNode>(g.module).data, detail::node<StringNode>(g.module).size);
      std::string qualname(detail::node<StringNode>(g.name).data, detail::node<StringNode>(g.name).size);
      qualname += ".__new__";
      out.boundary();
      save_global("functools", "partial", nullptr, nullptr, nullptr);
      out.boundary();  // (func,)
      out.boundary();
      save_global(module, qualname, nullptr, nullptr, nullptr);
      close_temp_tuple(1);
      out.put(op(Op::REDUCE));
      memoize_anonymous();
      out.boundary();  // the state tuple
      out.put(op(Op::MARK));
      out.boundary();
      save_global(module, qualname, nullptr, nullptr, nullptr);
      std::size_t count = o.args.tag == Tag::tuple ? detail::node<SeqNode>(o.args).size : 0;
      out.boundary();  // (cls, *args)
      if (temp_tuple_needs_mark(count + 1)) out.put(op(Op::MARK));
      t.phase = 61;
      t.pos = 0;
      save(o.callable);
      return;
    }
    case 61: {
      std::size_t count = o.args.tag == Tag::tuple ? detail::node<SeqNode>(o.args).size : 0;
      if (t.pos < count) {
        Slot item = detail::load(detail::node<SeqNode>(o.args).items[t.pos++]);
        save(item);
        return;
      }
      close_temp_tuple(count + 1);
      t.phase = 62;
      out.boundary();  // the keywords: a copy of kwargs
      if (o.kwargs.tag != Tag::dict) {
        save(o.kwargs);
        return;
      }
      const auto& kw = detail::node<DictNode>(o.kwargs);
      out.put(op(Op::EMPTY_DICT));
      memoize_anonymous();
      if (kw.size != 0) {
        Task items(Step::dict_exact);
        items.base = reinterpret_cast<const char*>(kw.entries);
        items.stride = sizeof(DictEntry);
        items.end = kw.size;
        push(items);
      }
      return;
    }
    case 62:
      out.boundary();
      out.put(op(Op::NONE));
      out.put(op(Op::TUPLE));
      memoize_anonymous();
      out.put(op(Op::BUILD));
      out.boundary();
      write_empty_tuple();
      out.put(op(Op::REDUCE));
      if (std::uint64_t hit = memo.find(t.slot.p); hit != IdentityMemo::missing) {
        out.put(op(Op::POP));
        get(hit);
        pop_task();
        return;
      }
      memoize(t.slot.p);
      t.phase = 10;
      t.pos = 0;
      return;
    default:
      pop_task();
      return;
  }
}

// Items of a tuple / frozenset / temporary, then its closing.
void Writer::step_seq(Task& t) {
  if (t.pos < t.end) {
    save_cells(t.base, t.stride, t.pos, t.end);
    return;
  }
  Task done = t;
  pop_task();
  switch (done.close) {
    case Close::none:
      if (done.phase == 1) out.put(op(Op::BINPERSID));
      return;
    case Close::tuple:
    case Close::args_tuple: {
      std::size_t n = done.end;
      std::uint64_t hit = memo.find(done.slot.p);
      bool fresh_copy = done.close == Close::args_tuple && done.owner != nullptr &&
                        memo.find(done.owner) != IdentityMemo::missing;
      if (hit != IdentityMemo::missing && !fresh_copy) {
        if (!temp_tuple_needs_mark(n)) {
          for (std::size_t i = 0; i < n; ++i) out.put(op(Op::POP));
        } else if (protocol >= 1) {
          out.put(op(Op::POP_MARK));
        } else {
          for (std::size_t i = 0; i <= n; ++i) out.put(op(Op::POP));
        }
        get(hit);
        return;
      }
      write_tuple_opcode(n);
      if (hit != IdentityMemo::missing) {
        // A second CPython tuple object for the arguments of a re-entered reduction.
        memoize_anonymous();
      } else {
        memoize(done.slot.p);
      }
      return;
    }
    case Close::frozenset: {
      if (std::uint64_t hit = memo.find(done.slot.p); hit != IdentityMemo::missing) {
        out.put(op(Op::POP_MARK));
        get(hit);
        return;
      }
      out.put(op(Op::FROZENSET));
      std::uint64_t index = memoize(done.slot.p);
      if (detail::node<DictNode>(done.slot).size == 0 && cpython_identities &&
          options.target_minor <= 9)
        record(singleton(SingletonClass::empty_frozenset), index);
      return;
    }
    case Close::temp_tuple:
      close_temp_tuple(done.end);
      return;
  }
}

// Exact list (§7.2): length 1 → APPEND; otherwise batches of ≤ 1000, each `( … e`.
// Protocol 0: `x a` for each item. `flag` = inside a batch.
void Writer::step_list(Task& t) {
  if (protocol == 0) {
    if (t.flag) {
      out.put(op(Op::APPEND));
      t.flag = false;
    }
    if (t.pos >= t.end) {
      pop_task();
      return;
    }
    t.flag = true;
    Slot item = slot_at(t.base, t.stride, t.pos++);
    save(item);
    return;
  }
  if (t.end == 1) {
    if (t.pos == 0) {
      t.pos = 1;
      save(slot_at(t.base, t.stride, 0));
      return;
    }
    out.put(op(Op::APPEND));
    pop_task();
    return;
  }
  if (t.pos < t.batch_end) {
    // Items that push no task (atoms, strs, memo hits…) are written in this loop; the first that
    // does hands control back to the main loop (and `t` may then move: save_cells writes the
    // position back before it saves).
    save_cells(t.base, t.stride, t.pos, t.batch_end);
    return;
  }
  if (t.flag) {
    out.put(op(Op::APPENDS));
    t.flag = false;
  }
  if (t.pos >= t.end) {
    pop_task();
    return;
  }
  out.put(op(Op::MARK));
  t.flag = true;
  t.batch_end = std::min(t.pos + batch_size, t.end);
}

// Exact dict (§7.3): 1 item → SETITEM; otherwise batches `( … u` repeated while the batch just
// written was full (so sizes that are multiples of 1000 end with an empty batch).
// `phase` 1 = the value of entry pos-1 is next.
void Writer::step_dict(Task& t) {
  if (t.phase == 1) {
    t.phase = 0;
    Slot value = detail::load(reinterpret_cast<const DictEntry*>(t.base)[t.pos - 1].value);
    save(value);
    return;
  }
  auto entries = reinterpret_cast<const DictEntry*>(t.base);
  if (protocol == 0 || t.end == 1) {
    if (t.flag) {
      out.put(op(Op::SETITEM));
      t.flag = false;
    }
    if (t.pos >= t.end) {
      pop_task();
      return;
    }
    t.flag = true;
    t.phase = 1;
    Slot key = detail::load(entries[t.pos++].key);
    save(key);
    return;
  }
  if (t.pos < t.batch_end) {
    std::size_t depth = stack.size();
    do {
      const DictEntry& e = entries[t.pos++];
      if (!save_inline_cell(e.key)) {
        t.phase = 1;
        save(detail::load(e.key));
        if (stack.size() != depth) return;
        t.phase = 0;
      }
      if (save_inline_cell(e.value)) continue;
      save(detail::load(e.value));
      if (stack.size() != depth) return;
    } while (t.pos < t.batch_end);
    return;
  }
  if (t.flag) {
    out.put(op(Op::SETITEMS));
    t.flag = false;
    if (t.pos - t.batch_start != batch_size) {
      pop_task();
      return;
    }
  }
  out.put(op(Op::MARK));
  t.flag = true;
  t.batch_start = t.pos;
  t.batch_end = std::min(t.pos + batch_size, t.end);
}

// Exact set, protocol ≥ 4: like the dict batching, with ADDITEMS.
void Writer::step_set(Task& t) {
  auto entries = reinterpret_cast<const DictEntry*>(t.base);
  if (t.pos < t.batch_end) {
    std::size_t depth = stack.size();
    do {
      const detail::Cell item_cell = entries[t.pos++].key;
      if (save_inline_cell(item_cell)) continue;
      const Slot item = detail::load(item_cell);
      save(item);
      if (stack.size() != depth) return;
    } while (t.pos < t.batch_end);
    return;
  }
  if (t.flag) {
    out.put(op(Op::ADDITEMS));
    t.flag = false;
    if (t.pos - t.batch_start != batch_size) {
      pop_task();
      return;
    }
  }
  out.put(op(Op::MARK));
  t.flag = true;
  t.batch_start = t.pos;
  t.batch_end = std::min(t.pos + batch_size, t.end);
}

// ---------------------------------------------------------------------------------------------

void Writer::run() {
  while (!stack.empty()) {
    Task& t = stack.back();
    switch (t.step) {
      case Step::seq_items:
        step_seq(t);
        break;
      case Step::list_exact:
        step_list(t);
        break;
      case Step::dict_exact:
        step_dict(t);
        break;
      case Step::set_exact:
        step_set(t);
        break;
      case Step::object:
        step_object(t);
        break;
      case Step::close_reduce:
        step_close_reduce(t);
        break;
    }
  }
}


void Writer::begin(const Value& value) {
  out.reset();
  clear_tasks();
  stack.reserve(64);
  reordered_sets.clear();
  persistent_ids_written.clear();
  heap = value.heap();
  learn_folded_arguments();
  // A Pickler's memo outlives the call: keep its keys alive.
  if (streaming && value.slot().is_node()) keepalive.push_back(value);
  root_node = value.slot().is_node() ? value.slot().p : nullptr;
  if (streaming) {
    memo.keep_every_node();
  } else {
    memo.elide_single_references(root_node);
  }
  if (protocol >= 2) out.put(op(Op::PROTO), static_cast<char>(protocol));
  out.framing = protocol >= 4;
  save(value.slot());
}

std::string Writer::finish() {
  run();
  out.put(op(Op::STOP));
  out.commit_frame();
  out.framing = false;
  return out.take();
}

void Writer::configure() {
  protocol = detail::resolve_protocol(options);
  if (options.buffer_callback && protocol < 5)
    throw PicklingError("buffer_callback needs protocol >= 5", PyExc::ValueError);
  cpython_identities = options.identities == Identities::cpython;
  fast_items = protocol >= 2 && !options.persistent_id;
  fast_strs = fast_items && protocol >= 4;
}

}  // namespace

std::string dumps(const Value& value, const WriteOptions& options) {
  // Each thread keeps one Writer between calls: its memo table, output buffer, task stack and
  // maps keep their memory, so a small dumps allocates only its result (constructing and
  // destroying a Writer was a third of a 120-byte dumps). A dumps called from inside another on
  // the same thread (from a persistent_id or buffer_callback) gets a Writer of its own.
  thread_local std::unique_ptr<Writer> kept;
  thread_local bool kept_busy = false;
  if (kept_busy) {
    Writer writer(options);
    writer.configure();
    writer.begin(value);
    return writer.finish();
  }
  if (!kept) kept = std::make_unique<Writer>(WriteOptions{});
  struct Release {
    Writer& writer;
    bool& busy;
    ~Release() {
      writer.end_call();
      busy = false;
    }
  } release{*kept, kept_busy};
  kept_busy = true;
  kept->start_call(options);
  kept->begin(value);
  return kept->finish();
}

struct Pickler::State {
  Writer writer;
  std::ostream* stream;
};

Pickler::Pickler(std::ostream& out, WriteOptions options)
    : state_(std::make_unique<State>(State{Writer(std::move(options)), &out})) {
  state_->writer.configure();
  state_->writer.streaming = true;
}

Pickler::~Pickler() = default;

void Pickler::dump(const Value& value) {
  state_->writer.begin(value);
  std::string bytes = state_->writer.finish();
  state_->stream->write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void Pickler::clear_memo() { state_->writer.reset_memo(); }

namespace detail {
namespace {

// See ValueEmbedding in emit.hpp. The Writer keeps its memo, globals and singletons between calls;
// only the output and the memo counter travel.
class WriterEmbedding final : public ValueEmbedding {
 public:
  WriterEmbedding(const WriteOptions& options, SharedSingletons& shared)
      : writer_(options), shared_(shared) {
    writer_.configure();
    writer_.stack.reserve(64);
  }
  void value(Output& out, std::uint64_t& next_index, const Value& v) override {
    Borrow borrow(*this, out, next_index);
    writer_.heap = v.heap();
    writer_.learn_folded_arguments();
    if (v.slot().is_node()) writer_.keepalive.push_back(v);
    writer_.save(v.slot());
    writer_.run();
  }
  void global(Output& out, std::uint64_t& next_index, std::string_view module,
              std::string_view qualname) override {
    Borrow borrow(*this, out, next_index);
    writer_.save_global(module, qualname, nullptr, nullptr, nullptr);
  }

 private:
  // Moves the caller's output and counter in, and back out even when writing throws.
  struct Borrow {
    Borrow(WriterEmbedding& e, Output& out, std::uint64_t& next_index)
        : self(e), caller_out(out), caller_index(next_index) {
      self.writer_.out = std::move(out);
      self.writer_.next_index = next_index;
      self.writer_.clear_tasks();
      self.exchange(true);
    }
    ~Borrow() {
      self.exchange(false);
      caller_out = std::move(self.writer_.out);
      caller_index = self.writer_.next_index;
    }
    WriterEmbedding& self;
    Output& caller_out;
    std::uint64_t& caller_index;
  };
  // Into the writer (before a call) or out of it (after): whichever side has written a shared
  // object first tells the other its memo index.
  void exchange(bool into_writer) {
    if (into_writer) {
      for (std::uint16_t slot : shared_.unsent) {
        bool is_str = slot < 257;
        int i = is_str ? slot : slot - 257;
        SingletonEntry& entry =
            is_str ? (i < 256 ? writer_.singleton(SingletonClass::latin1_char, i)
                              : writer_.singleton(SingletonClass::empty_str))
                   : (i < 256 ? writer_.singleton(SingletonClass::one_byte, i)
                              : writer_.singleton(SingletonClass::empty_bytes));
        std::uint64_t index = is_str ? shared_.strs[static_cast<std::size_t>(i)]
                                     : shared_.bytes[static_cast<std::size_t>(i)];
        if (entry.index == IdentityMemo::missing) {
          entry.index = index;
          entry.claimed = true;
        }
      }
      shared_.unsent.clear();
      return;
    }
    if (!writer_.singleton_slots) return;
    auto pull = [&](SingletonClass c, int offset, std::uint64_t& shared) {
      std::uint16_t slot = writer_.singleton_slots[static_cast<std::size_t>(c) + static_cast<std::size_t>(offset)];
      if (slot == 0) return;
      const SingletonEntry& entry = writer_.singleton_entries[slot - 1u];
      if (entry.index != IdentityMemo::missing && shared == IdentityMemo::missing) shared = entry.index;
    };
    for (int i = 0; i < 256; ++i) {
      pull(SingletonClass::latin1_char, i, shared_.strs[static_cast<std::size_t>(i)]);
      pull(SingletonClass::one_byte, i, shared_.bytes[static_cast<std::size_t>(i)]);
    }
    pull(SingletonClass::empty_str, 0, shared_.strs[256]);
    pull(SingletonClass::empty_bytes, 0, shared_.bytes[256]);
  }
  Writer writer_;
  SharedSingletons& shared_;
};

}  // namespace

std::unique_ptr<ValueEmbedding> make_value_embedding(const WriteOptions& options,
                                                     SharedSingletons& shared) {
  return std::make_unique<WriterEmbedding>(options, shared);
}

}  // namespace detail

}  // namespace pickle
