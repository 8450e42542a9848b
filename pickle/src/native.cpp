// The byte-level cores of typed pickling (pickle/native.hpp): a writer that emits CPython's bytes
// for C++ values as they are visited, and a pull parser that reads opcodes in the shape CPython
// writes them straight into C++ values. The templates in native.hpp decide the structure; these
// classes know the opcodes, the memo and the frames.
#include "pickle/native.hpp"

#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <unordered_map>

#include "compat.hpp"
#include "emit.hpp"
#include "pickle/repr.hpp"
#include "unicode.hpp"

namespace pickle::native_detail {

namespace {

using detail::emit_get;
using detail::emit_memoize;
using detail::op;
using detail::Output;

constexpr std::uint64_t missing = ~std::uint64_t(0);
// Nesting of the C++ value (only recursive user types get deep): like Python's recursion limit,
// far below what the native stack takes.
constexpr std::size_t max_native_depth = 10000;

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

}  // namespace

// ================================================================================================
// Writing

struct WriterCore::State {
  WriteOptions options;
  int protocol = 4;
  Output out{Output::HandOver{}};  // one per dump: its buffer is the result
  std::uint64_t next_index = 0;
  // CPython's shared objects: '' and the 1-character latin-1 strs; b'' and the 1-byte bytes.
  detail::SharedSingletons singletons;
  std::array<std::uint64_t, 257>& str_singletons = singletons.strs;
  std::array<std::uint64_t, 257>& bytes_singletons = singletons.bytes;
  // Dict keys and field names, shared by value (interned).
  std::unordered_map<std::string, std::uint64_t, StringHash, std::equal_to<>> interned;
  std::unique_ptr<detail::ValueEmbedding> embedding;

  detail::ValueEmbedding& embed() {
    if (!embedding) {
      WriteOptions o = options;
      o.protocol = protocol;
      o.identities = Identities::cpython;
      embedding = detail::make_value_embedding(o, singletons);
      // Everything written so far is news to it.
      for (std::uint16_t slot = 0; slot < 514; ++slot)
        if ((slot < 257 ? singletons.strs[slot] : singletons.bytes[slot - 257u]) != missing)
          singletons.unsent.push_back(slot);
    }
    return *embedding;
  }
  // A slot of `singletons` (strs 0–256, bytes 257–513) about to be looked up or set; a set one is
  // told to the embedded Value writer, if any, before its next call.
  std::uint64_t* singleton_slot(std::uint16_t slot) {
    std::uint64_t* entry = slot < 257 ? &singletons.strs[slot] : &singletons.bytes[slot - 257u];
    if (*entry == missing && embedding) singletons.unsent.push_back(slot);
    return entry;
  }
  std::uint64_t memoize() {
    std::uint64_t index = next_index++;
    emit_memoize(out, protocol, index);
    return index;
  }
  // The memo entry a str shares by value, or nullptr when the str is a fresh object.
  std::uint64_t* shared_str(std::string_view utf8, bool key) {
    if (utf8.empty()) return singleton_slot(256);
    if (int c = detail::single_latin1_char(utf8); c >= 0) return singleton_slot(static_cast<std::uint16_t>(c));
    if (!key) return nullptr;
    auto it = interned.find(utf8);
    if (it == interned.end()) it = interned.emplace(std::string(utf8), missing).first;
    return &it->second;
  }
  void str(std::string_view utf8, bool key) {
    out.boundary();
    std::uint64_t* shared = shared_str(utf8, key);
    if (shared != nullptr && *shared != missing) {
      emit_get(out, protocol, *shared);
      return;
    }
    detail::emit_str(out, protocol, utf8);
    std::uint64_t index = memoize();
    if (shared != nullptr) *shared = index;
  }
};

WriterCore::WriterCore(const WriteOptions& options) : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.options = options;
  s.protocol = protocol_ = detail::resolve_protocol(options);
  s.str_singletons.fill(missing);
  s.bytes_singletons.fill(missing);
  if (s.protocol >= 2) s.out.put(op(Op::PROTO), static_cast<char>(s.protocol));
  s.out.framing = s.protocol >= 4;
}

WriterCore::~WriterCore() = default;

std::string WriterCore::finish() {
  Output& out = state_->out;
  out.put(op(Op::STOP));
  out.commit_frame();
  out.framing = false;
  return out.take();
}

void WriterCore::enter() {
  if (++depth_ > max_native_depth) {
    --depth_;
    throw PicklingError("maximum recursion depth exceeded while pickling an object",
                        PyExc::RecursionError);
  }
}

void WriterCore::none() {
  state_->out.boundary();
  state_->out.put(op(Op::NONE));
}
void WriterCore::boolean(bool b) {
  state_->out.boundary();
  detail::emit_bool(state_->out, protocol_, b);
}
void WriterCore::integer(std::int64_t v) {
  state_->out.boundary();
  detail::emit_small_int(state_->out, protocol_, v);
}
void WriterCore::unsigned_integer(std::uint64_t v) {
  state_->out.boundary();
  detail::emit_uint64(state_->out, protocol_, v);
}
void WriterCore::floating(double f) {
  state_->out.boundary();
  detail::emit_float(state_->out, protocol_, f);
}
void WriterCore::str(std::string_view utf8) { state_->str(utf8, false); }
void WriterCore::key_str(std::string_view utf8) { state_->str(utf8, true); }

void WriterCore::bytes(std::string_view data) {
  State& s = *state_;
  if (protocol_ < 3) {  // _codecs.encode(latin1, 'latin1') / bytes(): the Value writer's reduction
    s.out.boundary();
    s.embed().value(s.out, s.next_index, Value::bytes(data));
    return;
  }
  s.out.boundary();
  std::uint64_t* shared = nullptr;
  if (data.empty()) shared = s.singleton_slot(257 + 256);
  if (data.size() == 1) shared = s.singleton_slot(static_cast<std::uint16_t>(257 + static_cast<unsigned char>(data[0])));
  if (shared != nullptr && *shared != missing) {
    emit_get(s.out, protocol_, *shared);
    return;
  }
  detail::emit_bytes_opcode(s.out, protocol_, data);
  std::uint64_t index = s.memoize();
  if (shared != nullptr) *shared = index;
}

void WriterCore::bytearray(std::string_view data) {
  State& s = *state_;
  s.out.boundary();
  if (protocol_ < 5) {
    s.embed().value(s.out, s.next_index, Value::bytearray(data));
    return;
  }
  detail::emit_bytearray8(s.out, data);
  s.memoize();
}

