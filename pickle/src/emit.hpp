// Private: the byte-level half of the pickler, shared by the Value writer (writer.cpp) and the
// typed writer (native.hpp): CPython's framing, and the exact opcodes CPython picks for each scalar,
// str, bytes and memo operation at each protocol. Nothing here knows about object identity; the
// callers decide what is memoized and when.
//
// The hot emitters are inline: both writers call them once per item.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pickle/errors.hpp"
#include "pickle/opcodes.hpp"
#include "unicode.hpp"

namespace pickle::detail {

struct BigIntNode;

constexpr std::size_t frame_size_target = 65536;
constexpr std::size_t frame_size_min = 4;
constexpr std::size_t frame_header_size = 9;
// CPython's BATCHSIZE: APPENDS / SETITEMS / ADDITEMS hold at most this many items.
constexpr std::size_t batch_size = 1000;

constexpr char op(Op o) { return static_cast<char>(o); }

// Fresh memory costs a page fault per 4 KiB page, and faults are slow (about 10 µs each in a VM:
// a fresh 256 MiB output took 0.9 s to fill, 50 ms in 2 MiB pages). Large output buffers ask the
// kernel for transparent huge pages (madvise mode); elsewhere this does nothing.
constexpr std::size_t huge_page_worthwhile = std::size_t{4} << 20;
void advise_huge_pages(void* data, std::size_t size) noexcept;

// ---------------------------------------------------------------------------------------------
// Output buffer with CPython's framing: a frame is opened lazily by the first byte written while none
// is open (9 header bytes are reserved), and committed at an opcode boundary once it holds ≥ 64 KiB.
//
// Two ways to hold the bytes. The default buffer is kept by a writer reused across dumps (the Value
// writer's, per thread), so take() copies the output out of it into an exact-size string. An Output
// made with HandOver lives for one dump (the typed writer's): its buffer is a std::string that take()
// returns as it is, so a large output is never copied once more at the end.
class Output {
 public:
  struct HandOver {};
  bool framing = false;

  std::size_t size() const noexcept { return len_ + borrowed_bytes_; }

  [[gnu::always_inline]] char* reserve(std::size_t n) {
    if (framing && frame_start_ == no_frame) open_frame();
    if (len_ + n > cap_) grow(len_ + n);
    char* p = data_ + len_;
    len_ += n;
    return p;
  }
  // Room for up to `n` bytes at the returned pointer (a frame opened first, as reserve does);
  // advance() then commits what was written. For opcodes whose length is known only once encoded.
  [[gnu::always_inline]] char* room(std::size_t n) {
    if (framing && frame_start_ == no_frame) open_frame();
    if (len_ + n > cap_) grow(len_ + n);
    return data_ + len_;
  }
  [[gnu::always_inline]] void advance(std::size_t n) noexcept { len_ += n; }
  [[gnu::always_inline]] void put(char c) { *reserve(1) = c; }
  [[gnu::always_inline]] void put(char a, char b) {
    char* p = reserve(2);
    p[0] = a;
    p[1] = b;
  }
  void write(const void* data, std::size_t n) {
    if (n != 0) std::memcpy(reserve(n), data, n);
  }
  void write(std::string_view s) { write(s.data(), s.size()); }
  void put_u32(std::uint32_t v) {
    char* p = reserve(4);
    for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
  }
  void op_u64(char opcode, std::uint64_t v) {
    char* p = reserve(9);
    p[0] = opcode;
    for (int i = 0; i < 8; ++i) p[1 + i] = static_cast<char>(v >> (8 * i));
  }
  [[gnu::always_inline]] void op_u32(char opcode, std::uint32_t v) {
    char* p = reserve(5);
    p[0] = opcode;
    for (int i = 0; i < 4; ++i) p[1 + i] = static_cast<char>(v >> (8 * i));
  }

  // A run of small opcodes written straight into the buffer: run_begin makes room for `bytes`
  // (opening a frame as reserve would) and returns where to write, run_end(p) keeps what was
  // written up to p. An opcode starting at or past run_boundary() must wait for boundary() (the
  // frame is full).
  [[gnu::always_inline]] char* run_begin(std::size_t bytes) {
    if (framing && frame_start_ == no_frame) open_frame();
    if (len_ + bytes > cap_) grow(len_ + bytes);
    return data_ + len_;
  }
  [[gnu::always_inline]] const char* run_boundary() const noexcept {
    return frame_start_ == no_frame ? data_ + cap_ + 1 : data_ + frame_start_ + frame_header_size + frame_size_target;
  }
  [[gnu::always_inline]] void run_end(const char* p) noexcept { len_ = static_cast<std::size_t>(p - data_); }

