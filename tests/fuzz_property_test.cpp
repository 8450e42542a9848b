// RapidCheck properties of the hardened reader and the tools around it, on valid pickles made by the
// fuzzers' structure-aware generator (fuzz/pickle_generator.hpp: pickles CPython loads, with sharing,
// cycles, inert objects and every protocol) and on arbitrary bytes:
//   - every truncation of a valid pickle is rejected with an UnpicklingError;
//   - every single-byte change is loaded or rejected with a pickle::Error;
//   - repr, dis and scan never throw anything but the typed errors (scan and dis: nothing);
//   - the limits hold: a load either stays within Limits::max_nodes or throws LimitError.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include "../fuzz/pickle_generator.hpp"
#include "pickle/dis.hpp"
#include "pickle/reader.hpp"
#include "pickle/repr.hpp"
#include "pickle/scan.hpp"

namespace {

// A generator program of up to ~2000 choices (RapidCheck's default sizes give only ~100).
std::string valid_pickle() {
  const auto program = *rc::gen::scale(20, rc::gen::arbitrary<std::vector<std::uint8_t>>());
  return pickle_fuzz::generate_pickle(program.data(), program.size());
}

// Loads; true when it loaded, false on a pickle::Error; anything else fails the property.
bool loads_cleanly(const std::string& data, const pickle::ReadOptions& options = {}) {
  try {
    pickle::Value value = pickle::loads(data, options);
    (void)pickle::repr(value);
    return true;
  } catch (const pickle::Error&) {
    return false;
  } catch (const std::exception& error) {
    RC_FAIL(std::string("untyped exception: ") + error.what());
  }
  return false;
}

void tools_never_throw_untyped(const std::string& data) {
  try {
    (void)pickle::scan(data);
    (void)pickle::format_scan_json(pickle::scan(data));
    (void)pickle::dis(data);
  } catch (const std::exception& error) {
    RC_FAIL(std::string("scan/dis threw: ") + error.what());
  }
  try {
    pickle::genops(data, [](const pickle::Instruction&) {});
  } catch (const pickle::Error&) {
  } catch (const std::exception& error) {
    RC_FAIL(std::string("genops threw an untyped exception: ") + error.what());
  }
}

// Distinct heap nodes reachable from `value` (atoms excluded), without recursion.
std::size_t reachable_nodes(const pickle::Value& root) {
  std::unordered_set<const void*> seen;
  std::vector<pickle::Value> work{root};
  while (!work.empty()) {
    pickle::Value value = work.back();
    work.pop_back();
    if (value.identity() == nullptr || !seen.insert(value.identity()).second) continue;
    switch (value.kind()) {
      case pickle::Kind::tuple:
      case pickle::Kind::list:
      case pickle::Kind::set:
      case pickle::Kind::frozenset:
        for (const pickle::Value& item : value.items()) work.push_back(item);
        break;
      case pickle::Kind::dict:
        for (const auto& [key, item] : value.dict_items()) {
          work.push_back(key);
          work.push_back(item);
        }
        break;
      default:
        break;
    }
  }
  return seen.size();
}

RC_GTEST_PROP(FuzzProperties, GeneratedPicklesLoad, ()) {
  const std::string data = valid_pickle();
  RC_ASSERT(loads_cleanly(data));
  pickle::ScanReport report = pickle::scan(data);
  RC_ASSERT(!report.malformed());
  RC_ASSERT(!pickle::dis(data).error.has_value());
}

RC_GTEST_PROP(FuzzProperties, EveryTruncationIsRejected, ()) {
  const std::string data = valid_pickle();
  for (std::size_t n = 0; n < data.size(); ++n) {
    try {
      pickle::loads(std::string_view(data).substr(0, n));
      RC_FAIL("a pickle cut at " + std::to_string(n) + " of " + std::to_string(data.size()) + " loaded");
    } catch (const pickle::UnpicklingError&) {
    } catch (const std::exception& error) {
      RC_FAIL(std::string("cut at ") + std::to_string(n) + ": not an UnpicklingError: " + error.what());
    }
    RC_ASSERT(pickle::scan(std::string_view(data).substr(0, n)).malformed());
  }
}

RC_GTEST_PROP(FuzzProperties, EverySingleByteChangeIsHandled,
              (std::uint8_t replacement)) {
  const std::string data = valid_pickle();
  const std::size_t at = *rc::gen::inRange<std::size_t>(0, data.size());
  std::string changed = data;
  changed[at] = static_cast<char>(replacement);
  (void)loads_cleanly(changed);
  tools_never_throw_untyped(changed);
}

RC_GTEST_PROP(FuzzProperties, ToolsOnArbitraryBytes, (const std::string& bytes)) {
  (void)loads_cleanly(bytes);
  tools_never_throw_untyped(bytes);
}

RC_GTEST_PROP(FuzzProperties, LimitsHold, ()) {
  pickle::ReadOptions options;
  options.limits.max_nodes = *rc::gen::inRange<std::size_t>(1, 200);
  options.limits.max_depth = *rc::gen::inRange<std::size_t>(1, 50);
  options.limits.max_memo_entries = *rc::gen::inRange<std::size_t>(1, 50);
  const std::string data = valid_pickle();
  try {
    pickle::Value value = pickle::loads(data, options);
    RC_ASSERT(reachable_nodes(value) <= options.limits.max_nodes);
  } catch (const pickle::LimitError& error) {
    RC_ASSERT(!error.limit().empty());
  } catch (const pickle::Error& error) {
    RC_FAIL(std::string("a valid pickle failed with a non-limit error: ") + error.what());
  }
}

}  // namespace