void WriterCore::value(const Value& v) {
  State& s = *state_;
  s.out.boundary();
  s.embed().value(s.out, s.next_index, v);
}

void WriterCore::list_open() {
  State& s = *state_;
  s.out.boundary();
  if (protocol_ >= 1) {
    s.out.put(op(Op::EMPTY_LIST));
  } else {
    s.out.put(op(Op::MARK), op(Op::LIST));
  }
  s.memoize();
}

namespace {

// The most bytes one item of type I takes in the int loop's encoding (LONG1 of 8 bytes for int64,
// of 9 for uint64 above INT64_MAX), and the room one store may touch past it (the 8-byte store of a
// BININT1/2/BININT item).
template <class I>
constexpr std::size_t max_int_item_bytes =
    sizeof(I) < 4 ? 5 : sizeof(I) == 4 ? (std::is_signed_v<I> ? 5 : 7) : (std::is_signed_v<I> ? 10 : 11);
constexpr std::size_t int_store_slack = 8;

// An item as 64 bits: sign-extended when its type is signed.
template <class I>
[[gnu::always_inline]] inline std::uint64_t widened(I item) {
  return static_cast<std::uint64_t>(
      static_cast<std::conditional_t<std::is_signed_v<I>, std::int64_t, std::uint64_t>>(item));
}

// One int at p as CPython's save_long writes it at protocol >= 2; returns the end. Ints of int32
// range (nearly all) take one 8-byte store and no branch on their width: BININT1 when the value
// fits a byte, BININT2 two bytes, else BININT (negative ones too). The others are LONG1 with the
// minimal two's complement (of 9 bytes for uint64 values above INT64_MAX).
template <class I>
[[gnu::always_inline]] inline char* put_int(char* p, I item) {
  const std::uint64_t u = widened(item);
  const bool int32_range = std::is_signed_v<I> ? u + 0x80000000u <= 0xFFFFFFFFu : u <= 0x7FFFFFFFu;
  if (int32_range) [[likely]] {
    const std::uint64_t over_byte = u > 0xFF, over_short = u > 0xFFFF;
    static constexpr unsigned char opcodes[3] = {byte(Op::BININT1), byte(Op::BININT2), byte(Op::BININT)};
    const std::uint64_t word = u << 8 | opcodes[over_byte + over_short];
    std::memcpy(p, &word, 8);
    return p + 2 + over_byte + 2 * over_short;
  }
  p[0] = op(Op::LONG1);
  if (std::is_unsigned_v<I> && static_cast<std::int64_t>(u) < 0) {
    p[1] = 9;
    std::memcpy(p + 2, &u, 8);
    p[10] = 0;
    return p + 11;
  }
  const auto v = static_cast<std::int64_t>(u);
  const std::uint64_t magnitude = v < 0 ? ~u : u;
  const auto bits = static_cast<std::size_t>(64 - std::countl_zero(magnitude));
  const std::size_t n = std::min<std::size_t>(bits / 8 + 1, 8);
  p[1] = static_cast<char>(n);
  std::memcpy(p + 2, &u, 8);
  return p + 2 + n;
}

// A run of ints all of one encoding, as real lists mostly are (ids, counts, sizes): a fixed stride
// and no choice per item, about three times the speed of put_int. `stride` 2 is BININT1 (0–0xFF),
// 3 BININT2 (0x100–0xFFFF), 5 BININT (0x10000–0x7FFFFFFF; negative ones take put_int). Returns the
// end, or nullptr when some item is of another encoding (what was written is then garbage).
template <std::size_t stride, class I>
[[gnu::always_inline]] inline char* put_ints_of_one_width(char* p, const I* items, std::size_t n) {
  constexpr std::uint64_t lowest = stride == 2 ? 0 : stride == 3 ? 0x100 : 0x10000;
  constexpr std::uint64_t highest = stride == 2 ? 0xFF : stride == 3 ? 0xFFFF : 0x7FFFFFFF;
  constexpr std::uint64_t opcode = stride == 2 ? byte(Op::BININT1) : stride == 3 ? byte(Op::BININT2) : byte(Op::BININT);
  // highest + 1 is a power of two, so the OR of the items is at most highest exactly when each is;
  // an item below lowest makes item - lowest wrap around, setting the top bit.
  std::uint64_t all_bits = 0, below_lowest = 0;
#pragma GCC unroll 4
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t u = widened(items[i]);
    all_bits |= u;
    below_lowest |= u - lowest;
    const std::uint64_t word = u << 8 | opcode;
    std::memcpy(p + stride * i, &word, 8);
  }
  if (all_bits > highest || (below_lowest >> 63) != 0) return nullptr;
  return p + stride * n;
}

}  // namespace

template <class I>
void WriterCore::integer_list(const I* items, std::size_t n) {
  static_assert(std::endian::native == std::endian::little, "put_int stores little-endian words");
  Output& out = state_->out;
  // The output's size from a sample of the items (exact for lists of one width), so that a large
  // list's result is one allocation that take() hands over.
  if (n > 64) {
    std::size_t sampled = 0;
    char scratch[max_int_item_bytes<I> + int_store_slack];
    for (std::size_t k = 0; k < 64; ++k)
      sampled += static_cast<std::size_t>(put_int(scratch, items[k * (n - 1) / 63]) - scratch);
    out.reserve_capacity(sampled * (n / 64) + sampled * (n / 64) / 16 + 2 * (n / detail::batch_size) + 64);
  }
  list_open();
  if (n == 0) return;
  if (protocol_ < 2 || n == 1) {
    // Protocol 0's text ints and protocol 1's LONG text: not worth a loop of their own.
    for (std::size_t i = 0; i < n; ++i) {
      if (protocol_ >= 1 && n > 1 && i % detail::batch_size == 0) out.put(op(Op::MARK));
      out.boundary();
      if constexpr (std::is_unsigned_v<I> && sizeof(I) == 8) {
        detail::emit_uint64(out, protocol_, items[i]);
      } else {
        detail::emit_small_int(out, protocol_, static_cast<std::int64_t>(items[i]));
      }
      if (protocol_ == 0 || n == 1) {
        out.put(op(Op::APPEND));
      } else if ((i + 1) % detail::batch_size == 0 || i + 1 == n) {
        out.put(op(Op::APPENDS));
      }
    }
    return;
  }
  constexpr std::size_t item_bytes = max_int_item_bytes<I>;
  // The stride of one-width runs that the last chunk suggests (0: none), tried first on the next.
  std::size_t predicted_stride = 0;
  for (std::size_t start = 0; start < n; start += detail::batch_size) {
    const std::size_t end = std::min(n, start + detail::batch_size);
    out.put(op(Op::MARK));
    // CPython commits a full frame when it starts saving an item: items are written in chunks
    // short enough that the frame cannot fill up before the chunk's last item starts, with one
    // capacity check per chunk (one per batch, but near a frame's end).
    for (std::size_t i = start; i < end;) {
      out.boundary();
      const std::size_t chunk = std::min(end - i, (out.frame_room() - 1) / item_bytes + 1);
      char* const begin = out.room(chunk * item_bytes + int_store_slack);
      const I* const first = items + i;
      char* p = nullptr;
      if (predicted_stride == 5) p = put_ints_of_one_width<5>(begin, first, chunk);
      if (predicted_stride == 3) p = put_ints_of_one_width<3>(begin, first, chunk);
      if (predicted_stride == 2) p = put_ints_of_one_width<2>(begin, first, chunk);
      if (p == nullptr) {
        p = begin;
        for (const I* item = first; item != first + chunk; ++item) p = put_int(p, *item);
        const auto written = static_cast<std::size_t>(p - begin);
        predicted_stride = written == 5 * chunk || written == 3 * chunk || written == 2 * chunk ? written / chunk : 0;
      }
      out.advance(static_cast<std::size_t>(p - begin));
      i += chunk;
    }
    out.put(op(Op::APPENDS));
  }
}

