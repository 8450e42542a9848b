// The cache error classes: Python's messages and class relations (from the committed table written
// by tests/gen_cache_error_messages.py), the mapping of pickle-library failures to cache errors, and
// the memoized try_pickle / try_unpickle helpers.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "pickle/cache_errors.hpp"
#include "pickle/cache_utils.hpp"
#include "pickle/repr.hpp"
#include "pickle/value.hpp"
#include "pickle/writer.hpp"

namespace {

using namespace pickle::cache;
using pickle::Value;

// --- the committed table ----------------------------------------------------------------------

std::string unhex(std::string_view hex) {
  if (hex == "-") return {};
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  return out;
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, separator)) parts.push_back(part);
  return parts;
}

// The build notation of tests/gen_cache_error_messages.py, built without recursion.
Value build(const std::string& notation) {
  struct Frame {
    char kind;
    std::size_t wanted;
    std::vector<Value> items;
  };
  std::vector<Frame> open;
  std::optional<Value> result;
  for (const std::string& token : split(notation, ' ')) {
    const char tag = token[0];
    const std::string rest = token.substr(1);
    std::optional<Value> done;
    switch (tag) {
      case 'N': done = Value::none(); break;
      case 'T': done = Value(true); break;
      case 'F': done = Value(false); break;
      case 'i': done = Value(pickle::BigInt(rest)); break;
      case 'f': done = Value(std::bit_cast<double>(std::stoull(rest, nullptr, 16))); break;
      case 's': done = Value::str(unhex(rest)); break;
      case 'b': done = Value::bytes(unhex(rest)); break;
      case 'B': done = Value::bytearray(unhex(rest)); break;
      default: {
        std::size_t n = std::stoul(rest);
        if (tag == 'd') n *= 2;
        open.push_back(Frame{tag, n, {}});
        break;
      }
    }
    for (;;) {
      if (!done) {
        if (open.empty() || open.back().items.size() < open.back().wanted) break;
        Frame frame = std::move(open.back());
        open.pop_back();
        switch (frame.kind) {
          case 't': done = Value::tuple(std::span<const Value>(frame.items)); break;
          case 'l': done = Value::list(std::span<const Value>(frame.items)); break;
          case 'z': done = Value::frozenset(std::span<const Value>(frame.items)); break;
          case 'S': {
            Value set = Value::set();
            for (Value& item : frame.items) set.add(item);
            done = set;
            break;
          }
          case 'd': {
            Value dict = Value::dict();
            for (std::size_t i = 0; i < frame.items.size(); i += 2)
              dict.set_item(frame.items[i], frame.items[i + 1]);
            done = dict;
            break;
          }
          default: ADD_FAILURE() << "bad notation " << notation; return Value();
        }
      }
      if (open.empty()) {
        result = *done;
        break;
      }
      open.back().items.push_back(*done);
      done.reset();
    }
  }
  return result.value_or(Value());
}

const std::vector<std::vector<std::string>>& table() {
  static const std::vector<std::vector<std::string>> rows = [] {
    std::vector<std::vector<std::string>> out;
    const char* dir = std::getenv("PICKLE_TEST_DATA");
    std::ifstream in(std::string(dir ? dir : "tests") + "/data/cache_error_messages.tsv");
    std::string line;
    while (std::getline(in, line)) out.push_back(split(line, '\t'));
    return out;
  }();
  return rows;
}

std::vector<std::vector<std::string>> rows_of(std::string_view what) {
  std::vector<std::vector<std::string>> out;
  for (const auto& row : table())
    if (row[0] == what) out.push_back(row);
  return out;
}

