#!/usr/bin/env python3
"""Write the CPython expectations for tests/types_test.cpp (pickle/types.hpp).

Run from the repository root with any Python 3; it re-runs itself under each pyenv interpreter:

    python3 tests/gen_types_cases.py

and writes, one JSON object per line (every value a string):

  tests/types/stdlib-3.<minor>.jsonl   for 3.8 … 3.13: the standard-library objects of CASES at
      protocols 0–5: name, minor, proto, data (the pickle, hex), and of the object Python loads
      from it: repr (repr() in that version), type (the Python type's name), fields (its contents
      in the flat text form described at fields() below)

  tests/types/decimal-strings.jsonl    text, str: str(decimal.Decimal(text)), or "ValueError"

  tests/types/numpy-emulated.jsonl     numpy arrays, dtypes and scalars. numpy is NOT installed
      here: these pickles come from an EMULATION of numpy's reductions (stub classes registered
      under numpy's module names, below), written from numpy's C sources (methods.c array_reduce /
      array_reduce_ex, descriptor.c arraydescr_reduce, scalartypes.c gentype_reduce), both numpy 1.x
      2.x (numpy._core.*) names only: numpy 1.x's own output is tests/types/numpy-1.24.jsonl, from
      real numpy (tests/gen_numpy_cases.py). They are not numpy's output and carry no reprs.
      Columns: name, proto, data, buffers (out-of-band buffers, hex, comma-separated, "" for none),
      type (ndarray/dtype/scalar), dtype (byte order + code, e.g. <i4), shape (comma-separated),
      fortran (0/1) (an empty buffer is "-"), values (the elements in C order, space-separated: ints in decimal, floats and
      complex parts as the hex of their IEEE bits, bools 0/1), generation (1 or 2).
"""

import json
import os
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "types")
VERSIONS = ["3.8.18", "3.9.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0"]


def float_bits(x):
    return struct.pack(">d", x).hex()


def tz_fields(tz):
    import datetime
    if tz is None:
        return "none"
    if type(tz) is datetime.timezone:
        offset = tz.utcoffset(None)
        us = (offset.days * 86400 + offset.seconds) * 1000000 + offset.microseconds
        args = tz.__getinitargs__()
        name = args[1] if len(args) == 2 else "-"
        return "tz:%d:%s" % (us, name)
    return "other"


def fields(obj):
    """The object's contents as flat text, by type (the C++ test prints its typed view alike)."""
    import argparse, collections, datetime, decimal, fractions, types, uuid
    t = type(obj)
    if t is datetime.date:
        return "%d %d %d" % (obj.year, obj.month, obj.day)
    if t is datetime.time:
        return "%d %d %d %d %d %s" % (obj.hour, obj.minute, obj.second, obj.microsecond, obj.fold,
                                      tz_fields(obj.tzinfo))
    if t is datetime.datetime:
        return "%d %d %d %d %d %d %d %d %s" % (obj.year, obj.month, obj.day, obj.hour, obj.minute,
                                               obj.second, obj.microsecond, obj.fold,
                                               tz_fields(obj.tzinfo))
    if t is datetime.timedelta:
        return "%d %d %d" % (obj.days, obj.seconds, obj.microseconds)
    if t is datetime.timezone:
        return tz_fields(obj)
    if t is decimal.Decimal:
        return str(obj)
    if t is fractions.Fraction:
        return "%d %d" % (obj.numerator, obj.denominator)
    if t is complex:
        return "%s %s" % (float_bits(obj.real), float_bits(obj.imag))
    if t is uuid.UUID:
        safe = "none" if obj.is_safe is uuid.SafeUUID.unknown else str(obj.is_safe.value)
        return "%s %s" % (obj.hex, safe)
    if t is range:
        return "%d %d %d" % (obj.start, obj.stop, obj.step)
    if t is slice:
        return "%r %r %r" % (obj.start, obj.stop, obj.step)
    if t is collections.OrderedDict:
        return "n=%d attributes=%d" % (len(obj), len(vars(obj)))
    if t is collections.defaultdict:
        f = obj.default_factory
        return "factory=%s n=%d" % ("None" if f is None else f.__module__ + "." + f.__qualname__, len(obj))
    if t is collections.Counter:
        return "n=%d" % len(obj)
    if t is collections.deque:
        return "n=%d maxlen=%s" % (len(obj), obj.maxlen)
    if t is types.SimpleNamespace or t is argparse.Namespace:
        return "keys=" + ",".join(vars(obj))
    if isinstance(obj, __import__("enum").Enum):
        return "cls=%s.%s value=%r" % (t.__module__, t.__qualname__, obj.value)
    raise TypeError(t)


