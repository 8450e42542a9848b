"""The writer's acceptance check on pickles this repository does not contain (issue 3).

Run under each interpreter (3.8-3.13), e.g.
    PYENV_VERSION=3.8.18 python3.8 tests/writer/heldout_check.py build/tools/pickletool --count 300
It builds random values with a fresh seed (printed, and accepted back with --seed), pickles them
with this interpreter's pickle.dumps at protocols 2-5, and checks with `pickletool convert`:
  same protocol:  convert reproduces the input byte for byte, for builtin values and for objects of
                  arbitrary classes (tests/writer/corpus_classes.py and standard-library ones);
  cross protocol: for builtin values (sets holding str or bytes aside: their order is not
                  reproducible even by CPython), `convert --protocol Q` equals
                  pickle.dumps(pickle.loads(data), Q) for Q in 0-5.
Prints one summary line per check and every mismatch (the offending pickle is kept in --keep DIR);
exits 1 on any mismatch.
"""
import argparse
import collections
import datetime
import decimal
import enum
import fractions
import os
import pickle
import random
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus_classes as cc  # noqa: E402

cc.INSTANCE = cc.ByName()


class Color(enum.Enum):
    RED = 1
    GREEN = 2


cc.Color = Color
Color.__module__ = "corpus_classes"
Color.__qualname__ = "Color"


class CorpusPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, cc.Persistent):
            return obj.pid
        return None


def dumps(value, protocol):
    import io
    out = io.BytesIO()
    CorpusPickler(out, protocol).dump(value)
    return out.getvalue()


class Generator:
    """Random values; `objects` allows instances of classes, otherwise builtin values only."""

    def __init__(self, rng, objects):
        self.rng = rng
        self.objects = objects
        self.pool = []  # values made so far, for shared references
        self.has_text_set = False
        # Caps that keep a pickle within a few MB (uncapped, nested batches of 2500 items made 111 MB
        # pickles) while still exercising batches over 1000 items and payloads over a 64 KiB frame.
        self.budget = 4000  # values left to make; beyond it only atoms
        self.big_payloads = 2  # 70,000-byte bytes left to make

    def atom(self):
        r = self.rng
        kind = r.randrange(12)
        if kind == 0:
            return r.choice([None, True, False])
        if kind == 1:
            return r.randint(-300, 300)
        if kind == 2:
            return r.choice([2**31 - 1, -2**31, 2**31, 65535, 65536, -1, 255, 256, 2**63, -2**63 - 1])
        if kind == 3:
            return r.randint(-2**200, 2**200) >> r.randrange(200)
        if kind == 4:
            return r.choice([0.0, -0.0, 1.5, 1e300, -2.5e-300, float("inf"), float("-inf"), 0.1,
                             r.random() * 10 ** r.randint(-20, 20)])
        if kind == 5:
            return "".join(chr(r.choice([r.randrange(32, 127), r.randrange(128, 0x800),
                                         r.randrange(0x800, 0xD800), r.randrange(0xE000, 0x110000),
                                         r.randrange(0xD800, 0xE000)]))
                           for _ in range(r.choice([0, 1, 1, 2, 5, 30, 300])))
        if kind == 6:
            return bytes(r.randrange(256) for _ in range(r.choice([0, 1, 1, 3, 40, 300])))
        if kind == 7:
            return bytearray(r.randrange(256) for _ in range(r.choice([0, 1, 5])))
        if kind == 8:
            return r.choice(["", "a", "\xe9", "abc", "x" * 256])
        if kind == 9:
            return r.randrange(256)
        if kind == 10 and r.random() < 0.02 and self.big_payloads > 0:
            self.big_payloads -= 1
            return bytes(r.randrange(256) for _ in range(70000))  # outside any frame at 4+
        return r.choice([1.0, "key", b"k", 7, ()])

    def hashable(self, depth):
        r = self.rng
        v = self.atom()
        if isinstance(v, bytearray):
            v = bytes(v)
        if depth > 0 and r.random() < 0.2:
            v = tuple(self.hashable(depth - 1) for _ in range(r.randrange(4)))
        if depth > 0 and r.random() < 0.1:
            v = frozenset(r.randint(-5, 5) for _ in range(r.randrange(4)))
        return v

    def value(self, depth):
        r = self.rng
        if self.pool and r.random() < 0.08:
            return r.choice(self.pool)
        self.budget -= 1
        if depth <= 0 or self.budget <= 0 or r.random() < 0.35:
            return self.atom()
        kind = r.randrange(9 if not self.objects else 14)
        n = r.choice([0, 1, 2, 3, 5, 10])
        if r.random() < 0.02:
            n = r.choice([999, 1000, 1001, 2500])
        if kind == 0:
            v = tuple(self.value(depth - 1) for _ in range(n))
        elif kind in (1, 2):
            v = [self.value(depth - 1) for _ in range(n)]
            if r.random() < 0.1:
                v.append(v)  # a cycle
        elif kind in (3, 4):
            v = {self.hashable(2): self.value(depth - 1) for _ in range(n)}
            if r.random() < 0.1:
                v["self"] = v
        elif kind == 5:
            items = [self.hashable(1) for _ in range(n)]
            if any(isinstance(x, (str, bytes)) for x in items):
                self.has_text_set = True
            v = set(items) if r.random() < 0.5 else frozenset(items)
        elif kind == 6:
            v = [self.value(depth - 1)]
            v = (v, v)  # a tuple sharing a list
        elif kind == 7:
            inner = []
            v = (inner,)
            inner.append(v)  # a recursive tuple
        elif kind == 8:
            v = {i: self.value(depth - 1) for i in range(n)}
        else:
            v = self.instance(depth)
        self.pool.append(v)
        return v

    def instance(self, depth):
        r = self.rng
        k = r.randrange(24)
        sub = lambda: self.value(depth - 1)  # noqa: E731
        if k == 0:
            return cc.Plain(sub(), sub())
        if k == 1:
            return cc.Empty()
        if k == 2:
            s = cc.Slotted()
            s.b = sub()
            return s
        if k == 3:
            return cc.OnlySlots()
        if k == 4:
            return cc.NewArgs(sub(), self.hashable(1))
        if k == 5:
            return cc.NewArgsEx(sub(), key=sub())
        if k == 6:
            return cc.INSTANCE
        if k == 7:
            return cc.ReduceTuple(*[sub() for _ in range(r.randrange(3))])
        if k == 8:
            return cc.ReduceState(sub())
        if k == 9:
            return cc.ReduceItems([sub() for _ in range(r.choice([0, 1, 3, 1001]))],
                                  {self.hashable(1): sub() for _ in range(r.randrange(3))})
        if k == 10:
            return cc.WithSetter(sub())
        if k == 11:
            v = cc.MyList(sub() for _ in range(r.randrange(4)))
            v.attr = sub()
            return v
        if k == 12:
            return cc.MyDict({self.hashable(1): sub() for _ in range(r.randrange(4))})
        if k == 13:
            return cc.MyInt(r.randint(-10**30, 10**30))
        if k == 14:
            return cc.MyStr("s" * r.randrange(3))
        if k == 15:
            return cc.MySet(r.randint(0, 9) for _ in range(r.randrange(4)))
        if k == 16:
            return r.choice([cc.Outer.Inner.Deeper(), cc.Outer.Inner, cc.function, cc.Outer.static,
                             cc.Outer.Inner.method, len, int, type(None), Color.RED])
        if k == 17:
            return cc.Recursive()
        if k == 18:
            c = cc.Child(None)
            c.child = [c] if r.random() < 0.5 else c
            return c
        if k == 19:
            return r.choice([cc.Ext1, cc.Ext2, cc.Ext4])()
        if k == 20:
            return cc.Persistent(r.choice(["pid", 7, ("a", 1)]))
        if k == 21:
            return r.choice([datetime.date(2024, 2, 29), datetime.datetime(2020, 1, 2, 3, 4, 5, 6),
                             datetime.timedelta(days=-1, seconds=5), decimal.Decimal("3.14"),
                             fractions.Fraction(3, 7), complex(1, -2), range(3, 20, 4),
                             slice(1, None, 2)])
        if k == 22:
            return collections.OrderedDict((str(i), sub()) for i in range(r.randrange(3)))
        return collections.deque([sub() for _ in range(r.randrange(3))], maxlen=r.choice([None, 5]))


