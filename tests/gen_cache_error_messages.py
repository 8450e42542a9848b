#!/usr/bin/env python3
"""Write the expected messages and class relations of the caching module's exception classes, for
tests/cache_errors_test.cpp.

Run from the repository root (any Python 3.8+; the committed output was made with 3.11):

    python3 tests/gen_cache_error_messages.py

The classes below restate torch._inductor.runtime.caching.exceptions (the generation with the
pickling subclasses): the same bases and the same f-string messages. torch itself is not needed.

Output, tests/data/cache_error_messages.tsv, one case per line, tab-separated:

  message <class> <argument kind> <argument> <expected message, hex of UTF-8>
      argument kinds: "value" (the argument in the build notation below), "bytes" (hex, "-" when
      empty), "lock" (hex of str(lock) then a space then the timeout in the build notation)
  name <class> <qualified Python name>
  subclass <class> <base> <1 or 0>            issubclass(class, base) for every pair
  pickle <value in build notation> <hex of pickle.dumps(value, protocol=4)>
                                              for every hashable value (the key a memoized
                                              try_pickle_key must return, whatever came before)
  unpickle <hex of the data, "-" when empty> <outcome>
      outcome: "ok " + hex of repr(pickle.loads(data)), or "raises " + the class of the exception
      pickle.loads raises (UnpicklingError, EOFError, …)

Build notation (space-separated tokens, prefix order; the notation of tests/gen_repr_dis_cases.py):
  N | T | F | i<decimal> | f<16 hex digits of the IEEE bits> | s<hex of UTF-8> | b<hex> | B<hex>
  (bytearray) | t<n> | l<n> | d<n> (n key, value pairs) | S<n> (set) | z<n> (frozenset), followed by
  the n items. An empty hex payload is written as "-".
"""

import os
import pickle
import struct
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data", "cache_error_messages.tsv")
MODULE = "torch._inductor.runtime.caching.exceptions"


class CacheError(Exception):
    pass


class SystemError(CacheError, RuntimeError):  # noqa: A001 - the module's own name
    pass


class LockTimeoutError(SystemError):
    def __init__(self, lock, timeout):
        super().__init__(f"Failed to acquire lock {lock} within {timeout} seconds.")


class FileLockTimeoutError(SystemError):
    def __init__(self, flock, timeout):
        super().__init__(f"Failed to acquire file lock {flock} within {timeout} seconds.")


class UserError(CacheError, TypeError):
    pass


class KeyEncodingError(UserError):
    pass


class KeyPicklingError(KeyEncodingError):
    def __init__(self, key):
        super().__init__(f"Failed to pickle cache key with type {type(key)} and value {key!r}.")


class ValueEncodingError(UserError):
    pass


class ValuePicklingError(ValueEncodingError):
    def __init__(self, value):
        super().__init__(
            f"Failed to pickle cache value with type {type(value)} and value {value!r}.")


class ValueDecodingError(UserError):
    pass


class ValueUnPicklingError(ValueDecodingError):
    def __init__(self, pickled_value):
        super().__init__(
            f"Failed to unpickle cache value from pickled value {pickled_value!r}.")


CLASSES = [CacheError, SystemError, LockTimeoutError, FileLockTimeoutError, UserError,
           KeyEncodingError, KeyPicklingError, ValueEncodingError, ValuePicklingError,
           ValueDecodingError, ValueUnPicklingError]
for cls in CLASSES:
    cls.__module__ = MODULE
BASE_CLASSES = [CacheError, SystemError, UserError, KeyEncodingError, ValueEncodingError,
                ValueDecodingError]
BUILTINS = [Exception, RuntimeError, TypeError]


def hexs(b):
    return b.hex() if b else "-"


def notation(value):
    out = []
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if v is None:
            out.append("N")
        elif t is bool:
            out.append("T" if v else "F")
        elif t is int:
            out.append("i%d" % v)
        elif t is float:
            out.append("f%016x" % struct.unpack(">Q", struct.pack(">d", v))[0])
        elif t is str:
            out.append("s" + hexs(v.encode("utf-8", "surrogatepass")))
        elif t is bytes:
            out.append("b" + hexs(v))
        elif t is bytearray:
            out.append("B" + hexs(bytes(v)))
        elif t is dict:
            out.append("d%d" % len(v))
            stack.extend(reversed([x for kv in v.items() for x in kv]))
        elif t in (tuple, list, set, frozenset):
            out.append({tuple: "t", list: "l", set: "S", frozenset: "z"}[t] + str(len(v)))
            stack.extend(reversed(list(v)))
        else:
            raise TypeError(t)
    return " ".join(out)