class Color(__import__("enum").Enum):
    RED = 1
    GREEN = "g"


class Level(__import__("enum").IntEnum):
    LOW = 10


def type_name(obj):
    import enum
    if isinstance(obj, enum.Enum):
        return "enum member"
    t = type(obj)
    if t.__module__ == "builtins":
        return t.__qualname__
    if t.__module__ in ("types", "argparse"):
        return "namespace"
    return t.__module__ + "." + t.__qualname__


def stdlib_cases():
    import argparse, collections, datetime, decimal, fractions, types, uuid
    D = datetime
    utc = D.timezone.utc
    est = D.timezone(D.timedelta(hours=-5), "EST")
    ist = D.timezone(D.timedelta(hours=5, minutes=30))

    od_attr = collections.OrderedDict([("k", 1)])
    od_attr.note = "x"
    ns_odd = argparse.Namespace(b=1, **{"a b": 2})
    cases = [
        ("date", D.date(2024, 2, 29)),
        ("date min", D.date(1, 1, 1)),
        ("date max", D.date(9999, 12, 31)),
        ("time midnight", D.time(0, 0)),
        ("time seconds", D.time(1, 2, 3)),
        ("time micro", D.time(1, 2, 3, 4)),
        ("time fold", D.time(23, 59, 59, 999999, fold=1)),
        ("time utc", D.time(1, 2, tzinfo=utc)),
        ("time ist", D.time(12, 30, tzinfo=ist)),
        ("datetime naive", D.datetime(2024, 2, 29, 1, 2, 3, 4)),
        ("datetime minutes", D.datetime(2000, 1, 1, 0, 0)),
        ("datetime fold", D.datetime(2021, 11, 7, 1, 30, fold=1)),
        ("datetime utc", D.datetime(2024, 2, 29, 12, 0, tzinfo=utc)),
        ("datetime est", D.datetime(2024, 2, 29, 1, 2, 3, 4, tzinfo=est)),
        ("datetime microsecond offset", D.datetime(2020, 5, 17, tzinfo=D.timezone(D.timedelta(microseconds=1)))),
        ("timedelta zero", D.timedelta(0)),
        ("timedelta", D.timedelta(1, 2, 3)),
        ("timedelta negative", D.timedelta(-1)),
        ("timedelta micro", D.timedelta(microseconds=-1)),
        ("timedelta max", D.timedelta.max),
        ("timedelta min", D.timedelta.min),
        ("timezone utc", utc),
        ("timezone plus", D.timezone(D.timedelta(hours=1))),
        ("timezone named", est),
        ("timezone named utc", D.timezone(D.timedelta(0), "UTC")),
        ("timezone unicode", D.timezone(D.timedelta(hours=9), "\u6771\u4eac")),
        ("decimal", decimal.Decimal("3.14")),
        ("decimal trailing zero", decimal.Decimal("1.10")),
        ("decimal negative zero", decimal.Decimal("-0")),
        ("decimal exponent", decimal.Decimal("1E+2")),
        ("decimal small", decimal.Decimal("0.000001")),
        ("decimal smaller", decimal.Decimal("1E-7")),
        ("decimal big", decimal.Decimal("123456789012345678901234567890.5")),
        ("decimal nan", decimal.Decimal("NaN")),
        ("decimal snan", decimal.Decimal("-sNaN123")),
        ("decimal inf", decimal.Decimal("-Infinity")),
        ("fraction", fractions.Fraction(1, 3)),
        ("fraction negative", fractions.Fraction(-5, 7)),
        ("fraction integer", fractions.Fraction(4)),
        ("fraction big", fractions.Fraction(2 ** 80 + 1, 3 ** 40)),
        ("complex", 1 + 2j),
        ("complex imaginary", 2.5j),
        ("complex negative zero", complex(0.0, -0.0)),
        ("complex negative real zero", complex(-0.0, 1)),
        ("complex big nan", complex(1e16, float("nan"))),
        ("complex inf", complex(float("inf"), float("-inf"))),
        ("complex zero", 0j),
        ("uuid", uuid.UUID(int=5)),
        ("uuid random", uuid.UUID("12345678-1234-5678-1234-567812345678")),
        ("uuid safe", uuid.UUID(int=2 ** 128 - 1, is_safe=uuid.SafeUUID.safe)),
        ("uuid unsafe", uuid.UUID(int=7, is_safe=uuid.SafeUUID.unsafe)),
        ("range", range(10)),
        ("range step", range(1, 10, 2)),
        ("range negative", range(5, -5, -1)),
        ("range big", range(2 ** 70)),
        ("slice", slice(1, None, 2)),
        ("slice stop", slice(3)),
        ("slice objects", slice("a", [1], 2.5)),
        ("ordereddict empty", collections.OrderedDict()),
        ("ordereddict", collections.OrderedDict([(1, 2), ("a", [3])])),
        ("ordereddict attributes", od_attr),
        ("defaultdict list", collections.defaultdict(list, {1: 2})),
        ("defaultdict none", collections.defaultdict(None, {"a": 1})),
        ("defaultdict int empty", collections.defaultdict(int)),
        ("defaultdict ordereddict", collections.defaultdict(collections.OrderedDict)),
        ("counter", collections.Counter("abracadabra")),
        ("counter empty", collections.Counter()),
        ("counter floats", collections.Counter({"x": 2.5, "y": 1, "z": 3})),
        ("deque maxlen", collections.deque([1, 2], maxlen=5)),
        ("deque", collections.deque([1, "two", [3]])),
        ("deque empty", collections.deque()),
        ("deque maxlen zero", collections.deque(maxlen=0)),
        ("simplenamespace", types.SimpleNamespace(b=1, a=2)),
        ("simplenamespace empty", types.SimpleNamespace()),
        ("argparse namespace", argparse.Namespace(b=1, a=[2])),
        ("argparse namespace empty", argparse.Namespace()),
        ("argparse namespace odd key", ns_odd),
        ("enum", Color.RED),
        ("enum str", Color.GREEN),
        ("intenum", Level.LOW),
    ]
    shared = D.datetime(2024, 1, 1, tzinfo=est)
    composites = [
        ("composite shared tzinfo", [shared, D.datetime(2024, 1, 2, tzinfo=est), shared]),
        ("composite nested", collections.OrderedDict([("when", D.date(2024, 2, 29)),
                                                      ("price", decimal.Decimal("9.99")),
                                                      ("tags", collections.deque(["a"]))])),
        ("composite dict of decimals", {decimal.Decimal("1"): fractions.Fraction(1, 2)}),
    ]
    return cases, composites


