"""`pickletool encode` on literals this repository does not contain (issue 3's acceptance).

    PYENV_VERSION=3.8.18 python3.8 tests/writer/heldout_literals.py build/tools/pickletool --count 300
Builds random values with a fresh seed (printed; --seed to repeat), writes each as Python literal
text in a randomly chosen spelling (quotes, prefixes, escapes, implicit concatenation, int bases,
underscores, spacing, trailing commas), and checks that `pickletool encode --protocol N` equals
pickle.dumps(ast.literal_eval(text), N) for N in 2-5. Sets hold numbers only (a set of str or bytes
iterates in an order that differs between processes). Exits 1 on any mismatch.
"""
import argparse
import ast
import pickle
import random
import subprocess
import sys


class Spell:
    def __init__(self, rng):
        self.r = rng

    def int_(self, v):
        r = self.r
        sign = "-" if v < 0 else ""
        m = abs(v)
        form = r.randrange(6)
        if form == 0:
            body = hex(m)[2:]
            body = ("0x" if r.random() < 0.5 else "0X") + (body.upper() if r.random() < 0.5 else body)
        elif form == 1:
            body = "0o" + oct(m)[2:]
        elif form == 2:
            body = "0b" + bin(m)[2:]
        elif form == 3 and m >= 1000:
            body = "{:_}".format(m)
        else:
            body = str(m)
        if sign and r.random() < 0.2:
            return "-(%s)" % body
        return sign + body

    def str_(self, s):
        r = self.r
        text = repr(s)
        if r.random() < 0.3:
            body = "".join("\\x%02x" % ord(c) if ord(c) < 256 else
                           ("\\u%04x" % ord(c) if ord(c) < 0x10000 else "\\U%08x" % ord(c))
                           for c in s)
            text = "'%s'" % body
        elif r.random() < 0.3 and '"' not in s and "\\" not in s and "\n" not in s and s.isprintable():
            text = '"%s"' % s
        if r.random() < 0.2 and len(s) > 1:
            cut = r.randrange(1, len(s))
            text = "%s %s" % (self.str_(s[:cut]), self.str_(s[cut:]))
        return text

    def bytes_(self, b):
        r = self.r
        text = repr(b)
        if r.random() < 0.3:
            text = "b'%s'" % "".join("\\x%02x" % c for c in b)
        if r.random() < 0.3:
            text = "B" + text[1:]
        return text

    def float_(self, f):
        text = repr(f)
        if text in ("inf", "-inf", "nan"):
            return "1e400" if f > 0 else "-1e400"
        return text

    def value(self, v):
        r = self.r
        sp = " " if r.random() < 0.5 else ""
        if v is None or isinstance(v, bool):
            return repr(v)
        if isinstance(v, int):
            return self.int_(v)
        if isinstance(v, float):
            return self.float_(v)
        if isinstance(v, str):
            return self.str_(v)
        if isinstance(v, bytes):
            return self.bytes_(v)
        if isinstance(v, tuple):
            items = [self.value(x) for x in v]
            if len(items) == 1:
                return "(%s,)" % items[0]
            return "(%s%s)" % (("," + sp).join(items), "," if items and r.random() < 0.3 else "")
        if isinstance(v, list):
            items = [self.value(x) for x in v]
            return "[%s%s]" % (("," + sp).join(items), "," if items and r.random() < 0.3 else "")
        if isinstance(v, dict):
            items = ["%s:%s%s" % (self.value(k), sp, self.value(x)) for k, x in v.items()]
            return "{%s}" % ("," + sp).join(items)
        if isinstance(v, (set, frozenset)):
            items = [self.value(x) for x in v]
            return "{%s}" % ("," + sp).join(items)
        raise TypeError(type(v))


def atom(r, hashable=False):
    kind = r.randrange(8)
    if kind == 0:
        return r.choice([None, True, False])
    if kind == 1:
        return r.randint(-300, 70000)
    if kind == 2:
        return r.randint(-2**80, 2**80) >> r.randrange(80)
    if kind == 3:
        return r.choice([0.0, -0.0, 1.5, 1e300, float("inf"), 0.1, r.random() * 10 ** r.randint(-9, 9)])
    if kind == 4:
        return "".join(chr(r.choice([r.randrange(32, 127), r.randrange(160, 0x800),
                                     r.randrange(0x800, 0xD800), r.randrange(0xE000, 0x110000)]))
                       for _ in range(r.choice([0, 1, 1, 2, 5, 40])))
    if kind == 5:
        return bytes(r.randrange(256) for _ in range(r.choice([0, 1, 1, 3, 40])))
    if kind == 6:
        return r.choice(["", "a", "\xe9", "key", b"", b"k"])
    return r.randrange(256)


def value(r, depth):
    if depth <= 0 or r.random() < 0.35:
        return atom(r)
    n = r.choice([0, 1, 2, 3, 5])
    if r.random() < 0.02:
        n = r.choice([999, 1000, 1001])
    kind = r.randrange(5)
    if kind == 0:
        return tuple(value(r, depth - 1) for _ in range(n))
    if kind == 1:
        return [value(r, depth - 1) for _ in range(n)]
    if kind == 2:
        return {atom(r): value(r, depth - 1) for _ in range(n)}
    if kind == 3:
        return {r.randint(-50, 50) for _ in range(n)}  # empty: spelt {}, a dict
    return {r.randint(-5, 5): value(r, depth - 1) for _ in range(n)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pickletool")
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(2**32)
    target = "3.%d" % sys.version_info[1]
    ok = total = 0
    failures = []
    for i in range(a.count):
        r = random.Random(seed * 100003 + i)
        text = Spell(r).value(value(r, 3))
        if len(text) > 100000:  # one command-line argument holds at most 128 KiB
            continue
        try:
            literal = ast.literal_eval(text)
        except Exception:  # noqa: BLE001 (a spelling the generator got wrong)
            continue
        for protocol in (2, 3, 4, 5):
            expected = pickle.dumps(literal, protocol)
            got = subprocess.run([a.pickletool, "encode", "--protocol", str(protocol), "--target",
                                  target, text], capture_output=True)
            total += 1
            if got.returncode == 0 and got.stdout == expected:
                ok += 1
            else:
                failures.append((i, protocol, text, got.stderr.decode().strip()))
    print("%d.%d.%d seed=%d encode: %d/%d identical" % (sys.version_info[:3] + (seed, ok, total)))
    for i, protocol, text, err in failures[:20]:
        print("MISMATCH literal #%d protocol %d: %r %s" % (i, protocol, text[:200], err))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
