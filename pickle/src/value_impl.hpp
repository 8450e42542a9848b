// Private: the node layout behind pickle::Value and the heap regions that own the nodes.
//
// Ownership model. Every node lives in a Heap region (a bump arena). A region is freed as a whole
// when the last reference to it goes away: nodes are trivially destructible, so freeing a
// 1,000,000-deep list is a walk over the arena's chunks, not a recursion over the list. Containers
// hold plain Slots (no reference counts), which keeps loading and copying cheap. A Value handle holds
// one reference to the region of the node it points at. When a value of one region is stored into a
// container of another, the two regions are merged (union-find: the smaller one's chunks move to the
// larger root), so everything reachable from a node is always in the node's region; cycles are
// therefore just pointers inside one region and never leak.
//
// The price: memory of a node that becomes unreachable while its region lives is not reclaimed until
// the region dies (like an arena). Values loaded from a pickle are one region, which is exactly the
// lifetime a loaded document has.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "pickle/value.hpp"

namespace pickle::detail {

// What every node starts with; the tag that points at a node says what kind it is.
struct Node {
  // How many references to the node containers of its region hold: 0, 1, or 2 for "two or more".
  // A node held once can be reached only once by a walk from anything but itself, so a writer
  // neither looks it up in nor adds it to its memo (CPython memoizes every object, and the memo
  // walk was most of a large dumps). Counted by every store into a node (note_reference).
  std::uint8_t refs = 0;
};

// How containers store an item: 8 bytes, half a Slot, so that a list or dict costs what CPython's
// does or less. The top byte is the Tag and the low 56 bits the payload: a node's address (user
// space addresses need at most 56 bits), an int in [-2**55, 2**55), a bool. A float, or an int of
// the int64 range outside that, needs all 64 bits and is boxed in the container's region under one
// of the two cell-only tags below. load() gives back the Slot that was stored, so boxes never escape
// a cell: code that walks a container loads each cell, and only the hot loops look at cells.
class Cell {
 public:
  static constexpr int payload_bits = 56;
  static constexpr std::uint64_t payload_mask = (std::uint64_t{1} << payload_bits) - 1;
  static constexpr std::int64_t min_inline_int = -(std::int64_t{1} << (payload_bits - 1));
  static constexpr std::int64_t max_inline_int = (std::int64_t{1} << (payload_bits - 1)) - 1;

  constexpr Cell() noexcept = default;  // None
  static constexpr Cell from_bits(std::uint64_t bits) noexcept {
    Cell c;
    c.bits_ = bits;
    return c;
  }
  static constexpr Cell make(Tag tag, std::uint64_t payload) noexcept {
    return from_bits(static_cast<std::uint64_t>(tag) << payload_bits | (payload & payload_mask));
  }
  static constexpr bool fits_inline(std::int64_t v) noexcept {
    return v >= min_inline_int && v <= max_inline_int;
  }
  static constexpr Cell boolean(bool b) noexcept { return make(Tag::boolean, b ? 1 : 0); }
  // An int known to fit (fits_inline).
  static constexpr Cell inline_int(std::int64_t v) noexcept {
    return make(Tag::small_int, static_cast<std::uint64_t>(v));
  }
  static Cell node(Tag tag, const void* p) noexcept {
    return make(tag, static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(p)));
  }

  constexpr Tag tag() const noexcept { return static_cast<Tag>(bits_ >> payload_bits); }
  void* pointer() const noexcept { return reinterpret_cast<void*>(static_cast<std::uintptr_t>(bits_ & payload_mask)); }
  constexpr std::int64_t inline_int_value() const noexcept {
    return static_cast<std::int64_t>(bits_ << (64 - payload_bits)) >> (64 - payload_bits);
  }
  constexpr bool bool_value() const noexcept { return (bits_ & 1) != 0; }
  // Same bits: the same node, or the same inline atom.
  friend constexpr bool operator==(Cell a, Cell b) noexcept { return a.bits_ == b.bits_; }

