#!/usr/bin/env python3
"""Write the CPython expectations for tests/repr_test.cpp and tests/dis_test.cpp.

Run with Python 3.11 (the oracle the library matches), from the repository root:

    python3 tests/gen_repr_dis_cases.py

It writes, one JSON object per line (every value a string, so the C++ side needs only a flat
parser):

  tests/data/repr_cases.jsonl   name, build (the value in a flat prefix notation, or "" when it
                                cannot be written that way), p0..p5 (the pickle at each protocol,
                                hex; absent when pickling fails), r0..r5 (repr(pickle.loads(p))),
                                ascii (ascii() of the last protocol's load), order ("fixed" or "varies":
                                whether CPython's set iteration order is reproducible — it is not
                                when a set holds values with address- or seed-based hashes)
  tests/data/dis_cases.jsonl    name, data (hex), text (what pickletools.dis printed), error and
                                error_type (the exception pickletools raised, if any), genops
                                (one line per opcode: "pos name repr(arg)")
  tests/data/unprintable_ranges.txt
                                the code point ranges for which str.isprintable() is False

Build notation (space-separated tokens, prefix order):
  N | T | F | i<decimal> | f<16 hex digits of the IEEE bits> | s<hex of UTF-8, surrogatepass>
  | b<hex> | B<hex> (bytearray) | t<n> | l<n> | d<n> (n key, value pairs) | S<n> (set) | z<n>
  (frozenset), followed by the n items. An empty hex payload is written as "-".
"""

import copyreg
import io
import json
import math
import os
import pickle
import pickletools
import random
import struct
import subprocess
import sys
import collections
import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")


def hexs(b):
    return b.hex() if b else "-"


def build_notation(value):
    """The prefix notation of `value`, or None when it has shared or recursive containers or kinds
    the notation does not cover."""
    out = []
    seen = set()
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
        elif t in (tuple, list, dict, set, frozenset):
            if id(v) in seen:
                return None
            seen.add(id(v))
            if t is dict:
                out.append("d%d" % len(v))
                items = [x for kv in v.items() for x in kv]
            else:
                out.append({tuple: "t", list: "l", set: "S", frozenset: "z"}[t] + str(len(v)))
                items = list(v)  # sets: their iteration order, which is the order a load adds them
            stack.extend(reversed(items))
        else:
            return None
    return " ".join(out)


def hash_is_fixed(value):
    """Whether CPython 3.11 gives `value` the same hash in every process."""
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t in (bool, int):
            continue
        if t is float:
            if math.isnan(v):
                return False
            continue
        if t in (str, bytes) and len(v) == 0:
            continue
        if t in (tuple, frozenset):
            stack.extend(v)
            continue
        return False
    return True


def order_is_fixed(value):
    stack = [value]
    seen = set()
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        t = type(v)
        if t in (set, frozenset):
            if not all(hash_is_fixed(x) for x in v):
                return False
            stack.extend(v)
        elif t in (tuple, list):
            stack.extend(v)
        elif t is dict:
            stack.extend(v.keys())
            stack.extend(v.values())
    return True


def run_dis(data):
    out = io.StringIO()
    error = error_type = None
    try:
        pickletools.dis(data, out=out)
    except Exception as e:  # pickletools raises ValueError, and IndexError on some marks
        error, error_type = str(e), type(e).__name__
    return out.getvalue(), error, error_type


def run_genops(data):
    lines = []
    try:
        for op, arg, pos in pickletools.genops(data):
            lines.append("%d %s %s" % (pos, op.name, repr(arg)))
    except Exception as e:
        lines.append("error %s: %s" % (type(e).__name__, e))
    return "\n".join(lines)


repr_rows = []
dis_rows = []


def add_dis(name, data, genops=True):
    text, error, error_type = run_dis(data)
    row = {"name": name, "data": hexs(data), "text": text}
    if error is not None:
        row["error"] = error
        row["error_type"] = error_type
    if genops:
        row["genops"] = run_genops(data)
    dis_rows.append(row)