#define PICKLE_NATIVE_INTEGER_LIST(I) template void WriterCore::integer_list<I>(const I*, std::size_t);
PICKLE_NATIVE_FOR_EACH_BULK_INTEGER(PICKLE_NATIVE_INTEGER_LIST)
#undef PICKLE_NATIVE_INTEGER_LIST

template <class S>
void WriterCore::str_list(const S* items, std::size_t n) {
  std::size_t total = 64 + n / 500;
  for (std::size_t i = 0; i < n; ++i) total += items[i].size() + 6;
  state_->out.reserve_capacity(total);
  list_open();
  State& s = *state_;
  if (protocol_ == 0 || n == 1) {
    for (std::size_t i = 0; i < n; ++i) {
      s.str(items[i], false);
      s.out.put(op(Op::APPEND));
    }
    return;
  }
  for (std::size_t start = 0; start < n; start += detail::batch_size) {
    std::size_t end = std::min(n, start + detail::batch_size);
    s.out.put(op(Op::MARK));
    for (std::size_t i = start; i < end; ++i) {
      const std::string_view item = items[i];
      // The common case inline: a fresh short str at protocol ≥ 4.
      if (protocol_ >= 4 && item.size() > 2 && item.size() <= 0xFF) {
        s.out.boundary();
        std::size_t len = item.size();
        char* p = s.out.reserve(len + 3);
        p[0] = op(Op::SHORT_BINUNICODE);
        p[1] = static_cast<char>(len);
        std::memcpy(p + 2, item.data(), len);
        p[2 + len] = op(Op::MEMOIZE);
        ++s.next_index;
      } else {
        s.str(item, false);
      }
    }
    s.out.put(op(Op::APPENDS));
  }
}

template void WriterCore::str_list<std::string>(const std::string*, std::size_t);
template void WriterCore::str_list<std::string_view>(const std::string_view*, std::size_t);

void WriterCore::tuple_open(std::size_t n) {
  state_->out.boundary();
  if (n == 0) return;
  if (!(protocol_ >= 2 && n <= 3)) state_->out.put(op(Op::MARK));
}

void WriterCore::tuple_close(std::size_t n) {
  Output& out = state_->out;
  if (n == 0) {
    if (protocol_ >= 1) {
      out.put(op(Op::EMPTY_TUPLE));
    } else {
      out.put(op(Op::MARK), op(Op::TUPLE));
    }
    return;
  }
  if (protocol_ >= 2 && n <= 3) {
    static constexpr char ops[] = {0, op(Op::TUPLE1), op(Op::TUPLE2), op(Op::TUPLE3)};
    out.put(ops[n]);
  } else {
    out.put(op(Op::TUPLE));
  }
  state_->memoize();
}

void WriterCore::dict_open() {
  State& s = *state_;
  s.out.boundary();
  if (protocol_ >= 1) {
    s.out.put(op(Op::EMPTY_DICT));
  } else {
    s.out.put(op(Op::MARK), op(Op::DICT));
  }
  s.memoize();
}

void WriterCore::set_open() {
  State& s = *state_;
  s.out.boundary();
  if (protocol_ >= 4) {
    s.out.put(op(Op::EMPTY_SET));
    s.memoize();
    return;
  }
  // (builtins.set, (list(items),)) REDUCE: the global, the argument tuple's head, the list.
  s.out.boundary();
  s.embed().global(s.out, s.next_index, "builtins", "set");
  tuple_open(1);
  list_open();
}

void WriterCore::set_close() {
  tuple_close(1);
  state_->out.put(op(Op::REDUCE));
  state_->memoize();
}

void WriterCore::object_open(std::string_view module, std::string_view qualname) {
  State& s = *state_;
  if (protocol_ < 2)
    throw PicklingError("typed pickling of a class instance needs protocol 2 or higher (NEWOBJ)");
  s.out.boundary();  // save(obj)
  s.out.boundary();  // save(cls)
  s.embed().global(s.out, s.next_index, module, qualname);
  s.out.boundary();  // save(())
  s.out.put(op(Op::EMPTY_TUPLE), op(Op::NEWOBJ));
  s.memoize();
}

void WriterCore::object_close(bool has_state) {
  if (has_state) state_->out.put(op(Op::BUILD));
}

void WriterCore::mark() { state_->out.put(op(Op::MARK)); }
void WriterCore::append() { state_->out.put(op(Op::APPEND)); }
void WriterCore::appends() { state_->out.put(op(Op::APPENDS)); }
void WriterCore::setitem() { state_->out.put(op(Op::SETITEM)); }
void WriterCore::setitems() { state_->out.put(op(Op::SETITEMS)); }
void WriterCore::additems() { state_->out.put(op(Op::ADDITEMS)); }

// ================================================================================================
// Reading