// Constructs the named class from a table argument.
std::unique_ptr<PyException> make_error(const std::string& cls, const std::string& kind,
                                        const std::string& argument) {
  if (kind == "lock") {
    const auto space = argument.find(' ');
    const std::string lock = unhex(argument.substr(0, space));
    const Value timeout = build(argument.substr(space + 1));
    if (cls == "LockTimeoutError") return std::make_unique<LockTimeoutError>(lock, timeout);
    if (cls == "FileLockTimeoutError") return std::make_unique<FileLockTimeoutError>(lock, timeout);
  }
  if (kind == "bytes" && cls == "ValueUnPicklingError")
    return std::make_unique<ValueUnPicklingError>(unhex(argument));
  const Value v = kind == "bytes" ? Value::bytes(unhex(argument)) : build(argument);
  if (cls == "KeyPicklingError") return std::make_unique<KeyPicklingError>(v);
  if (cls == "ValuePicklingError") return std::make_unique<ValuePicklingError>(v);
  if (cls == "CacheError") return std::make_unique<CacheError>(v);
  if (cls == "SystemError") return std::make_unique<SystemError>(v);
  if (cls == "UserError") return std::make_unique<UserError>(v);
  if (cls == "KeyEncodingError") return std::make_unique<KeyEncodingError>(v);
  if (cls == "ValueEncodingError") return std::make_unique<ValueEncodingError>(v);
  if (cls == "ValueDecodingError") return std::make_unique<ValueDecodingError>(v);
  ADD_FAILURE() << "no constructor for " << cls << " from " << kind;
  return nullptr;
}

// One instance of each class, for the relation tests.
std::unique_ptr<PyException> instance_of(const std::string& cls) {
  if (cls == "LockTimeoutError" || cls == "FileLockTimeoutError")
    return make_error(cls, "lock", "6c " + std::string("f404e000000000000"));
  if (cls == "ValueUnPicklingError") return make_error(cls, "bytes", "80");
  return make_error(cls, "value", "i1");
}

bool is_a(const PyException& e, const std::string& base) {
  static const std::map<std::string, std::function<bool(const PyException*)>> checks = {
#define CHECK_CLASS(cls, type) {cls, [](const PyException* x) { return dynamic_cast<const type*>(x) != nullptr; }}
      CHECK_CLASS("Exception", PyException),
      CHECK_CLASS("RuntimeError", PyRuntimeError),
      CHECK_CLASS("TypeError", PyTypeError),
      CHECK_CLASS("CacheError", CacheError),
      CHECK_CLASS("SystemError", SystemError),
      CHECK_CLASS("LockTimeoutError", LockTimeoutError),
      CHECK_CLASS("FileLockTimeoutError", FileLockTimeoutError),
      CHECK_CLASS("UserError", UserError),
      CHECK_CLASS("KeyEncodingError", KeyEncodingError),
      CHECK_CLASS("KeyPicklingError", KeyPicklingError),
      CHECK_CLASS("ValueEncodingError", ValueEncodingError),
      CHECK_CLASS("ValuePicklingError", ValuePicklingError),
      CHECK_CLASS("ValueDecodingError", ValueDecodingError),
      CHECK_CLASS("ValueUnPicklingError", ValueUnPicklingError),
#undef CHECK_CLASS
  };
  return checks.at(base)(&e);
}

TEST(CacheErrorTable, IsPresent) {
  ASSERT_GT(rows_of("message").size(), 500u) << "tests/data/cache_error_messages.tsv not found";
  ASSERT_GT(rows_of("subclass").size(), 100u);
}

TEST(CacheErrorTable, MessagesEqualPythonsFStrings) {
  int checked = 0;
  for (const auto& row : rows_of("message")) {
    const auto error = make_error(row[1], row[2], row[3]);
    ASSERT_NE(error, nullptr);
    // message(), not what(): a str argument may hold NUL characters.
    EXPECT_EQ(error->message(), unhex(row[4])) << row[1] << " " << row[2] << " " << row[3];
    ++checked;
  }
  EXPECT_GT(checked, 500);
}

TEST(CacheErrorTable, QualifiedNames) {
  for (const auto& row : rows_of("name")) EXPECT_EQ(instance_of(row[1])->python_class_name(), row[2]);
}

TEST(CacheErrorTable, ClassRelationsArePythons) {
  for (const auto& row : rows_of("subclass")) {
    EXPECT_EQ(is_a(*instance_of(row[1]), row[2]), row[3] == "1")
        << "issubclass(" << row[1] << ", " << row[2] << ")";
  }
}