def add_value(name, value, dis=True, dis_limit=6000, protocols=range(6)):
    row = {"name": name, "build": build_notation(value) or "", "order": "fixed" if order_is_fixed(value) else "varies"}
    for proto in protocols:
        try:
            data = pickle.dumps(value, proto)
        except Exception:
            continue
        row["p%d" % proto] = hexs(data)
        loaded = pickle.loads(data)
        try:
            row["r%d" % proto] = repr(loaded)
        except ValueError as e:  # ints beyond sys.get_int_max_str_digits()
            row["r%d" % proto] = "!ValueError: %s" % e
        if proto == max(protocols):
            try:
                row["ascii"] = ascii(loaded)
            except ValueError as e:
                row["ascii"] = "!ValueError: %s" % e
        if dis and len(data) <= dis_limit:
            add_dis("%s/p%d" % (name, proto), data, genops=len(data) <= 600)
    repr_rows.append(row)


# --- values ---------------------------------------------------------------------------------
def values():
    v = []
    v += [("none", None), ("true", True), ("false", False)]
    ints = [0, 1, -1, 2, 100, 255, 256, -255, -256, 65535, 65536, 2**31 - 1, -2**31, 2**31,
            -2**31 - 1, 2**32, 2**63 - 1, 2**63, -2**63, -2**63 - 1, 2**64 - 1, 2**64, -2**64,
            2**61 - 1, 2**61, 10**18, 10**30, -10**30, 2**1000, -(3**500), 10**4299]
    v += [("int %d" % i if abs(i) < 2**70 else "int big%d" % n, i) for n, i in enumerate(ints)]
    floats = [0.0, -0.0, 1.0, -1.0, 0.1, 0.5, 2.5, 1 / 3, 100.0, 123.0, 1e15, 1e16, 1e17,
              123456789012345678.0, 9007199254740993.0, 1e22, 1e-4, 0.0001234, 1e-5, 1.5e-7,
              5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 1.5e300, -1.5e-300,
              float("inf"), float("-inf"), float("nan"), 12345.678, 9999999999999998.0,
              0.30000000000000004, 1e100, 4.35, 1234567890123456.7]
    v += [("float %r" % f, f) for f in floats]
    strs = ["", "a", "abc", "'", '"', "'\"", "it's", 'say "hi"', "both ' and \"", "\\", "a\\b",
            "\t\n\r", "\x00\x01\x1f\x7f", "\x80\x9f\xa0\xad\xff", "é", "€uro", "\u0100\u07ff",
            "\U0001F600", "\u200b", "\u2028\u2029", "\u3000", "\u00a0", " ", "\ud800", "\udfff",
            "\ud83d\ude00", "a\ud800b", "\ue000", "\U000e0001", "\U0010ffff", "\u0378",
            "\U0001FAE8", "\U0001F7F0", "\u0870", "\ufeff", "\ufffe", "\ufffd", "\U000F0000",
            "mixed 'q' é \u2028 \U0001F600 \x00", "\x1b[0m", "line1\nline2", "ASCII only " * 20,
            "\u0300", "\u0660\u0661", "\U00020000", "\U00031350", "\U000323af"]
    v += [("str %s" % ascii(s)[:60], s) for s in strs]
    bs = [b"", b"a", b"'", b'"', b"'\"", b"\\", b"\t\n\r", bytes(range(256)), b"\x7f\x80\xff",
          b"it's", b'say "hi"']
    v += [("bytes %r" % b[:20], b) for b in bs]
    v += [("bytearray %r" % b[:20], bytearray(b)) for b in bs]
    v += [
        ("tuple empty", ()), ("tuple 1", (1,)), ("tuple 2", (1, 2)), ("tuple nested", ((1,), ((),))),
        ("list empty", []), ("list", [1, "a", None, 2.5]), ("list nested", [1, [2, [3, [4]]]]),
        ("dict empty", {}), ("dict", {"a": 1, 2: [3], (4, 5): None}),
        ("dict nested", {1: {2: {3: {}}}}), ("dict float keys", {1.5: "x", -0.0: "y"}),
        ("set empty", set()), ("frozenset empty", frozenset()), ("set 3", {1, 2, 3}),
        ("frozenset 1", frozenset({1})), ("set tuples", {(1, 2), (3, 4), (), (5,)}),
        ("set frozensets", {frozenset({1, 2}), frozenset(), frozenset({3})}),
        ("set mixed numbers", {True, 2.5, -1, 0, 10**20, -2**64, float("inf"), float("-inf")}),
        ("set collide 9 1", {9, 1}), ("set collide 1 9", {1, 9}),
        ("set -1 -2", {-1, -2}), ("set hash mod", {2**61 - 1, 0, 2**61, 1, -2**61}),
        ("set empty str bytes", {"", b"", 0}),
        ("set nested tuples", {((1, 2), (3, (4,))), (1, 2), ((),)}),
        ("frozenset of tuples", frozenset({(1, 2.5), (True, -3)})),
        ("set with str", {"a", "b", 1}), ("set with None", {None, 1}),
        ("set with nan", {float("nan")}), ("set floats", {0.1, 0.2, 0.5, 1e300, -2.5}),
        ("deep list", _deep_list(50)), ("deep tuple", _deep_tuple(50)),
        ("dict of sets", {"s": {1, 2}, "f": frozenset({3})}),
        ("list of bytes", [b"x", bytearray(b"y"), "z"]),
    ]
    a = [1]
    v.append(("shared list", [a, a]))
    l = []
    l.append(l)
    v.append(("recursive list", l))
    d = {}
    d["a"] = d
    v.append(("recursive dict", d))
    t = ([],)
    t[0].append(t)
    v.append(("recursive tuple", t))
    l2 = []
    l2.append({"x": l2, "y": (l2,)})
    v.append(("recursive mixed", l2))
    d2 = {}
    d2[1] = [d2, d2]
    v.append(("recursive dict twice", d2))
    return v