  // How many more bytes the open frame takes before it reaches the target size (when the next
  // boundary() commits it): a loop writing items of at most k bytes may write (room - 1) / k + 1 of
  // them without a boundary() each. With no frame open, a whole frame's worth.
  std::size_t frame_room() const noexcept {
    if (frame_start_ == no_frame) return frame_size_target;
    std::size_t used = len_ - frame_start_ - frame_header_size;
    return used >= frame_size_target ? 0 : frame_size_target - used;
  }

  // The start of a save(): commit a frame that has reached the target size.
  [[gnu::always_inline]] void boundary() {
    if (frame_start_ != no_frame && len_ - frame_start_ - frame_header_size >= frame_size_target)
      commit_frame();
  }
  void commit_frame() {
    if (frame_start_ == no_frame) return;
    std::size_t frame_len = len_ - frame_start_ - frame_header_size;
    char* q = data_ + frame_start_;
    if (frame_len >= frame_size_min) {
      q[0] = op(Op::FRAME);
      for (int i = 0; i < 8; ++i) q[1 + i] = static_cast<char>(std::uint64_t(frame_len) >> (8 * i));
    } else {
      std::memmove(q, q + frame_header_size, frame_len);
      len_ -= frame_header_size;
    }
    frame_start_ = no_frame;
  }
  // A str/bytes/bytearray payload: ≥ 64 KiB ones go outside frames, header included.
  void payload(const char* header, std::size_t header_len, const char* data, std::size_t n) {
    if (framing && n >= frame_size_target) {
      commit_frame();
      framing = false;
      write(header, header_len);
      write_or_borrow(data, n);
      framing = true;
    } else {
      write(header, header_len);
      write_or_borrow(data, n);
    }
  }
  // While a Borrowing lives, payloads of borrow_min_bytes or more are not copied into the buffer
  // but referenced, and take() copies them once, straight into the result: a dumps of a 256 MiB
  // bytes copied it twice (into the buffer, then the result). For payloads that outlive take() (the
  // value being written), never for temporaries, nor in a HandOver buffer (it is the result).
  static constexpr std::size_t borrow_min_bytes = std::size_t{1} << 20;
  class Borrowing {
   public:
    explicit Borrowing(Output& out) noexcept : out_(out), was_(out.borrowing_) { out.borrowing_ = !out.hand_over_; }
    ~Borrowing() { out_.borrowing_ = was_; }
    Borrowing(const Borrowing&) = delete;
    Borrowing& operator=(const Borrowing&) = delete;

   private:
    Output& out_;
    bool was_;
  };

  Output() = default;
  explicit Output(HandOver) noexcept : hand_over_(true) {}
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;
  Output(Output&& other) noexcept
      : framing(other.framing), data_(std::exchange(other.data_, nullptr)),
        cap_(std::exchange(other.cap_, 0)), len_(std::exchange(other.len_, 0)),
        frame_start_(std::exchange(other.frame_start_, no_frame)), hand_over_(other.hand_over_),
        borrowed_(std::move(other.borrowed_)), borrowed_bytes_(std::exchange(other.borrowed_bytes_, 0)),
        storage_(std::move(other.storage_)) {
    if (hand_over_ && cap_ != 0) data_ = storage_.data();
  }
  Output& operator=(Output&& other) noexcept {
    if (this != &other) {
      if (!hand_over_) std::free(data_);
      framing = other.framing;
      data_ = std::exchange(other.data_, nullptr);
      cap_ = std::exchange(other.cap_, 0);
      len_ = std::exchange(other.len_, 0);
      frame_start_ = std::exchange(other.frame_start_, no_frame);
      hand_over_ = other.hand_over_;
      storage_ = std::move(other.storage_);
      borrowed_ = std::move(other.borrowed_);
      borrowed_bytes_ = std::exchange(other.borrowed_bytes_, 0);
      other.storage_.clear();
      if (hand_over_ && cap_ != 0) data_ = storage_.data();
    }
    return *this;
  }
  ~Output() {
    if (!hand_over_) std::free(data_);
  }

  // Room for `n` more bytes without growing (an estimate from a caller that knows the value). A
  // HandOver buffer gets exactly that (it is zero-filled, and becomes the result), not the next
  // power of two.
  void reserve_capacity(std::size_t n) {
    const std::size_t need = len_ + n + frame_header_size;
    if (need <= cap_) return;
    if (hand_over_) {
      grow_storage(need);
    } else {
      grow(need);
    }
  }

