// The unpickler: CPython's C unpickler (3.11) re-expressed over pickle::Value, never executing code.
//
// Structure: `Input` is the byte source (a memory span, or an istream read in bounded chunks) with
// the frame rules of pickle.py; `Machine` is one load(): a value stack with a mark stack (the C
// unpickler's fence model), the memo (dense while indices are reasonable, sparse beyond), the heap
// region every node goes into, and one small function per opcode behind a switch.
#include "pickle/reader.hpp"

#include <algorithm>
#include <bit>
#include <array>
#include <cstring>
#include <limits>
#include <new>
#include <map>

#include "compat.hpp"
#include "pickle/errors.hpp"
#include "pickle/opcodes.hpp"
#include "pickle/policy.hpp"
#include "text_parse.hpp"
#include "unicode.hpp"
#include "value_impl.hpp"

namespace pickle {

using detail::Heap;
using detail::Slot;
using detail::Tag;

namespace {

// --- opcodes handled: checked against the opcode table at compile time ---------------------------

constexpr std::array handled_opcodes = {
    Op::INT, Op::BININT, Op::BININT1, Op::BININT2, Op::LONG, Op::LONG1, Op::LONG4, Op::STRING,
    Op::BINSTRING, Op::SHORT_BINSTRING, Op::BINBYTES, Op::SHORT_BINBYTES, Op::BINBYTES8,
    Op::BYTEARRAY8, Op::NEXT_BUFFER, Op::READONLY_BUFFER, Op::NONE, Op::NEWTRUE, Op::NEWFALSE,
    Op::UNICODE, Op::SHORT_BINUNICODE, Op::BINUNICODE, Op::BINUNICODE8, Op::FLOAT, Op::BINFLOAT,
    Op::EMPTY_LIST, Op::APPEND, Op::APPENDS, Op::LIST, Op::EMPTY_TUPLE, Op::TUPLE, Op::TUPLE1,
    Op::TUPLE2, Op::TUPLE3, Op::EMPTY_DICT, Op::DICT, Op::SETITEM, Op::SETITEMS, Op::EMPTY_SET,
    Op::ADDITEMS, Op::FROZENSET, Op::POP, Op::DUP, Op::MARK, Op::POP_MARK, Op::GET, Op::BINGET,
    Op::LONG_BINGET, Op::PUT, Op::BINPUT, Op::LONG_BINPUT, Op::MEMOIZE, Op::EXT1, Op::EXT2,
    Op::EXT4, Op::GLOBAL, Op::STACK_GLOBAL, Op::REDUCE, Op::BUILD, Op::INST, Op::OBJ, Op::NEWOBJ,
    Op::NEWOBJ_EX, Op::PROTO, Op::STOP, Op::FRAME, Op::PERSID, Op::BINPERSID,
};

constexpr bool handles_exactly_the_table() {
  if (handled_opcodes.size() != opcode_table.size()) return false;
  for (const OpcodeInfo& info : opcode_table) {
    bool found = false;
    for (Op op : handled_opcodes) found = found || op == info.op;
    if (!found) return false;
  }
  return true;
}
static_assert(handles_exactly_the_table(), "the reader must handle every opcode of opcode_table");

constexpr int highest_protocol = 5;
constexpr std::size_t max_ssize = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
constexpr std::size_t stream_chunk = std::size_t{1} << 20;  // largest single read from a stream
// A memo index is stored densely while it is at most this far beyond twice the entries so far.
constexpr std::size_t dense_memo_slack = 1024;
constexpr std::size_t alloc_ratio_allowance = std::size_t{8} << 20;  // bytes, on top of the ratio

using detail::Cell;
// An empty dense memo slot (never escapes).
constexpr Cell absent = Cell::make(static_cast<Tag>(0xFF), 0);

// --- small helpers -----------------------------------------------------------------------------

Slot bool_slot(bool b) noexcept {
  Slot s;
  s.tag = Tag::boolean;
  s.b = b;
  return s;
}

Slot int_slot(std::int64_t v) noexcept {
  Slot s;
  s.tag = Tag::small_int;
  s.i = v;
  return s;
}

Slot float_slot(double f) noexcept {
  Slot s;
  s.tag = Tag::floating;
  s.f = f;
  return s;
}

std::string_view tag_type_name(Tag tag) noexcept {
  switch (tag) {
    case Tag::none: return type_name(Kind::none);
    case Tag::boolean: return type_name(Kind::boolean);
    case Tag::small_int:
    case Tag::big_int: return type_name(Kind::integer);
    case Tag::floating: return type_name(Kind::floating);
    case Tag::str: return type_name(Kind::str);
    case Tag::bytes: return type_name(Kind::bytes);
    case Tag::bytearray: return type_name(Kind::bytearray);
    case Tag::tuple: return type_name(Kind::tuple);
    case Tag::list: return type_name(Kind::list);
    case Tag::dict: return type_name(Kind::dict);
    case Tag::set: return type_name(Kind::set);
    case Tag::frozenset: return type_name(Kind::frozenset);
    case Tag::global: return type_name(Kind::global);
    case Tag::object: return type_name(Kind::object);
    case Tag::buffer: return type_name(Kind::buffer);
  }
  return "object";
}

// Kinds whose Python behaviour is fully known (everything but globals and inert objects, which
// stand for arbitrary Python objects).
bool is_builtin(Tag tag) noexcept { return tag != Tag::global && tag != Tag::object; }

// BINFLOAT's argument: an IEEE 754 double, big-endian.
[[gnu::always_inline]] inline double read_be_double(const char* p) noexcept {
  std::uint64_t bits;
  std::memcpy(&bits, p, sizeof bits);
  if constexpr (std::endian::native == std::endian::little) bits = __builtin_bswap64(bits);
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

std::uint64_t read_le(const char* p, int n) noexcept {
  std::uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string str_of(Slot s) {
  const auto& n = detail::node<detail::StringNode>(s);
  return std::string(n.data, n.size);
}

std::string_view view_of(Slot s) noexcept {
  const auto& n = detail::node<detail::StringNode>(s);
  return {n.data, n.size};
}

// CPython's quoting of an unknown opcode byte in "invalid load key, '…'.".
std::string load_key_text(std::uint8_t byte) {
  if (byte >= 0x20 && byte < 0x7F && byte != '\'' && byte != '\\') return std::string(1, char(byte));
  static constexpr char hex[] = "0123456789abcdef";
  return std::string("\\x") + hex[byte >> 4] + hex[byte & 15];
}

}  // namespace

// ================================================================================================
// Input
// ================================================================================================

namespace {

class Input {
 public:
  Input(std::string_view data, std::size_t max_input) : max_input_(max_input) {
    begin_ = data.data();
    cur_ = begin_;
    std::size_t size = data.size();
    if (size > max_input) {
      size = max_input;
      capped_ = true;
    }
    end_ = begin_ + size;
    lim_ = end_;
  }
  Input(std::istream& in, std::size_t max_input) : max_input_(max_input), stream_(&in) {
    begin_ = cur_ = end_ = lim_ = storage_.data();
  }
  Input(const Input&) = delete;
  Input& operator=(const Input&) = delete;

  std::size_t position() const noexcept { return base_ + static_cast<std::size_t>(cur_ - begin_); }
  // The offset of the latest opcode byte next_opcode() returned (for errors; computed on demand,
  // since every opcode sets it).
  std::size_t op_position() const noexcept {
    return op_ != nullptr ? base_ + static_cast<std::size_t>(op_ - begin_) : op_fixed_;
  }
  bool in_frame() const noexcept { return frame_end_ != nullptr; }
  // True once the input was cut at Limits::max_input_bytes.
  bool capped() const noexcept { return capped_; }

  // The fast path's view (see Machine::run_simple_opcodes): the next byte, and how many bytes the
  // current frame (or the input) still holds without a refill.
  const char* cursor() const noexcept { return cur_; }
  std::size_t contiguous() const noexcept { return static_cast<std::size_t>(lim_ - cur_); }
  // Consumes bytes up to `to`, which a fast path read from cursor() onwards; `last_op` is the
  // latest opcode byte among them (for error offsets).
  void advance_to(const char* to, const char* last_op) noexcept {
    cur_ = to;
    op_ = last_op;
  }

  // One opcode byte; -1 at the end of the input (after leaving an exhausted frame).
  [[gnu::always_inline]] int next_opcode() {
    if (cur_ < lim_) [[likely]] {
      op_ = cur_;
      return static_cast<unsigned char>(*cur_++);
    }
    if (frame_end_ != nullptr) leave_frame();
    if (cur_ == end_ && !fill(1)) {
      op_ = cur_;
      return -1;
    }
    op_ = cur_;
    return static_cast<unsigned char>(*cur_++);
  }

  // n argument bytes. Frame straddles, truncation and the input cap are reported through the
  // status, not thrown here, so the machine can attach the opcode.
  enum class Shortage { none, truncated, frame_exhausted, input_cap };

  [[gnu::always_inline]] const char* read(std::size_t n, Shortage& why) {
    if (static_cast<std::size_t>(lim_ - cur_) >= n) {
      const char* p = cur_;
      cur_ += n;
      return p;
    }
    return read_slow(n, why);
  }

  // A line including its '\n'.
  std::string_view readline(Shortage& why) {
    const char* nl = static_cast<const char*>(std::memchr(cur_, '\n', static_cast<std::size_t>(lim_ - cur_)));
    if (nl != nullptr) {
      std::string_view line(cur_, static_cast<std::size_t>(nl + 1 - cur_));
      cur_ = nl + 1;
      return line;
    }
    return readline_slow(why);
  }

  // FRAME n: the frame must be available in full (C) and start where the previous one ended (Py).
  enum class FrameStatus { ok, nested, truncated, input_cap };
  FrameStatus start_frame(std::size_t n) {
    if (frame_end_ != nullptr) {
      if (cur_ != frame_end_) return FrameStatus::nested;
      leave_frame();
    }
    if (static_cast<std::size_t>(end_ - cur_) < n && !fill(n)) {
      return capped_ ? FrameStatus::input_cap : FrameStatus::truncated;
    }
    frame_end_ = cur_ + n;
    lim_ = frame_end_;
    return FrameStatus::ok;
  }

  void end_pickle() noexcept {
    frame_end_ = nullptr;
    lim_ = end_;
  }

  bool at_end() {
    if (cur_ < end_) return false;
    return !fill(1);
  }

 private:
  void leave_frame() noexcept {
    frame_end_ = nullptr;
    lim_ = end_;
  }

  [[gnu::noinline]] const char* read_slow(std::size_t n, Shortage& why) {
    if (frame_end_ != nullptr) {
      if (cur_ != frame_end_) {
        why = Shortage::frame_exhausted;
        return nullptr;
      }
      leave_frame();
      if (static_cast<std::size_t>(lim_ - cur_) >= n) return read(n, why);
    }
    if (!fill(n)) {
      why = capped_ ? Shortage::input_cap : Shortage::truncated;
      return nullptr;
    }
    const char* p = cur_;
    cur_ += n;
    return p;
  }

  std::string_view readline_slow(Shortage& why) {
    if (frame_end_ != nullptr) {
      if (cur_ != frame_end_) {
        why = Shortage::frame_exhausted;
        return {};
      }
      leave_frame();
    }
    std::size_t scanned = 0;
    while (true) {
      const std::size_t available = static_cast<std::size_t>(end_ - cur_);
      const char* nl = static_cast<const char*>(std::memchr(cur_ + scanned, '\n', available - scanned));
      if (nl != nullptr) {
        std::string_view line(cur_, static_cast<std::size_t>(nl + 1 - cur_));
        cur_ = nl + 1;
        return line;
      }
      scanned = available;
      if (!fill(available + 1)) {
        why = capped_ ? Shortage::input_cap : Shortage::truncated;
        return {};
      }
    }
  }

  // Make at least n bytes available from cur_, reading the stream as data really arrives. Only
  // called outside frames, so no pointer but cur_/end_ needs to survive a move of the storage.
  bool fill(std::size_t n) {
    if (static_cast<std::size_t>(end_ - cur_) >= n) return true;
    if (stream_ == nullptr || stream_done_) return false;
    const std::size_t consumed = static_cast<std::size_t>(cur_ - begin_);
    std::size_t have = static_cast<std::size_t>(end_ - cur_);
    if (op_ != nullptr) {  // the storage moves: keep the opcode's offset as a number
      op_fixed_ = op_position();
      op_ = nullptr;
    }
    // Drop consumed bytes so the storage holds only what is still needed.
    if (consumed > 0) {
      std::memmove(storage_.data(), cur_, have);
      base_ += consumed;
    }
    storage_.resize(have);
    while (have < n) {
      const std::size_t total = base_ + have;
      if (total >= max_input_) {
        capped_ = true;
        break;
      }
      // Take what the stream already holds (without blocking), else block only for what is needed.
      std::size_t want = n - have;
      const std::streamsize ready = stream_->rdbuf() != nullptr ? stream_->rdbuf()->in_avail() : 0;
      if (ready > 0) want = std::max(want, static_cast<std::size_t>(ready));
      want = std::min({want, stream_chunk, max_input_ - total});
      storage_.resize(have + want);
      stream_->read(storage_.data() + have, static_cast<std::streamsize>(want));
      const std::size_t got = static_cast<std::size_t>(stream_->gcount());
      have += got;
      storage_.resize(have);
      if (got < want) {
        stream_done_ = true;
        break;
      }
    }
    begin_ = storage_.data();
    cur_ = begin_;
    end_ = begin_ + have;
    lim_ = end_;
    return have >= n;
  }

  const char* begin_ = nullptr;
  const char* cur_ = nullptr;
  const char* end_ = nullptr;
  const char* lim_ = nullptr;        // end_ or frame_end_
  const char* frame_end_ = nullptr;  // non-null inside a frame
  const char* op_ = nullptr;         // the latest opcode byte, while the storage holds it
  std::size_t op_fixed_ = 0;         // its offset, once the storage moved
  std::size_t base_ = 0;             // input offset of begin_
  std::size_t max_input_;
  bool capped_ = false;
  std::istream* stream_ = nullptr;
  bool stream_done_ = false;
  std::string storage_;
};

// ================================================================================================
// Memo
// ================================================================================================

// Memoized objects as cells, like the stack.
class Memo {
 public:
  const Cell* get(std::uint64_t index) const noexcept {
    if (index < dense_.size()) {
      if (dense_[index] != absent) return &dense_[index];
    }
    if (!sparse_.empty()) {
      auto it = sparse_.find(index);
      if (it != sparse_.end()) return &it->second;
    }
    return nullptr;
  }

  // Returns true when the index was not in use before.
  bool put(std::uint64_t index, Cell value) {
    if (index < dense_.size()) {
      Cell& slot = dense_[index];
      const bool fresh = slot == absent;
      slot = value;
      if (fresh) ++count_;
      return fresh;
    }
    if (index == dense_.size() && sparse_.empty()) {  // MEMOIZE and ordered PUTs
      dense_.push_back(value);
      ++count_;
      return true;
    }
    if (index <= 2 * count_ + dense_memo_slack) {
      grow_dense(index);
      return put(index, value);
    }
    auto [it, inserted] = sparse_.try_emplace(index, value);
    if (!inserted) it->second = value;
    if (inserted) ++count_;
    return inserted;
  }

  std::size_t count() const noexcept { return count_; }
  // The dense memo's cell at index, or absent (an index out of the dense range is absent too).
  Cell dense_at(std::size_t index) const noexcept { return index < dense_.size() ? dense_[index] : absent; }

  // MEMOIZE while the memo is dense and full: the next index, at the end (false otherwise, and
  // nothing changed).
  [[gnu::always_inline]] bool append(Cell value) {
    if (count_ != dense_.size() || !sparse_.empty()) return false;
    dense_.push_back(value);
    ++count_;
    return true;
  }

  void clear() {
    dense_.clear();
    sparse_.clear();
    count_ = 0;
  }

  // Give back what a large load grew, so an idle thread holds little.
  void trim(std::size_t max_slots) {
    if (dense_.capacity() > max_slots) std::vector<Cell>().swap(dense_);
    sparse_.clear();
  }

 private:
  void grow_dense(std::uint64_t index) {
    const std::size_t new_size = index + 1;  // the vector's own growth keeps this amortized
    dense_.resize(new_size, absent);
    // Entries stored sparsely before the dense range reached them move into it (the map is
    // ordered, so only those entries are visited).
    while (!sparse_.empty() && sparse_.begin()->first < new_size) {
      dense_[sparse_.begin()->first] = sparse_.begin()->second;
      sparse_.erase(sparse_.begin());
    }
  }

  std::vector<Cell> dense_;
  std::map<std::uint64_t, Cell> sparse_;
  std::size_t count_ = 0;
};

// ================================================================================================
// Machine: one load()
// ================================================================================================

class Machine {
 public:
  // `shared_heap` (an Unpickler's region) is used instead of a new region, and then the memo is
  // kept too: like CPython's Unpickler, later loads may refer to what earlier ones memoized.
  Machine(Input& input, const ReadOptions& options, Memo& memo, std::vector<Cell>& stack,
          std::vector<std::size_t>& marks, Heap* shared_heap,
          const std::shared_ptr<const void>* input_owner = nullptr)
      : in_(input), options_(options), limits_(options.limits), memo_(memo), stack_(stack),
        marks_(marks), input_owner_(input_owner) {
    if (shared_heap == nullptr) memo_.clear();
    marks_.clear();
    sp_ = 0;
    place_stack();
    marks_changed();
    pickle_start_ = in_.position();
    if (shared_heap != nullptr) {
      detail::retain(shared_heap);
      heap_ = shared_heap;
      root_ = shared_heap->root();
    } else {
      heap_ = Heap::create();
      root_ = heap_;
    }
    // An Unpickler's loads share one region: only what this pickle adds counts against its size.
    alloc_base_ = root_->allocated_bytes;
    alloc_checkpoint_ = alloc_base_ + (std::size_t{1} << 20);
    if (options_.buffers) buffers_ = &*options_.buffers;
    policy_ = options_.policy.get();
    if (limits_.max_alloc_ratio == 0) alloc_checkpoint_ = std::numeric_limits<std::size_t>::max();
  }
  ~Machine() { detail::release(heap_); }
  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;

  Value run();
  void run_simple_opcodes();

 private:
  // --- errors ----------------------------------------------------------------------------------
  [[noreturn]] void fail(PyExc python_class, const std::string& message) const {
    throw UnpicklingError(python_class, message, offset(), op_);
  }
  [[noreturn]] void fail_limit(std::string_view limit, const std::string& message,
                               PyExc python_class = PyExc::UnpicklingError) const {
    throw LimitError(limit, message, offset(), op_, python_class);
  }
  std::size_t offset() const noexcept { return in_.op_position() - pickle_start_; }
  // Asks the policy (if any) about a call; false when the call must stay inert (not folded).
  bool call_allowed(Slot callable, CallKind kind) {
    if (policy_ == nullptr) return true;
    return enforce_call(*policy_, Value(callable, root_), kind, offset(), op_) == PolicyVerdict::allow;
  }
  [[noreturn]] void underflow() const {
    fail(PyExc::UnpicklingError, marks_.empty() ? "unpickling stack underflow" : "unexpected MARK found");
  }
  [[noreturn]] void truncated() const { fail(PyExc::UnpicklingError, "pickle data was truncated"); }
  [[noreturn]] void shortage(Input::Shortage why) const {
    switch (why) {
      case Input::Shortage::frame_exhausted:
        fail(PyExc::UnpicklingError, "pickle exhausted before end of frame");
      case Input::Shortage::input_cap:
        fail_limit("max_input_bytes", "input exceeds Limits::max_input_bytes (" +
                                          std::to_string(limits_.max_input_bytes) + " bytes)");
      default: truncated();
    }
  }

  // --- input -----------------------------------------------------------------------------------
  [[gnu::always_inline]] const char* read(std::size_t n) {
    Input::Shortage why = Input::Shortage::none;
    const char* p = in_.read(n, why);
    if (p == nullptr) shortage(why);
    return p;
  }
  std::string_view readline() {
    Input::Shortage why = Input::Shortage::none;
    std::string_view line = in_.readline(why);
    if (line.empty()) shortage(why);
    return line;
  }
  // A text argument line: at least one character before the '\n' (CPython's bad_readline rule).
  std::string_view readline_min2() {
    std::string_view line = readline();
    if (line.size() < 2) truncated();
    return line;
  }
  // Check a length against what the input can still hold before anything is allocated.
  const char* read_payload(std::uint64_t n, const char* what) {
    if (n > max_ssize) {
      fail(PyExc::OverflowError, std::string(what) + " exceeds system's maximum size of " +
                                     std::to_string(max_ssize) + " bytes");
    }
    return read(static_cast<std::size_t>(n));
  }

  // --- stack -----------------------------------------------------------------------------------
  // The stack position below which the topmost mark fences items off (0 without a mark).
  std::size_t fence() const noexcept { return fence_; }

  // The stack holds cells, as containers do: building a list, tuple or dict from it copies them.
  [[gnu::always_inline]] void push_cell(Cell c) {
    if (sp_ == push_limit_) [[unlikely]] grow_stack();
    stack_base_[sp_++] = c;
  }
  [[gnu::always_inline]] void push(Slot s) { push_cell(detail::pack(heap(), s)); }
  // BININT, BININT1, BININT2: 32 bits fit a cell.
  [[gnu::always_inline]] void push_int32(std::int64_t v) { push_cell(Cell::inline_int(v)); }
  [[gnu::always_inline]] Cell pop_cell() {
    if (sp_ <= fence_) [[unlikely]] underflow();
    return stack_base_[--sp_];
  }
  [[gnu::always_inline]] Slot pop() { return detail::load(pop_cell()); }
  [[gnu::always_inline]] Cell top_cell() {
    if (sp_ <= fence_) [[unlikely]] underflow();
    return stack_base_[sp_ - 1];
  }
  [[gnu::always_inline]] Slot top() { return detail::load(top_cell()); }
  void replace_top(Slot s) { stack_base_[sp_ - 1] = detail::pack(heap(), s); }
  // Pops the topmost mark (CPython's marker()): its position, with the fence moved down.
  std::size_t marker() {
    if (marks_.empty()) [[unlikely]] fail(PyExc::UnpicklingError, "could not find MARK");
    std::size_t mark = marks_.back();
    marks_.pop_back();
    marks_changed();
    return mark;
  }
  // After the marks or the stack's storage changed: the cached fence and push limit.
  void marks_changed() noexcept {
    fence_ = marks_.empty() ? 0 : marks_.back();
    std::size_t limit = std::min(limits_.max_stack, limits_.max_depth);
    limit = limit > marks_.size() ? limit - marks_.size() : 0;
    push_limit_ = std::min(limit, stack_capacity_);
  }
  [[gnu::noinline]] void grow_stack() {
    const std::size_t limit = std::min(limits_.max_stack, limits_.max_depth);
    if (sp_ + marks_.size() >= limit) stack_limit_reached();
    if (sp_ == stack_capacity_) {
      const std::size_t offset = static_cast<std::size_t>(stack_base_ - stack_.data());
      stack_.resize(offset + stack_capacity_ * 2);
      stack_base_ = stack_.data() + offset;
      stack_capacity_ = stack_.size() - offset;
    }
    marks_changed();
  }
  // The stack starts half a page away, modulo 4096, from the input's next byte. Loads whose address
  // shares bits 0-11 with an earlier store in flight wait for it ("4K aliasing"): when the stack
  // cells being pushed and the opcodes being read aliased so (for one input placement in three),
  // small loads took 1.6 times as long. A pickle under 2 KiB with a stack under 2 KiB deep now
  // never aliases; larger ones alias for the part of the input that passes the stack's offsets.
  void place_stack() {
    constexpr std::size_t page = 4096;
    constexpr std::size_t slack = page / sizeof(Cell);
    if (stack_.size() < slack + 64) stack_.resize(slack + 64);
    const auto input = reinterpret_cast<std::uintptr_t>(in_.cursor());
    const auto storage = reinterpret_cast<std::uintptr_t>(stack_.data());
    const std::uintptr_t wanted = (input + page / 2) % page;
    const std::size_t offset = ((wanted - storage % page + page) % page) / sizeof(Cell);
    stack_base_ = stack_.data() + offset;
    stack_capacity_ = stack_.size() - offset;
  }
  [[noreturn]] void stack_limit_reached() const {
    if (limits_.max_depth < limits_.max_stack) {
      fail_limit("max_depth", "nesting under construction exceeds Limits::max_depth (" +
                                  std::to_string(limits_.max_depth) + ")");
    }
    fail_limit("max_stack",
               "stack exceeds Limits::max_stack (" + std::to_string(limits_.max_stack) + ")");
  }

  // --- heap ------------------------------------------------------------------------------------
  Heap& heap() noexcept { return *root_; }
  void count_nodes(std::size_t n = 1) {
    nodes_ += n;
    if (nodes_ > limits_.max_nodes) {
      fail_limit("max_nodes", "more than Limits::max_nodes (" + std::to_string(limits_.max_nodes) +
                                  ") nodes");
    }
  }
  void check_alloc() {
    const std::size_t consumed = in_.position() - pickle_start_ + 1;
    const std::size_t allowed =
        consumed > (std::numeric_limits<std::size_t>::max() - alloc_ratio_allowance) /
                       limits_.max_alloc_ratio
            ? std::numeric_limits<std::size_t>::max()
            : consumed * limits_.max_alloc_ratio + alloc_ratio_allowance;
    if (root_->allocated_bytes - std::min(alloc_base_, root_->allocated_bytes) > allowed) {
      fail_limit("max_alloc_ratio", "heap use exceeds Limits::max_alloc_ratio (" +
                                        std::to_string(limits_.max_alloc_ratio) +
                                        " bytes per input byte)");
    }
    alloc_checkpoint_ = root_->allocated_bytes + (std::size_t{1} << 20);
  }
  // The UTF-8 of a 1-character latin-1 str: its code point; otherwise -1.
  static int single_latin1_char(std::string_view utf8) noexcept {
    if (utf8.size() == 1) return static_cast<unsigned char>(utf8[0]) < 0x80 ? static_cast<unsigned char>(utf8[0]) : -1;
    if (utf8.size() == 2) {
      const auto lead = static_cast<unsigned char>(utf8[0]);
      if (lead == 0xC2 || lead == 0xC3) return ((lead & 0x1F) << 6) | (static_cast<unsigned char>(utf8[1]) & 0x3F);
    }
    return -1;
  }
  void adopt_heap(Heap* other) {
    if (other == nullptr) return;
    root_ = detail::merge(root_, other);
  }

  Slot new_str(std::string_view utf8) {
    count_nodes();
    return detail::make_str(heap(), utf8);
  }
  // A str the pickle holds as data. With reloaded_identities, an empty or 1-character latin-1 str
  // is the one node of its value, as CPython's cache makes it one object whatever opcode made it.
  Slot new_text(std::string_view utf8) {
    if (!options_.reloaded_identities) return new_str(utf8);
    int cached = utf8.empty() ? 256 : single_latin1_char(utf8);
    if (cached < 0) return new_str(utf8);
    Slot& slot = reloaded(reloaded_strs_)[static_cast<std::size_t>(cached)];
    if (!slot.is_node()) slot = new_str(utf8);
    return slot;
  }
  // A bytes made the way CPython makes it from a char buffer (PyBytes_FromStringAndSize with data:
  // Python 2 strings loaded as bytes, _codecs.encode), which returns its cached empty and 1-byte
  // objects. BINBYTES and SHORT_BINBYTES read into a fresh buffer instead: only their empty bytes
  // is cached (see new_binbytes).
  Slot new_cached_bytes(std::string_view data) {
    if (!options_.reloaded_identities || data.size() > 1) return new_bytes(data);
    Slot& slot = reloaded(reloaded_bytes_)[data.empty() ? 256 : static_cast<unsigned char>(data[0])];
    if (!slot.is_node()) slot = new_bytes(data);
    return slot;
  }
  Slot new_bytes(std::string_view data, Tag tag = Tag::bytes) {
    count_nodes();
    return detail::make_bytes(heap(), data, tag);
  }
  // A bytes or str payload read from the input: a view into it when loading zero-copy.
  Slot new_payload(std::string_view data, Tag tag) {
    if (input_owner_ == nullptr || data.size() < options_.zero_copy_min_bytes) {
      return tag == Tag::str ? new_str(data) : new_bytes(data, tag);
    }
    if (!input_owner_kept_) {
      heap().keepalive.push_back(*input_owner_);
      input_owner_kept_ = true;
    }
    count_nodes();
    return detail::make_string_view(heap(), data.data(), data.size(), tag);
  }
  Slot new_int(const BigInt& v) {
    Slot s = detail::make_int(heap(), v);
    if (s.is_node()) count_nodes();
    return s;
  }
  Slot new_seq(Tag tag, const Slot* items, std::size_t n) {
    count_nodes();
    return detail::make_seq(heap(), tag, items, n);
  }
  Slot new_dict(Tag tag, std::size_t capacity = 0) {
    count_nodes();
    return detail::make_dict(heap(), tag, capacity);
  }
  Slot new_global(std::string_view module, std::string_view name) {
    Slot m = new_str(module);
    Slot n = new_str(name);
    count_nodes();
    return detail::make_global(heap(), m, n);
  }
  Slot new_object(ObjectForm form, Slot callable, Slot args, Slot kwargs = Slot()) {
    count_nodes();
    return detail::make_object(heap(), form, callable, args, kwargs);
  }
  // Calls into the value layer that raise pickle::Error (unhashable keys) get the opcode attached.
  template <class F>
  void value_op(F&& f) {
    try {
      f();
    } catch (const UnpicklingError&) {
      throw;
    } catch (const Error& e) {
      fail(e.python_class(), e.what());
    }
  }

  // --- opcode handlers -------------------------------------------------------------------------
  void op_int();
  void op_long_text();
  void op_counted_long(int size_bytes);
  void op_float();
  void op_binfloat();
  void op_string();
  void op_binstring(int size_bytes);
  void op_binbytes(int size_bytes, Tag tag);
  void op_unicode();
  void op_binunicode(int size_bytes);
  void op_next_buffer();
  void op_readonly_buffer();
  void op_tuple_n(std::size_t n);
  void op_tuple();
  void op_list();
  void op_dict();
  void op_frozenset();
  void op_append();
  void op_appends();
  void op_setitem();
  void op_setitems();
  void op_additems();
  void op_pop();
  void record_state_setter(Slot popped);
  void op_dup();
  void op_mark();
  void op_pop_mark();
  void op_get_text();
  void op_get(std::uint64_t index);
  void op_put_text();
  void op_put(std::uint64_t index);
  void op_memoize();
  void op_ext(int size_bytes);
  void op_global();
  void op_stack_global();
  void op_reduce();
  void op_build();
  void op_inst();
  void op_obj();
  void op_newobj(bool with_kwargs);
  void op_proto();
  void op_frame();
  void op_persid();
  bool persistent_hook_allowed(Slot pid);
  void op_binpersid();

  // helpers behind the handlers
  Slot py2_string(std::string_view raw);
  Slot decode_utf8_str(std::string_view data, bool surrogates_ok);
  std::string decode_ascii_line(std::string_view line);
  Slot find_class(std::string_view module, std::string_view name);
  Slot find_class_slots(Slot module, Slot name);
  std::uint64_t text_memo_index(std::string_view line, bool is_put);
  [[noreturn]] void invalid_int_literal(std::string_view text, int base);
  void do_append(std::size_t x);
  void do_setitems(std::size_t x);
  void extend_list(Slot list, const Cell* items, std::size_t n);
  void extend_bytearray(Slot target, const Cell* items, std::size_t n);
  void set_item(Slot target, Slot key, Slot value);
  void build_builtin(Slot inst, Slot state);
  std::optional<Slot> fold_reduction(Slot callable, Slot args);
  // Keeps the arguments a folded call had (Heap::folded_arguments), unless reloaded_identities
  // asks for the identities of a fresh load, where they are garbage.
  Slot remember_arguments(Slot built, Slot args) {
    if (!options_.reloaded_identities) {
      // A writer reproducing the call visits the arguments once more than the graph does.
      detail::note_reference(args);
      heap().folded_arguments.emplace_back(built.p, args);
    }
    return built;
  }
  Slot tuple_from(std::size_t start);
  void check_memo_limits(std::uint64_t index);
  [[noreturn]] void on_global(const char* opname, Slot target);
  std::int64_t byte_value(Slot item);
  std::optional<std::int64_t> index_value(Slot key, const char* overflow_context);

  Input& in_;
  const ReadOptions& options_;
  const Limits& limits_;
  Memo& memo_;
  std::vector<Cell>& stack_;
  std::vector<std::size_t>& marks_;
  std::size_t sp_ = 0;
  std::size_t push_limit_ = 0;
  std::size_t fence_ = 0;
  Cell* stack_base_ = nullptr;
  std::size_t stack_capacity_ = 0;

  Heap* heap_ = nullptr;  // the region created for this load (our reference)
  Heap* root_ = nullptr;  // its union-find root, where allocation happens
  std::size_t nodes_ = 0;
  std::size_t alloc_checkpoint_ = std::size_t{1} << 20;
  std::size_t alloc_base_ = 0;
  // Grants hash-table work in proportion to the input consumed (Limits::hash_work_budget).
  class HashWorkMeter final : public detail::WorkMeter {
   public:
    explicit HashWorkMeter(const Machine& machine) : machine_(machine) {}

   private:
    void replenish() override {
      const Limits& limits = machine_.limits_;
      const std::size_t consumed = machine_.in_.position() - machine_.pickle_start_ + 1;
      const std::size_t max = std::numeric_limits<std::size_t>::max();
      std::size_t allowed = limits.hash_work_per_byte != 0 && consumed > max / limits.hash_work_per_byte
                                ? max
                                : consumed * limits.hash_work_per_byte;
      allowed = allowed > max - limits.hash_work_budget ? max : allowed + limits.hash_work_budget;
      if (used_ >= allowed) {
        machine_.fail_limit("hash_work_budget",
                            "hashing and comparing keys took more than Limits::hash_work_budget + "
                            "Limits::hash_work_per_byte per input byte (" +
                                std::to_string(used_) + " probes)");
      }
      remaining_ = allowed - used_;
    }
    const Machine& machine_;
  };
  HashWorkMeter hash_work_meter_{*this};
  int proto_ = 0;
  std::size_t pickle_start_ = 0;
  std::uint8_t op_ = 0;
  std::uint8_t previous_op_ = 0;
  const std::vector<std::string_view>* buffers_ = nullptr;
  const LoadPolicy* policy_ = nullptr;
  // Zero-copy loads: what keeps the input alive, and whether the heap holds it yet.
  const std::shared_ptr<const void>* input_owner_ = nullptr;
  bool input_owner_kept_ = false;
  std::size_t next_buffer_ = 0;
  std::string scratch_;
  // ReadOptions::reloaded_identities: the node of each cached str and bytes (256: the empty one).
  // Made on first use: clearing them in every Machine was a third of a 120-byte load.
  using CachedNodes = std::array<Slot, 257>;
  static CachedNodes& reloaded(std::unique_ptr<CachedNodes>& nodes) {
    if (!nodes) nodes = std::make_unique<CachedNodes>();
    return *nodes;
  }
  std::unique_ptr<CachedNodes> reloaded_strs_;
  std::unique_ptr<CachedNodes> reloaded_bytes_;
};

// ---- the loop -----------------------------------------------------------------------------------

// Whether the n bytes at p are ASCII, where 8 more bytes after them may be read.
[[gnu::always_inline]] inline bool ascii_with_slack(const char* p, std::size_t n) noexcept {
  constexpr std::uint64_t high_bits = 0x8080808080808080ull;
  std::uint64_t word;
  if (n <= 8) {
    std::memcpy(&word, p, 8);
    const std::uint64_t mask = n == 8 ? ~std::uint64_t{0} : (std::uint64_t{1} << (8 * n)) - 1;
    return (word & mask & high_bits) == 0;
  }
  // Whole words, the last one overlapping the one before.
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i + 8 < n; i += 8) {
    std::memcpy(&word, p + i, 8);
    seen |= word;
  }
  std::memcpy(&word, p + n - 8, 8);
  return ((seen | word) & high_bits) == 0;
}

// The opcodes run_simple_opcodes handles, numbered densely for its switch (0: any other).
enum SimpleOpcode : std::uint8_t {
  not_simple, binint1, binint2, binint, none, newtrue, newfalse, binget, memoize, mark, short_binunicode,
  binfloat,
  empty_list, empty_dict, empty_tuple, empty_set,
  // These call the opcode's own handler, with the loop's state stored first and reloaded after.
  through_handler,
};

constexpr std::array<std::uint8_t, 256> simple_opcodes = [] {
  std::array<std::uint8_t, 256> kinds{};
  kinds[byte(Op::BININT1)] = binint1;
  kinds[byte(Op::BININT2)] = binint2;
  kinds[byte(Op::BININT)] = binint;
  kinds[byte(Op::NONE)] = none;
  kinds[byte(Op::NEWTRUE)] = newtrue;
  kinds[byte(Op::NEWFALSE)] = newfalse;
  kinds[byte(Op::BINGET)] = binget;
  kinds[byte(Op::MEMOIZE)] = memoize;
  kinds[byte(Op::MARK)] = mark;
  kinds[byte(Op::SHORT_BINUNICODE)] = short_binunicode;
  kinds[byte(Op::BINFLOAT)] = binfloat;
  kinds[byte(Op::EMPTY_LIST)] = empty_list;
  kinds[byte(Op::EMPTY_DICT)] = empty_dict;
  kinds[byte(Op::EMPTY_TUPLE)] = empty_tuple;
  kinds[byte(Op::EMPTY_SET)] = empty_set;
  for (Op o : {Op::APPEND, Op::APPENDS, Op::SETITEM, Op::SETITEMS, Op::ADDITEMS, Op::TUPLE1, Op::TUPLE2,
               Op::TUPLE3, Op::TUPLE}) {
    kinds[byte(o)] = through_handler;
  }
  return kinds;
}();

// The opcodes of common pickles run here, in a loop over local copies of the cursor and stack
// pointer, up to the first other opcode, anything unusual (a memo miss, a full stack, the end of the
// frame, a str that is not plain ASCII) or one whose error the general path raises. The ones that
// only push an atom, a short str, an empty container or a memo reference, mark the stack or
// memoize its top are done in place; the container operations (APPENDS, SETITEMS, TUPLE…) call
// their handlers. The general loop's bookkeeping per opcode was most of the cost of the first kind.
[[gnu::always_inline]] inline void Machine::run_simple_opcodes() {
  const char* const start = in_.cursor();
  const char* cur = start;
  // Every opcode here reads at most 9 bytes, so 16 left in the frame need no bounds check.
  const char* const end = cur + (in_.contiguous() >= 16 ? in_.contiguous() - 16 : 0);
  std::size_t sp = sp_;
  Cell* stack = stack_base_;
  std::size_t limit = push_limit_;
  const std::size_t depth_limit = std::min(limits_.max_stack, limits_.max_depth);
  // Strs are ordinary nodes unless the options make some of them views or shared singletons.
  const bool plain_strs = input_owner_ == nullptr && !options_.reloaded_identities;
  // Before a call that may fail at this opcode, or that reads or changes the machine's state.
  auto store_state = [&](const char* next) __attribute__((always_inline)) {
    sp_ = sp;
    in_.advance_to(next, cur);
    op_ = static_cast<std::uint8_t>(*cur);
  };
  auto load_state = [&]() __attribute__((always_inline)) {
    sp = sp_;
    stack = stack_base_;
    limit = push_limit_;
  };
  while (cur < end) {
    switch (simple_opcodes[static_cast<unsigned char>(*cur)]) {
      case binint1:
        if (sp == limit) goto done;
        stack[sp++] = Cell::inline_int(static_cast<unsigned char>(cur[1]));
        cur += 2;
        continue;
      case binint2:
        if (sp == limit) goto done;
        stack[sp++] = Cell::inline_int(static_cast<std::int64_t>(read_le(cur + 1, 2)));
        cur += 3;
        continue;
      case binint:
        if (sp == limit) goto done;
        stack[sp++] = Cell::inline_int(static_cast<std::int32_t>(read_le(cur + 1, 4)));
        cur += 5;
        continue;
      case none:
        if (sp == limit) goto done;
        stack[sp++] = Cell();
        cur += 1;
        continue;
      case newtrue:
        if (sp == limit) goto done;
        stack[sp++] = Cell::boolean(true);
        cur += 1;
        continue;
      case newfalse:
        if (sp == limit) goto done;
        stack[sp++] = Cell::boolean(false);
        cur += 1;
        continue;
      case binfloat: {
        if (sp == limit) goto done;
        Slot f;
        f.tag = Tag::floating;
        f.f = read_be_double(cur + 1);
        stack[sp++] = detail::box(heap(), f);
        cur += 9;
        continue;
      }
      case binget: {
        const Cell value = memo_.dense_at(static_cast<unsigned char>(cur[1]));
        if (value == absent || sp == limit) goto done;  // the general path raises
        stack[sp++] = value;
        cur += 2;
        continue;
      }
      case memoize:  // op_memoize's fast case, written out (a shared helper cost 2-4% here)
        if (sp <= fence_ || memo_.count() >= limits_.max_memo_entries ||
            memo_.count() >= limits_.max_memo_index || !memo_.append(stack[sp - 1])) {
          goto done;
        }
        cur += 1;
        continue;
      case mark:
        if (sp + marks_.size() + 1 > depth_limit) goto done;
        marks_.push_back(sp);
        marks_changed();
        limit = push_limit_;
        cur += 1;
        continue;
      case short_binunicode: {
        const std::size_t n = static_cast<unsigned char>(cur[1]);
        if (n + 2 > static_cast<std::size_t>(end - cur) || !plain_strs || sp == limit) goto done;
        if (!ascii_with_slack(cur + 2, n)) goto done;
        store_state(cur);  // new_str may fail (Limits::max_nodes) at this opcode
        stack[sp++] = detail::pack_unboxed(new_str(std::string_view(cur + 2, n)));
        cur += 2 + n;
        continue;
      }
      case empty_list:
      case empty_dict:
      case empty_tuple:
      case empty_set: {
        if (sp == limit) goto done;
        store_state(cur);  // the node may exceed a limit at this opcode
        if (root_->allocated_bytes > alloc_checkpoint_) check_alloc();
        const auto kind = simple_opcodes[static_cast<unsigned char>(*cur)];
        const Slot node = kind == empty_list    ? new_seq(Tag::list, nullptr, 0)
                          : kind == empty_tuple ? new_seq(Tag::tuple, nullptr, 0)
                          : kind == empty_dict  ? new_dict(Tag::dict)
                                                : new_dict(Tag::set);
        stack[sp++] = detail::pack_unboxed(node);
        cur += 1;
        continue;
      }
      case through_handler:
        store_state(cur + 1);
        if (root_->allocated_bytes > alloc_checkpoint_) check_alloc();
        // The handlers called directly, as run()'s switch calls them: run()'s switch moved into a
        // function called from both loops cost LIST and MICRO_DICT 5-6% more instructions a load.
        switch (static_cast<Op>(*cur)) {
          case Op::APPEND: op_append(); break;
          case Op::APPENDS: op_appends(); break;
          case Op::SETITEM: op_setitem(); break;
          case Op::SETITEMS: op_setitems(); break;
          case Op::ADDITEMS: op_additems(); break;
          case Op::TUPLE1: op_tuple_n(1); break;
          case Op::TUPLE2: op_tuple_n(2); break;
          case Op::TUPLE3: op_tuple_n(3); break;
          default: op_tuple(); break;
        }
        load_state();
        cur += 1;
        continue;
      default: goto done;
    }
  }
done:
  sp_ = sp;
  if (cur != start) {
    // The next opcode's offset is set as it is read; the one before it was none of REDUCE's
    // (see op_pop), which is all the general loop asks of op_.
    in_.advance_to(cur, cur);
    op_ = static_cast<std::uint8_t>(Op::MARK);
  }
}

Value Machine::run() {
  while (true) {
    if (in_.contiguous() >= 16 && simple_opcodes[static_cast<unsigned char>(*in_.cursor())] != not_simple) {
      run_simple_opcodes();
    }
    if (root_->allocated_bytes > alloc_checkpoint_) check_alloc();
    const int next = in_.next_opcode();
    if (next < 0) [[unlikely]] {
      if (in_.capped()) shortage(Input::Shortage::input_cap);
      const std::size_t at = offset();
      in_.end_pickle();
      throw UnpicklingError(PyExc::EOFError, "Ran out of input", at);
    }
    previous_op_ = op_;
    op_ = static_cast<std::uint8_t>(next);
    switch (static_cast<Op>(op_)) {
      case Op::MARK: op_mark(); break;
      case Op::STOP: {
        Slot result = pop();
        in_.end_pickle();
        return Value(result, root_);
      }
      case Op::POP: op_pop(); break;
      case Op::POP_MARK: op_pop_mark(); break;
      case Op::DUP: op_dup(); break;
      case Op::FLOAT: op_float(); break;
      case Op::INT: op_int(); break;
      case Op::BININT: push_int32(static_cast<std::int32_t>(read_le(read(4), 4))); break;
      case Op::BININT1: push_int32(static_cast<unsigned char>(*read(1))); break;
      case Op::LONG: op_long_text(); break;
      case Op::BININT2: push_int32(static_cast<std::int64_t>(read_le(read(2), 2))); break;
      case Op::NONE: push_cell(Cell()); break;
      case Op::PERSID: op_persid(); break;
      case Op::BINPERSID: op_binpersid(); break;
      case Op::REDUCE: op_reduce(); break;
      case Op::STRING: op_string(); break;
      case Op::BINSTRING: op_binstring(4); break;
      case Op::SHORT_BINSTRING: op_binstring(1); break;
      case Op::UNICODE: op_unicode(); break;
      case Op::BINUNICODE: op_binunicode(4); break;
      case Op::EMPTY_LIST: push(new_seq(Tag::list, nullptr, 0)); break;
      case Op::APPEND: op_append(); break;
      case Op::BUILD: op_build(); break;
      case Op::GLOBAL: op_global(); break;
      case Op::DICT: op_dict(); break;
      case Op::EMPTY_DICT: push(new_dict(Tag::dict)); break;
      case Op::APPENDS: op_appends(); break;
      case Op::GET: op_get_text(); break;
      case Op::BINGET: op_get(static_cast<unsigned char>(*read(1))); break;
      case Op::INST: op_inst(); break;
      case Op::LONG_BINGET: op_get(read_le(read(4), 4)); break;
      case Op::LIST: op_list(); break;
      case Op::EMPTY_TUPLE: push(new_seq(Tag::tuple, nullptr, 0)); break;
      case Op::OBJ: op_obj(); break;
      case Op::PUT: op_put_text(); break;
      case Op::BINPUT: op_put(static_cast<unsigned char>(*read(1))); break;
      case Op::LONG_BINPUT: op_put(read_le(read(4), 4)); break;
      case Op::SETITEM: op_setitem(); break;
      case Op::TUPLE: op_tuple(); break;
      case Op::SETITEMS: op_setitems(); break;
      case Op::BINFLOAT: op_binfloat(); break;
      case Op::PROTO: op_proto(); break;
      case Op::NEWOBJ: op_newobj(false); break;
      case Op::EXT1: op_ext(1); break;
      case Op::EXT2: op_ext(2); break;
      case Op::EXT4: op_ext(4); break;
      case Op::TUPLE1: op_tuple_n(1); break;
      case Op::TUPLE2: op_tuple_n(2); break;
      case Op::TUPLE3: op_tuple_n(3); break;
      case Op::NEWTRUE: push_cell(Cell::boolean(true)); break;
      case Op::NEWFALSE: push_cell(Cell::boolean(false)); break;
      case Op::LONG1: op_counted_long(1); break;
      case Op::LONG4: op_counted_long(4); break;
      case Op::BINBYTES: op_binbytes(4, Tag::bytes); break;
      case Op::SHORT_BINBYTES: op_binbytes(1, Tag::bytes); break;
      case Op::SHORT_BINUNICODE: op_binunicode(1); break;
      case Op::BINUNICODE8: op_binunicode(8); break;
      case Op::BINBYTES8: op_binbytes(8, Tag::bytes); break;
      case Op::EMPTY_SET: push(new_dict(Tag::set)); break;
      case Op::ADDITEMS: op_additems(); break;
      case Op::FROZENSET: op_frozenset(); break;
      case Op::NEWOBJ_EX: op_newobj(true); break;
      case Op::STACK_GLOBAL: op_stack_global(); break;
      case Op::MEMOIZE: op_memoize(); break;
      case Op::FRAME: op_frame(); break;
      case Op::BYTEARRAY8: op_binbytes(8, Tag::bytearray); break;
      case Op::NEXT_BUFFER: op_next_buffer(); break;
      case Op::READONLY_BUFFER: op_readonly_buffer(); break;
      default:
        fail(PyExc::UnpicklingError, "invalid load key, '" + load_key_text(op_) + "'.");
    }
  }
}

// ---- numbers ------------------------------------------------------------------------------------

void Machine::op_int() {
  const std::string_view line = readline_min2();
  const std::string_view text = detail::text::c_text(line);
  const auto fast = detail::text::strtol_base0(text);
  if (fast.accepted) {
    if (line.size() == 3 && (fast.value == 0 || fast.value == 1)) {
      push(bool_slot(fast.value == 1));  // I00 / I01: protocol 0's bools
    } else {
      push(int_slot(fast.value));
    }
    return;
  }
  const std::size_t max_digits = limits_.max_text_int_digits == 0
                                     ? std::numeric_limits<std::size_t>::max()
                                     : limits_.max_text_int_digits;
  const auto result = detail::text::python_int(text, 0, max_digits);
  if (auto* value = std::get_if<detail::text::IntValue>(&result)) {
    push(value->small ? int_slot(value->small_value) : new_int(value->big_value));
    return;
  }
  fail(PyExc::ValueError, "could not convert string to int");
}

void Machine::invalid_int_literal(std::string_view text, int base) {
  // CPython formats the first 200 bytes, decoded as UTF-8, with %.200R.
  const std::string_view head = text.substr(0, std::min<std::size_t>(text.size(), 200));
  if (auto error = detail::check_utf8(head)) {
    fail(PyExc::UnicodeDecodeError, detail::utf8_error_message(head, *error));
  }
  std::string shown = repr(Value(head));
  std::size_t pos = 0, chars = 0;
  while (pos < shown.size() && chars < 200) {
    detail::next_code_point(shown, pos);
    ++chars;
  }
  shown.resize(pos);
  fail(PyExc::ValueError, "invalid literal for int() with base " + std::to_string(base) + ": " + shown);
}

namespace {
std::string too_many_digits_message(std::size_t limit, std::size_t digits) {
  return "Exceeds the limit (" + std::to_string(limit) +
         " digits) for integer string conversion: value has " + std::to_string(digits) +
         " digits; use sys.set_int_max_str_digits() to increase the limit";
}
}  // namespace

void Machine::op_long_text() {
  std::string_view line = readline_min2();
  if (line[line.size() - 2] == 'L') line = line.substr(0, line.size() - 2);
  const std::string_view text = detail::text::c_text(line);
  const std::size_t max_digits = limits_.max_text_int_digits == 0
                                     ? std::numeric_limits<std::size_t>::max()
                                     : limits_.max_text_int_digits;
  auto result = detail::text::python_int(text, 0, max_digits);
  if (auto* value = std::get_if<detail::text::IntValue>(&result)) {
    push(value->small ? int_slot(value->small_value) : new_int(value->big_value));
  } else if (auto* invalid = std::get_if<detail::text::IntInvalid>(&result)) {
    invalid_int_literal(text, invalid->base);
  } else {
    fail_limit("max_text_int_digits",
               too_many_digits_message(max_digits, std::get<detail::text::IntTooManyDigits>(result).digits),
               PyExc::ValueError);
  }
}

void Machine::op_counted_long(int size_bytes) {
  const char* p = read(static_cast<std::size_t>(size_bytes));
  std::int64_t n = size_bytes == 1 ? static_cast<unsigned char>(*p)
                                   : static_cast<std::int32_t>(read_le(p, 4));
  if (n < 0) fail(PyExc::UnpicklingError, "LONG pickle has negative byte count");
  if (n == 0) {
    push(int_slot(0));
    return;
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(read(static_cast<std::size_t>(n)));
  const std::size_t count = static_cast<std::size_t>(n);
  if (count <= 8) {
    std::uint64_t u = 0;
    for (std::size_t i = count; i-- > 0;) u = (u << 8) | bytes[i];
    if (count < 8 && (bytes[count - 1] & 0x80)) u |= ~std::uint64_t{0} << (8 * count);  // sign-extend
    push(int_slot(static_cast<std::int64_t>(u)));
    return;
  }
  // Two's complement little-endian: the magnitude of a negative number is ~x + 1.
  const bool negative = (bytes[count - 1] & 0x80) != 0;
  std::vector<unsigned char> magnitude(bytes, bytes + count);
  if (negative) {
    unsigned carry = 1;
    for (auto& b : magnitude) {
      unsigned v = static_cast<unsigned char>(~b) + carry;
      b = static_cast<unsigned char>(v);
      carry = v >> 8;
    }
  }
  BigInt value;
  boost::multiprecision::import_bits(value, magnitude.rbegin(), magnitude.rend(), 8, true);
  if (negative) value = -value;
  push(new_int(value));
}

void Machine::op_float() {
  const std::string_view line = readline_min2();
  const std::string_view text = detail::text::c_text(line);
  const auto result = detail::text::c_string_to_double(text);
  switch (result.status) {
    case detail::text::FloatStatus::ok: push(float_slot(result.value)); return;
    case detail::text::FloatStatus::no_conversion:
      fail(PyExc::ValueError, "could not convert string to float: '" + detail::text::c_format_200(text) + "'");
    case detail::text::FloatStatus::overflow:
      fail(PyExc::OverflowError, "value too large to convert to float: '" + detail::text::c_format_200(text) + "'");
    case detail::text::FloatStatus::trailing:
      fail(PyExc::ValueError, "could not convert string to float");
  }
}

void Machine::op_binfloat() { push(float_slot(read_be_double(read(8)))); }

// ---- strings ------------------------------------------------------------------------------------

Slot Machine::py2_string(std::string_view raw) {
  switch (options_.py2_strings) {
    case Py2Strings::bytes: return new_cached_bytes(raw);
    case Py2Strings::latin1: {
      if (detail::is_ascii(raw)) return new_text(raw);
      scratch_.clear();
      for (char c : raw) detail::append_utf8(scratch_, static_cast<unsigned char>(c));
      return new_text(scratch_);
    }
    case Py2Strings::ascii: break;
  }
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const auto byte = static_cast<unsigned char>(raw[i]);
    if (byte >= 0x80) {
      static constexpr char hex[] = "0123456789abcdef";
      std::string message = "'ascii' codec can't decode byte 0x";
      message += hex[byte >> 4];
      message += hex[byte & 15];
      message += " in position " + std::to_string(i) + ": ordinal not in range(128)";
      fail(PyExc::UnicodeDecodeError, message);
    }
  }
  return new_text(raw);
}

Slot Machine::decode_utf8_str(std::string_view data, bool) {
  if (auto error = detail::check_utf8(data)) {
    fail(PyExc::UnicodeDecodeError, detail::utf8_error_message(data, *error));
  }
  if (options_.reloaded_identities && data.size() <= 2) return new_text(data);
  return new_payload(data, Tag::str);
}

void Machine::op_string() {
  std::string_view line = readline();
  line.remove_suffix(1);  // the '\n'
  if (line.size() < 2 || line.front() != line.back() || (line.front() != '\'' && line.front() != '"')) {
    fail(PyExc::UnpicklingError, "the STRING opcode argument must be quoted");
  }
  auto decoded = detail::text::decode_bytes_escape(line.substr(1, line.size() - 2));
  if (auto* error = std::get_if<detail::text::EscapeError>(&decoded)) {
    fail(PyExc::ValueError, error->message);
  }
  push(py2_string(std::get<std::string>(decoded)));
}

void Machine::op_binstring(int size_bytes) {
  const std::uint64_t n = read_le(read(static_cast<std::size_t>(size_bytes)), size_bytes);
  push(py2_string(std::string_view(read_payload(n, "BINSTRING"), static_cast<std::size_t>(n))));
}

void Machine::op_binbytes(int size_bytes, Tag tag) {
  const std::uint64_t n = read_le(read(static_cast<std::size_t>(size_bytes)), size_bytes);
  const char* what = tag == Tag::bytearray ? "BYTEARRAY8" : "BINBYTES";
  const std::string_view data(read_payload(n, what), static_cast<std::size_t>(n));
  if (tag == Tag::bytes && data.empty()) {
    push(new_cached_bytes(data));
  } else {
    push(tag == Tag::bytes ? new_payload(data, tag) : new_bytes(data, tag));
  }
}

void Machine::op_unicode() {
  std::string_view line = readline();
  line.remove_suffix(1);
  auto decoded = detail::text::decode_raw_unicode_escape(line);
  if (auto* error = std::get_if<detail::text::RawUnicodeError>(&decoded)) {
    detail::Utf8Error as_error{error->start, error->end, error->reason};
    fail(PyExc::UnicodeDecodeError, detail::utf8_error_message(line, as_error, "rawunicodeescape"));
  }
  push(new_text(std::get<std::string>(decoded)));
}

void Machine::op_binunicode(int size_bytes) {
  const std::uint64_t n = read_le(read(static_cast<std::size_t>(size_bytes)), size_bytes);
  const char* p = read_payload(n, "BINUNICODE");
  push(decode_utf8_str(std::string_view(p, static_cast<std::size_t>(n)), true));
}

// ---- buffers ------------------------------------------------------------------------------------

void Machine::op_next_buffer() {
  if (buffers_ == nullptr) {
    fail(PyExc::UnpicklingError,
         "pickle stream refers to out-of-band data but no *buffers* argument was given");
  }
  if (next_buffer_ >= buffers_->size()) fail(PyExc::UnpicklingError, "not enough out-of-band buffers");
  const std::size_t index = next_buffer_++;
  const std::string_view data = (*buffers_)[index];
  count_nodes();
  push(detail::make_buffer(heap(), data.data(), data.size(), index, false));
}

void Machine::op_readonly_buffer() {
  const Slot target = top();
  switch (target.tag) {
    case Tag::buffer: {
      const auto& buffer = detail::node<detail::BufferNode>(target);
      if (!buffer.readonly) {
        // CPython replaces a writable buffer with a read-only view: a new object.
        count_nodes();
        replace_top(detail::make_buffer(heap(), buffer.data, buffer.size, buffer.index, true));
      }
      return;
    }
    case Tag::bytes:
    case Tag::bytearray:  // Python: a read-only memoryview of it; kept as the bytearray here
    case Tag::global:
    case Tag::object: return;
    default:
      fail(PyExc::TypeError, "memoryview: a bytes-like object is required, not '" +
                                 std::string(tag_type_name(target.tag)) + "'");
  }
}

// ---- stack and containers -----------------------------------------------------------------------

void Machine::op_mark() {
  const std::size_t limit = std::min(limits_.max_stack, limits_.max_depth);
  if (sp_ + marks_.size() + 1 > limit) stack_limit_reached();
  marks_.push_back(sp_);
  marks_changed();
}

void Machine::op_pop() {
  if (!marks_.empty() && marks_.back() == sp_) {
    marks_.pop_back();  // a mark on top is what POP removes
    marks_changed();
  } else if (previous_op_ == static_cast<std::uint8_t>(Op::REDUCE)) {
    record_state_setter(pop());
  } else {
    pop();
  }
}

// CPython writes a state setter as `setter obj state TUPLE2 REDUCE POP` with obj already memoized,
// and nothing else pops the unmemoized result of a REDUCE: the call is kept on obj as the op that
// replaces BUILD, so that writing obj again reproduces it.
void Machine::record_state_setter(Slot popped) {
  if (popped.tag != Tag::object) return;
  const auto& call = detail::node<detail::ObjectNode>(popped);
  if (call.form != ObjectForm::reduce || call.args.tag != Tag::tuple) return;
  const auto& args = detail::node<detail::SeqNode>(call.args);
  if (args.size != 2 || args.items[0].tag() != Tag::object) return;
  detail::object_add_op(heap(), detail::node<detail::ObjectNode>(detail::load(args.items[0])),
                        ObjectOp::state_setter, call.callable, detail::load(args.items[1]));
}

void Machine::op_pop_mark() { sp_ = marker(); }

void Machine::op_dup() { push_cell(top_cell()); }

Slot Machine::tuple_from(std::size_t start) {
  if (start < fence()) underflow();
  count_nodes();
  Slot tuple = detail::make_seq_cells(heap(), Tag::tuple, stack_base_ + start, sp_ - start);
  sp_ = start;
  return tuple;
}

void Machine::op_tuple_n(std::size_t n) {
  if (sp_ < n) underflow();
  push(tuple_from(sp_ - n));
}

void Machine::op_tuple() { push(tuple_from(marker())); }

void Machine::op_list() {
  const std::size_t start = marker();
  count_nodes();
  Slot list = detail::make_seq_cells(heap(), Tag::list, stack_base_ + start, sp_ - start);
  sp_ = start;
  push(list);
}

void Machine::op_dict() {
  const std::size_t start = marker();
  const std::size_t n = sp_ - start;
  if (n % 2 != 0) fail(PyExc::UnpicklingError, "odd number of items for DICT");
  Slot dict = new_dict(Tag::dict, n / 2);
  auto& node = detail::node<detail::DictNode>(dict);
  value_op([&] { detail::dict_update_cells(heap(), node, stack_base_ + start, n / 2); });
  sp_ = start;
  push(dict);
}

void Machine::op_frozenset() {
  const std::size_t start = marker();
  Slot set = new_dict(Tag::frozenset, sp_ - start);
  auto& node = detail::node<detail::DictNode>(set);
  value_op([&] { detail::set_update_cells(heap(), node, stack_base_ + start, sp_ - start); });
  sp_ = start;
  push(set);
}

void Machine::on_global(const char* opname, Slot target) {
  const auto& global = detail::node<detail::GlobalNode>(target);
  fail(PyExc::UnpicklingError, std::string("cannot apply ") + opname + " to the global " +
                                   str_of(global.module) + "." + str_of(global.name) +
                                   ": the reader never executes code");
}

std::int64_t Machine::byte_value(Slot item) {
  std::int64_t v;
  switch (item.tag) {
    case Tag::small_int: v = item.i; break;
    case Tag::boolean: v = item.b ? 1 : 0; break;
    case Tag::big_int: v = -1; break;
    default:
      fail(PyExc::TypeError, "'" + std::string(tag_type_name(item.tag)) +
                                 "' object cannot be interpreted as an integer");
  }
  if (v < 0 || v > 255) fail(PyExc::ValueError, "byte must be in range(0, 256)");
  return v;
}

void Machine::extend_list(Slot list, const Cell* items, std::size_t n) {
  auto& seq = detail::node<detail::SeqNode>(list);
  Heap& region = heap();
  // Items that end at the arena top (an empty list's inline items right after its node, or a list
  // of atoms being loaded) grow in place, exactly.
  if (seq.items + seq.capacity == static_cast<const void*>(region.cursor) &&
      static_cast<std::size_t>(region.limit - region.cursor) / sizeof(Cell) >= seq.size + n - seq.capacity &&
      seq.size + n > seq.capacity) {
    const std::size_t extra = (seq.size + n - seq.capacity) * sizeof(Cell);
    region.cursor += extra;
    region.used_bytes += extra;
    seq.capacity = seq.size + n;
    for (std::size_t i = 0; i < n; ++i) {
      seq.items[seq.size + i] = items[i];
      detail::note_reference(items[i]);
    }
    seq.size += n;
    return;
  }
  if (seq.size == 0 && seq.capacity < n &&
      seq.items + seq.capacity != static_cast<const void*>(heap().cursor)) {
    // The first batch of a list is usually all of it (APPENDS of a whole list, or the single
    // APPEND of a one-item list): allocate exactly, where growth would round up to 8 slots. (A list
    // whose inline items end at the arena top is extended in place by seq_extend instead.)
    auto* array = static_cast<Cell*>(heap().allocate(n * sizeof(Cell), alignof(Cell)));
    std::memcpy(static_cast<void*>(array), items, n * sizeof(Cell));
    detail::note_references(items, n);
    seq.items = array;
    seq.capacity = n;
    seq.size = n;
    return;
  }
  detail::seq_extend_cells(heap(), seq, items, n);
}

void Machine::extend_bytearray(Slot target, const Cell* items, std::size_t n) {
  // bytearray.extend(list): every item must be an int in range(256). The bytes grow in place,
  // geometrically, so a run of single APPENDs stays linear.
  auto& node = detail::node<detail::BytearrayNode>(target);
  const std::size_t needed = node.size + n;
  if (needed > node.capacity) {
    const std::size_t capacity = std::max(needed, node.capacity * 2);
    char* grown = static_cast<char*>(heap().allocate(capacity, 1));
    if (node.size != 0) std::memcpy(grown, node.data, node.size);
    node.data = grown;
    node.capacity = capacity;
  }
  char* data = const_cast<char*>(node.data);
  for (std::size_t i = 0; i < n; ++i) {
    data[node.size + i] = static_cast<char>(byte_value(detail::load(items[i])));
  }
  node.size = needed;
}

// CPython's do_append: x is the position of the first item; the target sits just below it.
void Machine::do_append(std::size_t x) {
  if (x > sp_ || x <= fence()) underflow();
  if (x == sp_) return;
  const Cell* items = stack_base_ + x;
  const std::size_t n = sp_ - x;
  if (stack_base_[x - 1].tag() == Tag::list) {
    extend_list(detail::load(stack_base_[x - 1]), items, n);
    sp_ = x;
    return;
  }
  const Slot target = detail::load(stack_base_[x - 1]);
  switch (target.tag) {
    case Tag::list: extend_list(target, items, n); break;
    case Tag::bytearray: extend_bytearray(target, items, n); break;
    case Tag::object: {
      auto& object = detail::node<detail::ObjectNode>(target);
      for (std::size_t i = 0; i < n; ++i) {
        detail::object_add_op(heap(), object, ObjectOp::append, detail::load(items[i]), Slot());
      }
      break;
    }
    case Tag::global: on_global(op_ == byte(Op::APPEND) ? "APPEND" : "APPENDS", target);
    default:
      fail(PyExc::AttributeError,
           "'" + std::string(tag_type_name(target.tag)) + "' object has no attribute 'append'");
  }
  sp_ = x;
}

void Machine::op_append() {
  if (sp_ == 0) underflow();
  do_append(sp_ - 1);
}

void Machine::op_appends() { do_append(marker()); }

std::optional<std::int64_t> Machine::index_value(Slot key, const char* container) {
  switch (key.tag) {
    case Tag::small_int: return key.i;
    case Tag::boolean: return key.b ? 1 : 0;
    case Tag::big_int: fail(PyExc::IndexError, "cannot fit 'int' into an index-sized integer");
    default:
      fail(PyExc::TypeError, std::string(container) + " indices must be integers or slices, not " +
                                 std::string(tag_type_name(key.tag)));
  }
}

void Machine::set_item(Slot target, Slot key, Slot value) {
  switch (target.tag) {
    case Tag::dict:
      value_op([&] { detail::dict_set(heap(), detail::node<detail::DictNode>(target), key, value); });
      return;
    case Tag::object:
      detail::object_add_op(heap(), detail::node<detail::ObjectNode>(target), ObjectOp::setitem, key, value);
      return;
    case Tag::list: {
      auto& list = detail::node<detail::SeqNode>(target);
      std::int64_t i = *index_value(key, "list");
      if (i < 0) i += static_cast<std::int64_t>(list.size);
      if (i < 0 || static_cast<std::size_t>(i) >= list.size) {
        fail(PyExc::IndexError, "list assignment index out of range");
      }
      list.items[i] = detail::pack(heap(), value);
      detail::note_reference(value);
      return;
    }
    case Tag::bytearray: {
      auto& bytes = detail::node<detail::BytearrayNode>(target);
      std::int64_t i = *index_value(key, "bytearray");
      if (i < 0) i += static_cast<std::int64_t>(bytes.size);
      if (i < 0 || static_cast<std::size_t>(i) >= bytes.size) {
        fail(PyExc::IndexError, "bytearray index out of range");
      }
      const char v = static_cast<char>(byte_value(value));
      if (bytes.capacity == 0) {  // not arena-owned: copy before writing
        Slot copy = new_bytes(std::string_view(bytes.data, bytes.size), Tag::bytearray);
        bytes.data = detail::node<detail::StringNode>(copy).data;
        bytes.capacity = bytes.size;
      }
      const_cast<char*>(bytes.data)[i] = v;
      return;
    }
    case Tag::global: on_global(op_ == byte(Op::SETITEM) ? "SETITEM" : "SETITEMS", target);
    case Tag::str:
    case Tag::bytes:
    case Tag::tuple:
    case Tag::set:
    case Tag::frozenset:
      // Sequence-protocol types convert an int key to an index before refusing the assignment.
      if (key.tag == Tag::big_int) fail(PyExc::IndexError, "cannot fit 'int' into an index-sized integer");
      [[fallthrough]];
    default:
      fail(PyExc::TypeError,
           "'" + std::string(tag_type_name(target.tag)) + "' object does not support item assignment");
  }
}

void Machine::do_setitems(std::size_t x) {
  if (x > sp_ || x <= fence()) underflow();
  if (x == sp_) return;
  if ((sp_ - x) % 2 != 0) fail(PyExc::UnpicklingError, "odd number of items for SETITEMS");
  const Slot target = detail::load(stack_base_[x - 1]);
  if (target.tag == Tag::dict) {
    // One table resize for the batch instead of one per doubling (each leaves its old table in the
    // arena). Keys repeated in the batch may leave some room unused.
    value_op([&] {
      detail::dict_update_cells(heap(), detail::node<detail::DictNode>(target), stack_base_ + x, (sp_ - x) / 2);
    });
    sp_ = x;
    return;
  }
  for (std::size_t i = x; i + 1 < sp_; i += 2) {
    set_item(target, detail::load(stack_base_[i]), detail::load(stack_base_[i + 1]));
  }
  sp_ = x;
}

void Machine::op_setitem() {
  if (sp_ < 2) underflow();
  do_setitems(sp_ - 2);
}

void Machine::op_setitems() { do_setitems(marker()); }

void Machine::op_additems() {
  const std::size_t mark = marker();
  if (mark > sp_ || mark <= fence()) underflow();
  if (mark == sp_) return;
  const Slot target = detail::load(stack_base_[mark - 1]);
  switch (target.tag) {
    case Tag::set: {
      auto& set = detail::node<detail::DictNode>(target);
      value_op([&] { detail::set_update_cells(heap(), set, stack_base_ + mark, sp_ - mark); });
      break;
    }
    case Tag::object: {
      auto& object = detail::node<detail::ObjectNode>(target);
      for (std::size_t i = mark; i < sp_; ++i) {
        detail::object_add_op(heap(), object, ObjectOp::additem, detail::load(stack_base_[i]), Slot());
      }
      break;
    }
    case Tag::global: on_global("ADDITEMS", target);
    default:
      fail(PyExc::AttributeError,
           "'" + std::string(tag_type_name(target.tag)) + "' object has no attribute 'add'");
  }
  sp_ = mark;
}

// ---- memo ---------------------------------------------------------------------------------------

void Machine::check_memo_limits(std::uint64_t index) {
  if (index > limits_.max_memo_index) {
    fail_limit("max_memo_index", "memo index " + std::to_string(index) +
                                     " exceeds Limits::max_memo_index (" +
                                     std::to_string(limits_.max_memo_index) + ")");
  }
}

void Machine::op_put(std::uint64_t index) {
  const Cell value = top_cell();
  check_memo_limits(index);
  if (memo_.put(index, value) && memo_.count() > limits_.max_memo_entries) {
    fail_limit("max_memo_entries", "more than Limits::max_memo_entries (" +
                                       std::to_string(limits_.max_memo_entries) + ") memo entries");
  }
}

void Machine::op_memoize() {
  const Cell value = top_cell();
  if (memo_.count() < limits_.max_memo_entries && memo_.count() < limits_.max_memo_index &&
      memo_.append(value)) [[likely]] {
    return;
  }
  op_put(memo_.count());
}

void Machine::op_get(std::uint64_t index) {
  const Cell* value = memo_.get(index);
  if (value == nullptr) {
    fail(PyExc::UnpicklingError, "Memo value not found at index " + std::to_string(index));
  }
  push_cell(*value);
}

// GET/PUT's decimal argument: PyLong_FromString(base 10) then PyLong_AsSsize_t.
std::uint64_t Machine::text_memo_index(std::string_view line, bool is_put) {
  const std::string_view text = detail::text::c_text(line);
  const std::size_t max_digits = limits_.max_text_int_digits == 0
                                     ? std::numeric_limits<std::size_t>::max()
                                     : limits_.max_text_int_digits;
  auto result = detail::text::python_int(text, 10, max_digits);
  if (auto* invalid = std::get_if<detail::text::IntInvalid>(&result)) {
    invalid_int_literal(text, invalid->base);
  }
  if (auto* many = std::get_if<detail::text::IntTooManyDigits>(&result)) {
    fail_limit("max_text_int_digits", too_many_digits_message(max_digits, many->digits), PyExc::ValueError);
  }
  const auto& value = std::get<detail::text::IntValue>(result);
  if (!value.small) fail(PyExc::OverflowError, "Python int too large to convert to C ssize_t");
  if (value.small_value < 0) {
    if (is_put) fail(PyExc::ValueError, "negative PUT argument");
    fail(PyExc::UnpicklingError, "Memo value not found at index " + std::to_string(value.small_value));
  }
  return static_cast<std::uint64_t>(value.small_value);
}

void Machine::op_get_text() { op_get(text_memo_index(readline_min2(), false)); }

void Machine::op_put_text() {
  const std::string_view line = readline_min2();
  top();  // CPython checks the stack before parsing the index
  op_put(text_memo_index(line, true));
}

// ---- globals ------------------------------------------------------------------------------------

// find_class without importing: the Python 2 name mapping when the protocol is below 3.
Slot Machine::find_class(std::string_view module, std::string_view name) {
  if (proto_ < 3 && options_.fix_imports) {
    const auto mapped = detail::py2_to_py3({module, name});
    module = mapped.module;
    name = mapped.name;
  }
  if (policy_ != nullptr) enforce_global(*policy_, module, name, offset(), op_);
  return new_global(module, name);
}

Slot Machine::find_class_slots(Slot module, Slot name) {
  const std::string_view m = view_of(module);
  const std::string_view n = view_of(name);
  if (m.empty()) fail(PyExc::ValueError, "Empty module name");
  if (proto_ < 3 && options_.fix_imports) {
    const auto mapped = detail::py2_to_py3({m, n});
    if (mapped.module.data() != m.data() || mapped.name.data() != n.data()) {
      return find_class(m, n);
    }
  }
  if (policy_ != nullptr) enforce_global(*policy_, m, n, offset(), op_);
  count_nodes();
  return detail::make_global(heap(), module, name);  // the very str objects of the pickle
}

std::string Machine::decode_ascii_line(std::string_view line) {
  const std::string_view text = line.substr(0, line.size() - 1);
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte >= 0x80) {
      static constexpr char hex[] = "0123456789abcdef";
      std::string message = "'ascii' codec can't decode byte 0x";
      message += hex[byte >> 4];
      message += hex[byte & 15];
      message += " in position " + std::to_string(i) + ": ordinal not in range(128)";
      fail(PyExc::UnicodeDecodeError, message);
    }
  }
  return std::string(text);
}

void Machine::op_global() {
  const std::string_view module_line = readline_min2();
  std::string module(module_line.substr(0, module_line.size() - 1));
  if (auto error = detail::check_utf8(module)) {
    fail(PyExc::UnicodeDecodeError, detail::utf8_error_message(module, *error));
  }
  const std::string_view name_line = readline_min2();
  const std::string_view name = name_line.substr(0, name_line.size() - 1);
  if (auto error = detail::check_utf8(name)) {
    fail(PyExc::UnicodeDecodeError, detail::utf8_error_message(name, *error));
  }
  push(find_class(module, name));
}

void Machine::op_stack_global() {
  const Slot name = pop();
  const Slot module = pop();
  if (module.tag != Tag::str || name.tag != Tag::str) {
    fail(PyExc::UnpicklingError, "STACK_GLOBAL requires str");
  }
  push(find_class_slots(module, name));
}

void Machine::op_ext(int size_bytes) {
  const char* p = read(static_cast<std::size_t>(size_bytes));
  std::int64_t code = static_cast<std::int64_t>(read_le(p, size_bytes));
  if (size_bytes == 4) code = static_cast<std::int32_t>(code);
  if (code <= 0) fail(PyExc::UnpicklingError, "EXT specifies code <= 0");
  if (policy_ != nullptr &&
      enforce_extension(*policy_, static_cast<std::int32_t>(code), offset(), op_) != PolicyVerdict::allow) {
    // Kept unresolved: an extension object without a global.
    const Slot object = new_object(ObjectForm::ext, Slot(), Slot());
    detail::node<detail::ObjectNode>(object).ext_code = static_cast<std::int32_t>(code);
    push(object);
    return;
  }
  const auto it = options_.extensions.find(static_cast<std::int32_t>(code));
  if (it == options_.extensions.end()) {
    fail(PyExc::ValueError, "unregistered extension code " + std::to_string(code));
  }
  const Slot global = find_class(it->second.first, it->second.second);
  const Slot object = new_object(ObjectForm::ext, global, Slot());
  detail::node<detail::ObjectNode>(object).ext_code = static_cast<std::int32_t>(code);
  push(object);
}

// ---- calls (kept inert) -------------------------------------------------------------------------

namespace {

// Python 2's __builtin__ arrives here as builtins when fix_imports mapped it; unmapped, CPython
// could not import it, so it is not folded.
bool is_builtins_module(std::string_view module) noexcept { return module == "builtins"; }

// The UTF-8 text as Latin-1 bytes when every code point is below 256.
std::optional<std::string> latin1_bytes(std::string_view utf8) {
  std::string out;
  out.reserve(utf8.size());
  std::size_t pos = 0;
  while (pos < utf8.size()) {
    const char32_t cp = detail::next_code_point(utf8, pos);
    if (cp > 0xFF) return std::nullopt;
    out.push_back(static_cast<char>(cp));
  }
  return out;
}

}  // namespace

// The reductions CPython's pickler writes for builtin values, evaluated as Python would.
std::optional<Slot> Machine::fold_reduction(Slot callable, Slot args) {
  if (callable.tag != Tag::global || args.tag != Tag::tuple) return std::nullopt;
  const auto& global = detail::node<detail::GlobalNode>(callable);
  const std::string_view module = view_of(global.module);
  const std::string_view name = view_of(global.name);
  const auto& tuple = detail::node<detail::SeqNode>(args);
  const std::size_t argc = tuple.size;
  // Only calls of up to two arguments fold.
  const Slot argv[2] = {argc > 0 ? detail::load(tuple.items[0]) : Slot(),
                        argc > 1 ? detail::load(tuple.items[1]) : Slot()};

  if (is_builtins_module(module)) {
    if (name == "set" || name == "frozenset") {
      const Tag tag = name == "set" ? Tag::set : Tag::frozenset;
      if (argc == 0) return new_dict(tag);
      if (argc != 1 || (argv[0].tag != Tag::list && argv[0].tag != Tag::tuple)) return std::nullopt;
      const auto& items = detail::node<detail::SeqNode>(argv[0]);
      Slot set = new_dict(tag, items.size);
      auto& node = detail::node<detail::DictNode>(set);
      value_op([&] { detail::set_update_cells(heap(), node, items.items, items.size); });
      return set;
    }
    if (name == "bytearray") {
      if (argc == 0) return new_bytes({}, Tag::bytearray);
      if (argc == 1 && argv[0].tag == Tag::bytes) {
        return remember_arguments(new_bytes(view_of(argv[0]), Tag::bytearray), args);
      }
      if (argc == 2 && argv[0].tag == Tag::str && argv[1].tag == Tag::str &&
          (view_of(argv[1]) == "latin-1" || view_of(argv[1]) == "latin1")) {
        if (auto data = latin1_bytes(view_of(argv[0]))) return new_bytes(*data, Tag::bytearray);
      }
      return std::nullopt;
    }
    if (name == "bytes" && argc == 0) return new_cached_bytes({});
    return std::nullopt;
  }
  if (module == "_codecs" && name == "encode" && argc == 2 && argv[0].tag == Tag::str &&
      argv[1].tag == Tag::str && view_of(argv[1]) == "latin1") {
    if (auto data = latin1_bytes(view_of(argv[0]))) return remember_arguments(new_cached_bytes(*data), args);
  }
  return std::nullopt;
}

void Machine::op_reduce() {
  const Slot args = pop();
  const Slot callable = pop();
  if (is_builtin(args.tag) && args.tag != Tag::tuple) {
    fail(PyExc::TypeError, "argument list must be a tuple");
  }
  if (is_builtin(callable.tag)) {
    fail(PyExc::TypeError, "'" + std::string(tag_type_name(callable.tag)) + "' object is not callable");
  }
  const bool allowed = call_allowed(callable, CallKind::reduce);
  if (options_.fold_builtin_reductions && allowed) {
    if (auto folded = fold_reduction(callable, args)) {
      push(*folded);
      return;
    }
  }
  push(new_object(ObjectForm::reduce, callable, args));
}

void Machine::op_newobj(bool with_kwargs) {
  const char* opname = with_kwargs ? "NEWOBJ_EX" : "NEWOBJ";
  const Slot kwargs = with_kwargs ? pop() : Slot();
  const Slot args = pop();
  const Slot cls = pop();
  auto check = [&](Slot s, Tag wanted, const char* what, const char* expected) {
    if (is_builtin(s.tag) && s.tag != wanted) {
      fail(PyExc::UnpicklingError, std::string(opname) + " " + what + " argument must be " + expected +
                                       ", not " + std::string(tag_type_name(s.tag)));
    }
  };
  if (is_builtin(cls.tag)) {
    fail(PyExc::UnpicklingError, std::string(opname) + " class argument must be a type, not " +
                                     std::string(tag_type_name(cls.tag)));
  }
  check(args, Tag::tuple, "args", "a tuple");
  if (with_kwargs) check(kwargs, Tag::dict, "kwargs", "a dict");
  call_allowed(cls, with_kwargs ? CallKind::newobj_ex : CallKind::newobj);
  push(new_object(with_kwargs ? ObjectForm::newobj_ex : ObjectForm::newobj, cls, args, kwargs));
}

void Machine::op_inst() {
  const std::size_t start = marker();
  const std::string module = decode_ascii_line(readline_min2());
  const std::string name = decode_ascii_line(readline_min2());
  const Slot cls = find_class(module, name);
  const Slot args = tuple_from(start);
  call_allowed(cls, CallKind::inst);
  push(new_object(ObjectForm::inst, cls, args));
}

void Machine::op_obj() {
  const std::size_t start = marker();
  if (sp_ < start + 1) underflow();
  const Slot args = tuple_from(start + 1);
  const Slot cls = pop();
  call_allowed(cls, CallKind::obj);
  push(new_object(ObjectForm::obj, cls, args));
}

void Machine::build_builtin(Slot inst, Slot state) {
  // object's default __setstate__ (3.11): (state, slotstate) pairs, __dict__ updates, setattr.
  const std::string type(tag_type_name(inst.tag));
  Slot slotstate;
  bool has_slotstate = false;
  if (state.tag == Tag::tuple && detail::node<detail::SeqNode>(state).size == 2) {
    const auto& pair = detail::node<detail::SeqNode>(state);
    state = detail::load(pair.items[0]);
    slotstate = detail::load(pair.items[1]);
    has_slotstate = true;
  }
  if (state.tag != Tag::none) {
    if (state.tag != Tag::dict && is_builtin(state.tag)) {
      fail(PyExc::UnpicklingError, "state is not a dictionary");
    }
    fail(PyExc::AttributeError, "'" + type + "' object has no attribute '__dict__'");
  }
  if (has_slotstate) {
    if (slotstate.tag != Tag::dict) fail(PyExc::UnpicklingError, "slot state is not a dictionary");
    const auto& dict = detail::node<detail::DictNode>(slotstate);
    if (dict.size != 0) {
      const Slot key = detail::load(dict.entries[0].key);
      if (key.tag != Tag::str) {
        fail(PyExc::TypeError, "attribute name must be string, not '" +
                                   std::string(tag_type_name(key.tag)) + "'");
      }
      fail(PyExc::AttributeError, "'" + type + "' object has no attribute '" + str_of(key) + "'");
    }
  }
}

void Machine::op_build() {
  if (sp_ < fence() + 2) underflow();
  const Slot state = detail::load(stack_base_[--sp_]);
  const Slot inst = detail::load(stack_base_[sp_ - 1]);
  switch (inst.tag) {
    case Tag::object:
      detail::object_add_op(heap(), detail::node<detail::ObjectNode>(inst), ObjectOp::build, state, Slot());
      return;
    case Tag::global:
      if (state.tag == Tag::none) return;
      on_global("BUILD", inst);
    default: build_builtin(inst, state);
  }
}

// ---- persistent ids -----------------------------------------------------------------------------

void Machine::op_persid() {
  std::string_view line = readline();
  const std::string_view text = line.substr(0, line.size() - 1);
  if (!detail::is_ascii(text)) {
    fail(PyExc::UnpicklingError, "persistent IDs in protocol 0 must be ASCII strings");
  }
  const Slot pid = new_str(text);
  if (persistent_hook_allowed(pid)) {
    Value result = options_.persistent_load(Value(pid, root_));
    adopt_heap(result.heap());
    push(result.slot());
    return;
  }
  push(new_object(ObjectForm::persid, Slot(), pid));
}

void Machine::op_binpersid() {
  const Slot pid = pop();
  if (persistent_hook_allowed(pid)) {
    Value result = options_.persistent_load(Value(pid, root_));
    adopt_heap(result.heap());
    push(result.slot());
    return;
  }
  push(new_object(ObjectForm::binpersid, Slot(), pid));
}

// The hook runs when there is one and the policy (if any) allows it; else the id stays inert.
bool Machine::persistent_hook_allowed(Slot pid) {
  if (policy_ != nullptr &&
      enforce_persistent_id(*policy_, Value(pid, root_), offset(), op_) != PolicyVerdict::allow) {
    return false;
  }
  return static_cast<bool>(options_.persistent_load);
}

// ---- protocol and frames ------------------------------------------------------------------------

void Machine::op_proto() {
  const int proto = static_cast<unsigned char>(*read(1));
  if (proto > highest_protocol) {
    fail(PyExc::ValueError, "unsupported pickle protocol: " + std::to_string(proto));
  }
  proto_ = proto;
}

void Machine::op_frame() {
  const std::uint64_t n = read_le(read(8), 8);
  if (n > max_ssize) {
    fail(PyExc::OverflowError,
         "FRAME length exceeds system's maximum of " + std::to_string(max_ssize) + " bytes");
  }
  switch (in_.start_frame(static_cast<std::size_t>(n))) {
    case Input::FrameStatus::ok: return;
    case Input::FrameStatus::nested:
      fail(PyExc::UnpicklingError, "beginning of a new frame before end of current frame");
    case Input::FrameStatus::truncated: truncated();
    case Input::FrameStatus::input_cap: shortage(Input::Shortage::input_cap);
  }
}

// ---- running a load -----------------------------------------------------------------------------

Value run_load(Input& input, const ReadOptions& options, Memo& memo, std::vector<Cell>& stack,
               std::vector<std::size_t>& marks, Heap* shared_heap = nullptr,
               const std::shared_ptr<const void>* input_owner = nullptr) {
  Machine machine(input, options, memo, stack, marks, shared_heap, input_owner);
  try {
    return machine.run();
  } catch (const std::bad_alloc&) {
    input.end_pickle();
    throw UnpicklingError(PyExc::MemoryError, "out of memory while unpickling");
  } catch (...) {
    input.end_pickle();
    throw;
  }
}

}  // namespace

