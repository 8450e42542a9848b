// Shared by the libFuzzer harnesses: the read options they load with, the resource oracle, and how a
// finding is reported.
//
// A finding aborts, so that libFuzzer records the input as a crash: anything other than a typed
// pickle::Error escaping the library, a limit exceeded without the reader noticing, or a broken
// invariant (a written pickle that does not read back to the same graph, …).
#pragma once

#include <sanitizer/allocator_interface.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <typeinfo>

#include "pickle/reader.hpp"
#include "pickle/repr.hpp"
#include "pickle/value.hpp"
#include "pickle/writer.hpp"

namespace pickle_fuzz {

[[noreturn]] inline void finding(const std::string& what) {
  std::fprintf(stderr, "\n=== FINDING: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

[[noreturn]] inline void untyped(const char* where, const std::exception& error) {
  finding(std::string(where) + " threw " + typeid(error).name() + " (not a pickle::Error): " + error.what());
}

// Limits that keep a load well inside libFuzzer's -rss_limit_mb under ASan. The harnesses check
// that the reader enforces them: its heap use must stay linear in the input.
inline pickle::ReadOptions fuzz_read_options() {
  pickle::ReadOptions options;
  options.limits.max_depth = 50'000;
  options.limits.max_stack = 1 << 20;
  options.limits.max_memo_entries = 1 << 20;
  options.limits.max_nodes = 1 << 22;
  options.limits.max_alloc_ratio = 64;
  options.limits.hash_work_budget = 1 << 24;
  return options;
}

// Heap accounting through the sanitizer allocator's hooks: the live bytes and their peak since the
// last reset.
struct HeapMeter {
  static inline long long live = 0;
  static inline long long peak = 0;
  static inline bool installed = false;

  static void on_malloc(const volatile void*, std::size_t size) {
    live += static_cast<long long>(size);
    if (live > peak) peak = live;
  }
  static void on_free(const volatile void* pointer) {
    live -= static_cast<long long>(__sanitizer_get_allocated_size(const_cast<const void*>(pointer)));
  }
  static void install() {
    if (!installed) {
      installed = true;
      __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
    }
  }
  // Starts a measurement; returns the baseline.
  static long long start() {
    peak = live;
    return live;
  }
};

// The reader's allocation must stay within its alloc ratio plus what a stack and memo of one slot
// per input byte cost, plus a fixed allowance.
inline void check_heap_bound(long long baseline, std::size_t input_size, const pickle::ReadOptions& options) {
  const long long used = HeapMeter::peak - baseline;
  const long long bound = static_cast<long long>((options.limits.max_alloc_ratio + 64) * input_size) + (32LL << 20);
  if (used > bound) {
    finding("load of " + std::to_string(input_size) + " bytes peaked at " + std::to_string(used) +
            " heap bytes, above the bound " + std::to_string(bound));
  }
}

// Write `value` at `protocol` and read it back. At protocols 4 and 5 the second load must equal the
// first: the same graph, or — where the protocol has no opcode for the form the first load came in
// (PERSID text ids become BINPERSID, INST becomes REDUCE …) — the same repr. Writing the second load again must
// reproduce the written bytes exactly (a fixpoint after one round).
// One round: write at `protocol`, read back with `options`, write again. Returns what went wrong.
inline std::optional<std::string> round_trip_problem(const pickle::Value& value, int protocol,
                                                     const pickle::ReadOptions& options) {
  pickle::WriteOptions write;
  write.protocol = protocol;
  std::string written;
  try {
    written = pickle::dumps(value, write);
  } catch (const pickle::PicklingError&) {
    return std::nullopt;  // not representable at this protocol, as in CPython
  }
  pickle::Value again;
  try {
    again = pickle::loads(written, options);
  } catch (const pickle::LimitError&) {
    return std::nullopt;  // writing may expand (DAG sharing lost where the form has no memo)
  } catch (const pickle::Error& error) {
    return std::string("a written pickle does not load: ") + error.what();
  }
  // Below protocol 4 CPython itself rewrites some forms (NEWOBJ_EX as functools.partial or
  // copyreg.__newobj_ex__, NEWOBJ as copyreg.__newobj__ below 2, nested names through getattr):
  // there only the fixpoint below is required.
  if (protocol >= 4 && !same_graph(value, again)) {
    // Shared references print in full at every reference: compare reprs only while they are small.
    pickle::ReprOptions bounded;
    bounded.max_size = std::size_t{1} << 20;
    try {
      const std::string before = pickle::repr(value, bounded);
      const std::string after = pickle::repr(again, bounded);
      if (before != after) return "the reloaded value differs: " + before + " vs " + after;
    } catch (const pickle::Error&) {
      // a repr over the bound: the fixpoint below still applies
    }
  }
  std::string rewritten;
  try {
    rewritten = pickle::dumps(again, write);
  } catch (const pickle::Error& error) {
    return std::string("a value read from our own pickle cannot be written again: ") + error.what();
  }
  if (rewritten != written) return std::string("writing the reloaded value changed the bytes");
  return std::nullopt;
}

inline void check_round_trip(const pickle::Value& value, int protocol, const pickle::ReadOptions& options) {
  std::optional<std::string> problem = round_trip_problem(value, protocol, options);
  if (problem && protocol < 3 && options.fix_imports) {
    // Python 2 names are not a fixpoint of reading and writing, in CPython either: __builtin__.int
    // read at protocol 3 stays as it is, is written so at protocol 0 and then reads back as
    // builtins.int (written next as __builtin__.long); __builtin__.frozenset read at protocol 3 is
    // an inert call that may take APPENDs, and reads back from protocol 0 as the real frozenset.
    // Such values must still be a fixpoint when our pickle is read back without the mapping.
    pickle::ReadOptions unmapped = options;
    unmapped.fix_imports = false;
    if (!round_trip_problem(value, protocol, unmapped)) return;
  }
  if (problem) finding("protocol " + std::to_string(protocol) + ": " + *problem);
}

}  // namespace pickle_fuzz