def _deep_list(n):
    x = []
    for i in range(n):
        x = [x, i]
    return x


def _deep_tuple(n):
    x = ()
    for i in range(n):
        x = (x,)
    return x


def int_sets():
    rng = random.Random(20261127)
    out = []
    sizes = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 17, 20, 31, 33, 50, 64, 100, 129, 200, 500, 1000,
             1500, 3000]
    for n in sizes:
        out.append(("intset small n=%d" % n, set(rng.randrange(-50, 500) for _ in range(n))))
        out.append(("intset wide n=%d" % n, set(rng.randrange(-2**70, 2**70) for _ in range(n))))
    for n in [5, 40, 300, 2000]:
        s = set()
        for _ in range(n):  # multiples of table sizes collide on the first probe
            s.add(rng.choice([8, 16, 32, 64, 1024]) * rng.randrange(0, 64) - rng.randrange(0, 3))
        out.append(("intset colliding n=%d" % n, s))
        out.append(("floatset n=%d" % n, set(rng.uniform(-1e6, 1e6) for _ in range(n))))
        out.append(("frozenset ints n=%d" % n, frozenset(rng.randrange(-1000, 1000) for _ in range(n))))
        out.append(("tupleset n=%d" % n, set((rng.randrange(10), rng.randrange(10)) for _ in range(n))))
        # Insertion order differs from iteration order: the pickle lists the original's order.
        s2 = set()
        for x in range(n, 0, -1):
            s2.add(x * 37 % 101)
        out.append(("intset built backwards n=%d" % n, s2))
        out.append(("intset hash-mod n=%d" % n,
                    set((2**61 - 1) * rng.randrange(-3, 3) + rng.randrange(-5, 5) for _ in range(n))))
    # Mixed items with reproducible hashes: floats, big and negative ints, bools, tuples,
    # frozensets, inf, the empty str and bytes.
    def mixed_item(depth=0):
        k = rng.randrange(9 if depth < 2 else 5)
        if k == 0:
            return rng.randrange(-10**6, 10**6)
        if k == 1:
            return rng.choice([-1, 1]) * rng.randrange(2**60, 2**130)
        if k == 2:
            return rng.choice([rng.uniform(-100, 100), rng.random() * 10**rng.randrange(-300, 300),
                               float(rng.randrange(1000)) + 0.5, float("inf"), float("-inf")])
        if k == 3:
            return rng.choice([True, False, "", b""])
        if k == 4:
            return rng.randrange(64) * 2**rng.randrange(0, 64)
        if k in (5, 6):
            return tuple(mixed_item(depth + 1) for _ in range(rng.randrange(4)))
        return frozenset(mixed_item(depth + 1) for _ in range(rng.randrange(5)))
    for n in list(range(1, 40)) + [60, 100, 150, 300]:
        out.append(("mixed hashable set n=%d" % n, set(mixed_item() for _ in range(n))))
        if n % 5 == 0:
            out.append(("mixed hashable frozenset n=%d" % n, frozenset(mixed_item() for _ in range(n))))
    # A set that shrank (removals leave dummies in the original; the load has none).
    s3 = set(range(100))
    for x in range(0, 100, 3):
        s3.discard(x)
    out.append(("intset after removals", s3))
    return out