 private:
  // unsigned long long, not std::uint64_t (unsigned long, like std::size_t): a store into a
  // container or the reader's stack then cannot alias the size_t counters around it, which the
  // compiler would otherwise reload after every store.
  unsigned long long bits_ = 0;
};
static_assert(sizeof(Cell) == 8);
static_assert(static_cast<int>(Tag::none) == 0, "a zero Cell is None");

// The cell-only tags: a float, and an int of the int64 range too wide for the payload, boxed.
inline constexpr Tag boxed_int = static_cast<Tag>(0x40);
inline constexpr Tag boxed_float = static_cast<Tag>(0x41);

// The Slot a cell holds.
inline Slot load(Cell c) noexcept {
  Slot s;
  const Tag tag = c.tag();
  if (tag >= Tag::big_int) {
    if (tag == boxed_float) {
      s.tag = Tag::floating;
      s.f = *static_cast<const double*>(c.pointer());
    } else if (tag == boxed_int) {
      s.tag = Tag::small_int;
      s.i = *static_cast<const std::int64_t*>(c.pointer());
    } else {
      s.tag = tag;
      s.p = static_cast<Node*>(c.pointer());
    }
  } else if (tag == Tag::boolean) {
    s.tag = tag;
    s.b = c.bool_value();
  } else {
    s.tag = tag;
    s.i = c.inline_int_value();  // 0 for None
  }
  return s;
}

struct Heap;
// The cell of a node or an atom that needs no box (never a float).
inline Cell pack_unboxed(Slot slot) noexcept {
  if (slot.is_node()) return Cell::node(slot.tag, slot.p);
  if (slot.tag == Tag::boolean) return Cell::boolean(slot.b);
  return Cell::make(slot.tag, static_cast<std::uint64_t>(slot.i));
}
inline bool needs_box(Slot slot) noexcept {
  return slot.tag == Tag::floating || (slot.tag == Tag::small_int && !Cell::fits_inline(slot.i));
}
// A float or wide int boxed in heap.
Cell box(Heap& heap, Slot slot);
// The cell storing `slot` in a container of `heap` (boxing floats and wide ints there).
inline Cell pack(Heap& heap, Slot slot) { return needs_box(slot) ? box(heap, slot) : pack_unboxed(slot); }

// Counts one more reference to the node a cell or slot holds (see Node::refs). Big ints are not
// counted: pickle does not memoize ints.
inline void note_reference(Cell c) noexcept {
  const Tag tag = c.tag();
  if (tag >= Tag::str && tag <= Tag::buffer) {
    auto* n = static_cast<Node*>(c.pointer());
    if (n->refs < 2) ++n->refs;
  }
}
inline void note_reference(Slot s) noexcept {
  if (s.tag >= Tag::str && s.tag <= Tag::buffer && static_cast<Node*>(s.p)->refs < 2) ++s.p->refs;
}
inline void note_references(const Cell* cells, std::size_t count) noexcept {
  for (std::size_t i = 0; i < count; ++i) note_reference(cells[i]);
}

// A hash cache slot's value while the hash is not known yet. Python hashes are never -1 (the C API
// reserves it for errors), so no real hash takes this value.
inline constexpr std::uint64_t hash_unset = ~std::uint64_t{0};

struct BigIntNode : Node {
  bool negative;  // (the small fields of a node follow Node::refs, in its padding)
  std::uint32_t limb_count;  // magnitude, little-endian 64-bit limbs, no leading zero limb
  std::uint64_t limbs[1];    // really limb_count limbs (allocated with the node)
};

// str: UTF-8 with lone surrogates in their 3-byte form (Python's "surrogatepass").
// bytes: raw bytes. The data follows the node or, for zero-copy loads, lives in an input buffer the
// heap keeps alive.
struct StringNode : Node {
  const char* data;  // (after 7 bytes of padding)
  std::size_t size;            // bytes
  mutable std::uint64_t hash;  // cached hash (str/bytes); hash_unset until computed
};

