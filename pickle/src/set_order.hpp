// CPython's set iteration order, reproduced where it is the same in every process: the repr of a
// set, sets parsed from literals, and sets written as pickle.dumps(pickle.loads(data)) would write
// them all follow the order of CPython's open-addressing table.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "value_impl.hpp"

namespace pickle::detail {

class FixedHashes {
 public:
  FixedHashes();
  ~FixedHashes();
  FixedHashes(const FixedHashes&) = delete;
  FixedHashes& operator=(const FixedHashes&) = delete;

  // CPython's hash of the value when it is the same in every process (numbers, empty str and
  // bytes, tuples and frozensets of those); nullopt otherwise. Memoized per node.
  std::optional<std::uint64_t> hash(Slot value);

  // The order in which CPython iterates `set` once rebuilt by adding its items in their stored
  // order (as set(list), ADDITEMS and FROZENSET build sets); nullopt when an item's hash differs
  // from process to process.
  std::optional<std::vector<Slot>> set_order(const DictNode& set);
  // The same order as positions in set.entries.
  std::optional<std::vector<std::size_t>> set_positions(const DictNode& set);

 private:
  class Hasher;
  std::unique_ptr<Hasher> hasher_;
};

}  // namespace pickle::detail
