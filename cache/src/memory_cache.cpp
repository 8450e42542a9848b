#include "pickle/cache.hpp"

namespace pickle::cache {

std::optional<Value> InMemoryCache::get(const Value& key) const {
  const std::string pickled_key = pickle_key(key, protocol_);
  std::lock_guard<std::mutex> guard(mutex_);
  auto it = entries_.find(pickled_key);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

bool InMemoryCache::insert(const Value& key, Value value) {
  std::string pickled_key = pickle_key(key, protocol_);
  std::lock_guard<std::mutex> guard(mutex_);
  return entries_.try_emplace(std::move(pickled_key), std::move(value)).second;
}

std::size_t InMemoryCache::size() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return entries_.size();
}

}  // namespace pickle::cache
