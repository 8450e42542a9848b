// The value model: heap regions, node construction, Python's hash and == on slots, and the
// pickle::Value handle. See value_impl.hpp for the ownership model.
#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <limits>
#include <new>
#include <random>
#include <stdexcept>
#include <vector>

#include "unicode.hpp"
#include "value_impl.hpp"

namespace pickle {

std::string_view type_name(Kind kind) noexcept {
  switch (kind) {
    case Kind::none: return "NoneType";
    case Kind::boolean: return "bool";
    case Kind::integer: return "int";
    case Kind::floating: return "float";
    case Kind::str: return "str";
    case Kind::bytes: return "bytes";
    case Kind::bytearray: return "bytearray";
    case Kind::tuple: return "tuple";
    case Kind::list: return "list";
    case Kind::dict: return "dict";
    case Kind::set: return "set";
    case Kind::frozenset: return "frozenset";
    case Kind::global: return "type";
    case Kind::object: return "object";
    case Kind::buffer: return "PickleBuffer";
  }
  return "object";
}

namespace detail {
namespace {

Kind kind_of(Tag tag) noexcept {
  switch (tag) {
    case Tag::none: return Kind::none;
    case Tag::boolean: return Kind::boolean;
    case Tag::small_int:
    case Tag::big_int: return Kind::integer;
    case Tag::floating: return Kind::floating;
    case Tag::str: return Kind::str;
    case Tag::bytes: return Kind::bytes;
    case Tag::bytearray: return Kind::bytearray;
    case Tag::tuple: return Kind::tuple;
    case Tag::list: return Kind::list;
    case Tag::dict: return Kind::dict;
    case Tag::set: return Kind::set;
    case Tag::frozenset: return Kind::frozenset;
    case Tag::global: return Kind::global;
    case Tag::object: return Kind::object;
    case Tag::buffer: return Kind::buffer;
  }
  return Kind::none;
}

std::string_view tag_name(Tag tag) noexcept { return type_name(kind_of(tag)); }

}  // namespace

// ================================================================================================
// Heap regions
// ================================================================================================

struct Heap::Chunk {
  Chunk* next;
  std::size_t size;  // bytes of data following the header
  char* data() noexcept { return reinterpret_cast<char*>(this + 1); }
};
static_assert(sizeof(Heap::Chunk) % alignof(std::max_align_t) == 0);

namespace {

// Chunks are power-of-two blocks (header included) so that freed ones can be reused by size class.
constexpr std::size_t max_chunk_size = std::size_t{1} << 22;
constexpr int chunk_classes = 64;

// Freed chunks are kept per thread and handed to the next regions made on that thread: memory
// fresh from the system costs a page fault per 4 KiB on first touch, which made up half of a large
// load's time (a loop of loads, or a service loading requests, would pay it on every call).
// Bounded, so a thread that once loaded something huge does not hold all of it.
constexpr std::size_t max_cached_bytes = std::size_t{256} << 20;

struct ChunkCache {
  Heap::Chunk* free[chunk_classes] = {};
  std::size_t bytes = 0;
  ~ChunkCache();
};

// Trivially destructible, so it can still be read while other thread_local objects holding values
// are destroyed after the cache.
thread_local bool chunk_cache_alive = false;

ChunkCache::~ChunkCache() {
  chunk_cache_alive = false;
  for (Heap::Chunk*& list : free) {
    while (list != nullptr) {
      Heap::Chunk* next = list->next;
      std::free(list);
      list = next;
    }
  }
}

ChunkCache* chunk_cache() noexcept {
  thread_local ChunkCache cache;
  thread_local bool constructed = (chunk_cache_alive = true);
  (void)constructed;
  return chunk_cache_alive ? &cache : nullptr;
}

int chunk_class(std::size_t total) noexcept { return std::countr_zero(total); }

Heap::Chunk* take_cached_chunk(std::size_t total) noexcept {
  ChunkCache* cache = chunk_cache();
  if (cache == nullptr) return nullptr;
  Heap::Chunk*& list = cache->free[chunk_class(total)];
  Heap::Chunk* chunk = list;
  if (chunk != nullptr) {
    list = chunk->next;
    cache->bytes -= total;
  }
  return chunk;
}

// A chunk with at least `data_size` bytes of data, from the cache when one of its class is there.
Heap::Chunk* obtain_chunk(std::size_t data_size) {
  if (data_size > (std::size_t{1} << 62)) throw std::bad_alloc();
  const std::size_t total = std::bit_ceil(sizeof(Heap::Chunk) + data_size);
  Heap::Chunk* chunk = take_cached_chunk(total);
  if (chunk == nullptr) {
    // malloc, not operator new: the latest large block's chunk grows with realloc.
    chunk = static_cast<Heap::Chunk*>(std::malloc(total));
    if (chunk == nullptr) throw std::bad_alloc();
  }
  chunk->next = nullptr;
  chunk->size = total - sizeof(Heap::Chunk);
  return chunk;
}

void give_back_chunk(Heap::Chunk* chunk) noexcept {
  const std::size_t total = sizeof(Heap::Chunk) + chunk->size;
  ChunkCache* cache = chunk_cache();
  if (cache != nullptr && cache->bytes + total <= max_cached_bytes) {
    Heap::Chunk*& list = cache->free[chunk_class(total)];
    chunk->next = list;
    list = chunk;
    cache->bytes += total;
    return;
  }
  std::free(chunk);
}

Heap::Chunk* new_chunk(Heap& heap, std::size_t data_size) {
  Heap::Chunk* chunk = obtain_chunk(data_size);
  heap.allocated_bytes += sizeof(Heap::Chunk) + chunk->size;
  return chunk;
}

std::uintptr_t align_up(std::uintptr_t address, std::size_t align) noexcept {
  return (address + align - 1) & ~static_cast<std::uintptr_t>(align - 1);
}

void make_current(Heap& heap, Heap::Chunk* chunk, char* cursor) noexcept {
  chunk->next = heap.chunks;
  heap.chunks = chunk;
  heap.cursor = cursor;
  heap.limit = chunk->data() + chunk->size;
}

void* allocate_slow(Heap& heap, std::size_t bytes, std::size_t align) {
  // Chunk data starts max_align_t-aligned: only stricter alignments need slack.
  const std::size_t needed = bytes + (align > alignof(std::max_align_t) ? align : 0);
  if (heap.chunks != nullptr && needed > heap.next_chunk_size / 2) {
    // A large block gets a chunk of its own, linked behind the current one so that the current
    // chunk's free space stays in use. The chunk is rounded up to a power of two; the room left is
    // kept for the block (the items of a growing list or table) to grow into in place.
    Heap::Chunk* chunk = new_chunk(heap, needed);
    chunk->next = heap.chunks->next;
    heap.chunks->next = chunk;
    const std::uintptr_t start = align_up(reinterpret_cast<std::uintptr_t>(chunk->data()), align);
    heap.solo_block = nullptr;  // its link may now lead to this chunk
    if (reinterpret_cast<char*>(start) == chunk->data()) {
      heap.solo_block = chunk->data();
      heap.solo_limit = chunk->data() + chunk->size;
      heap.solo_link = &heap.chunks->next;
    }
    return reinterpret_cast<void*>(start);
  }
  // Chunks grow with the region (a region made for one str that then gets a small tuple should not
  // take a page for it), up to next_chunk_size, which doubles as it is reached.
  constexpr std::size_t min_chunk_size = 256 - sizeof(Heap::Chunk);
  std::size_t size = std::max(heap.allocated_bytes, min_chunk_size);
  if (size >= heap.next_chunk_size) {
    size = heap.next_chunk_size;
    heap.next_chunk_size = std::min(heap.next_chunk_size * 2, max_chunk_size);
  }
  // Sizes count the chunk header, so that a power-of-two size stays one size class.
  Heap::Chunk* chunk = new_chunk(heap, std::max(size - sizeof(Heap::Chunk), needed));
  make_current(heap, chunk, chunk->data());
  const std::uintptr_t start = align_up(reinterpret_cast<std::uintptr_t>(heap.cursor), align);
  heap.cursor = reinterpret_cast<char*>(start + bytes);
  return reinterpret_cast<void*>(start);
}

}  // namespace

// A region starts as one block: a chunk whose data holds the Heap itself and then room for the
// first `initial_bytes`, so that a region holding a single value (a str made by a caller, later
// merged into a container's region) costs one allocation. The block is an ordinary chunk of the
// region: merging moves it to the new root with the others, and whichever root owns it frees it.
// A Heap that is no longer a root thus lives in memory owned by its root; that is safe because a
// non-root with references holds a reference on its parent, so the root outlives it.
namespace {

Heap* create_region(std::size_t initial_bytes) {
  constexpr std::size_t header = (sizeof(Heap) + alignof(std::max_align_t) - 1) &
                                 ~(alignof(std::max_align_t) - 1);
  Heap::Chunk* chunk = obtain_chunk(header + initial_bytes);
  Heap* heap = new (chunk->data()) Heap();
  heap->chunks = chunk;
  heap->cursor = chunk->data() + header;
  heap->limit = chunk->data() + chunk->size;
  heap->allocated_bytes = sizeof(Heap::Chunk) + chunk->size;
  return heap;
}

}  // namespace

Heap* Heap::create() { return create_region(0); }

Heap* Heap::root() noexcept {
  Heap* heap = this;
  while (heap->parent != nullptr) heap = heap->parent;
  return heap;
}

void* Heap::allocate_elsewhere(std::size_t bytes, std::size_t align) {
  Heap& heap = parent == nullptr ? *this : *root();
  heap.used_bytes += bytes;
  const std::uintptr_t start = align_up(reinterpret_cast<std::uintptr_t>(heap.cursor), align);
  if (heap.cursor != nullptr && start + bytes <= reinterpret_cast<std::uintptr_t>(heap.limit)) {
    heap.cursor = reinterpret_cast<char*>(start + bytes);
    return reinterpret_cast<void*>(start);
  }
  return allocate_slow(heap, bytes, align);
}

void* Heap::grow(void* block, std::size_t old_bytes, std::size_t new_bytes) {
  Heap& heap = parent == nullptr ? *this : *root();
  char* start = static_cast<char*>(block);
  const std::size_t extra = new_bytes - old_bytes;
  if (start + old_bytes == heap.cursor && static_cast<std::size_t>(heap.limit - heap.cursor) >= extra) {
    heap.cursor += extra;
  } else if (start == heap.solo_block && start != nullptr) {
    if (static_cast<std::size_t>(heap.solo_limit - start) < new_bytes) {
      if (new_bytes > (std::size_t{1} << 62)) throw std::bad_alloc();
      Heap::Chunk* chunk = *heap.solo_link;
      const std::size_t old_total = sizeof(Heap::Chunk) + chunk->size;
      const std::size_t total = std::bit_ceil(sizeof(Heap::Chunk) + new_bytes);
      Heap::Chunk* moved = take_cached_chunk(total);
      if (moved != nullptr) {
        // Copying into memory already touched is cheaper than faulting in remapped pages.
        moved->next = chunk->next;
        moved->size = total - sizeof(Heap::Chunk);
        std::memcpy(moved->data(), chunk->data(), old_bytes);
        give_back_chunk(chunk);
      } else {
        moved = static_cast<Heap::Chunk*>(std::realloc(chunk, total));
        if (moved == nullptr) throw std::bad_alloc();
        moved->size = total - sizeof(Heap::Chunk);
      }
      *heap.solo_link = moved;
      heap.allocated_bytes += total - old_total;
      heap.solo_block = moved->data();
      heap.solo_limit = moved->data() + moved->size;
      start = moved->data();
    }
  } else {
    return nullptr;
  }
  heap.used_bytes += extra;
  return start;
}

void* Heap::allocate_releasable(std::size_t bytes, std::size_t align) {
  Heap& heap = parent == nullptr ? *this : *root();
  if (bytes < releasable_bytes || align > alignof(std::max_align_t)) return heap.allocate(bytes, align);
  Heap::Chunk* chunk = new_chunk(heap, bytes);
  // Linked behind the current chunk, whose free space stays in use; the link a grown solo block
  // hangs from may be the one rewritten here.
  chunk->next = heap.chunks->next;
  heap.chunks->next = chunk;
  heap.solo_block = nullptr;
  heap.used_bytes += bytes;
  return chunk->data();
}

void Heap::release_block(void* block, std::size_t bytes) noexcept {
  Heap& heap = parent == nullptr ? *this : *root();
  char* start = static_cast<char*>(block);
  if (bytes < releasable_bytes) {
    if (start + bytes == heap.cursor) {
      heap.cursor = start;
      heap.used_bytes -= bytes;
    }
    return;
  }
  Heap::Chunk* target = reinterpret_cast<Heap::Chunk*>(block) - 1;
  for (Heap::Chunk** link = &heap.chunks; *link != nullptr; link = &(*link)->next) {
    if (*link != target) continue;
    *link = target->next;
    heap.solo_block = nullptr;  // its link may have been target's
    heap.allocated_bytes -= sizeof(Heap::Chunk) + target->size;
    heap.used_bytes -= bytes;
    give_back_chunk(target);
    return;
  }
}

void retain(Heap* heap) noexcept {
  if (heap != nullptr) heap->refs.fetch_add(1, std::memory_order_relaxed);
}

void release(Heap* heap) noexcept {
  // A region that dies drops its reference on its union-find parent, which may die in turn: a loop,
  // not a recursion, however long the chain.
  while (heap != nullptr && heap->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    Heap* parent = heap->parent;
    if (parent == nullptr) {
      // A root: free every chunk, the blocks of absorbed regions included (they have no references
      // left, or they would hold one on this root), and last the block holding this Heap.
      Heap::Chunk* own_block = reinterpret_cast<Heap::Chunk*>(heap) - 1;
      Heap::Chunk* chunk = heap->chunks;
      while (chunk != nullptr) {
        Heap::Chunk* next = chunk->next;
        if (chunk != own_block) give_back_chunk(chunk);
        chunk = next;
      }
      heap->~Heap();
      give_back_chunk(own_block);
    }
    heap = parent;
  }
}

Heap* merge(Heap* a, Heap* b) {
  if (a == nullptr) return b == nullptr ? nullptr : b->root();
  if (b == nullptr) return a->root();
  Heap* into = a->root();
  Heap* from = b->root();
  if (into == from) return into;
  if (into->allocated_bytes < from->allocated_bytes) std::swap(into, from);
  if (from->chunks != nullptr) {
    if (into->chunks == nullptr) {
      into->chunks = from->chunks;
      into->cursor = from->cursor;
      into->limit = from->limit;
    } else {
      Heap::Chunk* tail = from->chunks;
      while (tail->next != nullptr) tail = tail->next;
      tail->next = into->chunks->next;
      into->chunks->next = from->chunks;
    }
  }
  into->allocated_bytes += from->allocated_bytes;
  into->used_bytes += from->used_bytes;
  into->next_chunk_size = std::max(into->next_chunk_size, from->next_chunk_size);
  for (auto& keep : from->keepalive) into->keepalive.push_back(std::move(keep));
  std::vector<std::shared_ptr<const void>>().swap(from->keepalive);  // its destructor never runs
  into->folded_arguments.insert(into->folded_arguments.end(), from->folded_arguments.begin(),
                                from->folded_arguments.end());
  std::vector<std::pair<const void*, Slot>>().swap(from->folded_arguments);
  from->chunks = nullptr;
  from->cursor = nullptr;
  from->limit = nullptr;
  from->allocated_bytes = 0;
  from->used_bytes = 0;
  // Splicing rewrote the link into's solo chunk may hang from; from's solo chunk is into's now.
  for (Heap* region : {into, from}) {
    region->solo_block = nullptr;
    region->solo_limit = nullptr;
    region->solo_link = nullptr;
  }
  from->parent = into;
  retain(into);
  return into;
}

// ================================================================================================
// Node construction
// ================================================================================================

namespace {

template <class T>
T* allocate_array(Heap& heap, std::size_t count) {
  if (count > std::numeric_limits<std::size_t>::max() / sizeof(T)) throw std::bad_alloc();
  return static_cast<T*>(heap.allocate(sizeof(T) * count, alignof(T)));
}

Slot node_slot(Tag tag, Node* node) noexcept {
  Slot slot;
  slot.p = node;
  slot.tag = tag;
  return slot;
}

std::uint64_t magnitude(std::int64_t v) noexcept {
  return v < 0 ? std::uint64_t{0} - static_cast<std::uint64_t>(v) : static_cast<std::uint64_t>(v);
}

}  // namespace

Slot make_int(Heap& heap, const BigInt& v) {
  Slot slot;
  if (v >= std::numeric_limits<std::int64_t>::min() && v <= std::numeric_limits<std::int64_t>::max()) {
    slot.tag = Tag::small_int;
    slot.i = static_cast<std::int64_t>(v);
    return slot;
  }
  const BigInt abs_value = boost::multiprecision::abs(v);
  const std::size_t limb_count = boost::multiprecision::msb(abs_value) / 64 + 1;
  // limbs is the last member: the node ends with its first limb.
  const std::size_t bytes = sizeof(BigIntNode) + (limb_count - 1) * sizeof(std::uint64_t);
  auto* node = static_cast<BigIntNode*>(heap.allocate(bytes, alignof(BigIntNode)));
  node->refs = 0;
  node->negative = v < 0;
  node->limb_count = static_cast<std::uint32_t>(limb_count);
  std::uint64_t* limbs = node->limbs;
  boost::multiprecision::export_bits(abs_value, limbs, 64, false);
  return node_slot(Tag::big_int, node);
}

BigInt to_bigint(const BigIntNode& node) {
  BigInt result;
  boost::multiprecision::import_bits(result, node.limbs, node.limbs + node.limb_count, 64, false);
  if (node.negative) result = -result;
  return result;
}

Slot make_bytes(Heap& heap, std::string_view data, Tag tag) {
  if (tag != Tag::bytearray) return make_string_node(heap, data, tag);
  // One allocation: the node, then its bytes.
  auto* node = static_cast<BytearrayNode*>(heap.allocate(sizeof(BytearrayNode) + data.size(), alignof(BytearrayNode)));
  char* bytes = reinterpret_cast<char*>(node + 1);
  if (!data.empty()) std::memcpy(bytes, data.data(), data.size());
  node->refs = 0;
  node->data = bytes;
  node->size = data.size();
  node->hash = hash_unset;
  node->capacity = data.size();
  return node_slot(tag, node);
}


Slot make_string_view(Heap& heap, const char* data, std::size_t size, Tag tag) {
  StringNode* node = tag == Tag::bytearray ? heap.make<BytearrayNode>() : heap.make<StringNode>();
  node->data = data;
  node->size = size;
  node->hash = hash_unset;
  return node_slot(tag, node);
}

Cell box(Heap& heap, Slot slot) {
  if (slot.tag == Tag::floating) {
    auto* box = static_cast<double*>(heap.allocate(sizeof(double), alignof(double)));
    *box = slot.f;
    return Cell::node(boxed_float, box);
  }
  if (slot.tag == Tag::small_int && !Cell::fits_inline(slot.i)) {
    auto* box = static_cast<std::int64_t*>(heap.allocate(sizeof(std::int64_t), alignof(std::int64_t)));
    *box = slot.i;
    return Cell::node(boxed_int, box);
  }
  return pack_unboxed(slot);
}

// Packs count slots into cells (boxing into heap what needs a box), counting the references.
static void pack_into(Heap& heap, Cell* cells, const Slot* slots, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    cells[i] = pack(heap, slots[i]);
    note_reference(slots[i]);
  }
}

Slot make_seq(Heap& heap, Tag tag, const Slot* items, std::size_t count) {
  // Node and items in one allocation; a list that grows later moves its items out.
  if (count > (std::numeric_limits<std::size_t>::max() - sizeof(SeqNode)) / sizeof(Cell)) {
    throw std::bad_alloc();
  }
  const std::size_t bytes = sizeof(SeqNode) + count * sizeof(Cell);
  auto* node = static_cast<SeqNode*>(heap.allocate(bytes, alignof(SeqNode)));
  auto* array = reinterpret_cast<Cell*>(node + 1);
  node->refs = 0;
  node->items = array;
  node->size = count;
  node->capacity = count;
  node->hash = 0;
  node->hash_state = 0;
  if (items != nullptr) {
    // Boxes go after the node: the items stay right behind it.
    pack_into(heap, array, items, count);
  } else {
    std::uninitialized_default_construct_n(array, count);  // None; the caller fills them in
  }
  return node_slot(tag, node);
}

Slot make_seq_cells(Heap& heap, Tag tag, const Cell* items, std::size_t count) {
  const Slot slot = make_seq(heap, tag, nullptr, count);
  if (count != 0) std::memcpy(static_cast<void*>(node<SeqNode>(slot).items), items, count * sizeof(Cell));
  note_references(items, count);
  return slot;
}

namespace {

void seq_reserve(Heap& heap, SeqNode& seq, std::size_t needed) {
  if (needed <= seq.capacity) return;
  // A list whose items are the region's last allocation (a list of atoms being loaded, or an empty
  // list's inline items right after its node) grows in place, exactly: no copy, no waste.
  if (needed <= std::numeric_limits<std::size_t>::max() / sizeof(Cell)) {
    if (void* grown = heap.grow(seq.items, seq.capacity * sizeof(Cell), needed * sizeof(Cell))) {
      seq.items = static_cast<Cell*>(grown);
      seq.capacity = needed;
      return;
    }
  }
  std::size_t capacity = std::max<std::size_t>(seq.capacity * 2, 8);
  if (capacity < needed) capacity = needed;
  Cell* items = allocate_array<Cell>(heap, capacity);
  if (seq.size != 0) std::memcpy(static_cast<void*>(items), seq.items, seq.size * sizeof(Cell));
  seq.items = items;
  seq.capacity = capacity;
}

}  // namespace

void seq_append(Heap& heap, SeqNode& seq, Slot item) {
  if (seq.size == seq.capacity) seq_reserve(heap, seq, seq.size + 1);
  // Boxed after the reserve: a box allocated first would stop the items growing in place.
  seq.items[seq.size] = pack(heap, item);
  note_reference(item);
  ++seq.size;
}

void seq_extend(Heap& heap, SeqNode& seq, const Slot* items, std::size_t count) {
  if (count == 0) return;
  seq_reserve(heap, seq, seq.size + count);
  pack_into(heap, seq.items + seq.size, items, count);
  seq.size += count;
}

void seq_extend_cells(Heap& heap, SeqNode& seq, const Cell* items, std::size_t count) {
  if (count == 0) return;
  seq_reserve(heap, seq, seq.size + count);
  std::memcpy(static_cast<void*>(seq.items + seq.size), items, count * sizeof(Cell));
  note_references(items, count);
  seq.size += count;
}

// --- work metering -------------------------------------------------------------------------------

namespace {
thread_local WorkMeter* current_meter = nullptr;
}  // namespace

WorkMeter::WorkMeter() noexcept : previous_(current_meter) { current_meter = this; }

WorkMeter::~WorkMeter() { current_meter = previous_; }

void WorkMeter::charge(std::size_t units) {
  WorkMeter* meter = current_meter;
  if (meter == nullptr) return;
  while (units > meter->remaining_) {
    units -= meter->remaining_;
    meter->used_ += meter->remaining_;
    meter->remaining_ = 0;
    meter->replenish();
  }
  meter->remaining_ -= units;
  meter->used_ += units;
}

// --- dict / set tables ---------------------------------------------------------------------------

namespace {

// --- hashes of atoms and strings (the tables need them; the rest of hashing is below) ---------

// sys.hash_info: numbers hash to their value modulo the Mersenne prime 2**61 - 1.
constexpr int modulus_bits = 61;
constexpr std::uint64_t modulus = (std::uint64_t{1} << modulus_bits) - 1;
constexpr std::int64_t hash_inf = 314159;
constexpr std::int64_t hash_nan = 0;

std::uint64_t as_hash(std::int64_t h) noexcept {
  // Python reserves -1 for errors in its C API, so no hash is ever -1.
  return static_cast<std::uint64_t>(h == -1 ? -2 : h);
}

std::uint64_t reduce(std::uint64_t x) noexcept {
  std::uint64_t r = (x & modulus) + (x >> modulus_bits);
  return r >= modulus ? r - modulus : r;
}

std::uint64_t hash_int64(std::int64_t v) noexcept {
  const auto r = static_cast<std::int64_t>(reduce(magnitude(v)));
  return as_hash(v < 0 ? -r : r);
}

std::uint64_t hash_bigint(const BigIntNode& node) noexcept {
  // Horner's rule from the most significant limb; 2**64 ≡ 2**3 (mod 2**61 - 1).
  std::uint64_t acc = 0;
  for (std::size_t i = node.limb_count; i-- > 0;) {
    acc = reduce(acc << 3);  // acc < 2**61, so the shift cannot overflow
    acc = reduce(acc + reduce(node.limbs[i]));
  }
  const auto r = static_cast<std::int64_t>(acc);
  return as_hash(node.negative ? -r : r);
}

std::uint64_t hash_double(double v) noexcept {
  if (std::isnan(v)) return hash_nan;
  if (std::isinf(v)) return as_hash(v > 0 ? hash_inf : -hash_inf);
  // v = m * 2**e with 0.5 <= |m| < 1. Take m's bits 28 at a time into a residue modulo 2**61 - 1
  // (multiplying by 2**28 there is a 61-bit rotation), then multiply by 2**e the same way.
  int exponent;
  double mantissa = std::frexp(v, &exponent);
  const bool negative = mantissa < 0;
  if (negative) mantissa = -mantissa;
  std::uint64_t x = 0;
  while (mantissa != 0) {
    x = ((x << 28) & modulus) | x >> (modulus_bits - 28);
    mantissa *= 268435456.0;  // 2**28
    exponent -= 28;
    const auto digit = static_cast<std::uint64_t>(mantissa);
    mantissa -= static_cast<double>(digit);
    x += digit;
    if (x >= modulus) x -= modulus;
  }
  const int shift = exponent >= 0 ? exponent % modulus_bits
                                  : modulus_bits - 1 - ((-1 - exponent) % modulus_bits);
  x = ((x << shift) & modulus) | x >> (modulus_bits - shift);
  const auto r = static_cast<std::int64_t>(x);
  return as_hash(negative ? -r : r);
}

// str and bytes hash with a keyed multiply-mix hash, its key drawn per process so that colliding
// keys cannot be precomputed (as CPython's seeded SipHash; a str's hash differs between processes
// in Python too, so nothing depends on its value). It costs a few instructions per 16 bytes where
// SipHash-1-3 cost a sixth of loading a dict of short str keys; a flood of keys that collide
// anyway is bounded by the work meter (Limits::hash_work_budget).
struct HashKey {
  std::uint64_t seed;
  std::uint64_t secret[2];
};

const HashKey& hash_key() {
  static const HashKey key = [] {
    std::random_device device;
    auto word = [&device] {
      return (static_cast<std::uint64_t>(device()) << 32) ^ static_cast<std::uint64_t>(device());
    };
    HashKey k;
    k.seed = word();
    // Odd multipliers with both halves dense, so that no product loses the key.
    k.secret[0] = word() | 0x8000000100000001ull;
    k.secret[1] = word() | 0x8000000100000001ull;
    return k;
  }();
  return key;
}

// The 128-bit product of a and b, folded to 64 bits.
std::uint64_t fold_multiply(std::uint64_t a, std::uint64_t b) noexcept {
  __extension__ using Wide = unsigned __int128;
  const Wide product = static_cast<Wide>(a) * b;
  return static_cast<std::uint64_t>(product) ^ static_cast<std::uint64_t>(product >> 64);
}

std::uint64_t read64(const unsigned char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::uint64_t read_tail(const unsigned char* p, std::size_t n) noexcept {  // 1 <= n <= 7
  if (n >= 4) {
    std::uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + n - 4, 4);
    return static_cast<std::uint64_t>(lo) << 32 | hi;
  }
  return static_cast<std::uint64_t>(p[0]) << 16 | static_cast<std::uint64_t>(p[n >> 1]) << 8 | p[n - 1];
}

std::uint64_t keyed_hash(const char* data, std::size_t size) noexcept {
  const HashKey& key = hash_key();
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  std::uint64_t state = key.seed ^ fold_multiply(size ^ key.secret[0], key.secret[1]);
  std::uint64_t a;
  std::uint64_t b;
  if (size <= 16) {
    if (size >= 8) {
      a = read64(p);
      b = read64(p + size - 8);
    } else {
      a = size == 0 ? 0 : read_tail(p, size);
      b = 0;
    }
  } else {
    std::size_t left = size;
    while (left > 16) {
      state = fold_multiply(read64(p) ^ key.secret[0], read64(p + 8) ^ state);
      p += 16;
      left -= 16;
    }
    a = read64(p + left - 16);
    b = read64(p + left - 8);
  }
  return fold_multiply(a ^ key.secret[1] ^ state, b ^ key.secret[0] ^ size);
}

std::uint64_t hash_string(const StringNode& node) noexcept {
  std::atomic_ref<std::uint64_t> cached(const_cast<std::uint64_t&>(node.hash));
  std::uint64_t h = cached.load(std::memory_order_relaxed);
  if (h != hash_unset) return h;
  // As in Python, the empty string hashes to 0.
  h = node.size == 0 ? 0 : as_hash(static_cast<std::int64_t>(keyed_hash(node.data, node.size)));
  cached.store(h, std::memory_order_relaxed);
  return h;
}

constexpr std::size_t min_index_size = 8;

std::size_t usable_entries(std::size_t index_size) noexcept { return index_size * 2 / 3; }

// Python's hash of a key given as a cell: one already in a table (what was hashed when it went in)
// or one from a reader's stack. Cached in the node for str and bytes, computed for inline ints.
[[gnu::always_inline]] inline std::uint64_t cell_hash(Cell key) {
  switch (key.tag()) {
    case Tag::small_int: return hash_int64(key.inline_int_value());
    case Tag::str:
    case Tag::bytes: return hash_string(*static_cast<const StringNode*>(key.pointer()));
    default: return slot_hash(load(key));
  }
}

bool same_text(const StringNode& a, const StringNode& b, std::uint64_t b_hash) noexcept {
  if (a.size != b.size) return false;
  const std::uint64_t a_hash = std::atomic_ref<std::uint64_t>(const_cast<std::uint64_t&>(a.hash))
                                   .load(std::memory_order_relaxed);
  if (a_hash != hash_unset && a_hash != b_hash) return false;
  return a.size == 0 || std::memcmp(a.data, b.data, a.size) == 0;
}

// Whether the stored key equals `key` (whose hash is `hash`): identical cells and the common
// atom/str cases without the general comparison machinery.
[[gnu::always_inline]] inline bool keys_match(Cell stored, Cell key, std::uint64_t hash) {
  if (stored == key) return true;
  const Tag tag = key.tag();
  if (stored.tag() == tag) {
    switch (tag) {
      case Tag::none:
      case Tag::boolean:
      case Tag::small_int: return false;  // inline atoms of one kind are equal iff their bits are
      case Tag::str:
      case Tag::bytes:
        return same_text(*static_cast<const StringNode*>(stored.pointer()),
                         *static_cast<const StringNode*>(key.pointer()), hash);
      default: break;
    }
  }
  // Kinds that may still be equal (1 == 1.0 == True), and containers, which compare by value.
  return cell_hash(stored) == hash && slot_equal(load(stored), load(key));
}

// A key to look up without storing it: floats and wide ints are compared as slots, not boxed.
bool matches_lookup(Cell stored, Slot key, std::uint64_t hash) {
  if (!needs_box(key)) return keys_match(stored, pack_unboxed(key), hash);
  return cell_hash(stored) == hash && slot_equal(load(stored), key);
}

// A table's index, as positions (entry position + 1; 0 empty) of one width. 4-byte slots of tables
// up to 2**24 slots also hold bits 24-31 of the key's hash above the position (the kept hash's top
// byte; a slot of such a table is chosen by bits 0-23 of the hash first), so that probing
// reads nothing but the slot for a key that cannot be there (255 times in 256): in a large table
// the slot, the kept hash and the entry are three cache misses.
template <class T, bool Tagged>
struct Positions {
  T* slots;
  static constexpr std::uint32_t position_mask = Tagged ? 0xFFFFFFu : ~std::uint32_t{0};
  static constexpr std::uint32_t tag_of(std::uint64_t hash) noexcept {
    return Tagged ? static_cast<std::uint32_t>(hash) & ~position_mask : 0;
  }
  std::uint32_t at(std::size_t i) const noexcept { return static_cast<std::uint32_t>(slots[i]) & position_mask; }
  bool occupied(std::size_t i) const noexcept { return slots[i] != 0; }
  // Whether the key at slot i may have this hash (the tag, where slots have one, matches).
  bool tag_matches(std::size_t i, std::uint64_t hash) const noexcept {
    return !Tagged || (static_cast<std::uint32_t>(slots[i]) & ~position_mask) == tag_of(hash);
  }
  void set(std::size_t i, std::uint32_t position, std::uint64_t hash) noexcept {
    slots[i] = static_cast<T>(position | tag_of(hash));
  }
};

constexpr std::size_t max_tagged_index = std::size_t{1} << 24;

// Calls f with the table's index as the Positions view of its width.
template <class F>
decltype(auto) with_index(const DictNode& dict, F&& f) {
  switch (index_width(dict.index_mask)) {
    case 1: return f(Positions<std::uint8_t, false>{static_cast<std::uint8_t*>(dict.index)});
    case 2: return f(Positions<std::uint16_t, false>{static_cast<std::uint16_t*>(dict.index)});
    default:
      if (dict.index_mask < max_tagged_index) {
        return f(Positions<std::uint32_t, true>{static_cast<std::uint32_t*>(dict.index)});
      }
      return f(Positions<std::uint32_t, false>{static_cast<std::uint32_t*>(dict.index)});
  }
}

// The hash a table places and probes a key by: the full hash in small tables, its low 32 bits in
// those that keep DictNode::hashes.
inline std::uint64_t placement_hash(const DictNode& table, std::uint64_t hash) noexcept {
  return table.hashes != nullptr ? static_cast<std::uint32_t>(hash) : hash;
}

// The entry position (1-based) at slot i if its key may have this hash, else 0: the slot's tag or
// the table's kept hash says it cannot.
template <class P>
std::uint32_t candidate_at(const DictNode& table, P positions, std::size_t i, std::uint64_t hash) noexcept {
  if (!positions.tag_matches(i, hash)) return 0;
  const std::uint32_t position = positions.at(i);
  if (table.hashes != nullptr && table.hashes[position - 1] != static_cast<std::uint32_t>(hash)) return 0;
  return position;
}

// Places `position` at the first free slot of the probe sequence of `hash` (the full hash; the
// table's placement hash decides the slots).
template <class P>
void index_insert(const DictNode& table, P positions, std::uint64_t hash, std::uint32_t position,
                  std::size_t& steps) noexcept {
  const std::size_t mask = table.index_mask;
  const std::uint64_t placed = placement_hash(table, hash);
  std::size_t i = placed & mask;
  std::uint64_t perturb = placed;
  while (positions.occupied(i)) {
    perturb >>= 5;
    i = (i * 5 + perturb + 1) & mask;
    ++steps;
  }
  positions.set(i, position, hash);
}

void dict_resize(Heap& heap, DictNode& dict, std::size_t min_entries) {
  std::size_t index_size = min_index_size;
  while (usable_entries(index_size) < min_entries) {
    if (index_size > (std::size_t{1} << 31)) throw std::bad_alloc();
    index_size *= 2;
  }
  const std::size_t capacity = usable_entries(index_size);
  const auto width = static_cast<std::size_t>(index_width(index_size - 1));
  auto* entries = static_cast<DictEntry*>(
      heap.allocate_releasable(capacity * sizeof(DictEntry), alignof(DictEntry)));
  void* index = heap.allocate_releasable(index_size * width, width);
  std::memset(index, 0, index_size * width);
  std::uint32_t* hashes = nullptr;
  if (width > 1) {
    hashes = static_cast<std::uint32_t*>(
        heap.allocate_releasable(capacity * sizeof(std::uint32_t), alignof(std::uint32_t)));
    for (std::size_t i = 0; i < dict.size; ++i) {
      hashes[i] = dict.hashes != nullptr ? dict.hashes[i]
                                         : static_cast<std::uint32_t>(cell_hash(dict.entries[i].key));
    }
  }
  if (dict.size != 0) std::memcpy(static_cast<void*>(entries), dict.entries, dict.size * sizeof(DictEntry));
  // The old table goes back (a large one to the system), where a growing table used to leave each
  // smaller one behind in the region: as much again as the final table.
  if (dict.index != nullptr) {
    const std::size_t old_index_size = dict.index_mask + 1;
    heap.release_block(dict.entries, dict.capacity * sizeof(DictEntry));
    heap.release_block(dict.index, old_index_size * static_cast<std::size_t>(index_width(dict.index_mask)));
    if (dict.hashes != nullptr) heap.release_block(dict.hashes, dict.capacity * sizeof(std::uint32_t));
  }
  dict.entries = entries;
  dict.capacity = capacity;
  dict.index = index;
  dict.index_mask = index_size - 1;
  dict.hashes = hashes;
  std::size_t steps = 0;
  with_index(dict, [&](auto positions) {
    for (std::size_t i = 0; i < dict.size; ++i) {
      const std::uint64_t h = hashes != nullptr ? hashes[i] : cell_hash(entries[i].key);
      index_insert(dict, positions, h, static_cast<std::uint32_t>(i + 1), steps);
    }
  });
  if (steps != 0) WorkMeter::charge(steps);
}

// A later duplicate key's value replaces the entry's (the first key object stays, as in CPython).
void overwrite_value(DictEntry& entry, Cell value) noexcept {
  entry.value = value;
  note_reference(value);
}

// Stores a new entry at the end and its position at index slot i.
template <class P>
void append_entry(DictNode& dict, P positions, std::size_t i, Cell key, Cell value, std::uint64_t hash) {
  dict.entries[dict.size] = DictEntry{key, value};
  note_reference(key);
  note_reference(value);
  if (dict.hashes != nullptr) dict.hashes[dict.size] = static_cast<std::uint32_t>(hash);
  ++dict.size;
  positions.set(i, static_cast<std::uint32_t>(dict.size), hash);
}

// The entry whose key matches (match(entry_key) is true), or null; then `empty` is the index slot
// that ended the probe. Occupied slots passed over are charged to the work meter: a crafted
// collision makes every insertion walk all the colliding keys.
template <class P, class Match>
DictEntry* probe(const DictNode& dict, P positions, std::uint64_t hash, Match&& match,
                 std::size_t& empty) {
  const std::size_t mask = dict.index_mask;
  const std::uint64_t placed = placement_hash(dict, hash);
  std::size_t i = placed & mask;
  std::uint64_t perturb = placed;
  std::size_t steps = 0;
  while (positions.occupied(i)) {
    if (const std::uint32_t position = candidate_at(dict, positions, i, hash)) {
      DictEntry& entry = dict.entries[position - 1];
      if (match(entry.key)) {
        if (steps != 0) WorkMeter::charge(steps);
        return &entry;
      }
    }
    perturb >>= 5;
    i = (i * 5 + perturb + 1) & mask;
    if (++steps == 1024) {
      WorkMeter::charge(steps);
      steps = 0;
    }
  }
  if (steps != 0) WorkMeter::charge(steps);
  empty = i;
  return nullptr;
}

const DictEntry* find_hashed(const DictNode& dict, Slot key, std::uint64_t hash) {
  if (dict.size == 0) return nullptr;
  std::size_t empty = 0;
  return with_index(dict, [&](auto positions) -> const DictEntry* {
    return probe(dict, positions, hash, [&](Cell stored) { return matches_lookup(stored, key, hash); },
                 empty);
  });
}

// Insert `key` unless an equal key exists; returns the entry holding the key.
DictEntry& table_insert(Heap& heap, DictNode& dict, Cell key, std::uint64_t hash, Cell value,
                        bool overwrite) {
  // One probe serves both the lookup and the insertion: entries are never deleted, so the empty
  // index slot that ends an unsuccessful lookup is where the new entry goes.
  std::size_t empty = 0;
  if (dict.index != nullptr) {
    DictEntry* found = with_index(dict, [&](auto positions) {
      return probe(dict, positions, hash, [&](Cell stored) { return keys_match(stored, key, hash); },
                   empty);
    });
    if (found != nullptr) {
      if (overwrite) overwrite_value(*found, value);
      return *found;
    }
  }
  const bool resized = dict.size == dict.capacity;
  if (resized) {
    // Double the index (at least), which keeps the table at most 2/3 full as in CPython.
    dict_resize(heap, dict, std::max<std::size_t>(dict.size * 3 / 2 + 1, dict.size + 1));
  }
  with_index(dict, [&](auto positions) {
    if (resized) {
      std::size_t steps = 0;
      const std::uint64_t placed = placement_hash(dict, hash);
      std::size_t i = placed & dict.index_mask;
      for (std::uint64_t perturb = placed; positions.occupied(i); ++steps) {
        perturb >>= 5;
        i = (i * 5 + perturb + 1) & dict.index_mask;
      }
      if (steps != 0) WorkMeter::charge(steps);
      empty = i;
    }
    append_entry(dict, positions, empty, key, value, hash);
  });
  return dict.entries[dict.size - 1];
}

// The key's hash, computed before anything is stored (an unhashable key changes nothing).
[[gnu::always_inline]] inline std::uint64_t key_hash(Slot key) {
  if (key.tag == Tag::small_int) return hash_int64(key.i);
  if (key.tag == Tag::str || key.tag == Tag::bytes) return hash_string(node<StringNode>(key));
  return slot_hash(key);
}

}  // namespace

Slot make_dict(Heap& heap, Tag tag, std::size_t capacity) {
  auto* node = heap.make<DictNode>();
  if (capacity != 0) dict_resize(heap, *node, capacity);
  return node_slot(tag, node);
}

void dict_reserve(Heap& heap, DictNode& dict, std::size_t additional) {
  if (additional > std::numeric_limits<std::uint32_t>::max()) return;  // the inserts will fail first
  const std::size_t wanted = dict.size + additional;
  if (wanted > dict.capacity) dict_resize(heap, dict, wanted);
}

namespace {

struct Insertion {
  Cell key;
  std::uint64_t hash;
  Cell value;
};

// Inserts `count` entries (entry_at(i) gives each, hashed before it is stored) after one reserve,
// so that the index keeps its width and the loop probes it through a pointer of the right type.
template <class EntryAt>
void insert_batch(Heap& heap, DictNode& table, std::size_t count, bool overwrite, EntryAt&& entry_at) {
  if (count == 0) return;
  dict_reserve(heap, table, count);
  if (table.capacity < table.size + count) {  // more than the index can count: one at a time
    for (std::size_t i = 0; i < count; ++i) {
      const Insertion e = entry_at(i);
      table_insert(heap, table, e.key, e.hash, e.value, overwrite);
    }
    return;
  }
  // probe's loop, written out: called here (a lambda per key), it cost 3-4% of MICRO_DICT's and
  // DICT's loads (callgrind), which are the loads furthest from their target.
  with_index(table, [&](auto positions) {
    const std::size_t mask = table.index_mask;
    for (std::size_t n = 0; n < count; ++n) {
      const Insertion e = entry_at(n);
      const std::uint64_t placed = placement_hash(table, e.hash);
      std::size_t i = placed & mask;
      std::uint64_t perturb = placed;
      std::size_t steps = 0;
      DictEntry* found = nullptr;
      while (positions.occupied(i)) {
        if (const std::uint32_t position = candidate_at(table, positions, i, e.hash)) {
          DictEntry& entry = table.entries[position - 1];
          if (keys_match(entry.key, e.key, e.hash)) {
            found = &entry;
            break;
          }
        }
        perturb >>= 5;
        i = (i * 5 + perturb + 1) & mask;
        if (++steps == 1024) {
          WorkMeter::charge(steps);
          steps = 0;
        }
      }
      if (steps != 0) WorkMeter::charge(steps);
      if (found != nullptr) {
        if (overwrite) overwrite_value(*found, e.value);
        continue;
      }
      append_entry(table, positions, i, e.key, e.value, e.hash);
    }
  });
}

}  // namespace

void dict_update_cells(Heap& heap, DictNode& dict, const Cell* pairs, std::size_t pair_count) {
  insert_batch(heap, dict, pair_count, true, [pairs](std::size_t i) {
    return Insertion{pairs[2 * i], cell_hash(pairs[2 * i]), pairs[2 * i + 1]};
  });
}

void set_update_cells(Heap& heap, DictNode& set, const Cell* items, std::size_t count) {
  insert_batch(heap, set, count, false, [items](std::size_t i) {
    return Insertion{items[i], cell_hash(items[i]), Cell()};
  });
}

void dict_set(Heap& heap, DictNode& dict, Slot key, Slot value) {
  const std::uint64_t hash = key_hash(key);
  table_insert(heap, dict, pack(heap, key), hash, pack(heap, value), true);
}

void set_add(Heap& heap, DictNode& set, Slot key) {
  const std::uint64_t hash = key_hash(key);
  table_insert(heap, set, pack(heap, key), hash, Cell(), false);
}

const DictEntry* dict_find(const DictNode& dict, Slot key) {
  const std::uint64_t hash = key_hash(key);  // refuses unhashable keys even in an empty table
  return find_hashed(dict, key, hash);
}

Slot make_global(Heap& heap, Slot module, Slot name) {
  auto* node = heap.make<GlobalNode>();
  node->module = module;
  node->name = name;
  note_reference(module);
  note_reference(name);
  return node_slot(Tag::global, node);
}

Slot make_object(Heap& heap, ObjectForm form, Slot callable, Slot args, Slot kwargs) {
  auto* node = heap.make<ObjectNode>();
  node->form = form;
  node->ext_code = 0;
  node->callable = callable;
  node->args = args;
  node->kwargs = kwargs;
  note_reference(callable);
  note_reference(args);
  note_reference(kwargs);
  return node_slot(Tag::object, node);
}

void object_add_op(Heap& heap, ObjectNode& object, ObjectOp op, Slot first, Slot second) {
  if (object.op_count == object.op_capacity) {
    const std::size_t capacity = std::max<std::size_t>(object.op_capacity * 2, 4);
    auto* ops = allocate_array<ObjectOpEntry>(heap, capacity);
    if (object.op_count != 0) {
      std::memcpy(static_cast<void*>(ops), object.ops, object.op_count * sizeof(ObjectOpEntry));
    }
    object.ops = ops;
    object.op_capacity = capacity;
  }
  object.ops[object.op_count++] = ObjectOpEntry{op, first, second};
  note_reference(first);
  note_reference(second);
}

Slot make_buffer(Heap& heap, const char* data, std::size_t size, std::size_t index, bool readonly) {
  auto* node = static_cast<BufferNode*>(heap.allocate(sizeof(BufferNode) + size, alignof(BufferNode)));
  char* bytes = reinterpret_cast<char*>(node + 1);
  if (size != 0) std::memcpy(bytes, data, size);
  node->refs = 0;
  node->data = bytes;
  node->size = size;
  node->index = index;
  node->readonly = readonly;
  return node_slot(Tag::buffer, node);
}

std::size_t utf8_length(std::string_view utf8) noexcept { return code_point_count(utf8); }

// ================================================================================================
// Hashing
// ================================================================================================

namespace {

// CPython's tuple hash (3.8+): an xxHash-style accumulation of the item hashes.
constexpr std::uint64_t xx_prime_1 = 11400714785074694791ull;
constexpr std::uint64_t xx_prime_2 = 14029467366897019727ull;
constexpr std::uint64_t xx_prime_5 = 2870177450012600261ull;

std::uint64_t tuple_hash_step(std::uint64_t acc, std::uint64_t item_hash) noexcept {
  acc += item_hash * xx_prime_2;
  acc = std::rotl(acc, 31);
  return acc * xx_prime_1;
}

std::uint64_t tuple_hash_finish(std::uint64_t acc, std::size_t size) noexcept {
  acc += static_cast<std::uint64_t>(size) ^ (xx_prime_5 ^ 3527539ull);
  if (acc == std::numeric_limits<std::uint64_t>::max()) return 1546275796ull;
  return acc;
}

// CPython's frozenset hash: an order-independent xor of scrambled item hashes, then a final mix.
std::uint64_t shuffle_bits(std::uint64_t h) noexcept {
  return ((h ^ 89869747ull) ^ (h << 16)) * 3644798167ull;
}

std::uint64_t frozenset_hash_finish(std::uint64_t h, std::size_t size) noexcept {
  h ^= (static_cast<std::uint64_t>(size) + 1) * 1927868237ull;
  h ^= (h >> 11) ^ (h >> 25);
  h = h * 69069ull + 907133923ull;
  if (h == std::numeric_limits<std::uint64_t>::max()) h = 590923713ull;
  return h;
}

std::uint64_t identity_hash(const void* p) noexcept {
  // Objects are aligned, so the low bits carry nothing: rotate them away as CPython does.
  const auto address = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(p));
  return as_hash(static_cast<std::int64_t>(std::rotr(address, 4)));
}

enum : std::uint8_t { hash_unknown = 0, hash_known = 1, hash_refused = 2 };

std::uint8_t cached_state(const std::uint8_t& state) noexcept {
  return std::atomic_ref<std::uint8_t>(const_cast<std::uint8_t&>(state)).load(std::memory_order_acquire);
}

void store_cache(std::uint64_t& hash, std::uint8_t& state, std::uint64_t value,
                 std::uint8_t new_state) noexcept {
  std::atomic_ref<std::uint64_t>(hash).store(value, std::memory_order_relaxed);
  std::atomic_ref<std::uint8_t>(state).store(new_state, std::memory_order_release);
}

// The hash of anything but a tuple whose hash is not cached yet (tuples recurse; see slot_hash).
std::uint64_t leaf_hash(Slot slot) {
  switch (slot.tag) {
    case Tag::none: return 0xFCA86420ull;  // Python hashes None by identity: any fixed value
    case Tag::boolean: return slot.b ? 1 : 0;
    case Tag::small_int: return hash_int64(slot.i);
    case Tag::floating: return hash_double(slot.f);
    case Tag::big_int: return hash_bigint(node<BigIntNode>(slot));
    case Tag::str:
    case Tag::bytes: return hash_string(node<StringNode>(slot));
    case Tag::frozenset: {
      const auto& set = node<DictNode>(slot);
      if (cached_state(set.hash_state) == hash_known) return set.hash;
      break;  // not reached: slot_hash handles frozensets without a cached hash
    }
    case Tag::global: {
      const auto& global = node<GlobalNode>(slot);
      std::uint64_t acc = xx_prime_5;
      acc = tuple_hash_step(acc, leaf_hash(global.module));
      acc = tuple_hash_step(acc, leaf_hash(global.name));
      return tuple_hash_finish(acc, 2);
    }
    case Tag::object:
    case Tag::buffer: return identity_hash(slot.p);
    case Tag::tuple: {
      const auto& seq = node<SeqNode>(slot);
      if (cached_state(seq.hash_state) == hash_known) return seq.hash;
      break;  // not reached: slot_hash handles tuples without a cached hash
    }
    case Tag::bytearray:
    case Tag::list:
    case Tag::dict:
    case Tag::set: break;
  }
  throw UnhashableError(tag_name(slot.tag));
}

// Tuples and frozensets hash their items' hashes; without a cached hash of their own they are walked.
bool needs_descent(Slot slot) noexcept {
  if (slot.tag == Tag::tuple) return cached_state(node<SeqNode>(slot).hash_state) != hash_known;
  if (slot.tag == Tag::frozenset) return cached_state(node<DictNode>(slot).hash_state) != hash_known;
  return false;
}

}  // namespace