# Classes for object pickles (dis only: their repr is the library's own documented form).
class Plain:
    def __init__(self):
        self.x = 1
        self.y = [2, 3]


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self):
        self.a = 1
        self.b = "two"


class WithNewArgsEx:
    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        self.args = args

    def __getnewargs_ex__(self):
        return ((1, 2), {"k": 3})


class ListSub(list):
    pass


class DictSub(dict):
    pass


class PidPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, str) and obj.startswith("pid:"):
            return obj[4:]
        if isinstance(obj, tuple) and obj and obj[0] == "bpid":
            return obj
        return None


def object_pickles():
    out = []
    od = collections.OrderedDict([(1, 2), ("a", [3])])
    ls = ListSub([1, 2])
    ds = DictSub(a=1)
    objs = [("ordereddict", od), ("date", datetime.date(1980, 5, 7)),
            ("datetime", datetime.datetime(2020, 1, 2, 3, 4, 5, 6)),
            ("plain", Plain()), ("slotted", Slotted()), ("list subclass", ls),
            ("dict subclass", ds), ("global class", collections.OrderedDict),
            ("global function", len), ("complex", complex(1, -2)),
            ("shared objects", [Plain(), od, od]), ("range", range(1, 10, 2)),
            ("deque", collections.deque([1, 2])), ("counter", collections.Counter("aab"))]
    for name, o in objs:
        for proto in range(6):
            try:
                out.append(("obj %s/p%d" % (name, proto), pickle.dumps(o, proto)))
            except TypeError:  # __slots__ without __getstate__ needs protocol 2
                pass
    out.append(("obj newargs_ex/p4", pickle.dumps(WithNewArgsEx(), 4)))
    out.append(("obj newargs_ex/p2", pickle.dumps(WithNewArgsEx(), 2)))
    for proto in range(6):
        f = io.BytesIO()
        PidPickler(f, proto).dump(["pid:abc", ("bpid", 1), "plain"])
        out.append(("persid/p%d" % proto, f.getvalue()))
    copyreg.add_extension("collections", "OrderedDict", 1)
    copyreg.add_extension("datetime", "date", 300)
    copyreg.add_extension("datetime", "timedelta", 70000)
    try:
        for proto in (2, 3, 4):
            out.append(("ext codes/p%d" % proto,
                        pickle.dumps([collections.OrderedDict, datetime.date, datetime.timedelta],
                                     proto)))
    finally:
        copyreg.remove_extension("collections", "OrderedDict", 1)
        copyreg.remove_extension("datetime", "date", 300)
        copyreg.remove_extension("datetime", "timedelta", 70000)
    bufs = []
    out.append(("buffers oob/p5", pickle.dumps(
        [pickle.PickleBuffer(b"ro"), pickle.PickleBuffer(bytearray(b"rw"))], 5,
        buffer_callback=bufs.append)))
    out.append(("buffers inband/p5", pickle.dumps(
        [pickle.PickleBuffer(b"ro"), pickle.PickleBuffer(bytearray(b"rw"))], 5)))
    out.append(("big frame/p4", pickle.dumps(list(range(3000)), 4)))
    out.append(("long bytes/p4", pickle.dumps([b"x" * 66000, bytearray(300)], 4)))
    out.append(("long bytes/p5", pickle.dumps([bytearray(300), b"z" * 300], 5)))
    return out