def write_stdlib():
    cases, composites = stdlib_cases()
    minor = sys.version_info[1]
    rows = []
    for name, obj in cases + composites:
        for proto in range(0, 6):
            data = __import__("pickle").dumps(obj, proto)
            # What Python reads back (a time's fold is not written below protocol 4).
            loaded = __import__("pickle").loads(data)
            composite = name.startswith("composite")
            rows.append({"name": name, "minor": str(minor), "proto": str(proto), "data": data.hex(),
                         "repr": repr(loaded),
                         "type": "composite" if composite else type_name(loaded),
                         "fields": "" if composite else fields(loaded)})
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "stdlib-3.%d.jsonl" % minor), "w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=True) + "\n")


# --- numpy emulation ---------------------------------------------------------------------------
#
# Stub classes that reduce exactly as numpy's C code does (see the module docstring), registered
# in sys.modules under numpy's names so that pickle writes numpy's globals.

def install_numpy_stub(generation):
    import pickle
    import types as pytypes
    core = "numpy.core" if generation == 1 else "numpy._core"
    for name in ["numpy", "numpy.core", "numpy._core", core + ".multiarray", core + ".numeric"]:
        sys.modules.setdefault(name, pytypes.ModuleType(name))
    np = sys.modules["numpy"]
    multiarray = sys.modules[core + ".multiarray"]
    numeric = sys.modules[core + ".numeric"]

    class dtype:
        _cache = {}

        def __new__(cls, code, byteorder):
            key = (code, byteorder)
            if key not in cls._cache:  # numpy's builtin dtypes are singletons
                self = object.__new__(cls)
                self.code, self.byteorder = code, byteorder
                cls._cache[key] = self
            return cls._cache[key]

        @property
        def itemsize(self):
            n = int(self.code[1:])
            return n * 4 if self.code[0] == "U" else n

        def __reduce__(self):
            kind = self.code[0]
            elsize = self.itemsize if kind in "SUV" else -1
            alignment = 4 if kind == "U" else (1 if kind in "SV" else -1)
            flags = 63 if kind == "O" else 0
            return (dtype, (self.code, False, True),
                    (3, self.byteorder, None, None, None, elsize, alignment, flags))

    dtype.__module__, dtype.__qualname__, dtype.__name__ = "numpy", "dtype", "dtype"

    class ndarray:
        def __init__(self, dt, shape, memory, fortran, contiguous=True):
            self.dtype, self.shape, self.memory = dt, shape, memory
            self.fortran, self.contiguous = fortran, contiguous

        def __reduce__(self):
            # array_reduce: _reconstruct(ndarray, (0,), b'b') with state (1, shape, dtype,
            # is_fortran, data in the array's order)
            # numpy builds new tuples for (0,) and the shape on every call (never shared).
            return (_reconstruct, (ndarray, tuple([0]), b"b"),
                    (1, tuple(list(self.shape)), self.dtype, self.fortran, bytes(self.memory)))

        def __reduce_ex__(self, protocol):
            if protocol < 5 or not self.contiguous or self.dtype.code[0] == "O":
                return self.__reduce__()
            # array_reduce_ex_picklebuffer: a PickleBuffer of the (writable) array memory.
            return (_frombuffer, (pickle.PickleBuffer(self.memory), self.dtype, tuple(list(self.shape)),
                                  "F" if self.fortran else "C"))

    ndarray.__module__, ndarray.__qualname__, ndarray.__name__ = "numpy", "ndarray", "ndarray"

    class generic:
        def __init__(self, dt, raw):
            self.dtype, self.raw = dt, raw

        def __reduce__(self):
            return (scalar, (self.dtype, self.raw))

    def _reconstruct(*args):
        raise NotImplementedError

    def _frombuffer(*args):
        raise NotImplementedError

    def scalar(*args):
        raise NotImplementedError

    for function in (_reconstruct, _frombuffer, scalar):
        function.__qualname__ = function.__name__
    _reconstruct.__module__ = scalar.__module__ = core + ".multiarray"
    _frombuffer.__module__ = core + ".numeric"
    np.dtype, np.ndarray = dtype, ndarray
    multiarray._reconstruct, multiarray.scalar = _reconstruct, scalar
    numeric._frombuffer = _frombuffer
    return dtype, ndarray, generic