std::uint64_t slot_hash(Slot slot) {
  if (!needs_descent(slot)) return leaf_hash(slot);
  // Tuples and frozensets hash their items' hashes: walk with an explicit stack (a frozenset's items
  // are hashed already, but a $ref may have reset a cache, and nesting depth is the input's). Both
  // are acyclic (their items exist before them), and every finished one caches its hash, so shared
  // parts cost once.
  struct Frame {
    Slot container;
    std::size_t next;
    std::uint64_t acc;
    std::size_t size() const noexcept {
      return container.tag == Tag::tuple ? node<SeqNode>(container).size : node<DictNode>(container).size;
    }
    Slot item(std::size_t i) const noexcept {
      return load(container.tag == Tag::tuple ? node<SeqNode>(container).items[i]
                                              : node<DictNode>(container).entries[i].key);
    }
    void add(std::uint64_t h) noexcept {
      acc = container.tag == Tag::tuple ? tuple_hash_step(acc, h) : acc ^ shuffle_bits(h);
    }
    std::uint64_t finish() const noexcept {
      return container.tag == Tag::tuple ? tuple_hash_finish(acc, size())
                                         : frozenset_hash_finish(acc, size());
    }
    void cache(std::uint64_t h, std::uint8_t state) const noexcept {
      if (container.tag == Tag::tuple) {
        store_cache(node<SeqNode>(container).hash, node<SeqNode>(container).hash_state, h, state);
      } else {
        store_cache(node<DictNode>(container).hash, node<DictNode>(container).hash_state, h, state);
      }
    }
  };
  auto frame_of = [](Slot container) {
    return Frame{container, 0, container.tag == Tag::tuple ? xx_prime_5 : 0};
  };
  std::vector<Frame> stack;
  stack.push_back(frame_of(slot));
  try {
    while (true) {
      Frame& frame = stack.back();
      if (frame.next < frame.size()) {
        const Slot item = frame.item(frame.next);
        if (needs_descent(item)) {
          stack.push_back(frame_of(item));
          continue;
        }
        frame.add(leaf_hash(item));
        ++frame.next;
        continue;
      }
      const std::uint64_t h = frame.finish();
      frame.cache(h, hash_known);
      stack.pop_back();
      if (stack.empty()) return h;
      Frame& parent = stack.back();
      parent.add(h);
      ++parent.next;
    }
  } catch (const UnhashableError&) {
    for (const Frame& frame : stack) {
      if (frame.container.tag == Tag::tuple) frame.cache(0, hash_refused);
    }
    throw;
  }
}

