#!/usr/bin/env python3
"""Write the expectations for tests/json_test.cpp (pickle::to_json / from_json, pickletool json).

Run with Python 3.11 from the repository root:

    python3 tests/gen_json_cases.py

The JSON mapping is the one documented in pickle/JSON.md; it is implemented here a second time, in
Python, over what a Python unpickler loads, so that the C++ output is checked against an
independent implementation rather than against itself. Objects are loaded inertly (globals,
REDUCE, NEWOBJ, persistent ids and BUILD are recorded, never executed) by a subclass of the
pure-Python unpickler, and sets keep the order the pickle lists their items in.

Files written (tab-separated; hex is lowercase):

  tests/json/to_json.tsv     name, protocol, pickle (hex), json.dumps-layout JSON on one line,
                             the same with indent=2 (hex of its UTF-8)
  tests/json/from_json.tsv   name, protocol, JSON document (hex of UTF-8),
                             pickle.dumps(json.loads(document), protocol) (hex)
  tests/json/documents/*.json  the plain JSON documents of from_json.tsv, one file each, for the
                             live differential test and for trying `pickletool from-json`
"""

import _compat_pickle
import codecs
import collections
import copyreg
import datetime
import io
import json
import math
import os
import pickle
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "json")

# ------------------------------------------------------------------------------------------------
# An inert loader: what pickle::loads keeps, in Python objects.


class Global:
    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):  # REDUCE
        return Obj("reduce", self, args)


class Obj:
    """An object node: form, callable, args, kwargs, ext code and the ops applied to it."""

    def __init__(self, form, callable_, args, kwargs=None):
        self.form, self.callable, self.args, self.kwargs = form, callable_, args, kwargs
        self.ops = []

    def append(self, item):  # APPEND / APPENDS on a non-list
        self.ops.append(("append", item))

    def __setitem__(self, key, value):  # SETITEM(S) on a non-dict
        self.ops.append(("setitem", key, value))

    def add(self, item):  # ADDITEMS on a non-set
        self.ops.append(("additem", item))

    def __setstate__(self, state):  # BUILD
        self.ops.append(("build", state))


class OSet:
    """A set or frozenset that keeps the order of the pickle (Python's own order is by hash)."""

    def __init__(self, kind, items=()):
        self.kind, self.items = kind, list(items)

    def add(self, item):
        self.items.append(item)


def fold_set(kind):
    def make(*args):
        return OSet(kind, args[0] if args else ())
    return make


# The builtin reductions pickle::loads folds into values, as Python evaluates them.
FOLDED = {
    ("builtins", "set"): fold_set("set"),
    ("builtins", "frozenset"): fold_set("frozenset"),
    ("builtins", "bytearray"): bytearray,
    ("builtins", "bytes"): bytes,
    ("_codecs", "encode"): codecs.encode,
}


class InertUnpickler(pickle._Unpickler):
    dispatch = dict(pickle._Unpickler.dispatch)

    def find_class(self, module, name):
        if self.proto < 3 and self.fix_imports:
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        return FOLDED.get((module, name)) or Global(module, name)

    def load_newobj(self):
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(Obj("newobj", cls, args))
    dispatch[pickle.NEWOBJ[0]] = load_newobj

    def load_newobj_ex(self):
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(Obj("newobj_ex", cls, args, kwargs))
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex

    def load_persid(self):
        pid = self.readline()[:-1].decode("ascii")
        self.append(Obj("persid", None, pid))
    dispatch[pickle.PERSID[0]] = load_persid

    def load_binpersid(self):
        pid = self.stack.pop()
        self.append(Obj("binpersid", None, pid))
    dispatch[pickle.BINPERSID[0]] = load_binpersid

    def load_empty_set(self):
        self.append(OSet("set"))
    dispatch[pickle.EMPTY_SET[0]] = load_empty_set

    def load_frozenset(self):
        items = self.pop_mark()  # before self.append: pop_mark rebinds it to the outer stack
        self.append(OSet("frozenset", items))
    dispatch[pickle.FROZENSET[0]] = load_frozenset


def inert_loads(data):
    return InertUnpickler(io.BytesIO(data)).load()

# ------------------------------------------------------------------------------------------------
# The mapping (pickle/JSON.md), over inertly loaded values.

MAX_DECIMAL_INT_BITS = 14284
SURROGATE_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")