STRUCT_CODES = {("b", 1): "?", ("i", 1): "b", ("i", 2): "h", ("i", 4): "i", ("i", 8): "q",
                ("u", 1): "B", ("u", 2): "H", ("u", 4): "I", ("u", 8): "Q", ("f", 2): "e",
                ("f", 4): "f", ("f", 8): "d", ("c", 8): "ff", ("c", 16): "dd"}


def pack_values(code, byteorder, values):
    kind, size = code[0], int(code[1:])
    fmt = STRUCT_CODES[(kind, size)]
    order = ">" if byteorder == ">" else "<"
    out = b""
    for v in values:
        if kind == "c":
            out += struct.pack(order + fmt, v.real, v.imag)
        else:
            out += struct.pack(order + fmt, v)
    return out


def value_text(kind, v):
    if kind == "b":
        return "1" if v else "0"
    if kind == "f":
        return float_bits(float(v))
    if kind == "c":
        return float_bits(v.real) + ":" + float_bits(v.imag)
    return str(v)


def fortran_order(values, shape):
    """The C-order `values` of an array of `shape`, listed in Fortran order."""
    import itertools
    strides_c = []
    step = 1
    for dim in reversed(shape):
        strides_c.insert(0, step)
        step *= dim
    out = []
    for index in itertools.product(*[range(d) for d in reversed(shape)]):
        index = tuple(reversed(index))
        out.append(values[sum(i * s for i, s in zip(index, strides_c))])
    return out