TEST(CacheErrorClasses, CaughtThroughEveryBase) {
  auto thrower = [] { throw KeyPicklingError(Value::list({1, 2})); };
  EXPECT_THROW(thrower(), KeyPicklingError);
  EXPECT_THROW(thrower(), KeyEncodingError);
  EXPECT_THROW(thrower(), UserError);
  EXPECT_THROW(thrower(), PyTypeError);
  EXPECT_THROW(thrower(), CacheError);
  EXPECT_THROW(thrower(), PyException);
  EXPECT_THROW(thrower(), std::exception);  // one std::exception base, not an ambiguous two
  auto system = [] { throw LockTimeoutError("lock", Value(60.0)); };
  EXPECT_THROW(system(), PyRuntimeError);
  EXPECT_THROW(system(), SystemError);
  EXPECT_THROW(system(), CacheError);
}

TEST(CacheErrorClasses, NativeKeysNameTheirPythonType) {
  EXPECT_STREQ(KeyPicklingError("tuple", "(1, 2)").what(),
               "Failed to pickle cache key with type <class 'tuple'> and value (1, 2).");
  EXPECT_STREQ(ValuePicklingError("mod.Cls", "<mod.Cls>").what(),
               "Failed to pickle cache value with type <class 'mod.Cls'> and value <mod.Cls>.");
}

TEST(CacheErrorClasses, ObjectsNameTheirClass) {
  const Value cls = Value::global("collections", "OrderedDict");
  const Value object = Value::object(pickle::ObjectForm::reduce, cls, Value::tuple());
  EXPECT_EQ(python_type_repr(object), "<class 'collections.OrderedDict'>");
  const Value builtin = Value::object(pickle::ObjectForm::newobj, Value::global("builtins", "int"),
                                      Value::tuple());
  EXPECT_EQ(python_type_repr(builtin), "<class 'int'>");
}

// --- the mapping ------------------------------------------------------------------------------

template <class Thrower>
std::exception_ptr failure_of(Thrower thrower) {
  try {
    thrower();
  } catch (...) {
    return std::current_exception();
  }
  return nullptr;
}

TEST(CacheErrorMapping, WriterFailuresBecomeTheGivenPicklingError) {
  const Value key = Value::tuple({1});
  const std::vector<std::exception_ptr> failures = {
      std::make_exception_ptr(pickle::PicklingError("can't pickle")),
      std::make_exception_ptr(pickle::PicklingError("too big", pickle::PyExc::OverflowError)),
      std::make_exception_ptr(pickle::UnhashableError("list")),
      std::make_exception_ptr(pickle::Error(pickle::PyExc::ValueError, "bad")),
  };
  for (const auto& failure : failures) {
    try {
      raise_pickling_failure<KeyPicklingError>(failure, key);
      ADD_FAILURE() << "nothing thrown";
    } catch (const KeyPicklingError& e) {
      EXPECT_EQ(e.cause(), failure);
      EXPECT_STREQ(e.what(), "Failed to pickle cache key with type <class 'tuple'> and value (1,).");
      EXPECT_THROW(e.rethrow_cause(), pickle::Error);
    }
    EXPECT_THROW(raise_pickling_failure<ValuePicklingError>(failure, key), ValuePicklingError);
  }
}

TEST(CacheErrorMapping, ReaderFailuresOfEveryCPythonClassBecomeValueUnPicklingError) {
  for (auto exc : {pickle::PyExc::UnpicklingError, pickle::PyExc::EOFError, pickle::PyExc::ValueError,
                   pickle::PyExc::UnicodeDecodeError, pickle::PyExc::ModuleNotFoundError,
                   pickle::PyExc::MemoryError, pickle::PyExc::IndexError}) {
    const auto failure = std::make_exception_ptr(pickle::UnpicklingError(exc, "x", 3, 0x80));
    try {
      raise_unpickling_failure<ValueUnPicklingError>(failure, "\x80\x04");
      ADD_FAILURE() << "nothing thrown";
    } catch (const ValueUnPicklingError& e) {
      EXPECT_STREQ(e.what(), "Failed to unpickle cache value from pickled value b'\\x80\\x04'.");
      try {
        e.rethrow_cause();
      } catch (const pickle::UnpicklingError& cause) {
        EXPECT_EQ(cause.python_class(), exc);
        EXPECT_EQ(cause.offset(), 3u);
      }
    }
  }
  const auto limit = std::make_exception_ptr(pickle::LimitError("max_depth", "too deep", 0, std::nullopt));
  EXPECT_THROW(raise_unpickling_failure<ValueUnPicklingError>(limit, "x"), ValueUnPicklingError);
}

