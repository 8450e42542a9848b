#!/usr/bin/python3
"""Write tests/types/numpy-1.24.jsonl: what REAL numpy (Debian's python3-numpy 1.24, run by the
system interpreter) pickles and prints, for tests/types_test.cpp.

    /usr/bin/python3 tests/gen_numpy_cases.py

One JSON object per line, every value a string:
  name, proto (2-5), data (the pickle, hex), buffers (out-of-band buffers, hex, comma-separated,
  "" for none, "-" for an empty one), type (ndarray / dtype / scalar / list / object array /
  structured array / structured dtype), dtype (byte order + code as numpy pickles it, e.g. >i4;
  '<' for native), shape (comma-separated), strides (of the array Python loads back, in bytes),
  fortran (1 when numpy pickled the data in Fortran order), raw (the pickled data bytes, hex, in
  that order), values (the elements in C order, space-separated: ints in decimal, bools 0/1, float
  and complex parts as the hex of their IEEE double bits; "" for float16/longdouble), repr
  (repr() of the object Python loads back), generation (always 1: numpy 1.x module names).
"""

import json
import os
import pickle
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "types", "numpy-1.24.jsonl")

FIXED_CODES = ["b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "f16",
               "c8", "c16", "c32"]


def float_bits(x):
    return struct.pack(">d", float(x)).hex()


def dtype_text(dt):
    order = dt.byteorder
    if order == "=":
        order = "<" if sys.byteorder == "little" else ">"
    return order + dt.kind + str(dt.itemsize)


def values_text(a):
    kind = a.dtype.kind
    if kind == "f" and a.dtype.itemsize not in (4, 8):
        return ""
    if kind == "c" and a.dtype.itemsize not in (8, 16):
        return ""
    out = []
    for v in np.asarray(a).reshape(-1):
        if kind == "b":
            out.append("1" if v else "0")
        elif kind in "iu":
            out.append(str(int(v)))
        elif kind == "f":
            out.append(float_bits(v))
        else:
            out.append(float_bits(v.real) + ":" + float_bits(v.imag))
    return " ".join(out)


def sample_values(code, count, variant):
    """`count` deterministic values for a dtype code; `variant` picks a family (for repr rules)."""
    kind, size = code[0], int(code[1:])
    if kind == "b":
        return [(i * 7 + variant) % 3 != 0 for i in range(count)]
    if kind in "iu":
        bits = size * 8
        lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if kind == "i" else (0, 2 ** bits - 1)
        if variant == 0:
            return [min(hi, max(lo, i - 1 if kind == "i" else i)) for i in range(count)]
        if variant == 1:
            return [hi, lo] + [(i * 37 + 11) % 100 for i in range(count - 2)]
        return [((i * 2654435761) % (hi - lo + 1)) + lo for i in range(count)]
    families = [
        [0.5 * i - 1 for i in range(count)],
        [1.0 / (i + 3) for i in range(count)],
        [10.0 ** (i * 3 - 4) for i in range(count)],
        [float("nan"), float("inf"), -float("inf"), -0.0, 1.25] * count,
        [3.0 * i for i in range(count)],
        [1e-5 * (i + 1) for i in range(count)],
    ]
    values = families[variant % len(families)][:count]
    if kind == "c":
        return [complex(v, (-1) ** i * (i + 0.5)) for i, v in enumerate(values)]
    return values


