// Writing pickles, protocols 0–5, byte for byte as CPython's C pickler (pickle.dumps) writes them.
//
//   std::string bytes = pickle::dumps(value);                       // protocol 4, like 3.8–3.13
//   std::string bytes = pickle::dumps(value, {.protocol = 2});
//
// The value graph's identities decide memoization exactly as object identity does in CPython: a
// value reached twice is written once and fetched with GET the second time. Globals are one object
// per (module, qualified name), as classes and functions are in Python. Values loaded with
// pickle::loads are written back byte for byte at the protocol and target version they came from.
//
// Object nodes (Kind::object) are re-emitted in the form they were made with (REDUCE, NEWOBJ,
// NEWOBJ_EX, INST, OBJ, PERSID/BINPERSID, EXT1/2/4) followed by their ops, batched like CPython's
// list/dict items; below the protocol an opcode needs, CPython's fallback is written (copyreg
// __newobj__ / __newobj_ex__ reduces, functools.partial for NEWOBJ_EX at protocols 2–3, the global
// for EXT). The writer never recurses over the value: a 1,000,000-deep list is fine.
//
// target_minor: 13+ writes nested qualified names below protocol 4 in 3.13's form (and recognizes
// loaded getattr(…) chains of a non-builtins class as such a name); 14+ defaults to protocol 5;
// error messages follow the version. Errors are pickle::PicklingError carrying CPython's class
// (ValueError for a protocol above 5, OverflowError for a str/bytes over 4 GiB below protocol 4,
// PicklingError for non-ASCII globals below protocol 3, …).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "pickle/value.hpp"

namespace pickle {

// Which values are the same object, for memoization.
enum class Identities : std::uint8_t {
  // Graph identity only: two nodes are one object exactly when they are the same node. Right for
  // values loaded from pickles (the reader keeps CPython's sharing). Temporaries of reductions
  // that CPython shares (1-character latin-1 strs, 1-byte bytes, 'latin1', type objects) are still
  // shared, and linked to the first graph node that stands for them.
  graph,
  // Also treat as one object what CPython always shares: the empty str and bytes, 1-character
  // latin-1 strs, 1-byte bytes, module names of globals (interned), and in 3.8–3.9 the empty
  // frozenset. Right for values built in C++ or parsed from literals (pickle::parse_literal).
  cpython,
};

struct WriteOptions {
  // -1: the target version's default (4 for 3.8–3.13, 5 for 3.14).
  int protocol = -1;
  // The CPython 3.x minor version whose output to reproduce (8 … 14).
  int target_minor = 11;
  bool fix_imports = true;  // Python 2 names at protocols 0–2
  Identities identities = Identities::graph;
  // Write sets in the order CPython iterates them once loaded (each set rebuilt by adding its
  // items in their stored order), so that the bytes equal pickle.dumps(pickle.loads(data)). A set
  // holding an item whose hash differs between processes (a non-empty str or bytes) keeps its
  // stored order. Off, sets are written in their stored order, which reproduces the pickle they
  // were loaded from.
  bool reloaded_set_order = false;
  // Protocol 5 buffers (Kind::buffer values): return true to write the buffer in-band, false to
  // leave it out-of-band (NEXT_BUFFER). Without a callback every buffer is written in-band.
  std::function<bool(const Value& buffer)> buffer_callback;
  // Persistent ids: return a pid to write instead of the value (as Pickler.persistent_id does; it
  // is consulted for every value of the graph, not for the temporaries of builtin reductions).
  std::function<std::optional<Value>(const Value& value)> persistent_id;
};

// The default protocol of a CPython 3.x version.
int default_protocol(int target_minor) noexcept;

std::string dumps(const Value& value, const WriteOptions& options = {});

// A streaming pickler; like pickle.Pickler, its memo persists across dump() calls until
// clear_memo().
class Pickler {
 public:
  explicit Pickler(std::ostream& out, WriteOptions options = {});
  ~Pickler();
  Pickler(const Pickler&) = delete;
  Pickler& operator=(const Pickler&) = delete;
  void dump(const Value& value);
  void clear_memo();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace pickle