// ================================================================================================
// Public API
// ================================================================================================

struct Unpickler::State {
  ReadOptions options;
  Input input;
  Memo memo;  // kept across load() calls, as CPython's Unpickler keeps its memo
  std::vector<Cell> stack;
  std::vector<std::size_t> marks;
  Heap* heap = Heap::create();  // the region of everything loaded (the memo points into it)

  State(std::istream& in, ReadOptions opts)
      : options(std::move(opts)), input(in, options.limits.max_input_bytes) {}
  State(std::string_view data, ReadOptions opts)
      : options(std::move(opts)), input(data, options.limits.max_input_bytes) {}
  ~State() { detail::release(heap); }
  State(const State&) = delete;
  State& operator=(const State&) = delete;
};

Unpickler::Unpickler(std::istream& in, ReadOptions options)
    : state_(std::make_unique<State>(in, std::move(options))) {}

Unpickler::Unpickler(std::string_view data, ReadOptions options)
    : state_(std::make_unique<State>(data, std::move(options))) {}

Unpickler::~Unpickler() = default;

Value Unpickler::load() {
  return run_load(state_->input, state_->options, state_->memo, state_->stack, state_->marks,
                  state_->heap);
}

bool Unpickler::at_end() { return state_->input.at_end(); }

std::size_t Unpickler::position() const noexcept { return state_->input.position(); }