def main():
    rows = []

    def add(name, obj, type_name, extra=None, protos=range(2, 6)):
        for proto in protos:
            for out_of_band in ([False, True] if proto == 5 and type_name == "ndarray" else [False]):
                buffers = []
                callback = (lambda b: buffers.append(b.raw().tobytes()) or False) if out_of_band else None
                data = pickle.dumps(obj, proto, buffer_callback=callback)
                loaded = pickle.loads(data, buffers=[memoryview(b) for b in buffers]) if out_of_band else pickle.loads(data)
                row = {"name": name + (" out-of-band" if out_of_band else ""), "proto": str(proto),
                       "data": data.hex(), "buffers": ",".join(b.hex() or "-" for b in buffers),
                       "type": type_name, "dtype": "", "shape": "", "strides": "", "fortran": "0",
                       "raw": "", "values": "", "repr": repr(loaded), "generation": "1"}
                if type_name == "ndarray":
                    # numpy's __setstate__ swaps non-native data to native order; _frombuffer does not.
                    assert loaded.dtype.newbyteorder("=") == obj.dtype.newbyteorder("=") and loaded.shape == obj.shape
                    assert np.array_equal(loaded, obj, equal_nan=obj.dtype.kind in "fc")
                    fortran = loaded.ndim > 1 and loaded.flags.f_contiguous and not loaded.flags.c_contiguous
                    row.update({"dtype": dtype_text(obj.dtype),
                                "shape": ",".join(map(str, loaded.shape)),
                                "strides": ",".join(map(str, loaded.strides)),
                                "fortran": "1" if fortran else "0",
                                "raw": obj.tobytes(order="F" if fortran else "C").hex() or "-",
                                "values": values_text(loaded)})
                elif type_name == "scalar":
                    row.update({"dtype": dtype_text(obj.dtype), "raw": loaded.tobytes().hex(),
                                "values": values_text(np.asarray(loaded))})
                elif type_name == "dtype":
                    row.update({"dtype": dtype_text(loaded)})
                if extra:
                    row.update(extra)
                rows.append(row)

    # Every fixed-size dtype, both byte orders, several value families and shapes.
    for code in FIXED_CODES:
        orders = ["<", ">"] if int(code[1:]) > 1 and code[0] != "b" else ["|"]
        for order in orders:
            dt = np.dtype(order + code if order != "|" else code)
            for variant, shape in enumerate([(4,), (2, 3), (3,), (2, 2, 2), (5,), (1, 4)]):
                count = int(np.prod(shape))
                a = np.array(sample_values(code, count, variant), dtype=dt).reshape(shape)
                add("%s%s %s v%d" % (order, code, "x".join(map(str, shape)), variant), a, "ndarray")
            add("%s%s 0-d" % (order, code), np.array(sample_values(code, 1, 1)[0], dtype=dt), "ndarray")
            add("%s%s empty" % (order, code), np.zeros((0,), dtype=dt), "ndarray")
            add("%s%s fortran 3x2" % (order, code),
                np.asfortranarray(np.array(sample_values(code, 6, 0), dtype=dt).reshape(3, 2)), "ndarray")
            add("dtype %s%s" % (order, code), dt, "dtype")
            add("scalar %s%s" % (order, code), np.array(sample_values(code, 2, 1), dtype=dt)[1], "scalar")

    # Orders, layouts and shapes.
    base = np.arange(24, dtype=np.int32).reshape(4, 6)
    add("int32 transposed (Fortran-contiguous)", base.T, "ndarray")
    add("int32 sliced rows (C-contiguous view)", base[1:3], "ndarray")
    add("int32 strided slice", base[:, ::2], "ndarray")
    add("int32 reversed", base[::-1], "ndarray")
    add("float64 every other", np.linspace(0, 1, 11)[::2], "ndarray")
    add("fortran 3-d", np.asfortranarray(np.arange(24, dtype=np.int16).reshape(2, 3, 4)), "ndarray")
    add("fortran big-endian float32", np.asfortranarray(np.arange(6, dtype=">f4").reshape(2, 3) / 4), "ndarray")
    add("empty 2-d", np.zeros((0, 3), dtype=np.int32), "ndarray")
    add("empty 3-d", np.zeros((2, 0, 4), dtype=np.float64), "ndarray")
    add("4-d", np.arange(16, dtype=np.uint8).reshape(2, 2, 2, 2), "ndarray")
    add("1x1", np.ones((1, 1), dtype=np.float32), "ndarray")
    add("column", np.arange(5, dtype=np.int64).reshape(5, 1), "ndarray")
    add("wide int row (wraps)", np.arange(40, dtype=np.int64) * 1000, "ndarray")
    add("wide float row (wraps)", np.arange(30, dtype=np.float64) / 7, "ndarray")
    add("wide 2-d (wraps)", np.arange(60, dtype=np.int32).reshape(2, 30) * 99991, "ndarray")
    add("summarised 1-d", np.arange(2000, dtype=np.int64), "ndarray")
    add("summarised 2-d", np.arange(3000, dtype=np.float64).reshape(50, 60) / 3, "ndarray")
    add("all true", np.ones(3, dtype=bool), "ndarray")
    add("all false", np.zeros(3, dtype=bool), "ndarray")
    add("0-d bool", np.array(True), "ndarray")
    add("0-d nan", np.array(float("nan")), "ndarray")
    add("float sci", np.array([1e-10, 1.0, 123456789.0]), "ndarray")
    add("float neg zero", np.array([-0.0, 0.0]), "ndarray")
    add("float integral big", np.array([1e7, 2.0]), "ndarray")
    add("float32 tenth", np.array([0.1, 0.2, 0.3], dtype=np.float32), "ndarray")
    add("float32 sci, digits from the exact value", np.array([9.2259438e-32, 4.1158186e+29, 1.5], dtype=np.float32), "ndarray")
    add("float16 mix", np.array([0.1, 1000.0, -2.5], dtype=np.float16), "ndarray")
    add("complex pure imaginary", np.array([1j, -2j]), "ndarray")
    add("complex nan", np.array([complex(float("nan"), 1), complex(1, float("inf"))]), "ndarray")

    # Two arrays sharing their dtype object (numpy's builtin dtypes are singletons).
    pair = [np.array([1.0]), np.array([2.0])]
    for proto in range(2, 6):
        data = pickle.dumps(pair, proto)
        rows.append({"name": "list of two arrays", "proto": str(proto), "data": data.hex(), "buffers": "",
                     "type": "list", "dtype": "<f8", "shape": "1", "strides": "8", "fortran": "0", "raw": "",
                     "values": float_bits(1.0) + " " + float_bits(2.0), "repr": repr(pickle.loads(data)),
                     "generation": "1"})

    # Scalars whose repr takes numpy's scalar rules.
    for name, scalar in [("scalar float64 1e20", np.float64(1e20)), ("scalar float32 0.1", np.float32(0.1)),
                         ("scalar float16 65504", np.float16(65504)), ("scalar float64 1e-5", np.float64(1e-5)),
                         ("scalar float32 1e16", np.float32(1e16)), ("scalar longdouble third", np.longdouble(1) / 3),
                         ("scalar complex128 2j", np.complex128(2j)), ("scalar complex64 nan", np.complex64(complex(float("nan"), -1))),
                         ("scalar float64 nan", np.float64("nan")), ("scalar float64 -inf", np.float64("-inf")),
                         ("scalar bool false", np.bool_(False)), ("scalar uint64 max", np.uint64(2 ** 64 - 1)),
                         ("scalar complex128 -0", np.complex128(complex(-0.0, 0.0)))]:
        add(name, scalar, "scalar")

    # Recognised but kept generic.
    add("object array", np.array([1, "two", None], dtype=object), "object array")
    add("structured array", np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")]), "structured array")
    add("structured dtype", np.dtype([("x", "<f4"), ("y", "<f4")]), "structured dtype")
    add("subarray dtype", np.dtype(("<i4", (2,))), "structured dtype")

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=True) + "\n")
    print("%d rows -> %s (numpy %s)" % (len(rows), OUT, np.__version__))


if __name__ == "__main__":
    main()