bool slot_hashable(Slot slot) {
  switch (slot.tag) {
    case Tag::bytearray:
    case Tag::list:
    case Tag::dict:
    case Tag::set: return false;
    case Tag::tuple: {
      const std::uint8_t state = cached_state(node<SeqNode>(slot).hash_state);
      if (state != hash_unknown) return state == hash_known;
      try {
        slot_hash(slot);
        return true;
      } catch (const UnhashableError&) {
        return false;
      }
    }
    default: return true;
  }
}

// ================================================================================================
// Equality
// ================================================================================================

namespace {

bool is_number(Tag tag) noexcept {
  return tag == Tag::boolean || tag == Tag::small_int || tag == Tag::big_int || tag == Tag::floating;
}

bool is_bytes_like(Tag tag) noexcept { return tag == Tag::bytes || tag == Tag::bytearray; }

bool is_set_like(Tag tag) noexcept { return tag == Tag::set || tag == Tag::frozenset; }

bool bigints_equal(const BigIntNode& a, const BigIntNode& b) noexcept {
  return a.negative == b.negative && a.limb_count == b.limb_count &&
         std::memcmp(a.limbs, b.limbs, a.limb_count * sizeof(std::uint64_t)) == 0;
}

// int (small or big, or a bool as 0/1) == float, exactly: Python compares the true values.
bool int_equals_float(Slot integer, double f) {
  if (!std::isfinite(f) || std::trunc(f) != f) return false;
  constexpr double two_63 = 9223372036854775808.0;
  if (integer.tag != Tag::big_int) {
    const std::int64_t v = integer.tag == Tag::boolean ? (integer.b ? 1 : 0) : integer.i;
    return f >= -two_63 && f < two_63 && static_cast<std::int64_t>(f) == v;
  }
  // A big int is outside int64; a float of that size is an integer m * 2**e with a 53-bit m.
  if (f > -two_63 && f < two_63) return false;
  int exponent;
  const double mantissa = std::frexp(f, &exponent);
  const auto digits = static_cast<std::int64_t>(std::ldexp(mantissa, 53));
  BigInt value = digits;
  value <<= exponent - 53;
  return to_bigint(node<BigIntNode>(integer)) == value;
}

bool numbers_equal(Slot a, Slot b) {
  if (a.tag == Tag::floating && b.tag == Tag::floating) return a.f == b.f;
  if (a.tag == Tag::floating) return int_equals_float(b, a.f);
  if (b.tag == Tag::floating) return int_equals_float(a, b.f);
  if (a.tag == Tag::big_int || b.tag == Tag::big_int) {
    // Big ints never fit int64, small ints and bools always do.
    return a.tag == b.tag && bigints_equal(node<BigIntNode>(a), node<BigIntNode>(b));
  }
  const std::int64_t x = a.tag == Tag::boolean ? (a.b ? 1 : 0) : a.i;
  const std::int64_t y = b.tag == Tag::boolean ? (b.b ? 1 : 0) : b.i;
  return x == y;
}

bool strings_equal(const StringNode& a, const StringNode& b) noexcept {
  return a.size == b.size && (a.size == 0 || std::memcmp(a.data, b.data, a.size) == 0);
}

enum class Shallow { equal, different, descend };

// Everything == can decide without looking inside containers; `descend` for containers of
// compatible kinds and equal sizes.
Shallow shallow_equal(Slot a, Slot b) {
  if (is_number(a.tag) || is_number(b.tag)) {
    if (!is_number(a.tag) || !is_number(b.tag)) return Shallow::different;
    return numbers_equal(a, b) ? Shallow::equal : Shallow::different;
  }
  if (a.is_node() && b.is_node() && a.p == b.p) return Shallow::equal;
  switch (a.tag) {
    case Tag::none: return b.tag == Tag::none ? Shallow::equal : Shallow::different;
    case Tag::str:
      if (b.tag != Tag::str) return Shallow::different;
      return strings_equal(node<StringNode>(a), node<StringNode>(b)) ? Shallow::equal
                                                                       : Shallow::different;
    case Tag::bytes:
    case Tag::bytearray:
      if (!is_bytes_like(b.tag)) return Shallow::different;
      return strings_equal(node<StringNode>(a), node<StringNode>(b)) ? Shallow::equal
                                                                       : Shallow::different;
    case Tag::tuple:
    case Tag::list:
      if (b.tag != a.tag) return Shallow::different;
      return node<SeqNode>(a).size == node<SeqNode>(b).size ? Shallow::descend
                                                              : Shallow::different;
    case Tag::dict:
      if (b.tag != Tag::dict) return Shallow::different;
      return node<DictNode>(a).size == node<DictNode>(b).size ? Shallow::descend
                                                                : Shallow::different;
    case Tag::set:
    case Tag::frozenset:
      if (!is_set_like(b.tag)) return Shallow::different;
      return node<DictNode>(a).size == node<DictNode>(b).size ? Shallow::descend
                                                                : Shallow::different;
    case Tag::global: {
      if (b.tag != Tag::global) return Shallow::different;
      const auto& x = node<GlobalNode>(a);
      const auto& y = node<GlobalNode>(b);
      return shallow_equal(x.module, y.module) == Shallow::equal &&
                     shallow_equal(x.name, y.name) == Shallow::equal
                 ? Shallow::equal
                 : Shallow::different;
    }
    default:  // object, buffer: identity, checked above
      return Shallow::different;
  }
}

// Open-addressing tables keyed by node addresses, for the graph walks of == and same_graph: one
// array, no allocation per entry (these walks may visit millions of nodes).
class NodePairSet {
 public:
  bool contains(const void* a, const void* b) const noexcept {
    if (table_.empty()) return false;
    for (std::size_t i = slot_of(a, b); table_[i].a != nullptr; i = (i + 1) & mask()) {
      if (table_[i].a == a && table_[i].b == b) return true;
    }
    return false;
  }