  // Drop whatever a failed dump left behind.
  void reset() noexcept {
    len_ = 0;
    frame_start_ = no_frame;
    framing = false;
    borrowed_.clear();
    borrowed_bytes_ = 0;
  }

  std::string take() {
    // A HandOver buffer mostly filled is the result; one mostly empty (a small dump in the 1 KiB
    // first buffer, an estimate far too high) is copied, not handed over with its waste.
    if (hand_over_ && cap_ - len_ <= len_ / 4) {
      storage_.resize(len_);
      std::string result = std::move(storage_);
      storage_ = std::string();
      data_ = nullptr;
      cap_ = 0;
      len_ = 0;
      frame_start_ = no_frame;
      return result;
    }
    std::string result;
    const std::size_t total = len_ + borrowed_bytes_;
    result.reserve(total);
    if (total >= huge_page_worthwhile) advise_huge_pages(result.data(), total);
    std::size_t from = 0;
    for (const Borrowed& b : borrowed_) {
      result.append(data_ + from, b.at - from);
      result.append(b.data, b.size);
      from = b.at;
    }
    result.append(data_ + from, len_ - from);
    len_ = 0;
    frame_start_ = no_frame;
    borrowed_.clear();
    borrowed_bytes_ = 0;
    return result;
  }

  void release_if_larger_than(std::size_t bytes) noexcept {
    if (cap_ <= bytes) return;
    if (hand_over_) {
      storage_ = std::string();
    } else {
      std::free(data_);
    }
    data_ = nullptr;
    cap_ = 0;
    reset();
  }