namespace {

// What a memo slot holds, for the parser: the offset of the opcode that made a str/bytes (the
// value is read again from there on GET), a global, or anything else (a GET of it falls back).
constexpr std::uint64_t memo_unset = ~std::uint64_t(0);
constexpr std::uint64_t memo_other = ~std::uint64_t(0) - 1;
constexpr std::uint64_t memo_global_bit = std::uint64_t(1) << 63;
constexpr std::size_t no_frame = static_cast<std::size_t>(-1);

struct GlobalName {
  std::string module, qualname;
};

// Whether a loaded int fits I (items that do not go to the Value path, which names the item).
template <class I>
[[gnu::always_inline]] inline bool fits(std::int64_t v) {
  if constexpr (std::is_signed_v<I>) {
    return v >= std::numeric_limits<I>::min() && v <= std::numeric_limits<I>::max();
  } else {
    return v >= 0 && static_cast<std::uint64_t>(v) <= std::numeric_limits<I>::max();
  }
}

}  // namespace

struct ReaderCore::State {
  const unsigned char* data;
  std::size_t size;
  std::size_t pos = 0;
  std::size_t frame_end = no_frame;
  std::vector<std::uint64_t> memo;
  std::vector<GlobalName> globals;
  bool used_put = false;
  bool used_memoize = false;
  std::size_t wasted = 0;  // bytes parsed again after a rollback
  int protocol = 0;

  [[noreturn]] static void fallback() { throw Fallback{}; }