  // Adds the pair; false when it was already present.
  bool insert(const void* a, const void* b) {
    if ((size_ + 1) * 2 > table_.size()) grow();
    std::size_t i = slot_of(a, b);
    while (table_[i].a != nullptr) {
      if (table_[i].a == a && table_[i].b == b) return false;
      i = (i + 1) & mask();
    }
    table_[i] = {a, b};
    ++size_;
    return true;
  }

 private:
  struct Entry {
    const void* a;
    const void* b;
  };
  std::size_t mask() const noexcept { return table_.size() - 1; }
  std::size_t slot_of(const void* a, const void* b) const noexcept {
    const auto x = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(a));
    const auto y = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(b));
    return static_cast<std::size_t>(((x ^ std::rotl(y, 32)) * 0x9E3779B97F4A7C15ull) >> shift_);
  }
  void grow() {
    std::vector<Entry> old = std::move(table_);
    const std::size_t capacity = old.empty() ? 64 : old.size() * 2;
    table_.assign(capacity, Entry{nullptr, nullptr});
    shift_ = 64 - std::countr_zero(capacity);
    for (const Entry& entry : old) {
      if (entry.a == nullptr) continue;
      std::size_t i = slot_of(entry.a, entry.b);
      while (table_[i].a != nullptr) i = (i + 1) & mask();
      table_[i] = entry;
    }
  }
  std::vector<Entry> table_;
  std::size_t size_ = 0;
  int shift_ = 58;
};