 private:
  static constexpr std::size_t no_frame = static_cast<std::size_t>(-1);
  void open_frame() {
    frame_start_ = len_;
    if (len_ + frame_header_size > cap_) grow(len_ + frame_header_size);
    len_ += frame_header_size;
  }
  // realloc: no zero fill, and large blocks move by remapping rather than copying.
  [[gnu::noinline]] void grow(std::size_t need) {
    std::size_t cap = std::max<std::size_t>(cap_ * 2, 1024);
    while (cap < need) cap *= 2;
    if (hand_over_) {
      grow_storage(cap);
      return;
    }
    void* grown = std::realloc(data_, cap);
    if (grown == nullptr) throw std::bad_alloc();
    data_ = static_cast<char*>(grown);
    cap_ = cap;
    if (cap >= huge_page_worthwhile) advise_huge_pages(data_ + len_, cap - len_);
  }
  // A std::string cannot grow without initializing (resize_and_overwrite is C++23), so the new
  // capacity is zero-filled once; that costs a small fraction of writing it (a memset of fresh
  // memory, which also takes its page faults, huge ones when advised before).
  void grow_storage(std::size_t cap) {
    std::string grown;
    grown.reserve(cap);
    if (cap >= huge_page_worthwhile) advise_huge_pages(grown.data(), cap);
    grown.assign(data_ == nullptr ? "" : data_, len_);
    grown.resize(grown.capacity());
    storage_ = std::move(grown);
    data_ = storage_.data();
    cap_ = storage_.size();
  }
  char* data_ = nullptr;
  std::size_t cap_ = 0;
  std::size_t len_ = 0;
  std::size_t frame_start_ = no_frame;
  bool hand_over_ = false;
  // Borrowed payloads, in order, each to go at buffer offset `at`.
  struct Borrowed {
    std::size_t at;
    const char* data;
    std::size_t size;
  };
  void write_or_borrow(const char* data, std::size_t n) {
    if (borrowing_ && n >= borrow_min_bytes) {
      borrowed_.push_back({len_, data, n});
      borrowed_bytes_ += n;
    } else {
      write(data, n);
    }
  }
  bool borrowing_ = false;
  std::vector<Borrowed> borrowed_;
  std::size_t borrowed_bytes_ = 0;
  std::string storage_;  // the HandOver buffer (data_ points into it)
};

// ---------------------------------------------------------------------------------------------
// Text helpers (UTF-8 in the surrogatepass form pickle::Value uses).

std::uint32_t decode_utf8(const unsigned char*& p) noexcept;
// The code point of a 1-character str below U+0100, or -1.
int single_latin1_char(std::string_view s) noexcept;
// Protocol 0 str text: raw-unicode-escape, plus the characters that would break the line.
void raw_unicode_escape(std::string_view utf8, std::string& out);
// Python's repr() of a float (the shortest round-tripping digits, repr's fixed/exponent choice).
std::string float_repr(double x);
// Minimal little-endian two's complement of a BigInt node (CPython's encode_long).
std::string encode_long(const BigIntNode& n);
std::string bigint_decimal(const BigIntNode& n);

// ---------------------------------------------------------------------------------------------
// Emitters: the opcodes CPython writes for one value at `protocol` (no memo, no boundary).

// PUT / BINPUT / LONG_BINPUT / MEMOIZE for the next memo index `index`.
inline void emit_memoize(Output& out, int protocol, std::uint64_t index) {
  if (protocol >= 4) {
    out.put(op(Op::MEMOIZE));
  } else if (protocol >= 1) {
    if (index < 256) {
      out.put(op(Op::BINPUT), static_cast<char>(index));
    } else if (index <= 0xFFFFFFFFu) {
      out.op_u32(op(Op::LONG_BINPUT), static_cast<std::uint32_t>(index));
    } else {
      throw PicklingError("memo id too large for LONG_BINPUT");
    }
  } else {
    out.put(op(Op::PUT));
    out.write(std::to_string(index));
    out.put('\n');
  }
}

[[gnu::always_inline]] inline void emit_get(Output& out, int protocol, std::uint64_t index) {
  if (protocol >= 1) {
    if (index < 256) {
      out.put(op(Op::BINGET), static_cast<char>(index));
    } else if (index <= 0xFFFFFFFFu) {
      out.op_u32(op(Op::LONG_BINGET), static_cast<std::uint32_t>(index));
    } else {
      throw PicklingError("memo id too large for LONG_BINGET");
    }
  } else {
    out.put(op(Op::GET));
    out.write(std::to_string(index));
    out.put('\n');
  }
}

inline void emit_bool(Output& out, int protocol, bool b) {
  if (protocol >= 2) {
    out.put(b ? op(Op::NEWTRUE) : op(Op::NEWFALSE));
  } else {
    out.write(b ? "I01\n" : "I00\n");
  }
}

void emit_int_text(Output& out, std::int64_t v);  // protocol 0: INT / LONG text

inline void emit_small_int(Output& out, int protocol, std::int64_t v) {
  if (protocol >= 1) {
    if (v >= 0 && v <= 0xFF) {
      out.put(op(Op::BININT1), static_cast<char>(v));
      return;
    }
    if (v >= 0 && v <= 0xFFFF) {
      char* p = out.reserve(3);
      p[0] = op(Op::BININT2);
      p[1] = static_cast<char>(v);
      p[2] = static_cast<char>(v >> 8);
      return;
    }
    if (v >= INT32_MIN && v <= INT32_MAX) {
      out.op_u32(op(Op::BININT), static_cast<std::uint32_t>(static_cast<std::int32_t>(v)));
      return;
    }
    if (protocol >= 2) {
      std::uint64_t u = static_cast<std::uint64_t>(v);
      char bytes[9];
      int n = 0;
      for (int i = 0; i < 8; ++i) bytes[n++] = static_cast<char>(u >> (8 * i));
      // Minimal two's complement: drop redundant sign bytes.
      while (n > 1) {
        auto last = static_cast<unsigned char>(bytes[n - 1]);
        auto prev = static_cast<unsigned char>(bytes[n - 2]);
        if ((last == 0 && !(prev & 0x80)) || (last == 0xFF && (prev & 0x80))) {
          --n;
        } else {
          break;
        }
      }
      char* p = out.reserve(2 + static_cast<std::size_t>(n));
      p[0] = op(Op::LONG1);
      p[1] = static_cast<char>(n);
      std::memcpy(p + 2, bytes, static_cast<std::size_t>(n));
      return;
    }
    out.put(op(Op::LONG));
    out.write(std::to_string(v));
    out.write("L\n");
    return;
  }
  emit_int_text(out, v);
}

// emit_small_int at protocol ≥ 2 with one capacity check and no per-case reserve: the writers'
// loops over list, tuple and dict items call it for every int.
// The int opcode at p (10 bytes of room); returns the end of what it wrote.
[[gnu::always_inline]] inline char* put_int_protocol2(char* p, std::int64_t v) noexcept {
  const auto u = static_cast<std::uint64_t>(v);
  if (u <= 0xFF) {
    p[0] = op(Op::BININT1);
    p[1] = static_cast<char>(u);
    return p + 2;
  }
  if (u <= 0xFFFF) {
    p[0] = op(Op::BININT2);
    p[1] = static_cast<char>(u);
    p[2] = static_cast<char>(u >> 8);
    return p + 3;
  }
  if (v >= INT32_MIN && v <= INT32_MAX) {
    p[0] = op(Op::BININT);
    for (int i = 0; i < 4; ++i) p[1 + i] = static_cast<char>(u >> (8 * i));
    return p + 5;
  }
  // Minimal two's complement: the magnitude bits (of ~v when negative) plus a sign bit.
  const std::uint64_t magnitude = v < 0 ? ~u : u;
  const auto bits = static_cast<std::size_t>(64 - std::countl_zero(magnitude));
  const std::size_t n = bits / 8 + 1 > 8 ? 8 : bits / 8 + 1;
  p[0] = op(Op::LONG1);
  p[1] = static_cast<char>(n);
  for (int i = 0; i < 8; ++i) p[2 + i] = static_cast<char>(u >> (8 * i));
  return p + 2 + n;
}

[[gnu::always_inline]] inline void emit_int_protocol2(Output& out, std::int64_t v) {
  char* p = out.room(10);
  out.advance(static_cast<std::size_t>(put_int_protocol2(p, v) - p));
}

// An int above INT64_MAX (unsigned 64-bit values); the rest go through emit_small_int.
void emit_uint64(Output& out, int protocol, std::uint64_t v);
void emit_big_int(Output& out, int protocol, const BigIntNode& n);

// BINFLOAT of f at p (9 bytes of room); returns the end of what it wrote.
[[gnu::always_inline]] inline char* put_binfloat(char* p, double f) noexcept {
  std::uint64_t bits;
  std::memcpy(&bits, &f, 8);
  p[0] = op(Op::BINFLOAT);
  if constexpr (std::endian::native == std::endian::little) bits = __builtin_bswap64(bits);
  std::memcpy(p + 1, &bits, 8);
  return p + 9;
}

inline void emit_float(Output& out, int protocol, double f) {
  if (protocol >= 1) {
    put_binfloat(out.reserve(9), f);
    return;
  }
  out.put(op(Op::FLOAT));
  out.write(float_repr(f));
  out.put('\n');
}

void emit_str_text(Output& out, std::string_view utf8);   // protocol 0
void emit_long_str(Output& out, int protocol, std::string_view utf8);  // BINUNICODE(8)

// The opcodes of a str (without memoizing).
inline void emit_str(Output& out, int protocol, std::string_view utf8) {
  std::size_t n = utf8.size();
  if (protocol >= 4 && n <= 0xFF) {
    char* p = out.reserve(2 + n);
    p[0] = op(Op::SHORT_BINUNICODE);
    p[1] = static_cast<char>(n);
    std::memcpy(p + 2, utf8.data(), n);
    return;
  }
  if (protocol == 0) {
    emit_str_text(out, utf8);
    return;
  }
  emit_long_str(out, protocol, utf8);
}

// The opcodes of a bytes, protocol ≥ 3 (without memoizing).
void emit_bytes_opcode(Output& out, int protocol, std::string_view data);
// BYTEARRAY8 (protocol 5).
void emit_bytearray8(Output& out, std::string_view data);

}  // namespace pickle::detail

