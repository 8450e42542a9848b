// Micro-benchmarks of the reader's and writer's hot paths (issue 6): opcode dispatch, int and str
// decoding, the memo, dict insertion, node allocation and frame writing.
//
//   ninja -C build bench/micro_bench && build/bench/micro_bench --benchmark_min_time=0.5
//
// Each benchmark takes the item count as its argument; items/s is items loaded or written per
// second. The inputs are written by our own writer from values built here: they are inputs, not
// expected outputs, so nothing is compared against CPython. The bench-smoke test runs every
// benchmark once on its smallest size; they are never timed assertions.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "pickle/reader.hpp"
#include "pickle/value.hpp"
#include "pickle/writer.hpp"

namespace {

std::string dumps5(const pickle::Value& value) {
  pickle::WriteOptions options;
  options.protocol = 5;
  return pickle::dumps(value, options);
}

std::string ascii_text(std::int64_t seed, std::size_t length) {
  static constexpr char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string text(length, 'a');
  std::uint64_t x = static_cast<std::uint64_t>(seed) * 0x9E3779B97F4A7C15ull + 1;
  for (char& c : text) {
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    c = letters[(x >> 32) % (sizeof letters - 1)];
  }
  return text;
}

pickle::Value list_of(std::int64_t n, const auto& make_item) {
  pickle::Value list = pickle::Value::list();
  for (std::int64_t i = 0; i < n; ++i) list.append(make_item(i));
  return list;
}

void report_items(benchmark::State& state, std::size_t bytes) {
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}

void time_loads(benchmark::State& state, const std::string& data) {
  for (auto _ : state) {
    pickle::Value value = pickle::loads(data);
    benchmark::DoNotOptimize(value.slot());
  }
  report_items(state, data.size());
}

void time_dumps(benchmark::State& state, const pickle::Value& value) {
  std::size_t bytes = 0;
  for (auto _ : state) {
    std::string out = dumps5(value);
    bytes = out.size();
    benchmark::DoNotOptimize(out.data());
  }
  report_items(state, bytes);
}

// --- loads -----------------------------------------------------------------------------------

// Opcode dispatch alone: one MARK, N NONE, POP_MARK (no allocation, no item work).
void BM_LoadsDispatch(benchmark::State& state) {
  std::string data = "\x80\x05(";
  data.append(static_cast<std::size_t>(state.range(0)), 'N');
  data += "0N.";
  time_loads(state, data);
}
BENCHMARK(BM_LoadsDispatch)->Arg(8)->Arg(1 << 16);

// BININT1 / BININT2 / BININT: the ints of list(range(N)).
void BM_LoadsSmallInts(benchmark::State& state) {
  time_loads(state, dumps5(list_of(state.range(0), [](std::int64_t i) { return pickle::Value(i); })));
}
BENCHMARK(BM_LoadsSmallInts)->Arg(8)->Arg(1 << 16);

// LONG1: ints beyond 32 bits.
void BM_LoadsLong1(benchmark::State& state) {
  time_loads(state, dumps5(list_of(state.range(0), [](std::int64_t i) {
               return pickle::Value((i + 1) * 1'000'000'007LL * 3);
             })));
}
BENCHMARK(BM_LoadsLong1)->Arg(8)->Arg(1 << 16);

// BINFLOAT.
void BM_LoadsFloats(benchmark::State& state) {
  time_loads(state, dumps5(list_of(state.range(0), [](std::int64_t i) { return pickle::Value(i * 0.37); })));
}
BENCHMARK(BM_LoadsFloats)->Arg(8)->Arg(1 << 16);

// SHORT_BINUNICODE + MEMOIZE of 32-character ASCII strs: UTF-8 validation and str nodes.
void BM_LoadsAsciiStrs(benchmark::State& state) {
  time_loads(state, dumps5(list_of(state.range(0), [](std::int64_t i) {
               return pickle::Value(ascii_text(i, 32));
             })));
}
BENCHMARK(BM_LoadsAsciiStrs)->Arg(8)->Arg(1 << 16);

// The same with two-byte characters: the non-ASCII validation path.
void BM_LoadsNonAsciiStrs(benchmark::State& state) {
  time_loads(state, dumps5(list_of(state.range(0), [](std::int64_t i) {
               std::string text = ascii_text(i, 16);
               for (std::size_t k = 0; k < text.size(); k += 4) text.replace(k, 1, "\xC3\xA9");
               return pickle::Value(text);
             })));
}
BENCHMARK(BM_LoadsNonAsciiStrs)->Arg(8)->Arg(1 << 16);

// BINGET: one memoized str referenced N times (memo lookups and pushes).
void BM_LoadsMemoGets(benchmark::State& state) {
  const pickle::Value shared("shared");
  time_loads(state, dumps5(list_of(state.range(0), [&](std::int64_t) { return shared; })));
}
BENCHMARK(BM_LoadsMemoGets)->Arg(8)->Arg(1 << 16);

// SETITEMS into one dict of N str keys (hashing and table insertion).
void BM_LoadsDictStrInt(benchmark::State& state) {
  pickle::Value dict = pickle::Value::dict();
  for (std::int64_t i = 0; i < state.range(0); ++i) dict.set_item(ascii_text(i, 11), i);
  time_loads(state, dumps5(dict));
}
BENCHMARK(BM_LoadsDictStrInt)->Arg(8)->Arg(1 << 16);

// Many small dicts with int keys (pyperformance's MICRO_DICT shape): per-dict overhead.
void BM_LoadsSmallDicts(benchmark::State& state) {
  time_loads(state, dumps5(list_of(state.range(0), [](std::int64_t) {
               pickle::Value dict = pickle::Value::dict();
               for (int k = 0; k < 10; ++k) dict.set_item(k, pickle::Value());
               return dict;
             })));
}
BENCHMARK(BM_LoadsSmallDicts)->Arg(8)->Arg(1 << 12);

// --- dumps -----------------------------------------------------------------------------------

// Frame writing and int encoding: list(range(N)).
void BM_DumpsSmallInts(benchmark::State& state) {
  time_dumps(state, list_of(state.range(0), [](std::int64_t i) { return pickle::Value(i); }));
}
BENCHMARK(BM_DumpsSmallInts)->Arg(8)->Arg(1 << 16);

void BM_DumpsFloats(benchmark::State& state) {
  time_dumps(state, list_of(state.range(0), [](std::int64_t i) { return pickle::Value(i * 0.37); }));
}
BENCHMARK(BM_DumpsFloats)->Arg(8)->Arg(1 << 16);

// The int opcode choice across its ranges: BININT1, BININT2, BININT and LONG1 of 5–8 bytes.
void BM_DumpsMixedInts(benchmark::State& state) {
  time_dumps(state, list_of(state.range(0), [](std::int64_t i) {
    static constexpr int shifts[] = {0, 9, 20, 35, 50, 62};
    std::int64_t magnitude = (std::int64_t{1} << shifts[i % 6]) + i;
    return pickle::Value(i % 2 != 0 ? -magnitude : magnitude);
  }));
}
BENCHMARK(BM_DumpsMixedInts)->Arg(8)->Arg(1 << 16);

// The fixed cost of one call: a 2-tuple holding a list of 3 ints (pyperformance's TUPLE is this
// with 20 ints).
void BM_DumpsSmallTuple(benchmark::State& state) {
  pickle::Value list = list_of(state.range(0), [](std::int64_t i) { return pickle::Value(265867233 + i); });
  time_dumps(state, pickle::Value::tuple({list, pickle::Value(60)}));
}
BENCHMARK(BM_DumpsSmallTuple)->Arg(3)->Arg(20);

// Records (compare.py's records_30k): every dict, list, tuple and name str is a memo entry, so
// this measures the identity memo's lookups once the table outgrows the caches.
void BM_DumpsRecords(benchmark::State& state) {
  time_dumps(state, list_of(state.range(0), [](std::int64_t i) {
    pickle::Value meta = pickle::Value::dict();
    meta.set_item("active", i % 2 != 0);
    meta.set_item("parent", pickle::Value::none());
    pickle::Value record = pickle::Value::dict();
    record.set_item("id", i);
    record.set_item("name", "user" + std::to_string(i));
    record.set_item("score", static_cast<double>(i) * 0.5);
    record.set_item("tags", pickle::Value::list({"a", "b", pickle::Value(std::to_string(i % 7))}));
    record.set_item("pos", pickle::Value::tuple({pickle::Value(i), pickle::Value(-i)}));
    record.set_item("meta", meta);
    return record;
  }));
}
BENCHMARK(BM_DumpsRecords)->Arg(8)->Arg(1 << 15);

// str encoding and memoization of every str.
void BM_DumpsAsciiStrs(benchmark::State& state) {
  time_dumps(state, list_of(state.range(0), [](std::int64_t i) { return pickle::Value(ascii_text(i, 32)); }));
}
BENCHMARK(BM_DumpsAsciiStrs)->Arg(8)->Arg(1 << 16);

void BM_DumpsDictStrInt(benchmark::State& state) {
  pickle::Value dict = pickle::Value::dict();
  for (std::int64_t i = 0; i < state.range(0); ++i) dict.set_item(ascii_text(i, 11), i);
  time_dumps(state, dict);
}
BENCHMARK(BM_DumpsDictStrInt)->Arg(8)->Arg(1 << 16);

// Large bytes: one frame-less BINBYTES8 write (the output buffer's copy).
void BM_DumpsLargeBytes(benchmark::State& state) {
  time_dumps(state, pickle::Value::bytes(std::string(static_cast<std::size_t>(state.range(0)), '\xab')));
}
BENCHMARK(BM_DumpsLargeBytes)->Arg(1 << 10)->Arg(1 << 24);

// --- the value layer -------------------------------------------------------------------------

// Building a list of N strs through the public API: node allocation and region merging.
void BM_BuildListOfStrs(benchmark::State& state) {
  for (auto _ : state) {
    pickle::Value list = list_of(state.range(0), [](std::int64_t) { return pickle::Value("abcdefgh"); });
    benchmark::DoNotOptimize(list.slot());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_BuildListOfStrs)->Arg(8)->Arg(1 << 14);

}  // namespace

BENCHMARK_MAIN();
