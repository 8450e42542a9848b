// Micro-benchmarks of typed pickling (pickle/native.hpp, issue 7), beside the floor they cannot go
// below: what building and destroying the same C++ value costs without any pickle.
//
//   ninja -C build bench/native_bench && build/bench/native_bench --benchmark_min_time=0.5
//
// BM_StrVectorFloor builds a std::vector<std::string> of N 32-character strings from one buffer
// (reserved, emplace_back) and destroys it: the allocations, copies and frees that any loads into
// that type makes. BM_TypedLoadsStrVector loads the pickle of the same strings into that type, so
// the ratio of the two is what parsing adds. CPython's figures for the same 2,000,000 strings are
// compare.py's (its `strs_2M_32 typed` and `strs_2M_32 floor` rows time these in one run).
//
// glibc's malloc moves its trim and mmap thresholds with what was freed before, so each benchmark
// here runs in a heap state left by the ones before it: the floor and the loads can differ by 10-20%
// in either direction for that alone. Alternated in one loop they measured the same (see
// pickle/NATIVE.md).
// The bench-smoke test runs each benchmark once on its smallest size; they are never timed
// assertions.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "emit.hpp"  // detail::advise_huge_pages, as loads<T> advises its result
#include "pickle/native.hpp"

namespace {

constexpr std::size_t str_length = 32;

// N strings of 32 letters and digits, back to back (as compare.py's strs_2M_32 are drawn).
std::string letters(std::size_t n) {
  static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string text(n * str_length, 'a');
  std::uint64_t x = 1;
  for (char& c : text) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = alphabet[x % (sizeof alphabet - 1)];
  }
  return text;
}

std::vector<std::string> strs(std::size_t n) {
  const std::string text = letters(n);
  std::vector<std::string> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.emplace_back(text.data() + i * str_length, str_length);
  return out;
}

pickle::WriteOptions protocol5() {
  pickle::WriteOptions options;
  options.protocol = 5;
  return options;
}

void report_items(benchmark::State& state) { state.SetItemsProcessed(state.iterations() * state.range(0)); }

void BM_StrVectorFloor(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::string text = letters(n);
  for (auto _ : state) {
    std::vector<std::string> out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) out.emplace_back(text.data() + i * str_length, str_length);
    benchmark::DoNotOptimize(out.data());
  }
  report_items(state);
}
BENCHMARK(BM_StrVectorFloor)->Arg(1024)->Arg(2'000'000)->Unit(benchmark::kMillisecond);

// The same, with the vector's storage advised into transparent huge pages as loads<T> does for a
// large result (its 4 KiB page faults were a third of the floor's time in this VM): the lowest
// any loads into std::vector<std::string> can take here.
void BM_StrVectorFloorHugePages(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::string text = letters(n);
  for (auto _ : state) {
    std::vector<std::string> out;
    out.reserve(n);
    pickle::detail::advise_huge_pages(out.data(), out.capacity() * sizeof(std::string));
    for (std::size_t i = 0; i < n; ++i) out.emplace_back(text.data() + i * str_length, str_length);
    benchmark::DoNotOptimize(out.data());
  }
  report_items(state);
}
BENCHMARK(BM_StrVectorFloorHugePages)->Arg(1024)->Arg(2'000'000)->Unit(benchmark::kMillisecond);

void BM_TypedLoadsStrVector(benchmark::State& state) {
  const std::string data = pickle::dumps(strs(static_cast<std::size_t>(state.range(0))), protocol5());
  for (auto _ : state) {
    auto out = pickle::loads<std::vector<std::string>>(data);
    benchmark::DoNotOptimize(out.data());
  }
  report_items(state);
}
BENCHMARK(BM_TypedLoadsStrVector)->Arg(1024)->Arg(2'000'000)->Unit(benchmark::kMillisecond);

// Views into the pickle instead of copies (pickle/NATIVE.md): no allocation per str.
void BM_TypedLoadsStrViewVector(benchmark::State& state) {
  const std::string data = pickle::dumps(strs(static_cast<std::size_t>(state.range(0))), protocol5());
  for (auto _ : state) {
    auto out = pickle::loads<std::vector<std::string_view>>(data);
    benchmark::DoNotOptimize(out.data());
  }
  report_items(state);
}
BENCHMARK(BM_TypedLoadsStrViewVector)->Arg(1024)->Arg(2'000'000)->Unit(benchmark::kMillisecond);

void BM_TypedDumpsStrVector(benchmark::State& state) {
  const std::vector<std::string> value = strs(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    std::string out = pickle::dumps(value, protocol5());
    benchmark::DoNotOptimize(out.data());
  }
  report_items(state);
}
BENCHMARK(BM_TypedDumpsStrVector)->Arg(1024)->Arg(2'000'000)->Unit(benchmark::kMillisecond);

// The floor of an int vector: copying N int64s (what filling the result costs at least).
void BM_IntVectorFloor(benchmark::State& state) {
  std::vector<std::int64_t> source(static_cast<std::size_t>(state.range(0)));
  for (std::size_t i = 0; i < source.size(); ++i) source[i] = static_cast<std::int64_t>(i);
  for (auto _ : state) {
    std::vector<std::int64_t> out(source.begin(), source.end());
    benchmark::DoNotOptimize(out.data());
  }
  report_items(state);
}
BENCHMARK(BM_IntVectorFloor)->Arg(1024)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

std::vector<std::int64_t> range(std::size_t n) {
  std::vector<std::int64_t> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::int64_t>(i);
  return out;
}

void BM_TypedLoadsIntVector(benchmark::State& state) {
  const std::string data = pickle::dumps(range(static_cast<std::size_t>(state.range(0))), protocol5());
  for (auto _ : state) {
    auto out = pickle::loads<std::vector<std::int64_t>>(data);
    benchmark::DoNotOptimize(out.data());
  }
  report_items(state);
}
BENCHMARK(BM_TypedLoadsIntVector)->Arg(1024)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

void BM_TypedDumpsIntVector(benchmark::State& state) {
  const std::vector<std::int64_t> value = range(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    std::string out = pickle::dumps(value, protocol5());
    benchmark::DoNotOptimize(out.data());
  }
  report_items(state);
}
BENCHMARK(BM_TypedDumpsIntVector)->Arg(1024)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