# The corpus's copyreg extension codes, which the CLI learns from --ext as the reader has no registry.
EXTENSION_ARGS = ["--ext=%d=%s:%s" % (code, module, name)
                  for code, (module, name) in sorted(cc.EXTENSIONS.items())]


def run(pickletool, src, dst, args):
    return subprocess.run([pickletool, "convert", *EXTENSION_ARGS, *args, src, dst],
                          capture_output=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pickletool")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep", default=None, help="directory for mismatching pickles")
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(2**32)
    minor = sys.version_info[1]
    target = ["--target", "3.%d" % minor]
    tally = {"same": [0, 0], "cross": [0, 0]}
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.pkl"), os.path.join(tmp, "out.pkl")
        for i in range(a.count):
            objects = i % 2 == 1
            gen = Generator(random.Random(seed * 100003 + i), objects)
            value = gen.value(4)
            for protocol in (2, 3, 4, 5):
                try:
                    data = dumps(value, protocol)
                except Exception:  # noqa: BLE001 (e.g. recursion the C pickler refuses)
                    continue
                with open(src, "wb") as f:
                    f.write(data)
                tally["same"][1] += 1
                result = run(a.pickletool, src, dst, target)
                ours = open(dst, "rb").read() if result.returncode == 0 else None
                if ours == data:
                    tally["same"][0] += 1
                else:
                    failures.append(("same", i, protocol, None, data, ours, result.stderr))
                if objects or gen.has_text_set:
                    continue
                loaded = pickle.loads(data)
                for q in range(6):
                    try:
                        expected = pickle.dumps(loaded, q)
                    except Exception:  # noqa: BLE001
                        continue
                    tally["cross"][1] += 1
                    result = run(a.pickletool, src, dst, target + ["--protocol", str(q)])
                    ours = open(dst, "rb").read() if result.returncode == 0 else None
                    if ours == expected:
                        tally["cross"][0] += 1
                    else:
                        failures.append(("cross", i, protocol, q, expected, ours, result.stderr))
    version = "%d.%d.%d" % sys.version_info[:3]
    for name, (ok, total) in tally.items():
        print("%s seed=%d %s-protocol: %d/%d identical" % (version, seed, name, ok, total))
    for n, (kind, i, p, q, expected, ours, err) in enumerate(failures):
        print("MISMATCH %s value #%d protocol %d -> %s: %s" % (kind, i, p, q, err.decode().strip()))
        if a.keep and n < 40:
            os.makedirs(a.keep, exist_ok=True)
            base = os.path.join(a.keep, "%s-%d-%d-%s" % (kind, i, p, q))
            open(base + ".expected", "wb").write(expected)
            if ours is not None:
                open(base + ".ours", "wb").write(ours)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