// A map from node to node (nullptr values allowed).
class NodeMap {
 public:
  // The value stored for `key`, inserting `value` first when absent; `inserted` says which.
  const void* find_or_insert(const void* key, const void* value, bool& inserted) {
    if ((size_ + 1) * 2 > table_.size()) grow();
    std::size_t i = slot_of(key);
    while (table_[i].key != nullptr) {
      if (table_[i].key == key) {
        inserted = false;
        return table_[i].value;
      }
      i = (i + 1) & mask();
    }
    table_[i] = {key, value};
    ++size_;
    inserted = true;
    return value;
  }

 private:
  struct Entry {
    const void* key;
    const void* value;
  };
  std::size_t mask() const noexcept { return table_.size() - 1; }
  std::size_t slot_of(const void* key) const noexcept {
    const auto x = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(key));
    return static_cast<std::size_t>((x * 0x9E3779B97F4A7C15ull) >> shift_);
  }
  void grow() {
    std::vector<Entry> old = std::move(table_);
    const std::size_t capacity = old.empty() ? 64 : old.size() * 2;
    table_.assign(capacity, Entry{nullptr, nullptr});
    shift_ = 64 - std::countr_zero(capacity);
    for (const Entry& entry : old) {
      if (entry.key == nullptr) continue;
      std::size_t i = slot_of(entry.key);
      while (table_[i].key != nullptr) i = (i + 1) & mask();
      table_[i] = entry;
    }
  }
  std::vector<Entry> table_;
  std::size_t size_ = 0;
  int shift_ = 58;
};

}  // namespace