  std::uint8_t peek() {
    for (;;) {
      if (pos == frame_end) frame_end = no_frame;
      if (pos >= size) fallback();
      std::uint8_t b = data[pos];
      if (b != byte(Op::FRAME)) return b;
      if (frame_end != no_frame || size - pos < 9) fallback();
      std::uint64_t len = 0;
      for (int i = 0; i < 8; ++i) len |= std::uint64_t(data[pos + 1 + i]) << (8 * i);
      pos += 9;
      if (len > size - pos) fallback();
      frame_end = pos + static_cast<std::size_t>(len);
    }
  }
  // n argument bytes, inside the current frame.
  const unsigned char* take(std::size_t n) {
    std::size_t limit = frame_end != no_frame ? frame_end : size;
    if (n > limit - pos) fallback();
    const unsigned char* p = data + pos;
    pos += n;
    return p;
  }
  static std::uint32_t u32(const unsigned char* p) {
    return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 |
           std::uint32_t(p[3]) << 24;
  }
  static std::uint64_t u64(const unsigned char* p) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t(p[i]) << (8 * i);
    return v;
  }

  void store(std::uint64_t entry, std::size_t index) {
    if (index >= memo.size()) {
      if (index > memo.size() + size) fallback();  // memory linear in the input
      memo.resize(index + 1, memo_unset);
    }
    memo[index] = entry;
  }
  // The memo store that may follow a value.
  void memo_store(std::uint64_t entry) {
    std::uint8_t b = peek();
    if (b == byte(Op::MEMOIZE)) {
      if (used_put) fallback();
      used_memoize = true;
      ++pos;
      memo.push_back(entry);
    } else if (b == byte(Op::BINPUT)) {
      if (used_memoize) fallback();
      used_put = true;
      ++pos;
      store(entry, *take(1));
    } else if (b == byte(Op::LONG_BINPUT)) {
      if (used_memoize) fallback();
      used_put = true;
      ++pos;
      store(entry, u32(take(4)));
    }
  }
  // A GET at pos (BINGET / LONG_BINGET): the memo entry, pos past it; memo_unset when none.
  std::uint64_t get_entry(std::uint8_t b) {
    std::size_t index;
    if (b == byte(Op::BINGET)) {
      ++pos;
      index = *take(1);
    } else if (b == byte(Op::LONG_BINGET)) {
      ++pos;
      index = u32(take(4));
    } else {
      return memo_unset;
    }
    if (index >= memo.size() || memo[index] == memo_unset) fallback();
    return memo[index];
  }

  static bool valid_utf8(std::string_view s) {
    std::size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
      std::uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      if (w & 0x8080808080808080ull) return !detail::check_utf8(s.substr(i)).has_value();
    }
    for (; i < s.size(); ++i)
      if (static_cast<unsigned char>(s[i]) >= 0x80) return !detail::check_utf8(s.substr(i)).has_value();
    return true;
  }

  // The str whose opcode starts at `at` (pos is moved past it); nullopt if not a str opcode.
  std::string_view str_at(std::uint8_t b) {
    std::size_t n;
    if (b == byte(Op::SHORT_BINUNICODE)) {
      ++pos;
      n = *take(1);
    } else if (b == byte(Op::BINUNICODE)) {
      ++pos;
      n = u32(take(4));
    } else if (b == byte(Op::BINUNICODE8)) {
      ++pos;
      std::uint64_t len = u64(take(8));
      if (len > size) fallback();
      n = static_cast<std::size_t>(len);
    } else {
      fallback();
    }
    std::string_view s(reinterpret_cast<const char*>(take(n)), n);
    if (!valid_utf8(s)) fallback();
    return s;
  }
  std::string_view str() {
    std::uint8_t b = peek();
    std::uint64_t entry = get_entry(b);
    if (entry != memo_unset) {
      if (entry >= memo_other) fallback();
      std::size_t saved_pos = pos, saved_frame = frame_end;
      pos = static_cast<std::size_t>(entry);
      frame_end = no_frame;
      std::uint8_t at = data[pos];
      if (at != byte(Op::SHORT_BINUNICODE) && at != byte(Op::BINUNICODE) && at != byte(Op::BINUNICODE8))
        fallback();
      std::string_view s = str_at(at);
      pos = saved_pos;
      frame_end = saved_frame;
      return s;
    }
    std::size_t at = pos;
    std::string_view s = str_at(b);
    memo_store(at);
    return s;
  }
  std::string_view bytes_at(std::uint8_t b) {
    std::size_t n;
    if (b == byte(Op::SHORT_BINBYTES)) {
      ++pos;
      n = *take(1);
    } else if (b == byte(Op::BINBYTES)) {
      ++pos;
      n = u32(take(4));
    } else if (b == byte(Op::BINBYTES8)) {
      ++pos;
      std::uint64_t len = u64(take(8));
      if (len > size) fallback();
      n = static_cast<std::size_t>(len);
    } else {
      fallback();
    }
    return std::string_view(reinterpret_cast<const char*>(take(n)), n);
  }
  std::int64_t integer() {
    std::uint8_t b = peek();
    ++pos;
    switch (static_cast<Op>(b)) {
      case Op::BININT1:
        return *take(1);
      case Op::BININT2: {
        const unsigned char* p = take(2);
        return p[0] | p[1] << 8;
      }
      case Op::BININT:
        return static_cast<std::int32_t>(u32(take(4)));
      case Op::LONG1: {
        std::size_t n = *take(1);
        if (n > 8) fallback();
        const unsigned char* p = take(n);
        if (n == 0) return 0;
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < n; ++i) v |= std::uint64_t(p[i]) << (8 * i);
        if (n < 8 && (p[n - 1] & 0x80)) v |= ~std::uint64_t(0) << (8 * n);
        return static_cast<std::int64_t>(v);
      }
      default:
        fallback();
    }
  }

  // An int of type I (an unsigned 64-bit one may be LONG1 of 9 bytes); Fallback when it does not fit.
  template <class I>
  I checked_integer() {
    if constexpr (std::is_unsigned_v<I> && sizeof(I) == 8) {
      if (peek() == byte(Op::LONG1) && pos + 1 < size && data[pos + 1] == 9) {
        pos += 2;
        const unsigned char* p = take(9);
        if (p[8] != 0) fallback();
        return static_cast<I>(u64(p));
      }
    }
    const std::int64_t v = integer();
    if (!fits<I>(v)) fallback();
    return static_cast<I>(v);
  }

  // The items of an APPENDS batch of ints (pos after its MARK) appended to `out`, and the APPENDS.
  // The items that lie wholly inside the current frame (all but the last few of a frame) are
  // decoded by one loop without bounds checks: BININT / BININT1 / BININT2 / LONG1, the opcodes
  // CPython writes for ints. The rest (and a frame's end) go through checked_integer. The vector
  // is resized a batch at a time within what count_list_items reserved (beyond it, geometrically).
  template <class I>
  void integer_batch(std::vector<I>& out) {
    constexpr std::size_t longest_item = 10;  // LONG1 of 8 bytes
    std::size_t n = out.size();
    for (;;) {
      // Up to a batch more, within the capacity reserved (when the list's length is known).
      const std::size_t room = out.capacity() - n;
      out.resize(n + (room != 0 ? std::min(room, detail::batch_size) : detail::batch_size));
      I* dst = out.data() + n;
      I* const dst_end = out.data() + out.size();
      while (dst != dst_end) {
        const std::size_t limit = frame_end != no_frame ? frame_end : size;
        const unsigned char* p = data + pos;
        const unsigned char* const fast_end = limit - pos > longest_item ? data + limit - longest_item : p;
        // Each opcode's items in a run of their own (see count_list_items: one compare per item).
        auto run = [&](const unsigned char opcode, auto decode) {
          do {
            const std::int64_t v = decode();
            if (!fits<I>(v)) fallback();
            *dst++ = static_cast<I>(v);
          } while (p < fast_end && dst != dst_end && *p == opcode);
        };
        while (p < fast_end && dst != dst_end) {
          const unsigned char opcode = *p;
          if (opcode == byte(Op::BININT)) {
            run(opcode, [&] {
              std::int32_t word;
              std::memcpy(&word, p + 1, 4);
              p += 5;
              return std::int64_t{word};
            });
          } else if (opcode == byte(Op::BININT1)) {
            run(opcode, [&] {
              const std::int64_t v = p[1];
              p += 2;
              return v;
            });
          } else if (opcode == byte(Op::BININT2)) {
            run(opcode, [&] {
              const std::int64_t v = p[1] | p[2] << 8;
              p += 3;
              return v;
            });
          } else if (opcode == byte(Op::LONG1) && p[1] != 0 && p[1] <= 8) {
            const std::size_t len = p[1];
            std::uint64_t word;
            std::memcpy(&word, p + 2, 8);  // within the frame: p + 10 <= limit
            const unsigned unused = 64 - 8 * static_cast<unsigned>(len);
            const std::int64_t v = static_cast<std::int64_t>(word << unused) >> unused;  // sign-extended
            p += 2 + len;
            if (!fits<I>(v)) fallback();
            *dst++ = static_cast<I>(v);
          } else {
            break;
          }
        }
        pos = static_cast<std::size_t>(p - data);
        if (dst == dst_end) break;
        if (peek() == byte(Op::APPENDS)) {
          ++pos;
          out.resize(static_cast<std::size_t>(dst - out.data()));
          return;
        }
        *dst++ = checked_integer<I>();
      }
      if (peek() == byte(Op::APPENDS)) {  // exactly a full block
        ++pos;
        return;
      }
      n = out.size();  // a batch longer than CPython's: room for more
    }
  }

  // The items of an APPENDS batch of strs (pos after its MARK) appended to `out` (constructed in
  // place from the input's bytes), and the APPENDS. Fresh strs as CPython writes them at protocol
  // 4+ (SHORT_BINUNICODE, length, UTF-8, MEMOIZE) lying wholly inside the current frame are taken
  // by one loop; the rest (GETs of shared strs, long strs, a frame's end) by str().
  template <class S>
  void str_batch(std::vector<S>& out) {
    for (;;) {
      if (!used_put) {
        const std::size_t limit = frame_end != no_frame ? frame_end : size;
        std::size_t p = pos;
        while (limit - p >= 3 && data[p] == byte(Op::SHORT_BINUNICODE)) {
          const std::size_t n = data[p + 1];
          if (limit - p < n + 3 || data[p + 2 + n] != byte(Op::MEMOIZE)) break;
          std::size_t length = n;
#if defined(__GNUC__)
          // Knowing that the length is below 256, GCC inlines the copy into the new std::string as
          // `rep movsq`, slow to start: 5.5 ns for a 32-byte str here, against 2.2 ns for the
          // library's memcpy (2,000,000 strs: 7 ms). Hiding the bound keeps the call.
          asm("" : "+r"(length));
#endif
          const std::string_view text(reinterpret_cast<const char*>(data + p + 2), length);
          if (!valid_utf8(text)) fallback();
          memo.push_back(p);
          out.emplace_back(text);
          p += n + 3;
        }
        if (p != pos) used_memoize = true;
        pos = p;
      }
      if (peek() == byte(Op::APPENDS)) {
        ++pos;
        return;
      }
      out.emplace_back(str());
    }
  }

  // How many items the list starting at pos (after EMPTY_LIST and its memo store) holds, when it is
  // a list of ints or strs in CPython's batches: one pass without allocating, so the vector is
  // allocated once (page faults, not parsing, dominate large loads). An estimate: 0 when unsure.
  std::size_t count_list_items() const {
    std::size_t p = pos, count = 0;
    auto arg = [&](std::size_t n) { return p + n <= size; };
    for (;;) {
      if (p < size && data[p] == byte(Op::FRAME)) p += 9;
      if (p >= size || data[p] != byte(Op::MARK)) return count;
      ++p;
      std::size_t batch = 0;
      for (;;) {
        // The common items first. Ints come in runs of one opcode (a list's ints are mostly of
        // one width), counted with one compare each: a length looked up per opcode would make
        // each step wait for the last one's load, and a chain of compares per item costs a
        // predicted branch per link (BININT2 behind two others took three times BININT's time).
        while (p + 10 <= size) {
          const unsigned char opcode = data[p];
          std::size_t stride;
          if (opcode == byte(Op::BININT)) {
            stride = 5;
          } else if (opcode == byte(Op::BININT1)) {
            stride = 2;
          } else if (opcode == byte(Op::BININT2)) {
            stride = 3;
          } else {
            break;
          }
          do {
            p += stride;
            ++batch;
          } while (p + 10 <= size && data[p] == opcode);
        }
        // A fresh short str, one step with its MEMOIZE.
        while (p + 3 <= size && data[p] == byte(Op::SHORT_BINUNICODE) && p + 3 + data[p + 1] <= size &&
               data[p + 2 + data[p + 1]] == byte(Op::MEMOIZE)) {
          p += 3 + data[p + 1];
          ++batch;
        }
        if (p < size && data[p] == byte(Op::FRAME)) p += 9;
        if (p >= size) return count;
        std::size_t n;
        bool item = true;
        switch (static_cast<Op>(data[p])) {
          case Op::BININT1: n = 2; break;
          case Op::BININT2: n = 3; break;
          case Op::BININT: n = 5; break;
          case Op::LONG1: n = arg(2) ? 2 + std::size_t(data[p + 1]) : size; break;
          case Op::SHORT_BINUNICODE: n = arg(2) ? 2 + std::size_t(data[p + 1]) : size; break;
          case Op::BINUNICODE: n = arg(5) ? 5 + std::size_t(u32(data + p + 1)) : size; break;
          case Op::BINGET: n = 2; break;
          case Op::LONG_BINGET: n = 5; break;
          case Op::MEMOIZE: n = 1; item = false; break;
          case Op::BINPUT: n = 2; item = false; break;
          case Op::LONG_BINPUT: n = 5; item = false; break;
          case Op::APPENDS: n = 0; break;
          default: return count;
        }
        if (n == 0) break;
        if (item) ++batch;
        p += n;
        if (p > size) return count;
      }
      ++p;  // APPENDS
      count += batch;
      if (batch != detail::batch_size || count > size) return std::min(count, size);
    }
  }
};