namespace pickle {
class Value;
struct WriteOptions;
}  // namespace pickle

namespace pickle::detail {

// The protocol a dump writes at: -1 is the target version's default, other negatives the highest;
// above 5 is CPython's ValueError. Shared by the Value writer and the typed writer.
int resolve_protocol(const WriteOptions& options);

// A Value writer (writer.cpp) continuing another writer's stream: the typed writer hands it its
// Output and next memo index for each embedded Value or global, so memo numbering stays dense and
// what the Value writer shares (globals, interned module names, CPython's singletons) stays shared
// across calls.
class ValueEmbedding {
 public:
  virtual ~ValueEmbedding() = default;
  virtual void value(Output& out, std::uint64_t& next_index, const Value& v) = 0;
  // A class or function by reference (GLOBAL / STACK_GLOBAL, memoized; GET when written before).
  virtual void global(Output& out, std::uint64_t& next_index, std::string_view module,
                      std::string_view qualname) = 0;
};
// The memo indices of CPython's shared objects as the typed writer knows them: '' and the
// 1-character latin-1 strs ([c], '' at [256]), b'' and the 1-byte bytes (likewise); ~0 when not
// written yet. The embedding reads them before each call and updates them after, so an 'a' written
// by either writer is fetched with GET by the other, as CPython shares it.
struct SharedSingletons {
  std::array<std::uint64_t, 257> strs;
  std::array<std::uint64_t, 257> bytes;
  // Set by the typed writer since the last call: str slots as 0–256, bytes slots as 257–513.
  std::vector<std::uint16_t> unsent;
};
// `options.protocol` must be resolved (0–5).
std::unique_ptr<ValueEmbedding> make_value_embedding(const WriteOptions& options,
                                                     SharedSingletons& shared);

}  // namespace pickle::detail