namespace {

// Comparisons that cannot be settled iteratively (see probe_for_equal) nest; Python raises
// RecursionError when comparisons nest too deeply, and so does this, instead of exhausting the stack.
// Their results are remembered for the duration of the outermost one: the keys compared are
// hashable, hence acyclic, so every result is final, and crafted hash collisions at every level of
// a nest cost a number of comparisons linear in the nodes, not exponential.
constexpr int max_nested_comparisons = 1000;
struct NestedComparisons {
  int depth = 0;
  NodePairSet equal;
  NodePairSet unequal;
};
thread_local NestedComparisons* nested = nullptr;

bool nested_equal(Slot a, Slot b) {
  std::unique_ptr<NestedComparisons> outermost;
  if (nested == nullptr) {
    outermost = std::make_unique<NestedComparisons>();
    nested = outermost.get();
  }
  struct Unnest {
    bool last;
    ~Unnest() {
      --nested->depth;
      if (last) nested = nullptr;
    }
  };
  if (nested->depth >= max_nested_comparisons) {
    if (outermost) nested = nullptr;
    throw Error(PyExc::RecursionError, "maximum recursion depth exceeded in comparison");
  }
  if (nested->equal.contains(a.p, b.p)) return true;
  if (nested->unequal.contains(a.p, b.p)) return false;
  ++nested->depth;
  Unnest unnest{outermost != nullptr};
  const bool result = slot_equal(a, b);
  (result ? nested->equal : nested->unequal).insert(a.p, b.p);
  return result;
}

struct Probe {
  const DictEntry* entry;  // null: no key of the table equals the key
  bool deep;               // the entry's key equals the key iff the two compare equal deeply
};

// Looks `key` up in `table` with shallow comparisons only, so that a set of frozensets nested a
// million deep does not nest a million comparisons: usually a single key of the table is a
// candidate, and whether it equals `key` becomes one more conjunct of the caller's iterative walk.
// Only several candidates with the very same hash (a deliberate collision) need nested comparisons.
Probe probe_for_equal(const DictNode& table, Slot key, std::uint64_t hash) {
  if (table.size == 0) return {nullptr, false};
  return with_index(table, [&](auto positions) -> Probe {
    const std::size_t mask = table.index_mask;
    const std::uint64_t placed = placement_hash(table, hash);
    const DictEntry* candidate = nullptr;
    std::size_t candidates = 0;
    std::size_t i = placed & mask;
    std::uint64_t perturb = placed;
    std::size_t steps = 0;
    for (; positions.occupied(i); perturb >>= 5, i = (i * 5 + perturb + 1) & mask) {
      ++steps;
      const std::uint32_t position = candidate_at(table, positions, i, hash);
      if (position == 0) continue;
      const DictEntry& entry = table.entries[position - 1];
      // A probe sequence may pass the same index slot twice.
      if (&entry == candidate || cell_hash(entry.key) != hash) continue;
      const Shallow result = shallow_equal(load(entry.key), key);
      if (result == Shallow::equal) {
        WorkMeter::charge(steps);
        return {&entry, false};
      }
      if (result == Shallow::descend) {
        if (candidates++ == 0) candidate = &entry;
      }
    }
    WorkMeter::charge(steps);
    if (candidates <= 1) return {candidate, candidate != nullptr};
    WorkMeter::charge(steps);  // the second walk below
    i = placed & mask;
    perturb = placed;
    for (; positions.occupied(i); perturb >>= 5, i = (i * 5 + perturb + 1) & mask) {
      const std::uint32_t position = candidate_at(table, positions, i, hash);
      if (position == 0) continue;
      const DictEntry& entry = table.entries[position - 1];
      if (cell_hash(entry.key) == hash && shallow_equal(load(entry.key), key) == Shallow::descend &&
          nested_equal(load(entry.key), key)) {
        return {&entry, false};
      }
    }
    return {nullptr, false};
  });
}

}  // namespace

bool slot_equal(Slot a, Slot b) {
  Shallow first = shallow_equal(a, b);
  if (first != Shallow::descend) return first == Shallow::equal;
  // Equality of containers is the conjunction of their items' equalities. A stack of frames walks
  // the pairs of containers depth first (memory grows with depth, not breadth). A pair met again
  // is already accounted for (compared before, or being compared further down the stack), so
  // skipping it is sound, makes cycles terminate and makes shared sub-graphs cost once. A pair is
  // recorded only when it turns out to have containers below it: revisiting any other pair costs no
  // more than a lookup would, and a list of a million flat tuples then needs no bookkeeping at all.
  struct Frame {
    Slot x;
    Slot y;
    std::size_t next;  // item or entry to compare next
    bool recorded;
  };
  std::vector<Frame> stack;
  NodePairSet seen;
  stack.push_back({a, b, 0, false});
  // The pairs a frame found to need a deep comparison (at most two: a dict's key and value).
  std::pair<Slot, Slot> children[2];
  while (!stack.empty()) {
    Frame& frame = stack.back();
    const std::size_t first_item = frame.next;
    std::size_t child_count = 0;
    auto need = [&](Slot x, Slot y) { children[child_count++] = {x, y}; };
    switch (frame.x.tag) {
      case Tag::tuple:
      case Tag::list: {
        const auto& s = node<SeqNode>(frame.x);
        const auto& t = node<SeqNode>(frame.y);
        if (s.size != t.size) return false;  // a list may have changed size since it was pushed
        for (; frame.next < s.size && child_count == 0; ++frame.next) {
          const Slot x = load(s.items[frame.next]);
          const Slot y = load(t.items[frame.next]);
          const Shallow result = shallow_equal(x, y);
          if (result == Shallow::different) return false;
          if (result == Shallow::descend) need(x, y);
        }
        break;
      }
      case Tag::dict: {
        const auto& d = node<DictNode>(frame.x);
        const auto& e = node<DictNode>(frame.y);
        for (; frame.next < d.size && child_count == 0; ++frame.next) {
          const DictEntry& entry = d.entries[frame.next];
          const Slot key = load(entry.key);
          const Probe match = probe_for_equal(e, key, cell_hash(entry.key));
          if (match.entry == nullptr) return false;
          if (match.deep) need(key, load(match.entry->key));
          const Slot value = load(entry.value);
          const Slot other = load(match.entry->value);
          const Shallow result = shallow_equal(value, other);
          if (result == Shallow::different) return false;
          if (result == Shallow::descend) need(value, other);
        }
        break;
      }
      default: {  // set, frozenset
        const auto& d = node<DictNode>(frame.x);
        const auto& e = node<DictNode>(frame.y);
        for (; frame.next < d.size && child_count == 0; ++frame.next) {
          const DictEntry& entry = d.entries[frame.next];
          const Slot key = load(entry.key);
          const Probe match = probe_for_equal(e, key, cell_hash(entry.key));
          if (match.entry == nullptr) return false;
          if (match.deep) need(key, load(match.entry->key));
        }
        break;
      }
    }
    WorkMeter::charge(frame.next - first_item + 1);
    if (child_count == 0) {
      stack.pop_back();
      continue;
    }
    if (!frame.recorded) {
      if (!seen.insert(frame.x.p, frame.y.p)) {
        stack.pop_back();  // this pair is settled elsewhere
        continue;
      }
      frame.recorded = true;
    }
    for (std::size_t c = 0; c < child_count; ++c) {
      stack.push_back({children[c].first, children[c].second, 0, false});
    }
  }
  return true;
}