# Keys and values whose repr CPython prints the same in every process (no str in a set).
VALUES = [
    None, True, False, 0, 1, -5, 255, 2**31, -(2**63), 2**100, -(2**70) + 3,
    0.0, -0.0, 1.5, 1e16, 1e-7, 0.1, 3.141592653589793, float("inf"), float("-inf"), float("nan"),
    "", "abc", "it's", 'say "hi"', "both ' and \"", "tab\tnew\nline\r", "\x00\x7f\x80",
    "caf\u00e9", "\u20ac\U0001f600", "\ud800", "back\\slash",
    b"", b"abc", b"\x00\xff", b"it's", b'say "hi"', b"both ' and \"", b"\t\n\r\\",
    bytearray(), bytearray(b"x\x00"),
    (), (1,), (1, 2), (True,), (1.0,), ("a", b"b", None), ((1,), ((2,),)),
    [], [1, 2], [1, [2, [3]]], ["x", (1,)],
    {}, {"a": 1}, {1: "one", 2: (2.0,)}, {"k": [b"x"], "n": None},
    set(), {1, 2, 3}, {-1, 7}, frozenset(), frozenset({1}), frozenset({(1, 2)}),
    [[1, (2,)], {"k": [b"x", bytearray(b"y")]}, {5}, frozenset({6})],
    ("shape", (2, 3), "stride", (3, 1), "dtype", "torch.float32"),
    {"args": (3, "x"), "kwargs": {}},
]

PICKLED = [b"", b"\x80", b"\x80\x04", b"\x80\x04\x95", b"garbage", b"N.", b"\x80\x04K\x03.",
           b"\x80\x04\x95\r\x00\x00\x00\x00\x00\x00\x00K\x03\x8c\x01x\x94\x86\x94}\x94\x86\x94.",
           bytes(range(0, 256, 7)), b"'quote\"", b"\\"]

TIMEOUTS = [60.0, 60, 0.5, 1e-3, 1e20, 0, 2.5e-07]


def main():
    lines = []

    def message(cls, kind, argument, text):
        lines.append("\t".join(["message", cls.__name__, kind, argument,
                                hexs(text.encode("utf-8", "surrogatepass"))]))

    for v in VALUES:
        for cls in (KeyPicklingError, ValuePicklingError):
            message(cls, "value", notation(v), str(cls(v)))
        for cls in BASE_CLASSES:
            message(cls, "value", notation(v), str(cls(v)))
    for data in PICKLED:
        message(ValueUnPicklingError, "bytes", hexs(data), str(ValueUnPicklingError(data)))
        for cls in BASE_CLASSES:
            message(cls, "bytes", hexs(data), str(cls(data)))
    locks = [str(threading.Lock()), str(threading.RLock()),
             "<filelock._unix.UnixFileLock object at 0x7f3a2b1c0d10>", "dir.lock"]
    for lock in locks:
        for timeout in TIMEOUTS:
            argument = hexs(lock.encode()) + " " + notation(timeout)
            message(LockTimeoutError, "lock", argument, str(LockTimeoutError(lock, timeout)))
            message(FileLockTimeoutError, "lock", argument,
                    str(FileLockTimeoutError(lock, timeout)))

    for v in VALUES:
        try:
            hash(v)
        except TypeError:
            continue
        lines.append("\t".join(["pickle", notation(v), hexs(pickle.dumps(v, protocol=4))]))
    for data in PICKLED:
        try:
            outcome = "ok " + hexs(repr(pickle.loads(data)).encode())
        except Exception as err:  # noqa: BLE001 - the class is what is recorded
            outcome = "raises " + type(err).__name__
        lines.append("\t".join(["unpickle", hexs(data), outcome]))

    for cls in CLASSES:
        lines.append("\t".join(["name", cls.__name__, cls.__module__ + "." + cls.__qualname__]))
    for cls in CLASSES:
        for base in CLASSES + BUILTINS:
            lines.append("\t".join(["subclass", cls.__name__, base.__name__,
                                    "1" if issubclass(cls, base) else "0"]))

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="ascii", newline="\n") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