namespace {

// The stack, mark stack and memo of loads(), kept per thread between calls: fresh ones would be
// faulted in from the system on every call, which costs more than a small pickle's whole load.
struct LoadScratch {
  Memo memo;
  std::vector<Cell> stack;
  std::vector<std::size_t> marks;
  bool in_use = false;
};

// A memo is a slot per memoized object: keeping up to 2M slots (32 MiB) spares a repeated large
// load regrowing (and page-faulting) it every time.
constexpr std::size_t max_kept_scratch_slots = std::size_t{1} << 21;

void trim(LoadScratch& scratch) {
  scratch.memo.trim(max_kept_scratch_slots);
  if (scratch.stack.capacity() > max_kept_scratch_slots) std::vector<Cell>().swap(scratch.stack);
  if (scratch.marks.capacity() > max_kept_scratch_slots) std::vector<std::size_t>().swap(scratch.marks);
}

}  // namespace

namespace {

Value load_from_memory(std::string_view data, const ReadOptions& options,
                       const std::shared_ptr<const void>* owner) {
  Input input(data, options.limits.max_input_bytes);
  thread_local LoadScratch scratch;
  if (scratch.in_use) {  // a persistent_load hook that loads a pickle itself
    LoadScratch nested;
    return run_load(input, options, nested.memo, nested.stack, nested.marks, nullptr, owner);
  }
  scratch.in_use = true;
  struct Release {
    LoadScratch& s;
    ~Release() {
      trim(s);
      s.in_use = false;
    }
  } release{scratch};
  return run_load(input, options, scratch.memo, scratch.stack, scratch.marks, nullptr, owner);
}

}  // namespace

Value loads(std::string_view data, const ReadOptions& options) {
  return load_from_memory(data, options, nullptr);
}

Value loads(std::string_view data, std::shared_ptr<const void> owner, const ReadOptions& options) {
  return load_from_memory(data, options, owner ? &owner : nullptr);
}

Value loads(std::span<const std::byte> data, const ReadOptions& options) {
  return loads(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()), options);
}

}  // namespace pickle