ReaderCore::ReaderCore(std::string_view data, const ReadOptions& options)
    : state_(std::make_unique<State>()) {
  const Limits& l = options.limits;
  const Limits defaults;
  bool default_limits = l.max_input_bytes == defaults.max_input_bytes && l.max_depth == defaults.max_depth &&
                        l.max_stack == defaults.max_stack && l.max_memo_entries == defaults.max_memo_entries &&
                        l.max_memo_index == defaults.max_memo_index && l.max_nodes == defaults.max_nodes &&
                        l.max_alloc_ratio == defaults.max_alloc_ratio;
  // A policy, hooks, or limits tighter than the defaults are the Value reader's to enforce.
  if (options.policy || options.persistent_load || options.buffers || !default_limits ||
      data.size() > l.max_input_bytes)
    throw Fallback{};
  state_->data = reinterpret_cast<const unsigned char*>(data.data());
  state_->size = data.size();
}

ReaderCore::~ReaderCore() = default;

void ReaderCore::start() {
  State& s = *state_;
  if (s.size >= 2 && s.data[0] == byte(Op::PROTO)) {
    s.protocol = s.data[1];
    if (s.protocol > 5 || s.protocol < 2) throw Fallback{};
    s.pos = 2;
  } else {
    s.protocol = 1;
  }
  s.memo.reserve(std::min<std::size_t>(s.size / 16, std::size_t(1) << 24));
  // A large input's memo (a list of millions of strs memoizes each) is fresh memory every load:
  // in huge pages it takes a few hundred page faults, not one per 4 KiB.
  if (s.memo.capacity() * sizeof(std::uint64_t) >= detail::huge_page_worthwhile)
    detail::advise_huge_pages(s.memo.data(), s.memo.capacity() * sizeof(std::uint64_t));
}

void ReaderCore::stop() {
  if (state_->peek() != byte(Op::STOP)) throw Fallback{};
}

std::uint8_t ReaderCore::peek() { return state_->peek(); }

bool ReaderCore::at_none() {
  if (state_->peek() != byte(Op::NONE)) return false;
  ++state_->pos;
  return true;
}
void ReaderCore::none() {
  if (!at_none()) throw Fallback{};
}
bool ReaderCore::boolean() {
  std::uint8_t b = state_->peek();
  if (b == byte(Op::NEWTRUE) || b == byte(Op::NEWFALSE)) {
    ++state_->pos;
    return b == byte(Op::NEWTRUE);
  }
  throw Fallback{};
}
std::int64_t ReaderCore::integer() { return state_->integer(); }
std::uint64_t ReaderCore::unsigned_integer() {
  State& s = *state_;
  if (s.peek() == byte(Op::LONG1) && s.pos + 1 < s.size && s.data[s.pos + 1] == 9) {
    s.pos += 2;
    const unsigned char* p = s.take(9);
    if (p[8] != 0) throw Fallback{};
    return s.u64(p);
  }
  std::int64_t v = s.integer();
  if (v < 0) throw Fallback{};
  return static_cast<std::uint64_t>(v);
}
double ReaderCore::floating() {
  State& s = *state_;
  if (s.peek() != byte(Op::BINFLOAT)) throw Fallback{};
  ++s.pos;
  const unsigned char* p = s.take(8);
  std::uint64_t bits = 0;
  for (int i = 0; i < 8; ++i) bits = bits << 8 | p[i];
  double f;
  std::memcpy(&f, &bits, 8);
  return f;
}
std::string_view ReaderCore::str() { return state_->str(); }

std::string_view ReaderCore::bytes() {
  State& s = *state_;
  std::uint8_t b = s.peek();
  std::uint64_t entry = s.get_entry(b);
  if (entry != memo_unset) {
    if (entry >= memo_other) throw Fallback{};
    std::size_t saved_pos = s.pos, saved_frame = s.frame_end;
    s.pos = static_cast<std::size_t>(entry);
    s.frame_end = no_frame;
    std::string_view v = s.bytes_at(s.data[s.pos]);
    s.pos = saved_pos;
    s.frame_end = saved_frame;
    return v;
  }
  std::size_t at = s.pos;
  std::string_view v = s.bytes_at(b);
  s.memo_store(at);
  return v;
}