def identity_kept(v):
    if isinstance(v, tuple):
        return len(v) > 0  # CPython's () is one object that pickle never memoizes
    return isinstance(v, (list, dict, OSet, bytearray, Obj))


def children(v):
    if isinstance(v, (list, tuple)):
        return list(v)
    if isinstance(v, OSet):
        return list(v.items)
    if isinstance(v, dict):
        return [x for pair in v.items() for x in pair]
    if isinstance(v, Obj):
        out = [v.callable, v.args, v.kwargs]
        for op in v.ops:
            out.extend(op[1:])
        return out
    return []


def reached_twice(root):
    seen, twice, stack = set(), set(), [root]
    while stack:
        v = stack.pop()
        if not identity_kept(v):
            continue
        if id(v) in seen:
            twice.add(id(v))
            continue
        seen.add(id(v))
        stack.extend(children(v))
    return twice


def b64(data):
    import base64
    return base64.b64encode(bytes(data)).decode("ascii")


def json_str(s):
    if SURROGATE_PAIR.search(s):
        return {"$codepoints": [ord(c) for c in s]}
    return s


def to_json_value(root):
    twice = reached_twice(root)
    ids = {}
    keep = []  # keeps the objects alive so that id() stays unique

    def conv(v):
        keep.append(v)
        if identity_kept(v) and id(v) in twice:
            if id(v) in ids:
                return {"$ref": ids[id(v)]}
            ids[id(v)] = len(ids)
            return {"$id": ids[id(v)], "$value": body(v)}
        return body(v)

    def body(v):
        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, int):
            if abs(v).bit_length() > MAX_DECIMAL_INT_BITS:
                return {"$int": hex(v)}
            return v
        if isinstance(v, float):
            if math.isnan(v):
                return {"$float": "-nan" if math.copysign(1.0, v) < 0 else "nan"}
            if math.isinf(v):
                return {"$float": "inf" if v > 0 else "-inf"}
            return v
        if isinstance(v, str):
            return json_str(v)
        if isinstance(v, bytes):
            return {"$bytes": b64(v)}
        if isinstance(v, bytearray):
            return {"$bytearray": b64(v)}
        if isinstance(v, list):
            return [conv(x) for x in v]
        if isinstance(v, tuple):
            return {"$tuple": [conv(x) for x in v]}
        if isinstance(v, OSet):
            return {"$" + v.kind: [conv(x) for x in v.items]}
        if isinstance(v, dict):
            keys = list(v)
            plain = all(isinstance(k, str) and not SURROGATE_PAIR.search(k) for k in keys) and not (
                keys and keys[0].startswith("$"))
            if plain:
                return {k: conv(x) for k, x in v.items()}
            return {"$dict": [[conv(k), conv(x)] for k, x in v.items()]}
        if isinstance(v, Global):
            return {"$global": [json_str(v.module), json_str(v.name)]}
        if isinstance(v, Obj):
            out = {"form": v.form}
            if v.form in ("persid", "binpersid"):
                out["pid"] = conv(v.args)
            else:
                out["callable"] = conv(v.callable)
                out["args"] = conv(v.args)
                if v.form == "newobj_ex":
                    out["kwargs"] = conv(v.kwargs)
            out["ops"] = [[op[0]] + [conv(x) for x in op[1:]] for op in v.ops]
            return {"$object": out}
        raise TypeError(type(v))

    return conv(root)


def escape_surrogates(text):
    return re.sub("[\ud800-\udfff]", lambda m: "\\u%04x" % ord(m.group()), text)


def to_json(root, indent=None):
    return escape_surrogates(json.dumps(to_json_value(root), ensure_ascii=False, indent=indent))

# ------------------------------------------------------------------------------------------------
# Cases


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y


class Tree:
    """Reduces with list items and dict items, so the object gets append and setitem ops."""

    def __init__(self, items, pairs):
        self.items, self.pairs = items, pairs

    def __reduce__(self):
        return (Tree, (), {"kind": "tree"}, iter(self.items), iter(self.pairs.items()))

    def append(self, item):
        self.items.append(item)


class Keyword:
    def __init__(self, a, *, b):
        self.a, self.b = a, b

    def __getnewargs_ex__(self):
        return ((self.a,), {"b": self.b})


class Stored:
    def __init__(self, key):
        self.key = key