// bytearray: a StringNode whose data may grow; capacity 0 when data is not owned by the arena.
struct BytearrayNode : StringNode {
  std::size_t capacity;
};

// tuple, list
struct SeqNode : Node {
  mutable std::uint8_t hash_state;  // tuples: 0 unknown, 1 hashable (hash valid), 2 unhashable
  Cell* items;
  std::size_t size;
  std::size_t capacity;
  mutable std::uint64_t hash;  // tuples: cached hash, valid when hash_state == 1
};

// dict, set, frozenset: an insertion-ordered table (CPython's compact dict layout): entries in
// insertion order, plus an open-addressing index of entry positions. Sets leave `value` unused.
// Entries hold no hash: str, bytes, tuple and frozenset keys cache theirs, and numbers hash in a
// few instructions (as CPython's tables of str keys, which keep 16-byte entries).
struct DictEntry {
  Cell key;
  Cell value;
};

struct DictNode : Node {
  mutable std::uint8_t hash_state;  // frozenset: as SeqNode's
  DictEntry* entries;
  std::size_t size;      // live entries (no deletion support: entries[0..size) are all live)
  std::size_t capacity;  // of entries
  // index_mask + 1 positions (0 = empty, else entry position + 1) of the narrowest unsigned type
  // that holds them: 1 byte up to 256 slots, 2 up to 65536, else 4 (index_width).
  void* index;
  std::size_t index_mask;
  // Tables past the 1-byte index (over 170 entries) keep each entry's hash, cut to 32 bits, here
  // (null for smaller ones), and place and probe keys by those bits: probing then reads a stored
  // key (a cache miss into its node, for a str) only when the bits match, and a resize rehashes
  // without reading any key. Small tables read keys that are in cache anyway.
  std::uint32_t* hashes;
  mutable std::uint64_t hash;  // frozenset: cached hash, valid when hash_state == 1
};

inline int index_width(std::size_t index_mask) noexcept {
  return index_mask < 256 ? 1 : index_mask < 65536 ? 2 : 4;
}

struct GlobalNode : Node {
  Slot module;  // str slots: kept as the objects the pickle used, so a writer can share them
  Slot name;
};

struct ObjectOpEntry {
  ObjectOp op;
  Slot first;
  Slot second;
};

struct ObjectNode : Node {
  ObjectForm form;
  std::int32_t ext_code;
  Slot callable;
  Slot args;
  Slot kwargs;
  ObjectOpEntry* ops;
  std::size_t op_count;
  std::size_t op_capacity;
};

struct BufferNode : Node {
  bool readonly;
  const char* data;
  std::size_t size;
  std::size_t index;
};

// A heap region. See the comment at the top of this file.
struct Heap {
  std::atomic<std::size_t> refs{1};
  Heap* parent = nullptr;  // union-find parent (holds a reference on it); null for a root
  struct Chunk;
  Chunk* chunks = nullptr;
  char* cursor = nullptr;
  char* limit = nullptr;
  std::size_t next_chunk_size = 4096;
  std::size_t allocated_bytes = 0;  // total bytes obtained from the system, for limits
  std::size_t used_bytes = 0;  // bytes handed out by allocate (what the nodes take, as tracemalloc counts)
  // The latest block that got a chunk of its own: its chunk's end and the link pointing at it.
  char* solo_block = nullptr;
  char* solo_limit = nullptr;
  Chunk** solo_link = nullptr;
  // Input buffers that zero-copy nodes point into.
  std::vector<std::shared_ptr<const void>> keepalive;
  // Calls the reader folded into the value they build (a bytes from _codecs.encode(str, 'latin1'),
  // a bytearray from bytearray(bytes)): built node → the call's argument tuple. A writer
  // reproducing the pickle writes those arguments as the objects they were, which may be shared
  // with the rest of the value (a 1-character str CPython caches, for one).
  std::vector<std::pair<const void*, Slot>> folded_arguments;