def python2_pickles():
    prog = r"""
import pickle, cPickle, sys, binascii, collections
class Old:
    def __init__(self): self.a = 1
class New(object):
    def __init__(self): self.b = 2
vals = [('str', 'abc'), ('str quote', "it's \"x\"\n\x00\xff"), ('unicode', u'caf\xe9 \u20ac'),
        ('long', 12345678901234567890123L), ('int', 7), ('float', 0.1), ('mixed', [1, 'a', u'b', (2.5, None)]),
        ('dict', {'k': [1L, -2L]}), ('old instance', Old()), ('new instance', New()),
        ('bool', (True, False)), ('big long', -2L**200)]
for name, v in vals:
    for proto in (0, 1, 2):
        for mod in (pickle, cPickle):
            sys.stdout.write('%s/%s/p%d %s\n' % (name.replace(' ', '_'), mod.__name__, proto,
                             binascii.hexlify(mod.dumps(v, proto))))
"""
    env = dict(os.environ, PYENV_VERSION="2.7.18")
    try:
        text = subprocess.run(["python2.7", "-c", prog], env=env, capture_output=True, text=True,
                              check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit("python2.7 is needed for the Python 2 pickles: %s" % e)
    out = []
    for line in text.splitlines():
        name, h = line.split(" ")
        out.append(("py2 " + name, bytes.fromhex(h)))
    return out


def malformed():
    m = [
        b"", b"N", b"\xff", b"N\xff.", b"a.", b"0.", b"N(.", b"(.", b"e.", b"]e.", b"N(e.", b"1.",
        b"(1N.", b"(N0.", b"(Na.", b"(Nae.", b"(N(Nae.", b"t.", b"Np0\np0\n.", b"g0\n.",
        b"(p0\n.", b"p0\n.", b"Np1\nN\x94.", b"\x80\x04N\x94\x94.", b"h\x05.", b"j\x05\x00\x00\x00.",
        b"Nq\x01q\x01.", b"Nr\x00\x00\x01\x00r\x00\x00\x01\x00.", b"\x94.", b"N.N.", b"NN.",
        b"I1_0\n.", b"I 12 \n.", b"I01\n.", b"I00\n.", b"I-0\n.", b"I+5\n.", b"Iabc\n.",
        b"I\n.", b"I12L\n.", b"I__1\n.", b"I1__2\n.", b"I1_\n.", b"I_1\n.", b"I\xff\n.",
        b"L12L\n.", b"L\n.", b"L-99999999999999999999999\n.", b"LL\n.", b"I12", b"I12\n",
        b"I" + b"1" * 4301 + b"\n.", b"I" + b"1" * 4300 + b"\n.", b"I" + b"1" * 4301 + b"x\n.",
        b"L" + b"9" * 5000 + b"L\n.", b"I-" + b"0" * 4301 + b"\n.",
        b"\x8b\x00\x08\x00\x00" + b"\x01" * 0x800 + b".",  # LONG4 with > 4300 digits
        b"\x8a\xff" + b"\xff" * 255 + b".", b"\x8a\x00.", b"\x8a\x01\x80.", b"\x8a\x05\x01",
        b"\x8b\xff\xff\xff\xff.", b"\x8b\x01\x00\x00\x00",
        b"F1.5\n.", b"F1e500\n.", b"F-1e500\n.", b"Fnan\n.", b"F-nan\n.", b"F-inf\n.",
        b"FInfinity\n.", b"F1_0.5\n.", b"F 2.5 \n.", b"Fabc\n.", b"F\n.", b"F1e\n.", b"F.5\n.",
        b"F5.\n.", b"F1_\n.", b"F0x10\n.", b"F1e-400\n.", b"F0.000001e-320\n.", b"F12345e-330\n.", b"F0.0001e309\n.", b"F99e307\n.",
        b"F2.4703282292062328e-324\n.", b"F2.4703282292062327e-324\n.", b"F000.5e1\n.", b"F1e0400\n.", b"F-0\n.", b"F1.0000000000000001\n.",
        b"G\x7f\xf8\x00\x00\x00\x00\x00\x00.", b"G\xff\xf0\x00\x00\x00\x00\x00\x00.",
        b"G\x80\x00\x00\x00\x00\x00\x00\x00.", b"G\x00\x00\x00\x00\x00\x00\x00\x01.", b"G\x00",
        b"S'abc'\n.", b'S"abc"\n.', b"S'a\\x4'\n.", b"S'a\\x41'\n.", b"S'abc\n.", b"Sabc\n.",
        b"S'\\xff'\n.", b"S'\xff'\n.", b"S'\\'\n.", b"S'\\q'\n.", b"S'\\101\\0\\777'\n.",
        b"S'\\n\\t\\r\\a\\b\\f\\v\\'\\\"\\\\'\n.", b"S'\n.", b"S\"'\n.", b"S''\n.", b"S\n.",
        b"S'a'b'\n.", b"S'abc'", b"S'\\x'\n.", b"S'\\x4g'\n.",
        b"T\x03\x00\x00\x00abc.", b"T\xff\xff\xff\xffabc.", b"T\x05\x00\x00\x00abc.",
        b"U\x03ab\xff.", b"U\x05abc.",
        b"Vabc\n.", b"Vabc\\u00e9\\U0001F600\n.", b"Vabc\\u12\n.", b"V\\U00110000\n.",
        b"V\\\\u0041\n.", b"V\\x41\n.", b"V\\\n.", b"V\xe9\n.", b"V\\U0000d800\n.", b"Vabc",
        b"V\\u12", b"V\\u12zz\n.",
        b"X\x02\x00\x00\x00\xff\xfe.", b"X\x03\x00\x00\x00\xed\xa0\x80.",
        b"X\x06\x00\x00\x00\xed\xa0\xbd\xed\xb8\x80.", b"X\x02\x00\x00\x00\xed\xa0.",
        b"X\x04\x00\x00\x00\xf0\x9f\x98.", b"X\x01\x00\x00\x00\xc0.", b"X\x02\x00\x00\x00\xc2\x41.",
        b"X\x04\x00\x00\x00\xf4\x90\x80\x80.", b"X\x09\x00\x00\x00abc.",
        b"\x8c\x03\xed\xa0\x80.", b"\x8c\x05ab.", b"\x8d\x02\x00\x00\x00\x00\x00\x00\x00ab.",
        b"\x8d\x02\x00\x00\x00\x00\x00\x00\x80ab.",
        b"B\x03\x00\x00\x00abc.", b"B\x03\x00\x00\x00ab", b"C\x02'\".", b"C\x05ab",
        b"\x8e\x01\x00\x00\x00\x00\x00\x00\x00a.", b"\x8e\x01\x00\x00\x00\x00\x00\x00\x80a.",
        b"\x96\x02\x00\x00\x00\x00\x00\x00\x00ab.", b"\x96\x03\x00\x00\x00\x00\x00\x00\x00ab.",
        b"\x97.", b"\x97\x98.", b"\x98.",
        b"cmod\nname\n.", b"cmod\n.", b"cmod", b"c\n\n.", b"cmo d\nna'me\n.", b"cm\\x41\nn\n.",
        b"cm\xe9\nn\n.", b"cm\\\nn\n.",
        b"(cmod\nname\ni.", b"(imod\nname\n.", b"imod\nname\n.", b"(N(cmod\nC\no.",
        b"\x8c\x03mod\x8c\x04name\x93.", b"N\x93.", b"\x8c\x01a\x94\x8c\x01b\x94\x93\x94.",
        b"NNR.", b"NN\x81.", b"NNN\x92.", b"NNb.", b"N\x85\x86.",
        b"Pabc\n.", b"P\xff\n.", b"P\\x41\n.", b"NQ.", b"Q.",
        b"\x82\x01.", b"\x83\x01\x02.", b"\x84\x01\x02\x03\x04.", b"\x84\xff\xff\xff\xff.",
        b"\x80\x02N.", b"\x80\xc8N.", b"\x80", b"\x80\x05\x95\x03\x00\x00\x00\x00\x00\x00\x00N.",
        b"\x95\x01\x00\x00", b"\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\xffN.",
        b"(lp0\nI1\naI2\na.", b"(dp0\nS'a'\np1\nI1\ns.", b"(t.", b"}(NN\x8f(NN.",
        b"((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((ll.",
        b"\x80\x02]q\x00(K\x01K\x02e.extra", b"\x80\x04\x8f(K\x01\x90.", b"(K\x01\x91.",
        b"K\x01K\x021.", b"(1.", b"N(1N.",
        b"I09\n.", b"I010\n.", b"I-007\n.", b"L010L\n.", b"L0\n.", b"I000\n.", b"I0x10\n.",
        b"I" + b"x" * 300 + b"\n.", b"I" + b"'" * 150 + b"\n.", b"I" + b"\xff" * 100 + b"\n.",
        b"F" + b"y" * 300 + b"\n.", b"L" + b"9" * 300 + b"x\n.", b"g01\n.", b"p00\nI0\np00\n.",
        b"NI0\np00\ng0\n.", b"Np-1\ng-1\n.", b"Np 7 \ng7\n.", b"Np1_0\ng10\n.",
        b"(\x29\x29\x29\x29\x29\x29\x29\x29\x29\x29\x29\x29\x29\x29\x29\x29\x29\x29\x29\x29l.",
    ]
    out = [("malformed %r" % b[:40], b) for b in m]
    # Every prefix of a few valid pickles: truncation at each argument kind.
    samples = [pickle.dumps([1, 300, 70000, 2**40, -1.5, "é", b"by", None, True, (1,), {2: 3},
                             {4}, frozenset({5}), bytearray(b"ba")], p) for p in (0, 2, 5)]
    for p, s in zip((0, 2, 5), samples):
        for cut in range(len(s)):
            out.append(("prefix p%d cut %d" % (p, cut), s[:cut]))
    return out


def unprintable_ranges():
    ranges = []
    start = None
    for cp in range(0x110001):
        bad = cp <= 0x10FFFF and not chr(cp).isprintable()
        if bad and start is None:
            start = cp
        elif not bad and start is not None:
            ranges.append((start, cp - 1))
            start = None
    return ranges


def main():
    if os.environ.get("PYTHONHASHSEED") != "0":
        # str/bytes set orders then repeat from run to run, which keeps the committed data stable.
        os.execve(sys.executable, [sys.executable] + sys.argv, dict(os.environ, PYTHONHASHSEED="0"))
    if sys.version_info[:2] != (3, 11):
        print("warning: the expectations are meant to come from Python 3.11", file=sys.stderr)
    for name, value in values():
        add_value(name, value)
    for name, value in int_sets():
        # Large sets: two protocols suffice (set(list) reduce and ADDITEMS build the same table).
        add_value(name, value, protocols=range(6) if len(value) <= 200 else (2, 4), dis_limit=2500)
    for name, data in object_pickles():
        add_dis(name, data, genops=len(data) <= 600)
    for name, data in python2_pickles():
        add_dis(name, data)
    for name, data in malformed():
        add_dis(name, data, genops=len(data) <= 600)
    os.makedirs(DATA, exist_ok=True)
    for fname, rows in (("repr_cases.jsonl", repr_rows), ("dis_cases.jsonl", dis_rows)):
        with open(os.path.join(DATA, fname), "w", encoding="utf-8", newline="\n") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=True) + "\n")
    with open(os.path.join(DATA, "unprintable_ranges.txt"), "w") as f:
        f.write("# code points c for which chr(c).isprintable() is False in Python %d.%d\n"
                % sys.version_info[:2])
        for a, b in unprintable_ranges():
            f.write("%x %x\n" % (a, b))
    print("repr cases: %d, dis cases: %d" % (len(repr_rows), len(dis_rows)))


if __name__ == "__main__":
    main()
