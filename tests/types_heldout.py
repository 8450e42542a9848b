"""Acceptance check of pickle/types.hpp on pickles this repository does not contain (issue 9).

Run under each interpreter, e.g.
    PYENV_VERSION=3.8.18 python3.8 tests/types_heldout.py build/tools/pickletool --count 200
    /usr/bin/python3 tests/types_heldout.py build/tools/pickletool --count 200     (numpy too)
It builds random instances of every object kind issue 9 lists, with a fresh seed (printed;
--seed replays it): datetime date/time/datetime (naive and with timezone offsets), timedelta,
timezone, Decimal, Fraction, complex, UUID, range, slice, OrderedDict, defaultdict, Counter, deque
with and without maxlen, enum members, SimpleNamespace, argparse.Namespace, and, when numpy
imports, ndarrays of random dtype / shape / order / byte order (sliced and transposed inputs too),
dtypes, scalars, and protocol-5 arrays whose data travels out of band. Each is pickled at protocols
2-5 and checked with pickletool:
  recognised   `pickletool types` names the right kind;
  typed value  its fields equal what this script computes from the Python object;
  repr         `pickletool repr` equals repr() of what Python loads (enum members aside: the
               member's name is not in the pickle; from 3.12, OrderedDict's repr changed and
               pickletool repr prints 3.11's, so the typed repr for this version is compared);
  round trip   `pickletool convert` at the same protocol reproduces the input byte for byte, and
               so does writing the typed value back (`types` "rewritten"); out-of-band pickles,
               which convert cannot load, are checked through the latter.
Prints one line per kind, the mismatches, and a total; exits 1 on any mismatch.
"""
import argparse
import collections
import datetime
import decimal
import enum
import fractions
import json
import os
import pickle
import random
import struct
import subprocess
import sys
import tempfile
import types
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_types_cases  # noqa: E402  (fields() of the standard-library scalar kinds)

try:
    import numpy as np
except ImportError:
    np = None


class Color(enum.Enum):
    RED = 1
    GREEN = "g"
    BLUE = (1, 2)


class Level(enum.IntEnum):
    LOW = 10
    HIGH = 20


MINOR = sys.version_info[1]


def float_bits(x):
    return struct.pack(">d", float(x)).hex()


# --- random instances ---------------------------------------------------------------------------