std::string_view ReaderCore::bytearray() {
  State& s = *state_;
  if (s.peek() != byte(Op::BYTEARRAY8)) throw Fallback{};
  ++s.pos;
  std::uint64_t len = s.u64(s.take(8));
  if (len > s.size) throw Fallback{};
  std::string_view v(reinterpret_cast<const char*>(s.take(static_cast<std::size_t>(len))),
                     static_cast<std::size_t>(len));
  s.memo_store(memo_other);  // a GET of it would share a mutable object: the Value path's job
  return v;
}

void ReaderCore::list_open() {
  State& s = *state_;
  if (s.peek() != byte(Op::EMPTY_LIST)) throw Fallback{};
  ++s.pos;
  s.memo_store(memo_other);
}

namespace {
// Opcodes that begin a value (anything else after a container ends it).
bool starts_value(std::uint8_t b) {
  switch (static_cast<Op>(b)) {
    case Op::APPEND: case Op::APPENDS: case Op::SETITEM: case Op::SETITEMS: case Op::ADDITEMS:
    case Op::TUPLE: case Op::TUPLE1: case Op::TUPLE2: case Op::TUPLE3: case Op::FROZENSET:
    case Op::LIST: case Op::DICT: case Op::STOP: case Op::BUILD: case Op::REDUCE: case Op::NEWOBJ:
    case Op::NEWOBJ_EX: case Op::STACK_GLOBAL: case Op::POP: case Op::POP_MARK: case Op::MEMOIZE:
    case Op::BINPUT: case Op::LONG_BINPUT: case Op::PUT:
      return false;
    default:
      return true;
  }
}
}  // namespace

bool ReaderCore::list_more(bool& single, std::size_t batch_items) {
  State& s = *state_;
  single = false;
  if (batch_items % detail::batch_size != 0) return false;  // a short batch was the last one
  std::uint8_t b = s.peek();
  if (b == byte(Op::MARK)) {
    ++s.pos;
    return true;
  }
  if (!starts_value(b)) return false;
  single = true;
  return true;
}
void ReaderCore::append() {
  if (state_->peek() != byte(Op::APPEND)) throw Fallback{};
  ++state_->pos;
}
void ReaderCore::appends() {
  if (state_->peek() != byte(Op::APPENDS)) throw Fallback{};
  ++state_->pos;
}

bool ReaderCore::at_batch_end() {
  std::uint8_t b = state_->peek();
  return b == byte(Op::APPENDS) || b == byte(Op::SETITEMS) || b == byte(Op::ADDITEMS) ||
         b == byte(Op::FROZENSET);
}

template <class I>
void ReaderCore::integer_list(std::vector<I>& out) {
  State& s = *state_;
  list_open();
  out.clear();
  out.reserve(s.count_list_items());
  for (;;) {
    if (out.size() % detail::batch_size != 0) return;  // a short batch was the last one
    std::uint8_t b = s.peek();
    if (b == byte(Op::MARK)) {
      Checkpoint at = checkpoint();
      ++s.pos;
      std::size_t before = out.size();
      try {
        s.integer_batch(out);
      } catch (const Fallback&) {
        // Not ints up to APPENDS: the MARK may be a sibling's (the list ended on a full batch).
        out.resize(before);
        rollback(at);
        return;
      }
      continue;
    }
    if (!starts_value(b)) return;
    Checkpoint at = checkpoint();
    try {
      const I v = s.checked_integer<I>();
      append();
      out.push_back(v);
    } catch (const Fallback&) {
      rollback(at);
    }
    return;
  }
}

#define PICKLE_NATIVE_INTEGER_LIST(I) template void ReaderCore::integer_list<I>(std::vector<I>&);
PICKLE_NATIVE_FOR_EACH_BULK_INTEGER(PICKLE_NATIVE_INTEGER_LIST)
#undef PICKLE_NATIVE_INTEGER_LIST

template <class S>
void ReaderCore::str_list(std::vector<S>& out) {
  State& s = *state_;
  list_open();
  out.clear();
  out.reserve(s.count_list_items());
  // The vector is fresh memory (64 MB for 2M std::strings): filled in huge pages it takes a few
  // dozen page faults instead of one per 4 KiB, which in this VM were a third of the load.
  if (out.capacity() * sizeof(S) >= detail::huge_page_worthwhile)
    detail::advise_huge_pages(out.data(), out.capacity() * sizeof(S));
  for (;;) {
    if (out.size() % detail::batch_size != 0) return;  // a short batch was the last one
    std::uint8_t b = s.peek();
    if (b == byte(Op::MARK)) {
      Checkpoint at = checkpoint();
      ++s.pos;
      std::size_t before = out.size();
      try {
        s.str_batch(out);
      } catch (const Fallback&) {
        // Not strs up to APPENDS: the MARK may be a sibling's (the list ended on a full batch).
        out.resize(before);
        rollback(at);
        return;
      }
      continue;
    }
    if (!starts_value(b)) return;
    Checkpoint at = checkpoint();
    try {
      S v(s.str());
      append();
      out.push_back(std::move(v));
    } catch (const Fallback&) {
      rollback(at);
    }
    return;
  }
}

template void ReaderCore::str_list<std::string>(std::vector<std::string>&);
template void ReaderCore::str_list<std::string_view>(std::vector<std::string_view>&);

bool ReaderCore::tuple_open(std::size_t n) {
  State& s = *state_;
  if (n == 0) return false;
  if (s.peek() == byte(Op::MARK)) {
    ++s.pos;
    return true;
  }
  if (n > 3 || s.protocol < 2) throw Fallback{};
  return false;
}

void ReaderCore::tuple_close(std::size_t n, bool marked) {
  State& s = *state_;
  std::uint8_t b = s.peek();
  if (n == 0) {
    if (b != byte(Op::EMPTY_TUPLE)) throw Fallback{};
    ++s.pos;
    return;
  }
  static constexpr Op closers[] = {Op::EMPTY_TUPLE, Op::TUPLE1, Op::TUPLE2, Op::TUPLE3};
  Op expected = marked ? Op::TUPLE : closers[n];
  if (b != byte(expected)) throw Fallback{};
  ++s.pos;
  s.memo_store(memo_other);
}

void ReaderCore::dict_open() {
  State& s = *state_;
  if (s.peek() != byte(Op::EMPTY_DICT)) throw Fallback{};
  ++s.pos;
  s.memo_store(memo_other);
}