  static Heap* create();  // refs == 1
  // A bump allocation: inline while it fits the current chunk of a root region.
  [[gnu::always_inline]] void* allocate(std::size_t bytes, std::size_t align = alignof(std::max_align_t)) {
    if (parent == nullptr) [[likely]] {
      const auto at = reinterpret_cast<std::uintptr_t>(cursor);
      const std::uintptr_t start = (at + align - 1) & ~static_cast<std::uintptr_t>(align - 1);
      if (cursor != nullptr && start + bytes <= reinterpret_cast<std::uintptr_t>(limit)) [[likely]] {
        used_bytes += bytes;
        cursor = reinterpret_cast<char*>(start + bytes);
        return reinterpret_cast<void*>(start);
      }
    }
    return allocate_elsewhere(bytes, align);
  }
  // allocate's other cases: a non-root region, a new chunk.
  void* allocate_elsewhere(std::size_t bytes, std::size_t align);
  // Grow a block from old_bytes to new_bytes without copying it: in place when it was the last
  // allocation and its chunk has room, or, for the latest large block (alone in its chunk), by
  // growing that chunk (realloc: the system remaps large blocks). Returns the block's address,
  // which may have moved; nullptr (and nothing changed) when neither applies.
  void* grow(void* block, std::size_t old_bytes, std::size_t new_bytes);
  // A block its owner may give back with release_block (a table replaced by a larger one): from
  // releasable_bytes on, it gets a chunk of its own, which release_block returns to the system.
  static constexpr std::size_t releasable_bytes = std::size_t{16} << 10;
  void* allocate_releasable(std::size_t bytes, std::size_t align);
  // Gives back a block of allocate_releasable (with its size). Smaller blocks are reclaimed only
  // when they are the latest allocation; otherwise they stay until the region dies.
  void release_block(void* block, std::size_t bytes) noexcept;
  template <class T>
  T* make() {
    return new (allocate(sizeof(T), alignof(T))) T{};
  }
  Heap* root() noexcept;
};

void retain(Heap* heap) noexcept;   // null-safe
void release(Heap* heap) noexcept;  // null-safe; frees the region chain iteratively
// Make a and b one region; returns the root. Either may be null (atoms).
Heap* merge(Heap* a, Heap* b);

