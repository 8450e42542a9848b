// Pickling with cache errors, memoized: the C++ counterparts of the helpers in PyTorch Inductor's
// caching utilities (_try_pickle, _try_pickle_key, _try_pickle_value, _try_unpickle,
// _try_unpickle_value).
//
//   std::string name_source = pickle::cache::try_pickle_key(key);    // KeyPicklingError on failure
//   pickle::Value v = pickle::cache::try_unpickle_value(file_bytes);  // ValueUnPicklingError
//
// Each family shares one LruCache (maxsize 64, typed), as the originals share one lru_cache per
// function, keyed on the argument and the error class to raise. Unlike the originals:
//   - keys are typed all the way down, so try_pickle_key((True,)) never returns the bytes of (1,);
//   - a failure of the pickle library is never retried as if the argument were unhashable;
//   - try_unpickle caches only results that are immutable all the way down (no list, dict, set,
//     bytearray, object or buffer inside), so two callers never receive the same mutable object.
// Which library failure becomes which cache error: lru/README.md and pickle/cache_errors.hpp.
#pragma once

#include <exception>
#include <string>
#include <string_view>

#include "pickle/cache_errors.hpp"
#include "pickle/lru.hpp"
#include "pickle/value.hpp"

namespace pickle::cache {

// Throws the cache error for a failure of pickle::dumps on `value` (or rethrows the failure when
// it is not a pickling failure). raise_pickling_failure<ErrorClass> is one.
using PicklingFailureRaiser = void (*)(const std::exception_ptr& failure, const Value& value);
// Throws the cache error for a failure of pickle::loads on `pickled`.
using UnpicklingFailureRaiser = void (*)(const std::exception_ptr& failure, std::string_view pickled);

// pickle::dumps(value) at the default protocol (4, as CPython 3.8–3.13 write), memoized; a pickling
// failure is raised through raise_if_failed (by default as CacheError(str(value))).
std::string try_pickle(const Value& value,
                       PicklingFailureRaiser raise_if_failed = &raise_pickling_failure<CacheError>);
// try_pickle with KeyPicklingError.
std::string try_pickle_key(const Value& key);
// try_pickle with ValuePicklingError.
std::string try_pickle_value(const Value& value);

// pickle::loads(pickled), memoized for immutable results; an unpickling failure is raised through
// raise_if_failed (by default as CacheError(str(pickled))).
Value try_unpickle(std::string_view pickled,
                   UnpicklingFailureRaiser raise_if_failed = &raise_unpickling_failure<CacheError>);
// try_unpickle with ValueUnPicklingError.
Value try_unpickle_value(std::string_view pickled);

// The general forms with the error class as a template argument: try_pickle_as<ValueEncodingError>.
template <class ErrorClass>
std::string try_pickle_as(const Value& value) {
  return try_pickle(value, &raise_pickling_failure<ErrorClass>);
}
template <class ErrorClass>
Value try_unpickle_as(std::string_view pickled) {
  return try_unpickle(pickled, &raise_unpickling_failure<ErrorClass>);
}

// The two memoizers, for statistics and for tests.
LruCache<std::string(const Value&, PicklingFailureRaiser)>& try_pickle_memo();
LruCache<Value(std::string_view, UnpicklingFailureRaiser)>& try_unpickle_memo();

// True when no list, dict, set, bytearray, object or buffer is reachable from `value`, i.e. when
// handing the same Value to several callers cannot let one see another's changes.
bool immutable_all_the_way_down(const Value& value);

}  // namespace pickle::cache