def write_numpy():
    import pickle
    rows = []
    specs = [
        ("int32 2x2", "i4", "<", (2, 2), [1, 2, 3, 4], False, True),
        ("int64 vector", "i8", "<", (3,), [1, -2, 2 ** 62], False, True),
        ("uint8", "u1", "|", (4,), [0, 1, 128, 255], False, True),
        ("int8", "i1", "|", (3,), [-128, 0, 127], False, True),
        ("uint16 big-endian", "u2", ">", (2,), [1, 65535], False, True),
        ("int16", "i2", "<", (2,), [-1, 300], False, True),
        ("uint32", "u4", "<", (1,), [4000000000], False, True),
        ("uint64", "u8", "<", (2,), [0, 2 ** 64 - 1], False, True),
        ("bool", "b1", "|", (3,), [True, False, True], False, True),
        ("float64 2x3", "f8", "<", (2, 3), [0.5, 1.0, 2.5, -3.0, 4.25, 1e300], False, True),
        ("float32", "f4", "<", (2,), [1.5, -0.25], False, True),
        ("float16", "f2", "<", (2,), [1.0, 0.5], False, True),
        ("float64 big-endian", "f8", ">", (2,), [1.5, -2.0], False, True),
        ("int32 big-endian 3x2", "i4", ">", (3, 2), [1, 2, 3, 4, 5, 6], False, True),
        ("complex128", "c16", "<", (2,), [1 + 2j, -0.5j], False, True),
        ("complex64", "c8", "<", (1,), [3 - 4j], False, True),
        ("fortran float64 2x3", "f8", "<", (2, 3), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], True, True),
        ("fortran int32 3x2x2", "i4", "<", (3, 2, 2), list(range(12)), True, True),
        ("0-d", "i8", "<", (), [42], False, True),
        ("0-d float", "f8", "<", (), [1.5], False, True),
        ("empty", "f8", "<", (0,), [], False, True),
        ("empty 2-d", "i4", "<", (0, 3), [], False, True),
        ("3-d", "i2", "<", (2, 2, 2), list(range(8)), False, True),
        ("non-contiguous slice", "i8", "<", (3,), [0, 2, 4], False, False),
        ("bytes S3", "S3", "|", (2,), None, False, True),
        ("str U2", "U2", "<", (2,), None, False, True),
    ]
    for generation in (2,):  # numpy 1.x: real numpy's output, tests/gen_numpy_cases.py
        for name in list(sys.modules):
            if name == "numpy" or name.startswith("numpy."):
                del sys.modules[name]
        dtype, ndarray, generic = install_numpy_stub(generation)
        for name, code, order, shape, values, fortran, contiguous in specs:
            dt = dtype(code, order)
            if values is None:  # S/U: raw bytes, no numeric values
                raw = b"ab\x00cd\x00" if code == "S3" else "hiyo".encode("utf-32-le")
                text = ""
            else:
                in_memory = fortran_order(values, shape) if fortran else values
                raw = pack_values(code, order, in_memory)
                text = " ".join(value_text(code[0], v) for v in values)
            array = ndarray(dt, shape, bytearray(raw), fortran, contiguous)
            for proto in range(0, 6):
                for out_of_band in ([False, True] if proto == 5 else [False]):
                    buffers = []
                    callback = (lambda b: buffers.append(b.raw().tobytes()) or False) if out_of_band else None
                    data = pickle.dumps(array, proto, buffer_callback=callback)
                    rows.append({"name": name + (" out-of-band" if out_of_band else ""),
                                 "proto": str(proto), "data": data.hex(),
                                 "buffers": ",".join(b.hex() or "-" for b in buffers), "type": "ndarray",
                                 "dtype": order + code, "shape": ",".join(map(str, shape)),
                                 "fortran": "1" if fortran else "0", "values": text,
                                 "generation": str(generation)})
        # Two arrays sharing their dtype object (numpy's builtin dtypes are singletons).
        dt = dtype("f8", "<")
        pair = [ndarray(dt, (1,), bytearray(pack_values("f8", "<", [1.0])), False),
                ndarray(dt, (1,), bytearray(pack_values("f8", "<", [2.0])), False)]
        for proto in range(0, 6):
            rows.append({"name": "list of two arrays", "proto": str(proto),
                         "data": pickle.dumps(pair, proto).hex(), "buffers": "", "type": "list",
                         "dtype": "<f8", "shape": "1", "fortran": "0",
                         "values": float_bits(1.0) + " " + float_bits(2.0),
                         "generation": str(generation)})
        for name, code, order, value in [("scalar float64", "f8", "<", 1.5), ("scalar int32", "i4", "<", 7),
                                         ("scalar bool", "b1", "|", True),
                                         ("scalar int64 big-endian", "i8", ">", -3)]:
            scalar = generic(dtype(code, order), pack_values(code, order, [value]))
            for proto in range(0, 6):
                rows.append({"name": name, "proto": str(proto), "data": pickle.dumps(scalar, proto).hex(),
                             "buffers": "", "type": "scalar", "dtype": order + code, "shape": "",
                             "fortran": "0", "values": value_text(code[0], value),
                             "generation": str(generation)})
        for proto in range(0, 6):
            rows.append({"name": "dtype int16 big-endian", "proto": str(proto),
                         "data": pickle.dumps(dtype("i2", ">"), proto).hex(), "buffers": "",
                         "type": "dtype", "dtype": ">i2", "shape": "", "fortran": "0", "values": "",
                         "generation": str(generation)})
        # Object arrays: recognised, kept generic.
        obj_array = ndarray(dtype("O8", "|"), (2,), bytearray(), False)
        obj_array.__reduce__ = None
        state = (1, (2,), dtype("O8", "|"), False, [1, "two"])
        for proto in range(0, 6):
            ma = sys.modules[("numpy.core" if generation == 1 else "numpy._core") + ".multiarray"]
            data = pickle.dumps(_ReduceAs((ma._reconstruct, (ndarray, (0,), b"b"), state)), proto)
            rows.append({"name": "object array", "proto": str(proto), "data": data.hex(), "buffers": "",
                         "type": "object array", "dtype": "|O8", "shape": "2", "fortran": "0",
                         "values": "", "generation": str(generation)})
    with open(os.path.join(OUT, "numpy-emulated.jsonl"), "w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=True) + "\n")


class _ReduceAs:
    def __init__(self, reduction):
        self.reduction = reduction

    def __reduce__(self):
        return self.reduction


def write_decimal_strings():
    """Decimal(text) → str() for texts a hostile pickle could hold (what Python would print)."""
    import decimal
    texts = [" 1e2 ", "1_000", ".5", "5.", "-0.00e-3", "+7", "007", "0.000", "1E+0", "nan", "-NAN0012",
             "sNaN", "inf", "-Infinity", "INF", "12.34E-10", "1e-6", "1e-7", "123e5", "0e-7", "-0e+3",
             "1__0", "_1", "1_", "1e", "e5", "", ".", "1.2.3", "abc", "1e+", "0x10", "1 2", "--1",
             "1234567890123456789012345678901234567890", "0.1234567890123456789e-20"]
    with open(os.path.join(OUT, "decimal-strings.jsonl"), "w") as f:
        for text in texts:
            try:
                result = str(decimal.Decimal(text))
            except decimal.InvalidOperation:
                result = "ValueError"
            f.write(json.dumps({"text": text, "str": result}) + "\n")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        write_stdlib()
        return
    root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip()
    for version in VERSIONS:
        interpreter = os.path.join(root, "versions", version, "bin", "python3")
        subprocess.run([interpreter, os.path.abspath(__file__), "--one"], check=True)
    write_numpy()
    write_decimal_strings()


if __name__ == "__main__":
    main()