TEST(CacheErrorMapping, OtherFailuresPropagateUnchanged) {
  const auto bad_alloc = std::make_exception_ptr(std::bad_alloc());
  EXPECT_THROW(raise_pickling_failure<KeyPicklingError>(bad_alloc, Value(1)), std::bad_alloc);
  EXPECT_THROW(raise_unpickling_failure<ValueUnPicklingError>(bad_alloc, "x"), std::bad_alloc);
  const auto logic = failure_of([] { throw std::logic_error("callback"); });
  EXPECT_THROW(raise_pickling_failure<ValuePicklingError>(logic, Value(1)), std::logic_error);
  EXPECT_FALSE(is_pickling_failure(nullptr));
}

TEST(CacheErrorMapping, BaseClassesTakeStrOfTheArgument) {
  const auto failure = std::make_exception_ptr(pickle::PicklingError("x"));
  try {
    raise_pickling_failure<CacheError>(failure, Value("plain text"));
  } catch (const CacheError& e) {
    EXPECT_STREQ(e.what(), "plain text");
    EXPECT_EQ(e.python_class_name(), "torch._inductor.runtime.caching.exceptions.CacheError");
  }
  const auto unreadable = std::make_exception_ptr(pickle::UnpicklingError(pickle::PyExc::EOFError, "x"));
  try {
    raise_unpickling_failure<ValueDecodingError>(unreadable, "ab");
  } catch (const ValueDecodingError& e) {
    EXPECT_STREQ(e.what(), "b'ab'");
  }
}

// --- the memoized helpers ---------------------------------------------------------------------

TEST(TryPickle, KeysAndValuesPickleAsCPythonDoes) {
  const auto rows = rows_of("pickle");
  ASSERT_GT(rows.size(), 40u);
  for (int round = 0; round < 2; ++round) {  // the second round is served from the cache
    for (const auto& row : rows) {
      EXPECT_EQ(try_pickle_key(build(row[1])), unhex(row[2])) << row[1];
      EXPECT_EQ(try_pickle_value(build(row[1])), unhex(row[2])) << row[1];
    }
  }
}

TEST(TryPickle, EqualKeysOfOtherTypesNeverGetEachOthersBytes) {
  // CPython's memoized _try_pickle((True,)) returns the bytes of (1,) when (1,) came first.
  std::map<std::string, std::string> expected;
  for (const auto& row : rows_of("pickle")) expected[row[1]] = unhex(row[2]);
  for (const char* order : {"t1 i1|t1 T|t1 f3ff0000000000000", "t1 T|t1 f3ff0000000000000|t1 i1",
                            "f0000000000000000|f8000000000000000", "i1|T|F|i0"}) {
    try_pickle_memo().cache_clear();
    for (const std::string& notation : split(order, '|')) {
      ASSERT_TRUE(expected.count(notation)) << notation;
      EXPECT_EQ(try_pickle_key(build(notation)), expected[notation]) << notation << " in " << order;
    }
  }
}

TEST(TryPickle, IsMemoizedAndFailuresAreNotRetried) {
  try_pickle_memo().cache_clear();
  const Value key = Value::tuple({"shape", Value::tuple({2, 3})});
  const std::string first = try_pickle_key(key);
  EXPECT_EQ(try_pickle_key(Value::tuple({"shape", Value::tuple({2, 3})})), first);
  EXPECT_EQ(try_pickle_memo().cache_info().hits, 1u);
  // Key and value pickling share the memoizer but not entries (the error class is in the key).
  EXPECT_EQ(try_pickle_value(key), first);
  EXPECT_EQ(try_pickle_memo().cache_info().misses, 2u);
  // Unhashable keys are pickled uncached.
  const Value list_key = Value::list({1});
  EXPECT_EQ(try_pickle_key(list_key), pickle::dumps(list_key));
  EXPECT_EQ(try_pickle_memo().cache_info().misses, 2u);
}

