// Reading pickles: protocols 0–5, as CPython's C unpickler reads them, into pickle::Value.
//
//   pickle::Value v = pickle::loads(bytes);            // one pickle from memory
//   pickle::Unpickler u(stream);  v = u.load();       // several pickles from a stream, in turn
//
// Nothing is ever imported or executed: globals become Kind::global values and calls (REDUCE,
// NEWOBJ, …) become inert Kind::object nodes, except for a handful of pure builtin constructors that
// CPython itself uses to pickle builtin values (set/frozenset/bytearray/bytes and _codecs.encode
// with latin1), which are folded into the value they build. Malformed input raises
// pickle::UnpicklingError with the offset, the opcode and CPython's exception class.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <istream>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pickle/value.hpp"

namespace pickle {

class LoadPolicy;  // pickle/policy.hpp

// How Python 2 str (STRING, BINSTRING, SHORT_BINSTRING) is decoded, like CPython's `encoding=`.
enum class Py2Strings : std::uint8_t {
  ascii,   // 'ASCII' (CPython's default): non-ASCII raises UnicodeDecodeError
  latin1,  // 'latin1': every byte becomes U+0000..U+00FF
  bytes,   // 'bytes': loaded as bytes
};

// Resource limits. Defaults are safe for untrusted input; every check is O(1) per opcode.
struct Limits {
  std::size_t max_input_bytes = std::size_t(1) << 40;
  std::size_t max_depth = 1'000'000'000;       // nesting of containers under construction
  std::size_t max_stack = std::size_t(1) << 32;  // values on the stack (marks included)
  std::size_t max_memo_entries = std::size_t(1) << 32;
  std::size_t max_memo_index = 0xFFFFFFFFu;  // largest index a PUT may use
  std::size_t max_nodes = std::size_t(1) << 40;
  std::size_t max_text_int_digits = 4300;  // CPython's int_max_str_digits
  // Heap bytes the reader may allocate per input byte (plus a constant); 0 disables the check.
  std::size_t max_alloc_ratio = 64;
  // Work spent probing dict and set tables and comparing their keys (a unit is one probe or one
  // item compared). Python's hashes are the attacker's to choose (every multiple of 2**61 - 1
  // hashes alike), and n colliding keys cost n*n/2 probes, so the work a pickle may cause is
  // bounded by its size: hash_work_budget plus hash_work_per_byte for every input byte consumed.
  // Ordinary data needs about one unit per key.
  std::size_t hash_work_budget = std::size_t(1) << 22;
  std::size_t hash_work_per_byte = 16;
};

struct ReadOptions {
  Py2Strings py2_strings = Py2Strings::ascii;
  bool fix_imports = true;  // map Python 2 module/names (__builtin__ → builtins …) when proto < 3
  // Fold builtin reductions (set([…]), bytearray(b'…'), _codecs.encode(s, 'latin1'), bytes()) into
  // the values they build, as Python does when it loads them.
  bool fold_builtin_reductions = true;
  // Identities. Off (the default), the value keeps exactly the sharing the pickle wrote, including
  // that of the arguments of folded reductions, so that pickle::dumps reproduces the pickle. On,
  // the value has the sharing of the objects CPython's pickle.loads makes: what CPython returns as
  // one cached object (every empty str and bytes, every 1-character latin-1 str, every 1-byte
  // bytes built by _codecs.encode) is one node per pickle, and the arguments of folded reductions
  // are forgotten. Then pickle::dumps(value, {.protocol = Q}) equals
  // pickle.dumps(pickle.loads(data), Q).
  bool reloaded_identities = false;
  // Protocol 5 out-of-band buffers, consumed in order by NEXT_BUFFER. nullopt = none given
  // (NEXT_BUFFER then fails as in CPython).
  std::optional<std::vector<std::string_view>> buffers;
  // Persistent ids: called with the pid; the result replaces it. Without a hook, a persistent id is
  // kept as an inert object node (ObjectForm::persid / binpersid).
  std::function<Value(const Value& pid)> persistent_load;
  // Extension registry (copyreg.add_extension): code → (module, name). Unknown codes raise
  // ValueError("unregistered extension code N") as in CPython.
  std::map<std::int32_t, std::pair<std::string, std::string>> extensions;
  Limits limits;
  // Safe-load policy (pickle/policy.hpp): consulted for every global, call, persistent id and
  // extension code before it is kept; may deny (PolicyError) or keep it inert. nullptr: no policy.
  std::shared_ptr<const LoadPolicy> policy;
  // Zero-copy loads (the loads overload taking an owner): bytes and str payloads of at least this
  // many bytes become views into the input instead of copies. Smaller ones are still copied, so a
  // value made of many small strings stays compact and does not pin a large input.
  std::size_t zero_copy_min_bytes = 4096;
};

// Load one pickle from memory. Bytes after STOP are ignored (as pickle.loads does).
Value loads(std::string_view data, const ReadOptions& options = {});
Value loads(std::span<const std::byte> data, const ReadOptions& options = {});
// Zero-copy: `data` lies in memory that `owner` keeps alive (a std::string in a shared_ptr, a
// memory-mapped file's mapping, …). bytes and str payloads of at least options.zero_copy_min_bytes
// are returned as views into `data`; the value holds a reference to `owner`, so the memory lives as
// long as any part of the value does. A 256 MiB bytes object then loads without being copied.
// bytearrays (mutable) and out-of-band buffers are still copied.
Value loads(std::string_view data, std::shared_ptr<const void> owner, const ReadOptions& options = {});

// Reads pickles one after another from a stream (like repeated pickle.Unpickler.load()).
// Reads ahead in chunks; bytes read past a STOP are kept for the next load().
class Unpickler {
 public:
  explicit Unpickler(std::istream& in, ReadOptions options = {});
  // Over a memory span: load() returns the pickles in it in turn.
  explicit Unpickler(std::string_view data, ReadOptions options = {});
  ~Unpickler();
  Unpickler(const Unpickler&) = delete;
  Unpickler& operator=(const Unpickler&) = delete;

  // The next pickle. Throws UnpicklingError(EOFError, "Ran out of input") at the end.
  Value load();
  // True when no input is left (the next load() would raise EOFError).
  bool at_end();
  // Offset of the next unread byte from the start of the input.
  std::size_t position() const noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace pickle