bool ReaderCore::dict_more(bool& single, std::size_t batch_items) {
  State& s = *state_;
  single = false;
  if (batch_items % detail::batch_size != 0) return false;
  std::uint8_t b = s.peek();
  if (b == byte(Op::MARK)) {
    ++s.pos;
    return true;
  }
  if (batch_items != 0 || !starts_value(b)) return false;
  single = true;
  return true;
}
void ReaderCore::setitem() {
  if (state_->peek() != byte(Op::SETITEM)) throw Fallback{};
  ++state_->pos;
}
void ReaderCore::setitems() {
  if (state_->peek() != byte(Op::SETITEMS)) throw Fallback{};
  ++state_->pos;
}

bool ReaderCore::set_open(bool& frozen) {
  State& s = *state_;
  std::uint8_t b = s.peek();
  if (b == byte(Op::EMPTY_SET)) {
    frozen = false;
    ++s.pos;
    s.memo_store(memo_other);
    // Sets have no single-item opcode: items always come in MARK … ADDITEMS batches.
    if (s.peek() != byte(Op::MARK)) return false;
    // (An empty set followed by a sibling that starts with MARK fails here and goes to the Value
    // path.)
    ++s.pos;
    return true;
  }
  if (b == byte(Op::MARK) && s.protocol >= 4) {
    frozen = true;
    ++s.pos;
    return true;
  }
  throw Fallback{};
}

bool ReaderCore::set_more(bool frozen, std::size_t batch_items) {
  State& s = *state_;
  std::uint8_t b = s.peek();
  if (frozen) {
    if (b != byte(Op::FROZENSET)) throw Fallback{};
    ++s.pos;
    s.memo_store(memo_other);
    return false;
  }
  if (b != byte(Op::ADDITEMS)) throw Fallback{};
  ++s.pos;
  if (batch_items != detail::batch_size) return false;
  if (s.peek() != byte(Op::MARK)) return false;
  ++s.pos;
  return true;
}

void ReaderCore::object_open(std::string_view module, std::string_view qualname) {
  State& s = *state_;
  std::uint8_t b = s.peek();
  std::uint64_t entry = s.get_entry(b);
  if (entry != memo_unset) {
    if (!(entry & memo_global_bit) || entry >= memo_other) throw Fallback{};
    const GlobalName& g = s.globals[static_cast<std::size_t>(entry & ~memo_global_bit)];
    if (g.module != module || g.qualname != qualname) throw Fallback{};
  } else if (b == byte(Op::GLOBAL)) {
    ++s.pos;
    std::size_t limit = s.frame_end != no_frame ? s.frame_end : s.size;
    const char* text = reinterpret_cast<const char*>(s.data + s.pos);
    std::string_view rest(text, limit - s.pos);
    std::size_t nl1 = rest.find('\n');
    if (nl1 == std::string_view::npos) throw Fallback{};
    std::size_t nl2 = rest.find('\n', nl1 + 1);
    if (nl2 == std::string_view::npos) throw Fallback{};
    if (rest.substr(0, nl1) != module || rest.substr(nl1 + 1, nl2 - nl1 - 1) != qualname) throw Fallback{};
    if (s.protocol < 3) {
      // fix_imports could map these names: leave such pickles to the Value path.
      detail::QualifiedName mapped = detail::py2_to_py3({module, qualname});
      if (mapped.module != module || mapped.name != qualname) throw Fallback{};
    }
    s.pos += nl2 + 1;
    s.globals.push_back({std::string(module), std::string(qualname)});
    s.memo_store(memo_global_bit | (s.globals.size() - 1));
  } else {
    if (s.protocol < 4) throw Fallback{};
    std::string_view m = s.str();
    std::string_view q = s.str();
    if (m != module || q != qualname || s.peek() != byte(Op::STACK_GLOBAL)) throw Fallback{};
    ++s.pos;
    s.globals.push_back({std::string(module), std::string(qualname)});
    s.memo_store(memo_global_bit | (s.globals.size() - 1));
  }
  if (s.peek() != byte(Op::EMPTY_TUPLE)) throw Fallback{};
  ++s.pos;
  if (s.peek() != byte(Op::NEWOBJ)) throw Fallback{};
  ++s.pos;
  s.memo_store(memo_other);
}

bool ReaderCore::object_has_state() {
  std::uint8_t b = state_->peek();
  return b == byte(Op::EMPTY_DICT);
}

void ReaderCore::object_close() {
  if (state_->peek() != byte(Op::BUILD)) throw Fallback{};
  ++state_->pos;
}

ReaderCore::Checkpoint ReaderCore::checkpoint() const noexcept {
  return {state_->pos, state_->memo.size(), state_->frame_end};
}

void ReaderCore::rollback(const Checkpoint& c) {
  State& s = *state_;
  s.wasted += s.pos > c.pos ? s.pos - c.pos : 0;
  // Speculation that keeps failing would make the parse quadratic: hand the input to the Value
  // reader (linear) instead.
  if (s.wasted > s.size + 4096) throw Fallback{};
  s.pos = c.pos;
  if (s.used_put) {
    // BINPUT may have written anywhere: no cheap undo.
    if (s.memo.size() != c.memo_size) throw Fallback{};
  } else {
    s.memo.resize(c.memo_size);
  }
  s.frame_end = c.frame_end;
}

void ReaderCore::enter() {
  if (++depth_ > max_native_depth) {
    --depth_;
    throw Fallback{};
  }
}

// ================================================================================================
// Conversion paths

void Path::push_key(const Value& key) { parts_.push_back("[" + repr(key) + "]"); }

std::string Path::text() const {
  std::string out;
  for (const std::string& p : parts_) out += p;
  return out;
}

std::string_view kind_name_of(const Value& v) { return v.type_name(); }

void Path::fail(std::string_view expected, const Value& got) const {
  std::string got_name(got.type_name());
  if (got.kind() == Kind::object && got.callable().kind() == Kind::global)
    got_name = std::string(got.callable().module()) + "." + std::string(got.callable().qualname()) + " object";
  fail_text(expected, got_name);
}

void Path::fail_text(std::string_view expected, std::string_view got) const {
  throw LoadTypeError(text(), std::string(expected), std::string(got));
}

void Path::enter() {
  if (++depth_ > max_native_depth) {
    --depth_;
    throw LoadTypeError(text(), "at most " + std::to_string(max_native_depth) + " levels of nesting",
                        "more");
  }
}

}  // namespace pickle::native_detail