class Maker:
    def __init__(self, rng):
        self.r = rng

    def small_value(self):
        r = self.r
        k = r.randrange(7)
        if k == 0:
            return r.randint(-1000, 1000)
        if k == 1:
            return "".join(r.choice("abcxyz_é") for _ in range(r.randrange(4)))
        if k == 2:
            return r.choice([0.5, -1.25, 1e100, 3.0])
        if k == 3:
            return None
        if k == 4:
            return (r.randint(0, 9), "t")
        if k == 5:
            return [r.randint(0, 9)]
        return r.randint(-2 ** 70, 2 ** 70)

    def tz(self):
        r = self.r
        k = r.randrange(4)
        if k == 0:
            return None
        if k == 1:
            return datetime.timezone.utc
        offset = datetime.timedelta(minutes=r.randint(-1439, 1439))
        if r.random() < 0.3:
            offset += datetime.timedelta(seconds=r.randint(0, 59), microseconds=r.choice([0, r.randint(0, 999999)]))
            if abs(offset) >= datetime.timedelta(hours=24):
                offset = datetime.timedelta(hours=1)
        if k == 2:
            return datetime.timezone(offset)
        return datetime.timezone(offset, r.choice(["EST", "X", "zone é", ""]))

    def date(self):
        r = self.r
        year, month = r.randint(1, 9999), r.randint(1, 12)
        days = [31, 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28, 31, 30, 31, 30, 31, 31,
                30, 31, 30, 31][month - 1]
        return datetime.date(year, month, r.randint(1, days))

    def time(self):
        r = self.r
        return datetime.time(r.randint(0, 23), r.randint(0, 59), r.randint(0, 59), r.choice([0, r.randint(0, 999999)]),
                             tzinfo=self.tz(), fold=r.randint(0, 1))

    def make(self, kind):
        r = self.r
        if kind == "datetime.date":
            return self.date()
        if kind == "datetime.time":
            return self.time()
        if kind == "datetime.datetime":
            d, t = self.date(), self.time()
            return datetime.datetime.combine(d, t, tzinfo=t.tzinfo).replace(fold=t.fold)
        if kind == "datetime.timedelta":
            return datetime.timedelta(days=r.randint(-999999999, 999999999) >> r.randrange(30),
                                      seconds=r.randint(-100000, 100000), microseconds=r.randint(-10 ** 7, 10 ** 7))
        if kind == "datetime.timezone":
            tz = self.tz()
            return tz if tz is not None else datetime.timezone(datetime.timedelta(hours=-3))
        if kind == "decimal.Decimal":
            k = r.randrange(5)
            if k == 0:
                return decimal.Decimal(r.choice(["NaN", "-sNaN12", "Infinity", "-Infinity", "-0", "0E-7", "nan3"]))
            digits = "".join(r.choice("0123456789") for _ in range(r.randint(1, 40)))
            return decimal.Decimal(r.choice(["", "-"]) + digits + "E" + str(r.randint(-40, 40)))
        if kind == "fractions.Fraction":
            return fractions.Fraction(r.randint(-2 ** 90, 2 ** 90) >> r.randrange(90), max(1, r.randint(1, 2 ** 70) >> r.randrange(69)))
        if kind == "complex":
            parts = [0.0, -0.0, 1.5, -2.25e-300, 1e300, float("inf"), float("-inf"), float("nan"),
                     r.uniform(-1e6, 1e6), r.random() * 10 ** r.randint(-30, 30)]
            return complex(r.choice(parts), r.choice(parts))
        if kind == "uuid.UUID":
            return uuid.UUID(int=r.getrandbits(128), is_safe=r.choice(list(uuid.SafeUUID)))
        if kind == "range":
            step = r.choice([1, -1, r.randint(2, 1000), -r.randint(2, 2 ** 70)])
            return range(r.randint(-2 ** 65, 2 ** 65) >> r.randrange(65), r.randint(-2 ** 65, 2 ** 65) >> r.randrange(65), step)
        if kind == "slice":
            pick = lambda: r.choice([None, r.randint(-100, 100), "a", 2 ** 80, (1,)])  # noqa: E731
            return slice(pick(), pick(), pick())
        if kind == "collections.OrderedDict":
            d = collections.OrderedDict((self.key(), self.small_value()) for _ in range(r.randrange(6)))
            if r.random() < 0.2:
                d.note = self.small_value()
            return d
        if kind == "collections.defaultdict":
            factory = r.choice([None, list, int, set, dict, str, float, tuple])
            d = collections.defaultdict(factory)
            for _ in range(r.randrange(5)):
                d[self.key()] = self.small_value()
            return d
        if kind == "collections.Counter":
            return collections.Counter({self.key(): r.randint(-5, 50) for _ in range(r.randrange(6))})
        if kind == "collections.deque":
            items = [self.small_value() for _ in range(r.randrange(6))]
            maxlen = r.choice([None, len(items), len(items) + r.randint(0, 5)])
            return collections.deque(items, maxlen)
        if kind == "enum member":
            return r.choice(list(Color) + list(Level))
        if kind == "namespace":
            attrs = {"a%d" % i: self.small_value() for i in range(r.randrange(5))}
            if r.random() < 0.5:
                return types.SimpleNamespace(**attrs)
            return argparse.Namespace(**attrs)
        raise ValueError(kind)

    def key(self):
        r = self.r
        return r.choice([r.randint(-50, 50), "k" + str(r.randrange(100)), (r.randrange(3), "x")])

    # numpy
    CODES = ["b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "f16", "c8", "c16", "c32"]

    def dtype(self):
        r = self.r
        code = r.choice(self.CODES)
        order = r.choice("<>=") if int(code[1:]) > 1 and code[0] != "b" else "|"
        return np.dtype(order + code if order != "|" else code)

    def elements(self, dt, count):
        r = self.r
        kind = dt.kind
        if kind == "b":
            return np.array([r.random() < 0.5 for _ in range(count)], dtype=dt)
        if kind in "iu":
            info = np.iinfo(dt)
            bits = r.choice([4, 8, 16, info.bits])
            lo, hi = max(int(info.min), -(2 ** bits)), min(int(info.max), 2 ** bits)
            return np.array([r.randint(lo, hi) for _ in range(count)], dtype=dt)
        family = r.randrange(6)

        def one():
            if family == 0:
                return r.randint(-20, 20) / r.choice([1, 2, 4, 8])
            if family == 1:
                return r.uniform(-1, 1) * 10 ** r.randint(-6, 10)
            if family == 2:
                return r.choice([float("nan"), float("inf"), -float("inf"), -0.0, 0.0, 1.0, r.random()])
            if family == 3:
                return r.random() * 10 ** r.randint(-300, 300)
            if family == 4:
                return float(r.randint(0, 10 ** 6))
            return r.random()
        if kind == "c":
            return np.array([complex(one(), one()) for _ in range(count)], dtype=dt)
        with np.errstate(over="ignore"):
            return np.array([one() for _ in range(count)], dtype=dt)

    def array(self):
        r = self.r
        dt = self.dtype()
        ndim = r.choice([0, 1, 1, 2, 2, 3, 4])
        shape = tuple(r.choice([0, 1, 2, 3, 4, 5, 7]) if r.random() < 0.9 else r.randint(8, 40) for _ in range(ndim))
        if r.random() < 0.05:
            shape = (r.randint(1001, 3000),)
        count = 1
        for n in shape:
            count *= n
        a = self.elements(dt, count).reshape(shape)
        layout = r.randrange(4)
        if layout == 1 and ndim >= 2:
            a = np.asfortranarray(a)
        elif layout == 2 and ndim >= 2:
            a = a.T
        elif layout == 3 and ndim >= 1 and shape[0] > 1:
            a = a[::2]
        return a

    def make_numpy(self, kind):
        r = self.r
        if kind == "numpy.ndarray":
            return self.array()
        if kind == "numpy.dtype":
            return self.dtype()
        a = self.elements(self.dtype(), 1)
        return a[0]


STDLIB_KINDS = ["datetime.date", "datetime.time", "datetime.datetime", "datetime.timedelta", "datetime.timezone",
                "decimal.Decimal", "fractions.Fraction", "complex", "uuid.UUID", "range", "slice",
                "collections.OrderedDict", "collections.defaultdict", "collections.Counter", "collections.deque",
                "enum member", "namespace"]
NUMPY_KINDS = ["numpy.ndarray", "numpy.dtype", "numpy scalar"]


# --- what Python says ---------------------------------------------------------------------------

def dtype_text(dt):
    order = dt.byteorder
    if order == "=":
        order = "<" if sys.byteorder == "little" else ">"
    return order + dt.kind + str(dt.itemsize)


def array_values(a):
    kind, size = a.dtype.kind, a.dtype.itemsize
    if (kind == "f" and size not in (4, 8)) or (kind == "c" and size not in (8, 16)):
        return ""
    out = []
    for v in a.reshape(-1):
        if kind == "b":
            out.append("1" if v else "0")
        elif kind in "iu":
            out.append(str(int(v)))
        elif kind == "f":
            out.append(float_bits(v))
        else:
            out.append(float_bits(v.real) + ":" + float_bits(v.imag))
    return " ".join(out)


def expected_fields(kind, obj, loaded):
    if kind == "collections.OrderedDict":
        return "items=%r attributes=%d" % (list(obj.items()), len(vars(obj)))
    if kind == "collections.defaultdict":
        f = obj.default_factory
        return "factory=%s items=%r" % ("None" if f is None else f.__module__ + "." + f.__qualname__, list(obj.items()))
    if kind == "collections.Counter":
        return "items=%r" % list(obj.items())
    if kind == "collections.deque":
        return "items=%r maxlen=%s" % (list(obj), obj.maxlen)
    if kind == "namespace":
        return "keys=%s values=%r" % (",".join(vars(obj)), list(vars(obj).values()))
    if kind == "numpy.ndarray":
        # numpy pickles a contiguous copy: Fortran order when the array is Fortran- and not
        # C-contiguous, C order otherwise.
        fortran = obj.ndim > 1 and obj.flags.f_contiguous and not obj.flags.c_contiguous
        order = "F" if fortran else "C"
        # The strides numpy gives the array it loads (of the pickled layout).
        return "dtype=%s shape=%s strides=%s fortran=%d raw=%s values=%s" % (
            dtype_text(obj.dtype), ",".join(map(str, obj.shape)), ",".join(map(str, loaded.strides)), fortran,
            obj.tobytes(order=order).hex(), array_values(obj))
    if kind == "numpy.dtype":
        return "dtype=" + dtype_text(obj)
    if kind == "numpy scalar":
        return "dtype=%s raw=%s" % (dtype_text(obj.dtype), obj.tobytes().hex())
    if kind == "enum member" and obj.__reduce_ex__(2)[0] is getattr:
        # Some 3.11 releases (Debian's 3.11.2) pickle members by name: getattr(cls, 'NAME').
        return "cls=%s.%s name=%s" % (type(obj).__module__, type(obj).__qualname__, obj.name)
    return gen_types_cases.fields(obj)


# --- the check ----------------------------------------------------------------------------------

def run(tool, *args):
    done = subprocess.run([tool] + list(args), capture_output=True)
    return done.returncode, done.stdout, done.stderr.decode(errors="replace")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("pickletool")
    parser.add_argument("--count", type=int, default=100, help="instances of each kind")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--keep", help="directory for the pickles that fail")
    parser.add_argument("--no-numpy", action="store_true")
    options = parser.parse_args()
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(2 ** 32)
    rng = random.Random(seed)
    use_numpy = np is not None and not options.no_numpy
    print("types_heldout: Python %s, numpy %s, seed %d" % (sys.version.split()[0], np.__version__ if use_numpy else "-", seed))
    maker = Maker(rng)
    kinds = STDLIB_KINDS + (NUMPY_KINDS if use_numpy else [])
    target = "3.%d" % MINOR
    checked = collections.Counter()
    failed = collections.Counter()
    failures = []
    workdir = tempfile.mkdtemp(prefix="types_heldout_")
    path = os.path.join(workdir, "in.pkl")
    out_path = os.path.join(workdir, "out.pkl")
    buffers_path = os.path.join(workdir, "buffers.bin")
    for kind in kinds:
        for n in range(options.count):
            obj = maker.make_numpy(kind) if kind in NUMPY_KINDS else maker.make(kind)
            for proto in range(2, 6):
                out_of_band = kind == "numpy.ndarray" and proto == 5 and rng.random() < 0.5
                buffers = []
                callback = (lambda b: buffers.append(b.raw().tobytes()) or False) if out_of_band else None
                data = pickle.dumps(obj, proto, buffer_callback=callback)
                loaded = pickle.loads(data, buffers=buffers) if out_of_band else pickle.loads(data)
                with open(path, "wb") as f:
                    f.write(data)
                args = ["types", "--target", target]
                if buffers:
                    with open(buffers_path, "wb") as f:
                        for b in buffers:
                            f.write(struct.pack("<Q", len(b)) + b)
                    args += ["--buffers", buffers_path]
                problems = []
                code, out, err = run(options.pickletool, *(args + [path]))
                if code != 0:
                    problems.append("types exited %d: %s" % (code, err.strip()))
                else:
                    result = json.loads(out)
                    if result["kind"] != kind:
                        problems.append("kind %r (%s), expected %r" % (result["kind"], result.get("error"), kind))
                    else:
                        # The object the pickle holds is what Python loads (datetime drops fold below
                        # protocol 4); numpy's loads swaps big-endian data to native, so arrays are
                        # compared with the array pickled.
                        expected = expected_fields(kind, obj if kind in NUMPY_KINDS else loaded, loaded)
                        if result["fields"] != expected:
                            problems.append("fields\n    ours:   %s\n    python: %s" % (result["fields"], expected))
                        if result["rewritten"] != data.hex():
                            problems.append("typed value written again differs")
                        python_repr = repr(loaded)
                        if kind != "enum member" and result["typed_repr"] != python_repr:
                            problems.append("typed repr\n    ours:   %s\n    python: %s" % (result["typed_repr"], python_repr))
                if not buffers:
                    code, out, err = run(options.pickletool, "repr", path)
                    ours = out.decode().rstrip("\n")
                    python_repr = repr(loaded)
                    version_form = kind == "collections.OrderedDict" and MINOR >= 12 or kind == "namespace" and MINOR == 8
                    if kind != "enum member" and not version_form and ours != python_repr:
                        problems.append("pickletool repr\n    ours:   %s\n    python: %s" % (ours, python_repr))
                    code, out, err = run(options.pickletool, "convert", "--target", target, path, out_path)
                    if code != 0:
                        problems.append("convert exited %d: %s" % (code, err.strip()))
                    else:
                        with open(out_path, "rb") as f:
                            if f.read() != data:
                                problems.append("convert at the same protocol differs")
                checked[kind] += 1
                if problems:
                    failed[kind] += 1
                    where = "%s #%d p%d%s: %r" % (kind, n, proto, " out-of-band" if buffers else "", obj)
                    failures.append(where[:300] + "\n  " + "\n  ".join(p[:2000] for p in problems))
                    if options.keep:
                        os.makedirs(options.keep, exist_ok=True)
                        with open(os.path.join(options.keep, "%s-%d-p%d.pkl" % (kind.replace(" ", "_"), n, proto)), "wb") as f:
                            f.write(data)
    for failure in failures[:40]:
        print("MISMATCH " + failure)
    total = sum(checked.values())
    bad = sum(failed.values())
    for kind in kinds:
        print("  %-26s %5d pickles, %d mismatches" % (kind, checked[kind], failed[kind]))
    print("types_heldout: seed %d: %d pickles, %d mismatches (%.2f%% right)" % (seed, total, bad, 100.0 * (total - bad) / max(total, 1)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