TEST(TryPickle, WriterFailuresRaiseKeyOrValuePicklingError) {
  // A protocol 5 buffer cannot be written at the default protocol 4 (PicklingError in CPython).
  const Value buffer = Value::buffer("data", 0, false);
  try {
    try_pickle_key(buffer);
    ADD_FAILURE() << "nothing thrown";
  } catch (const KeyPicklingError& e) {
    EXPECT_THROW(e.rethrow_cause(), pickle::PicklingError);
    // type(pickle.PickleBuffer(b'')) prints <class 'pickle.PickleBuffer'> (the repr part is the
    // library's documented form for buffers, which Python prints with an address).
    EXPECT_EQ(std::string(e.what()).rfind("Failed to pickle cache key with type <class 'pickle.PickleBuffer'> and value ", 0), 0u);
  }
  EXPECT_THROW(try_pickle_value(Value::list({buffer})), ValuePicklingError);
  EXPECT_THROW(try_pickle(buffer), CacheError);
  EXPECT_THROW(try_pickle_as<ValueEncodingError>(buffer), ValueEncodingError);
}

TEST(TryUnpickle, ReadsWhatCPythonReadsAndMapsEveryFailure) {
  std::map<std::string, std::string> messages;
  for (const auto& row : rows_of("message"))
    if (row[1] == "ValueUnPicklingError") messages[row[3]] = unhex(row[4]);
  const auto rows = rows_of("unpickle");
  ASSERT_GT(rows.size(), 5u);
  for (const auto& row : rows) {
    const std::string data = unhex(row[1]);
    const std::string outcome = row[2];
    if (outcome.rfind("ok ", 0) == 0) {
      EXPECT_EQ(pickle::repr(try_unpickle_value(data)), unhex(outcome.substr(3))) << row[1];
      continue;
    }
    const std::string python_class = outcome.substr(std::string("raises ").size());
    try {
      try_unpickle_value(data);
      ADD_FAILURE() << row[1] << ": nothing thrown";
    } catch (const ValueUnPicklingError& e) {
      EXPECT_EQ(e.what(), messages.at(row[1]));
      try {
        e.rethrow_cause();
      } catch (const pickle::Error& cause) {
        EXPECT_EQ(cause.python_class_name(), python_class) << row[1];
      }
    }
  }
}

TEST(TryUnpickle, MutableResultsAreNeverShared) {
  try_unpickle_memo().cache_clear();
  const std::string list_pickle = pickle::dumps(Value::list({1, 2}));
  Value a = try_unpickle_value(list_pickle);
  Value b = try_unpickle_value(list_pickle);
  a.append(3);
  EXPECT_EQ(b.size(), 2u);  // CPython's memoized _try_unpickle would hand back the same list
  EXPECT_EQ(try_unpickle_memo().cache_info().hits, 0u);
  const std::string tuple_pickle = pickle::dumps(Value::tuple({1, "x"}));
  Value c = try_unpickle_value(tuple_pickle);
  Value d = try_unpickle_value(tuple_pickle);
  EXPECT_TRUE(c.is(d));  // immutable: cached and shared
  EXPECT_EQ(try_unpickle_memo().cache_info().hits, 1u);
}

TEST(TryUnpickle, ImmutabilityIsJudgedAllTheWayDown) {
  EXPECT_TRUE(immutable_all_the_way_down(Value::tuple({1, "a", Value::frozenset({Value::bytes("b")})})));
  EXPECT_FALSE(immutable_all_the_way_down(Value::tuple({1, Value::tuple({Value::list()})})));
  EXPECT_FALSE(immutable_all_the_way_down(Value::bytearray("x")));
  EXPECT_FALSE(immutable_all_the_way_down(
      Value::object(pickle::ObjectForm::reduce, Value::global("m", "f"), Value::tuple())));
}

TEST(TryPickle, SharedMemoizersFromSeveralThreads) {
  const auto rows = rows_of("pickle");
  ASSERT_FALSE(rows.empty());
  std::atomic<int> wrong{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < 3; ++t) {
    workers.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        for (std::size_t i = static_cast<std::size_t>(t); i < rows.size(); i += 2) {
          // Each thread builds its own Values: equal keys, distinct objects.
          const std::string expected = unhex(rows[i][2]);
          if (try_pickle_key(build(rows[i][1])) != expected) ++wrong;
          if (pickle::repr(try_unpickle_value(expected)) != pickle::repr(build(rows[i][1]))) ++wrong;
        }
        if (t == 0 && round % 7 == 0) try_pickle_memo().cache_clear();
      }
    });
  }
  for (auto& w : workers) w.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_LE(try_pickle_memo().cache_info().currsize, 64u);
}

}  // namespace