// ================================================================================================
// Same graph
// ================================================================================================

namespace {

bool same_bits(double x, double y) noexcept {
  return std::bit_cast<std::uint64_t>(x) == std::bit_cast<std::uint64_t>(y);
}

}  // namespace

bool slot_same_graph(Slot a, Slot b) {
  // Two maps make a bijection between the nodes of a's graph and those of b's. Big ints are not part
  // of it: like floats they are values (pickle does not memoize ints).
  NodeMap forward;
  NodeMap backward;
  std::vector<std::pair<Slot, Slot>> stack;
  stack.emplace_back(a, b);
  while (!stack.empty()) {
    auto [x, y] = stack.back();
    stack.pop_back();
    if (x.tag != y.tag) return false;
    switch (x.tag) {
      case Tag::none: continue;
      case Tag::boolean:
        if (x.b != y.b) return false;
        continue;
      case Tag::small_int:
        if (x.i != y.i) return false;
        continue;
      case Tag::floating:
        if (!same_bits(x.f, y.f)) return false;
        continue;
      case Tag::big_int:
        if (!bigints_equal(node<BigIntNode>(x), node<BigIntNode>(y))) return false;
        continue;
      default: break;
    }
    bool inserted;
    const void* partner = forward.find_or_insert(x.p, y.p, inserted);
    if (!inserted) {
      if (partner != y.p) return false;
      continue;  // this pair is being or has been compared
    }
    backward.find_or_insert(y.p, x.p, inserted);
    if (!inserted) return false;  // y is already paired with another node
    switch (x.tag) {
      case Tag::str:
      case Tag::bytes:
      case Tag::bytearray:
        if (!strings_equal(node<StringNode>(x), node<StringNode>(y))) return false;
        break;
      case Tag::tuple:
      case Tag::list: {
        const auto& s = node<SeqNode>(x);
        const auto& t = node<SeqNode>(y);
        if (s.size != t.size) return false;
        for (std::size_t i = s.size; i-- > 0;) stack.emplace_back(load(s.items[i]), load(t.items[i]));
        break;
      }
      case Tag::dict:
      case Tag::set:
      case Tag::frozenset: {
        const auto& d = node<DictNode>(x);
        const auto& e = node<DictNode>(y);
        if (d.size != e.size) return false;
        // Insertion order is part of what a round trip preserves.
        for (std::size_t i = d.size; i-- > 0;) {
          if (x.tag == Tag::dict) stack.emplace_back(load(d.entries[i].value), load(e.entries[i].value));
          stack.emplace_back(load(d.entries[i].key), load(e.entries[i].key));
        }
        break;
      }
      case Tag::global: {
        const auto& g = node<GlobalNode>(x);
        const auto& h = node<GlobalNode>(y);
        // Names compare by text: how a writer shares the name strings is not observable.
        if (!slot_equal(g.module, h.module) || !slot_equal(g.name, h.name)) return false;
        break;
      }
      case Tag::object: {
        const auto& o = node<ObjectNode>(x);
        const auto& p = node<ObjectNode>(y);
        if (o.form != p.form || o.ext_code != p.ext_code || o.op_count != p.op_count) return false;
        for (std::size_t i = o.op_count; i-- > 0;) {
          if (o.ops[i].op != p.ops[i].op) return false;
          stack.emplace_back(o.ops[i].second, p.ops[i].second);
          stack.emplace_back(o.ops[i].first, p.ops[i].first);
        }
        stack.emplace_back(o.kwargs, p.kwargs);
        stack.emplace_back(o.args, p.args);
        stack.emplace_back(o.callable, p.callable);
        break;
      }
      case Tag::buffer: {
        const auto& u = node<BufferNode>(x);
        const auto& v = node<BufferNode>(y);
        if (u.size != v.size || u.index != v.index || u.readonly != v.readonly ||
            (u.size != 0 && std::memcmp(u.data, v.data, u.size) != 0)) {
          return false;
        }
        break;
      }
      default: break;
    }
  }
  return true;
}

}  // namespace detail

// ================================================================================================
// pickle::Value
// ================================================================================================

using detail::Heap;
using detail::Slot;
using detail::Tag;

namespace {

// Collects the regions of the values a new node will point at into one root, on which the node is
// then allocated; with no region involved, a fresh one.
class RegionBuilder {
 public:
  void add(const Value& value) {
    if (value.heap() != nullptr) root_ = detail::merge(root_, value.heap());
  }
  // The region for the new node, with one reference for the handle that will own it; a new region
  // gets room for `bytes`.
  Heap* take(std::size_t bytes) {
    if (root_ == nullptr) return detail::create_region(bytes);
    detail::retain(root_);
    return root_;
  }

 private:
  Heap* root_ = nullptr;
};

// Bytes a dict or set table for `count` items takes (node, entries, index), to size a new region.
std::size_t table_bytes(std::size_t count) {
  if (count == 0) return sizeof(detail::DictNode);
  return sizeof(detail::DictNode) + 2 * count * (sizeof(detail::DictEntry) + 3 * sizeof(std::uint32_t));
}

[[noreturn]] void mismatch(std::string_view expected, const Value& got) {
  throw TypeMismatch("expected " + std::string(expected) + ", got " + std::string(got.type_name()));
}

// Adopts a region whose reference the caller already holds.
Value adopt(Slot slot, Heap* heap) {
  Value value(slot, heap);
  detail::release(heap);
  return value;
}

Value validated_str(std::string_view utf8) {
  if (auto error = detail::check_utf8(utf8)) {
    throw Error(PyExc::UnicodeDecodeError, detail::utf8_error_message(utf8, *error));
  }
  Heap* heap = detail::create_region(sizeof(detail::StringNode) + utf8.size());
  try {
    return adopt(detail::make_str(*heap, utf8), heap);
  } catch (...) {
    detail::release(heap);
    throw;
  }
}

template <class Build>
Value build_in(Heap* heap, Build&& build) {
  try {
    return adopt(build(*heap), heap);
  } catch (...) {
    detail::release(heap);
    throw;
  }
}

template <class Range>
Value make_sequence(Tag tag, const Range& items) {
  RegionBuilder region;
  for (const Value& item : items) region.add(item);
  return build_in(region.take(sizeof(detail::SeqNode) + std::size(items) * sizeof(Slot)),
                  [&](Heap& heap) {
    const Slot slot = detail::make_seq(heap, tag, nullptr, std::size(items));
    detail::Cell* array = detail::node<detail::SeqNode>(slot).items;
    for (const Value& item : items) {
      *array++ = detail::pack(heap, item.slot());
      detail::note_reference(item.slot());
    }
    return slot;
  });
}

template <class Range>
Value make_set(Tag tag, const Range& items) {
  RegionBuilder region;
  for (const Value& item : items) region.add(item);
  return build_in(region.take(table_bytes(std::size(items))), [&](Heap& heap) {
    const Slot slot = detail::make_dict(heap, tag, std::size(items));
    auto& set = detail::node<detail::DictNode>(slot);
    for (const Value& item : items) detail::set_add(heap, set, item.slot());
    return slot;
  });
}

}  // namespace

Value::Value(const BigInt& v) {
  if (v >= std::numeric_limits<std::int64_t>::min() && v <= std::numeric_limits<std::int64_t>::max()) {
    slot_.tag = Tag::small_int;
    slot_.i = static_cast<std::int64_t>(v);
    return;
  }
  const std::size_t limbs = boost::multiprecision::msb(boost::multiprecision::abs(v)) / 64 + 1;
  *this = build_in(detail::create_region(sizeof(detail::BigIntNode) + limbs * sizeof(std::uint64_t)),
                   [&](Heap& heap) { return detail::make_int(heap, v); });
}

Value::Value(std::string_view utf8) { *this = validated_str(utf8); }

Value Value::bytes(std::string_view data) {
  return build_in(detail::create_region(sizeof(detail::StringNode) + data.size()),
                  [&](Heap& heap) { return detail::make_bytes(heap, data); });
}