class PidPickler(pickle.Pickler):
    def __init__(self, file, protocol):
        super().__init__(file, protocol)
        self.text_pids = protocol == 0  # PERSID takes an ASCII string

    def persistent_id(self, obj):
        if isinstance(obj, Stored):
            return obj.key if self.text_pids else ("store", obj.key)
        return None


def dumps(value, protocol):
    buffer = io.BytesIO()
    PidPickler(buffer, protocol).dump(value)
    return buffer.getvalue()


def shared_and_cycles():
    inner = [1, 2]
    outer = {"a": inner, "b": inner, "c": (inner, inner)}
    outer["self"] = outer
    return outer


def recursive_tuple():
    holder = []
    t = (holder, "x")
    holder.append(t)
    return t


def memo_doubling(depth):
    v = []
    for _ in range(depth):
        v = [v, v]
    return v


def self_object():
    p = Point(1, 2)
    p.me = p
    return [p, p]


def cases():
    yield "atoms", [None, True, False, 0, 1, -1, 2**31, -2**63, 2**64, -2**100, 2**53 + 1], range(6)
    yield "big_int_hex", [2**14284 - 1, 2**14284, -(2**20000) - 7], [2, 4]
    yield "floats", [0.0, -0.0, 1.0, 1.5, 1e16, 1e-5, 0.0001, 123456789.125, 1e300, 5e-324,
                     float("inf"), float("-inf"), float("nan"), -float("nan")], range(1, 6)
    yield "floats_text", [0.5, 1e22, float("inf")], [0]
    yield "strings", ["", "a", "plain", 'q"b\\s/', "\n\r\t\b\f\x00\x1f\x7f", "é€😀", "\u2028",
                      "\ud800", "x\udfffy", "\udc00\ud800"], range(6)
    yield "surrogate_pair", ["\ud83d\ude00", "a\udbff\udfffb"], range(1, 6)
    yield "bytes", [b"", b"\x00\xff", b"abc", b"abcd", bytearray(b"xy"), bytearray()], range(6)
    yield "containers", [(), (1,), (1, 2, 3), [], [[]], {}, {"k": [1, (2,)]}, {1, 2, 3},
                         frozenset({4}), set()], range(6)
    yield "dict_keys", [{1: "a", 2.5: "b", (1, 2): "c", None: 0, b"k": 1},
                        {"$ref": 1, "x": 2}, {"x": 1, "$ref": 2}, {"\ud83d\ude00": 1}], range(6)
    yield "shared_and_cycles", shared_and_cycles(), range(6)
    yield "recursive_tuple", recursive_tuple(), range(6)
    yield "memo_doubling", memo_doubling(30), range(6)
    yield "shared_bytearray", (lambda b: [b, b])(bytearray(b"z")), range(6)
    yield "globals", [len, collections.OrderedDict, datetime.date, os.path.join], range(6)
    yield "point", Point(1, "two"), range(6)
    yield "self_object", self_object(), range(6)
    yield "reduce_ops", Tree([1, [2]], {"k": "v"}), range(6)
    yield "ordered_dict", collections.OrderedDict([("a", 1), ("b", [2])]), range(6)
    yield "date", [datetime.date(2024, 2, 29), datetime.timedelta(days=1, seconds=2)], range(6)
    yield "newobj_ex", Keyword(1, b=[2]), [4, 5]
    yield "persistent", [Stored("k1"), Stored("k2"), 3], range(6)
    yield "deep_small", (lambda: (lambda v: [v])([[[[["bottom"]]]]]))(), range(6)


# Plain JSON documents for from_json: the differential is pickle.dumps(json.loads(text), protocol).
DOCUMENTS = {
    "scalars": '[null, true, false, 0, -0, 1, -1, 9007199254740993, '
               '123456789012345678901234567890, -0.0, 1.5, 1e400, -1e400, 1E-400, 2.5e-3, 5e-324]',
    "strings": '["", "a", "a", "ab", "ab", "\\u00e9", "é", "\\ud83d\\ude00", "\\ud800", '
               '"\\udc00\\ud800", "\\/\\b\\f\\n\\r\\t\\"\\\\", "€"]',
    "keys": '[{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"name": "id", "id": "name"}, '
            '{"k": 1, "k": 2}, {"": "", "x": "x"}]',
    "nested": '{"a": {"b": {"c": [[], {}, [[[]]], {"d": []}]}}, "e": [1, [2, [3, [4]]]]}',
    "special_floats": '[NaN, Infinity, -Infinity, 1.0, 100.0]',
    "spacing": ' \t\n\r{ "a" : [ 1 , 2 ] , "b" : { } } \n',
    "empty_object": "{}",
    "number": "42",
    "long_list": "[" + ", ".join(str(i * 7919 % 100003) for i in range(600)) + "]",
    "records": json.dumps([{"user": "u%d" % (i % 7), "score": i * 1.25, "tags": ["t", "u%d" % i]}
                           for i in range(60)]),
}


