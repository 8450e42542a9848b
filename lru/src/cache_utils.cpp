#include "pickle/cache_utils.hpp"

#include <vector>

#include "pickle/reader.hpp"
#include "pickle/writer.hpp"

namespace pickle::cache {

namespace {

std::string pickle_uncached(const Value& value, PicklingFailureRaiser raise_if_failed) {
  std::exception_ptr failure;
  try {
    return pickle::dumps(value);
  } catch (...) {
    failure = std::current_exception();
  }
  raise_if_failed(failure, value);
  std::rethrow_exception(failure);  // a raiser that returns lets the failure itself propagate
}

Value unpickle_uncached(std::string_view pickled, UnpicklingFailureRaiser raise_if_failed) {
  std::exception_ptr failure;
  try {
    return pickle::loads(pickled);
  } catch (...) {
    failure = std::current_exception();
  }
  raise_if_failed(failure, pickled);
  std::rethrow_exception(failure);
}

}  // namespace

bool immutable_all_the_way_down(const Value& root) {
  std::vector<Value> pending{root};
  while (!pending.empty()) {
    const Value v = std::move(pending.back());
    pending.pop_back();
    switch (v.kind()) {
      case Kind::none:
      case Kind::boolean:
      case Kind::integer:
      case Kind::floating:
      case Kind::str:
      case Kind::bytes:
      case Kind::global:
        break;
      case Kind::tuple:
      case Kind::frozenset:
        for (Value& item : v.items()) pending.push_back(std::move(item));
        break;
      case Kind::bytearray:
      case Kind::list:
      case Kind::dict:
      case Kind::set:
      case Kind::object:
      case Kind::buffer:
        return false;
    }
  }
  return true;
}

LruCache<std::string(const Value&, PicklingFailureRaiser)>& try_pickle_memo() {
  static LruCache<std::string(const Value&, PicklingFailureRaiser)> memo(&pickle_uncached);
  return memo;
}

LruCache<Value(std::string_view, UnpicklingFailureRaiser)>& try_unpickle_memo() {
  static LruCache<Value(std::string_view, UnpicklingFailureRaiser)> memo(
      &unpickle_uncached, LruOptions{}, &immutable_all_the_way_down);
  return memo;
}

std::string try_pickle(const Value& value, PicklingFailureRaiser raise_if_failed) {
  return try_pickle_memo()(value, raise_if_failed);
}

std::string try_pickle_key(const Value& key) {
  return try_pickle(key, &raise_pickling_failure<KeyPicklingError>);
}

std::string try_pickle_value(const Value& value) {
  return try_pickle(value, &raise_pickling_failure<ValuePicklingError>);
}

Value try_unpickle(std::string_view pickled, UnpicklingFailureRaiser raise_if_failed) {
  return try_unpickle_memo()(pickled, raise_if_failed);
}

Value try_unpickle_value(std::string_view pickled) {
  return try_unpickle(pickled, &raise_unpickling_failure<ValueUnPicklingError>);
}

}  // namespace pickle::cache