Value Value::bytes(std::span<const std::byte> data) {
  return bytes(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
}

Value Value::bytearray(std::string_view data) {
  return build_in(detail::create_region(sizeof(detail::BytearrayNode) + data.size()),
                  [&](Heap& heap) { return detail::make_bytes(heap, data, Tag::bytearray); });
}

Value Value::tuple(std::initializer_list<Value> items) { return make_sequence(Tag::tuple, items); }
Value Value::tuple(std::span<const Value> items) { return make_sequence(Tag::tuple, items); }
Value Value::list(std::initializer_list<Value> items) { return make_sequence(Tag::list, items); }
Value Value::list(std::span<const Value> items) { return make_sequence(Tag::list, items); }

Value Value::dict(std::initializer_list<std::pair<Value, Value>> items) {
  RegionBuilder region;
  for (const auto& [key, value] : items) {
    region.add(key);
    region.add(value);
  }
  return build_in(region.take(table_bytes(items.size())), [&](Heap& heap) {
    const Slot slot = detail::make_dict(heap, Tag::dict, items.size());
    auto& dict = detail::node<detail::DictNode>(slot);
    for (const auto& [key, value] : items) detail::dict_set(heap, dict, key.slot(), value.slot());
    return slot;
  });
}

Value Value::set(std::initializer_list<Value> items) { return make_set(Tag::set, items); }
Value Value::frozenset(std::initializer_list<Value> items) { return make_set(Tag::frozenset, items); }
Value Value::frozenset(std::span<const Value> items) { return make_set(Tag::frozenset, items); }

Value Value::global(std::string_view module, std::string_view qualname) {
  // Validate before allocating anything.
  for (std::string_view text : {module, qualname}) {
    if (auto error = detail::check_utf8(text)) {
      throw Error(PyExc::UnicodeDecodeError, detail::utf8_error_message(text, *error));
    }
  }
  const std::size_t bytes = sizeof(detail::GlobalNode) + 2 * sizeof(detail::StringNode) +
                            module.size() + qualname.size() + 16;  // 16: alignment padding
  return build_in(detail::create_region(bytes), [&](Heap& heap) {
    const Slot module_slot = detail::make_str(heap, module);
    const Slot name_slot = detail::make_str(heap, qualname);
    return detail::make_global(heap, module_slot, name_slot);
  });
}

Value Value::object(ObjectForm form, Value callable, Value args, Value kwargs) {
  RegionBuilder region;
  region.add(callable);
  region.add(args);
  region.add(kwargs);
  return build_in(region.take(sizeof(detail::ObjectNode)), [&](Heap& heap) {
    return detail::make_object(heap, form, callable.slot(), args.slot(), kwargs.slot());
  });
}

Value Value::buffer(std::string_view data, std::size_t index, bool readonly) {
  return build_in(detail::create_region(sizeof(detail::BufferNode) + data.size()), [&](Heap& heap) {
    return detail::make_buffer(heap, data.data(), data.size(), index, readonly);
  });
}

Value::Value(detail::Slot slot, detail::Heap* heap) noexcept : slot_(slot) {
  if (slot.is_node()) {
    heap_ = heap;
    detail::retain(heap);
  }
}

Value::Value(const Value& other) noexcept : slot_(other.slot_), heap_(other.heap_) {
  detail::retain(heap_);
}

Value::Value(Value&& other) noexcept : slot_(other.slot_), heap_(other.heap_) {
  other.slot_ = Slot();
  other.heap_ = nullptr;
}

Value& Value::operator=(const Value& other) noexcept {
  detail::retain(other.heap_);  // first: other may be *this
  detail::release(heap_);
  slot_ = other.slot_;
  heap_ = other.heap_;
  return *this;
}

Value& Value::operator=(Value&& other) noexcept {
  if (this != &other) {
    detail::release(heap_);
    slot_ = other.slot_;
    heap_ = other.heap_;
    other.slot_ = Slot();
    other.heap_ = nullptr;
  }
  return *this;
}

Value::~Value() { detail::release(heap_); }

Kind Value::kind() const noexcept { return detail::kind_of(slot_.tag); }

bool Value::as_bool() const {
  if (slot_.tag != Tag::boolean) mismatch("bool", *this);
  return slot_.b;
}

std::optional<std::int64_t> Value::as_int64() const {
  switch (slot_.tag) {
    case Tag::boolean: return slot_.b ? 1 : 0;
    case Tag::small_int: return slot_.i;
    case Tag::big_int: return std::nullopt;  // big ints are outside int64 by construction
    default: mismatch("int", *this);
  }
}

BigInt Value::as_bigint() const {
  switch (slot_.tag) {
    case Tag::boolean: return BigInt(slot_.b ? 1 : 0);
    case Tag::small_int: return BigInt(slot_.i);
    case Tag::big_int: return detail::to_bigint(detail::node<detail::BigIntNode>(slot_));
    default: mismatch("int", *this);
  }
}

double Value::as_float() const {
  if (slot_.tag != Tag::floating) mismatch("float", *this);
  return slot_.f;
}

std::string_view Value::as_str() const {
  if (slot_.tag != Tag::str) mismatch("str", *this);
  const auto& node = detail::node<detail::StringNode>(slot_);
  return {node.data, node.size};
}

std::string_view Value::as_bytes() const {
  switch (slot_.tag) {
    case Tag::bytes:
    case Tag::bytearray: {
      const auto& node = detail::node<detail::StringNode>(slot_);
      return {node.data, node.size};
    }
    case Tag::buffer: {
      const auto& node = detail::node<detail::BufferNode>(slot_);
      return {node.data, node.size};
    }
    default: mismatch("bytes", *this);
  }
}

std::size_t Value::size() const {
  switch (slot_.tag) {
    case Tag::str: {
      const auto& node = detail::node<detail::StringNode>(slot_);
      return detail::utf8_length({node.data, node.size});
    }
    case Tag::bytes:
    case Tag::bytearray: return detail::node<detail::StringNode>(slot_).size;
    case Tag::buffer: return detail::node<detail::BufferNode>(slot_).size;
    case Tag::tuple:
    case Tag::list: return detail::node<detail::SeqNode>(slot_).size;
    case Tag::dict:
    case Tag::set:
    case Tag::frozenset: return detail::node<detail::DictNode>(slot_).size;
    default:
      throw TypeMismatch("object of type '" + std::string(type_name()) + "' has no len()");
  }
}

Value Value::operator[](std::size_t i) const {
  if (slot_.tag != Tag::tuple && slot_.tag != Tag::list) {
    throw TypeMismatch("'" + std::string(type_name()) + "' object is not subscriptable");
  }
  const auto& seq = detail::node<detail::SeqNode>(slot_);
  if (i >= seq.size) throw std::out_of_range(std::string(type_name()) + " index out of range");
  return Value(detail::load(seq.items[i]), heap_);
}

std::vector<Value> Value::items() const {
  std::vector<Value> result;
  switch (slot_.tag) {
    case Tag::tuple:
    case Tag::list: {
      const auto& seq = detail::node<detail::SeqNode>(slot_);
      result.reserve(seq.size);
      for (std::size_t i = 0; i < seq.size; ++i) result.emplace_back(detail::load(seq.items[i]), heap_);
      return result;
    }
    case Tag::set:
    case Tag::frozenset: {
      const auto& set = detail::node<detail::DictNode>(slot_);
      result.reserve(set.size);
      for (std::size_t i = 0; i < set.size; ++i) result.emplace_back(detail::load(set.entries[i].key), heap_);
      return result;
    }
    default: mismatch("tuple, list, set or frozenset", *this);
  }
}

std::vector<std::pair<Value, Value>> Value::dict_items() const {
  if (slot_.tag != Tag::dict) mismatch("dict", *this);
  const auto& dict = detail::node<detail::DictNode>(slot_);
  std::vector<std::pair<Value, Value>> result;
  result.reserve(dict.size);
  for (std::size_t i = 0; i < dict.size; ++i) {
    result.emplace_back(Value(detail::load(dict.entries[i].key), heap_),
                        Value(detail::load(dict.entries[i].value), heap_));
  }
  return result;
}

std::optional<Value> Value::get(const Value& key) const {
  if (slot_.tag != Tag::dict) mismatch("dict", *this);
  const detail::DictEntry* entry = detail::dict_find(detail::node<detail::DictNode>(slot_), key.slot_);
  if (entry == nullptr) return std::nullopt;
  return Value(detail::load(entry->value), heap_);
}

bool Value::contains(const Value& key) const {
  switch (slot_.tag) {
    case Tag::dict:
    case Tag::set:
    case Tag::frozenset:
      return detail::dict_find(detail::node<detail::DictNode>(slot_), key.slot_) != nullptr;
    default: mismatch("dict, set or frozenset", *this);
  }
}

std::string_view Value::module() const {
  if (slot_.tag != Tag::global) mismatch("type", *this);
  const auto& module = detail::node<detail::StringNode>(detail::node<detail::GlobalNode>(slot_).module);
  return {module.data, module.size};
}

std::string_view Value::qualname() const {
  if (slot_.tag != Tag::global) mismatch("type", *this);
  const auto& name = detail::node<detail::StringNode>(detail::node<detail::GlobalNode>(slot_).name);
  return {name.data, name.size};
}

namespace {

const detail::ObjectNode& object_node(const Value& value) {
  if (value.slot().tag != Tag::object) mismatch("object", value);
  return detail::node<detail::ObjectNode>(value.slot());
}

const detail::BufferNode& buffer_node(const Value& value) {
  if (value.slot().tag != Tag::buffer) mismatch("PickleBuffer", value);
  return detail::node<detail::BufferNode>(value.slot());
}

}  // namespace

ObjectForm Value::object_form() const { return object_node(*this).form; }
Value Value::callable() const { return Value(object_node(*this).callable, heap_); }
Value Value::args() const { return Value(object_node(*this).args, heap_); }
Value Value::kwargs() const { return Value(object_node(*this).kwargs, heap_); }
std::int32_t Value::ext_code() const { return object_node(*this).ext_code; }

std::vector<std::tuple<ObjectOp, Value, Value>> Value::object_ops() const {
  const auto& object = object_node(*this);
  std::vector<std::tuple<ObjectOp, Value, Value>> result;
  result.reserve(object.op_count);
  for (std::size_t i = 0; i < object.op_count; ++i) {
    const auto& op = object.ops[i];
    result.emplace_back(op.op, Value(op.first, heap_), Value(op.second, heap_));
  }
  return result;
}

Value Value::state() const {
  const auto& object = object_node(*this);
  for (std::size_t i = object.op_count; i-- > 0;) {
    if (object.ops[i].op == ObjectOp::build) return Value(object.ops[i].first, heap_);
    if (object.ops[i].op == ObjectOp::state_setter) return Value(object.ops[i].second, heap_);
  }
  return Value();
}

std::size_t Value::buffer_index() const { return buffer_node(*this).index; }
bool Value::buffer_readonly() const { return buffer_node(*this).readonly; }

namespace {

// The root region of `target` after linking it with the regions of `linked` (the values about to
// be stored into it).
Heap& linked_root(const Value& target, std::initializer_list<const Value*> linked) {
  Heap* root = target.heap()->root();
  for (const Value* value : linked) {
    if (value->heap() != nullptr) root = detail::merge(root, value->heap());
  }
  return *root;
}

}  // namespace

void Value::append(Value item) {
  if (slot_.tag != Tag::list) mismatch("list", *this);
  Heap& heap = linked_root(*this, {&item});
  detail::seq_append(heap, detail::node<detail::SeqNode>(slot_), item.slot_);
}

void Value::set_item(Value key, Value value) {
  if (slot_.tag != Tag::dict) mismatch("dict", *this);
  detail::slot_hash(key.slot_);  // refuse an unhashable key before linking regions
  Heap& heap = linked_root(*this, {&key, &value});
  detail::dict_set(heap, detail::node<detail::DictNode>(slot_), key.slot_, value.slot_);
}

void Value::add(Value item) {
  if (slot_.tag != Tag::set) mismatch("set", *this);
  detail::slot_hash(item.slot_);
  Heap& heap = linked_root(*this, {&item});
  detail::set_add(heap, detail::node<detail::DictNode>(slot_), item.slot_);
}

void Value::set_list_item(std::size_t i, Value item) {
  if (slot_.tag != Tag::list) mismatch("list", *this);
  auto& seq = detail::node<detail::SeqNode>(slot_);
  if (i >= seq.size) throw std::out_of_range("list assignment index out of range");
  seq.items[i] = detail::pack(linked_root(*this, {&item}), item.slot_);
  detail::note_reference(item.slot_);
}

void Value::add_object_op(ObjectOp op, Value first, Value second) {
  if (slot_.tag != Tag::object) mismatch("object", *this);
  Heap& heap = linked_root(*this, {&first, &second});
  detail::object_add_op(heap, detail::node<detail::ObjectNode>(slot_), op, first.slot_,
                        second.slot_);
}

bool Value::is(const Value& other) const noexcept {
  if (slot_.tag != other.slot_.tag) return false;
  switch (slot_.tag) {
    case Tag::none: return true;
    case Tag::boolean: return slot_.b == other.slot_.b;
    case Tag::small_int: return slot_.i == other.slot_.i;
    case Tag::floating: return detail::same_bits(slot_.f, other.slot_.f);
    default: return slot_.p == other.slot_.p;
  }
}

const void* Value::identity() const noexcept { return slot_.is_node() ? slot_.p : nullptr; }

bool operator==(const Value& a, const Value& b) { return detail::slot_equal(a.slot_, b.slot_); }

bool same_graph(const Value& a, const Value& b) { return detail::slot_same_graph(a.slot_, b.slot_); }

std::size_t Value::hash() const { return static_cast<std::size_t>(detail::slot_hash(slot_)); }

bool Value::hashable() const { return detail::slot_hashable(slot_); }

}  // namespace pickle