// --- node construction (the heap must be a root or a region that forwards to one) -------------
Slot make_int(Heap& heap, const BigInt& v);  // small_int when it fits in int64
BigInt to_bigint(const BigIntNode& node);
// A str or bytes node (tag) holding a copy of data right after it. Inline: a loaded pickle makes
// one for most of its opcodes.
[[gnu::always_inline]] inline Slot make_string_node(Heap& heap, std::string_view data, Tag tag) {
  auto* node = static_cast<StringNode*>(heap.allocate(sizeof(StringNode) + data.size(), alignof(StringNode)));
  char* text = reinterpret_cast<char*>(node + 1);
  if (!data.empty()) std::memcpy(text, data.data(), data.size());
  node->refs = 0;
  node->data = text;
  node->size = data.size();
  node->hash = hash_unset;
  Slot slot;
  slot.tag = tag;
  slot.p = node;
  return slot;
}
// No validation: the caller validated.
[[gnu::always_inline]] inline Slot make_str(Heap& heap, std::string_view utf8) {
  return make_string_node(heap, utf8, Tag::str);
}
Slot make_bytes(Heap& heap, std::string_view data, Tag tag = Tag::bytes);  // bytes or bytearray
// A node pointing into memory kept alive by heap.keepalive (zero-copy); tag str, bytes.
Slot make_string_view(Heap& heap, const char* data, std::size_t size, Tag tag);
// A tuple or list of `count` items packed from `items`, or of None when items is null (the caller
// stores the cells).
Slot make_seq(Heap& heap, Tag tag, const Slot* items, std::size_t count);
Slot make_seq_cells(Heap& heap, Tag tag, const Cell* items, std::size_t count);  // cells of this region
void seq_append(Heap& heap, SeqNode& seq, Slot item);
void seq_extend(Heap& heap, SeqNode& seq, const Slot* items, std::size_t count);
void seq_extend_cells(Heap& heap, SeqNode& seq, const Cell* items, std::size_t count);
Slot make_dict(Heap& heap, Tag tag = Tag::dict, std::size_t capacity = 0);  // dict/set/frozenset
// Make room for `additional` more entries, so a batch of insertions resizes the table once.
void dict_reserve(Heap& heap, DictNode& dict, std::size_t additional);
// Insert or overwrite (dict; later duplicates win, keeping the first key object as CPython does).
// Throws UnhashableError.
void dict_set(Heap& heap, DictNode& dict, Slot key, Slot value);
// Insert if absent (set, frozenset). Throws UnhashableError.
void set_add(Heap& heap, DictNode& set, Slot key);
// dict_set of pairs[0]: pairs[1], pairs[2]: pairs[3], … (cells of the dict's region) in order,
// the table resized at most once.
void dict_update_cells(Heap& heap, DictNode& dict, const Cell* pairs, std::size_t pair_count);
// set_add of each item (cells of the set's region) in order, the table resized at most once.
void set_update_cells(Heap& heap, DictNode& set, const Cell* items, std::size_t count);
const DictEntry* dict_find(const DictNode& dict, Slot key);  // throws UnhashableError
Slot make_global(Heap& heap, Slot module, Slot name);
Slot make_object(Heap& heap, ObjectForm form, Slot callable, Slot args, Slot kwargs);
void object_add_op(Heap& heap, ObjectNode& object, ObjectOp op, Slot first, Slot second);
Slot make_buffer(Heap& heap, const char* data, std::size_t size, std::size_t index, bool readonly);

// --- Python semantics on slots ----------------------------------------------------------------
// Python's hash (numbers: the modular rule of sys.hash_info; str/bytes: a seeded SipHash-1-3 per
// process). Iterative over tuples/frozensets, memoized per node, so a DAG of shared tuples hashes
// in time linear in its number of distinct nodes. Throws UnhashableError.
std::uint64_t slot_hash(Slot slot);
bool slot_hashable(Slot slot);
// Python ==, iterative and cycle-safe.
bool slot_equal(Slot a, Slot b);
// Work metering. Probing a hash table and comparing keys cost what the keys' hashes make them
// cost, and an attacker chooses the hashes (Python's int hash is modular: every multiple of
// 2**61 - 1 collides), so a reader installs a meter for its thread while it builds a value. Work
// beyond the meter's allowance asks the meter for more; the reader grants it in proportion to the
// input consumed, or refuses with a LimitError. Without a meter (values built by the API), nothing
// is counted.
class WorkMeter {
 public:
  WorkMeter() noexcept;  // installs itself as this thread's meter
  virtual ~WorkMeter();  // reinstates the meter that was current before
  WorkMeter(const WorkMeter&) = delete;
  WorkMeter& operator=(const WorkMeter&) = delete;

  std::size_t used() const noexcept { return used_; }
  static void charge(std::size_t units);

 protected:
  // Called when the allowance is spent: sets a new allowance (remaining_ > 0) or throws.
  virtual void replenish() = 0;
  std::size_t used_ = 0;
  std::size_t remaining_ = 0;

 private:
  WorkMeter* previous_;
};

// Same kind-exact structure and same sharing (see pickle::same_graph).
bool slot_same_graph(Slot a, Slot b);
// Length in code points of a UTF-8 (surrogatepass) string.
std::size_t utf8_length(std::string_view utf8) noexcept;

template <class T>
T& node(Slot slot) noexcept {
  return *static_cast<T*>(slot.p);
}

}  // namespace pickle::detail