def random_value(rng, budget):
    """A random value with shared parts and cycles, built the way Python code would build it."""
    pool = []

    def scalar():
        return rng.choice([
            None, True, False, rng.randrange(-300, 300), rng.randrange(-2**70, 2**70),
            rng.choice([0.5, -0.0, 1e300, float("inf"), float("nan")]), rng.random(),
            rng.choice(["", "a", "key", "$ref", "\ud800", "\ud83d\ude00", "é\n\"", "x" * 40]),
            bytes(rng.randrange(256) for _ in range(rng.randrange(5))),
            bytearray(b"ba"), collections.OrderedDict, Point(rng.randrange(3), "p"),
        ])

    def value(depth):
        nonlocal budget
        budget -= 1
        if pool and rng.random() < 0.15:
            return rng.choice(pool)
        if depth > 6 or budget <= 0 or rng.random() < 0.4:
            return scalar()
        kind = rng.randrange(6)
        if kind == 0:
            v = [value(depth + 1) for _ in range(rng.randrange(4))]
            if rng.random() < 0.2:
                v.append(v)
        elif kind == 1:
            v = tuple(value(depth + 1) for _ in range(rng.randrange(4)))
        elif kind == 2:
            v = {}
            for _ in range(rng.randrange(4)):
                key = rng.choice(["a", "b", "$x", rng.randrange(5), (1, "t"), None, "\ud800"])
                v[key] = value(depth + 1)
        elif kind == 3:
            v = {rng.randrange(100) for _ in range(rng.randrange(4))}
        elif kind == 4:
            v = frozenset(rng.choice(["s", "t", 7, (2,)]) for _ in range(rng.randrange(3)))
        else:
            v = Point(value(depth + 1), value(depth + 1))
            if rng.random() < 0.3:
                v.me = v
        pool.append(v)
        return v

    return value(0)


def print_random_rows(count, seed):
    """For the live test: rows like to_json.tsv for random values, on standard output."""
    import random
    rng = random.Random(seed)
    sys.setrecursionlimit(100000)
    for i in range(count):
        value = random_value(rng, 40)
        for protocol in range(6):
            data = dumps(value, protocol)
            loaded = inert_loads(data)
            row = "\t".join(["random%d" % i, str(protocol), data.hex(), to_json(loaded),
                             to_json(loaded, indent=2).encode("utf-8").hex()])
            sys.stdout.buffer.write(row.encode("utf-8") + b"\n")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--random":
        print_random_rows(int(sys.argv[2]), int(sys.argv[3]))
        return
    if sys.version_info[:2] != (3, 11):
        sys.exit("run with Python 3.11, the oracle")
    sys.setrecursionlimit(100000)
    os.makedirs(os.path.join(OUT, "documents"), exist_ok=True)
    with open(os.path.join(OUT, "to_json.tsv"), "w", encoding="utf-8", newline="\n") as out:
        for name, value, protocols in cases():
            for protocol in protocols:
                data = dumps(value, protocol)
                loaded = inert_loads(data)
                compact = to_json(loaded)
                indented = to_json(loaded, indent=2)
                json.loads(compact)  # must be valid JSON
                compact.encode("utf-8")  # and valid UTF-8
                assert "\t" not in compact and "\n" not in compact
                out.write("\t".join([name, str(protocol), data.hex(), compact,
                                     indented.encode("utf-8").hex()]) + "\n")
    with open(os.path.join(OUT, "from_json.tsv"), "w", encoding="utf-8", newline="\n") as out:
        for name, text in DOCUMENTS.items():
            with open(os.path.join(OUT, "documents", name + ".json"), "w", encoding="utf-8",
                      newline="\n") as doc:
                doc.write(text)
            for protocol in range(6):
                data = pickle.dumps(json.loads(text), protocol)
                out.write("\t".join([name, str(protocol), text.encode("utf-8").hex(),
                                     data.hex()]) + "\n")


if __name__ == "__main__":
    main()
