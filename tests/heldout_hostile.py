"""Issue 4's acceptance check on inputs this repository does not contain, made afresh each run.

    python3 tests/heldout_hostile.py build/tools/pickletool [--count N] [--seed S]

1. Hostile pickles (random members of the families in shared/reference/hardening.md: memo and
   shared-reference bombs, deep nesting, huge declared lengths, bad frames, mutated and truncated
   CPython pickles, long text numbers, mark storms): `pickletool repr` on each must exit 0 or 1
   (never a signal), within 1 s of CPU and 256 MB of address space.
2. `pickletool scan`: every pickle of a dangerous set (calls to os/subprocess/builtins.eval/... reached
   through GLOBAL, STACK_GLOBAL with memoized names, INST, OBJ, NEWOBJ, nested in data, after a
   benign pickle in the same file) must exit 3; every pickle of a benign data set (builtin values and
   the standard library's data classes, pickled by this CPython at protocols 0-5) must exit 0.
Prints one line per check (with the worst CPU time and memory of each family) and each failure;
exits 1 on any failure. --keep DIR keeps the failing inputs.
"""
import argparse
import collections
import datetime
import decimal
import fractions
import io
import os
import pickle
import random
import resource
import struct
import subprocess
import sys
import tempfile
import uuid

LIMIT_BYTES = 256 << 20


def run_limited(argv):
    """Runs argv with RLIMIT_AS = 256 MB and RLIMIT_CPU = 2 s; returns (status, cpu seconds, rss)."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (LIMIT_BYTES, LIMIT_BYTES))
        resource.setrlimit(resource.RLIMIT_CPU, (2, 2))
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=limit)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.stderr.close()
    return status, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


# --- hostile inputs -------------------------------------------------------------------------------

def memo_bomb(r):
    out = bytearray(b"\x80\x02]q\x00")
    for i in range(1, r.randint(20, 200)):
        out += b"(h%cj%c\x00\x00\x00" % (i - 1, i - 1) if i < 256 else b""
        out += b"\x86q%c" % (i % 256)
    return bytes(out) + b"."


def doubling_bomb(r):
    # x = [x, x] repeated: the repr of the result would be 2**depth long.
    out = bytearray(b"\x80\x04]\x94")
    for _ in range(r.randint(30, 120)):
        out += b"h\x00h\x00\x86\x94" if r.random() < 0.5 else b"\x85\x94"
        out += b"\x94"
    return bytes(out[:-1]) + b"."


def deep_nesting(r):
    depth = r.randint(100_000, 2_000_000)
    opener = r.choice([b"]", b"(", b"}", b"\x8f"])
    return b"\x80\x04" + opener * depth + b"."


def huge_lengths(r):
    op = r.choice([b"B", b"C", b"T", b"X", b"\x8d", b"\x8e", b"\x96", b"\x95", b"U", b"\x8c",
                   b"\x8a", b"\x8b"])
    size = r.choice([2**31 - 1, 2**32 - 1, 2**63 - 1, 2**64 - 1, 10**9])
    fmt = {b"\x8d": "<Q", b"\x8e": "<Q", b"\x96": "<Q", b"\x95": "<Q", b"\x8b": "<i", b"B": "<i",
           b"X": "<I", b"T": "<I"}.get(op, "<B")
    try:
        length = struct.pack(fmt, size if fmt != "<i" else min(size, 2**31 - 1))
    except struct.error:
        length = b"\xff"
    return b"\x80\x05" + op + length + bytes(r.randrange(256) for _ in range(r.randint(0, 64)))


def long_text_number(r):
    digits = "".join(r.choice("0123456789") for _ in range(r.choice([4301, 10_000, 200_000])))
    return r.choice([b"I", b"L"]) + digits.encode() + b"\n."


def mark_storm(r):
    return b"\x80\x02" + b"(" * r.randint(10_000, 500_000) + r.choice([b"t", b"l", b"d", b"0", b"1"]) + b"."


def mutated(r):
    value = [r.randint(-10**30, 10**30), "s" * r.randint(0, 300), b"b" * r.randint(0, 300),
             {i: (i, str(i)) for i in range(r.randint(0, 50))}, 1.5, None, {1, 2, 3}]
    data = bytearray(pickle.dumps(value, r.randint(0, 5)))
    for _ in range(r.randint(1, 8)):
        kind = r.randrange(4)
        pos = r.randrange(len(data))
        if kind == 0:
            data[pos] = r.randrange(256)
        elif kind == 1:
            del data[pos:pos + r.randint(1, 20)]
        elif kind == 2:
            data[pos:pos] = bytes(r.randrange(256) for _ in range(r.randint(1, 20)))
        else:
            data = data[:pos]
    return bytes(data)


def frame_tricks(r):
    body = pickle.dumps(list(range(r.randint(0, 3000))), 4)
    declared = r.choice([0, 1, 2**62, len(body) * 3, 7])
    return b"\x80\x04\x95" + struct.pack("<Q", declared) + body[2:]


def set_hash_flood(r):
    # Many equal-hash keys: ints congruent modulo 2**61 - 1.
    n = r.randint(5_000, 50_000)
    items = [i * ((1 << 61) - 1) for i in range(n)]
    return pickle.dumps(set(items) if r.random() < 0.5 else dict.fromkeys(items), 4)


FAMILIES = [memo_bomb, doubling_bomb, deep_nesting, huge_lengths, long_text_number, mark_storm,
            mutated, frame_tricks, set_hash_flood]


# --- scan sets ------------------------------------------------------------------------------------

DANGEROUS = [("os", "system"), ("posix", "system"), ("nt", "system"), ("subprocess", "Popen"),
             ("subprocess", "check_output"), ("subprocess", "run"), ("builtins", "eval"),
             ("builtins", "exec"), ("builtins", "compile"), ("builtins", "open"),
             ("builtins", "getattr"), ("builtins", "__import__"), ("__builtin__", "eval"),
             ("shutil", "rmtree"), ("socket", "create_connection"), ("pty", "spawn"),
             ("runpy", "_run_code"), ("importlib", "import_module"), ("pickle", "loads"),
             ("os", "execv"), ("posix", "popen"), ("sys", "exit")]


def text_global(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def dangerous_pickle(r):
    module, name = r.choice(DANGEROUS)
    arg = r.choice([b"X\x04\x00\x00\x00echo", b"U\x02id", b"N"])
    form = r.randrange(7)
    if form == 0:  # GLOBAL + REDUCE, protocol 0-3
        body = b"\x80\x02" + text_global(module, name) + b"(" + arg + b"tR."
    elif form == 1:  # STACK_GLOBAL from memoized strings fetched again
        m, n = module.encode(), name.encode()
        body = (b"\x80\x04\x8c" + bytes([len(m)]) + m + b"\x94\x8c" + bytes([len(n)]) + n + b"\x94"
                b"0h\x00h\x01\x93" + arg + b"\x85R.")
    elif form == 2:  # INST
        body = b"(" + arg + b"i" + module.encode() + b"\n" + name.encode() + b"\n."
    elif form == 3:  # OBJ
        body = b"\x80\x01(" + text_global(module, name) + arg + b"o."
    elif form == 4:  # nested deep inside data
        body = b"\x80\x02}q\x00(X\x01\x00\x00\x00k]q\x01(K\x01" + text_global(module, name) + b"(" + arg + b"tRee."
    elif form == 5:  # after a benign pickle in the same file
        body = pickle.dumps({"a": 1}, r.randint(0, 5)) + b"\x80\x02" + text_global(module, name) + b"(" + arg + b"tR."
    else:  # the real pickler's output for an object whose __reduce__ calls it
        target = {"os": os, "posix": os, "subprocess": subprocess, "shutil": __import__("shutil")}.get(module)
        if target is None or not hasattr(target, name):
            return dangerous_pickle(r)
        func = getattr(target, name)

        class Payload:
            def __reduce__(self):
                return (func, ("echo",))
        body = pickle.dumps([1, Payload()], r.randint(0, 5))
    return body


def benign_value(r, depth=3):
    k = r.randrange(12 if depth > 0 else 6)
    if k == 0:
        return r.randint(-10**40, 10**40)
    if k == 1:
        return "".join(chr(r.randrange(32, 0x3000)) for _ in range(r.randint(0, 20)))
    if k == 2:
        return bytes(r.randrange(256) for _ in range(r.randint(0, 20)))
    if k == 3:
        return r.random()
    if k == 4:
        return r.choice([None, True, False])
    if k == 5:
        return r.choice([datetime.date(2020, 1, 2), datetime.datetime(2021, 3, 4, 5, 6, 7),
                         datetime.timedelta(seconds=5), decimal.Decimal("1.25"),
                         fractions.Fraction(1, 3), uuid.UUID(int=r.getrandbits(128)), complex(1, 2)])
    if k in (6, 7):
        return [benign_value(r, depth - 1) for _ in range(r.randint(0, 5))]
    if k == 8:
        return tuple(benign_value(r, depth - 1) for _ in range(r.randint(0, 5)))
    if k == 9:
        return {str(i): benign_value(r, depth - 1) for i in range(r.randint(0, 5))}
    if k == 10:
        return collections.OrderedDict((i, benign_value(r, depth - 1)) for i in range(r.randint(0, 3)))
    return {r.randint(0, 100) for _ in range(r.randint(0, 5))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pickletool")
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep", default=None, help="directory for the inputs that fail")
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(2**32)
    r = random.Random(seed)
    failures = []
    worst_cpu, worst_rss = 0.0, 0
    worst_by_family = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "in.pkl")
        for i in range(a.count):
            family = FAMILIES[i % len(FAMILIES)]
            data = family(r)
            with open(path, "wb") as f:
                f.write(data)
            status, cpu, rss = run_limited([a.pickletool, "repr", path])
            worst_cpu, worst_rss = max(worst_cpu, cpu), max(worst_rss, rss)
            previous = worst_by_family.get(family.__name__, (0.0, 0))
            worst_by_family[family.__name__] = (max(previous[0], cpu), max(previous[1], rss))
            code = os.waitstatus_to_exitcode(status)
            if code not in (0, 1) or cpu > 1.0:
                failures.append("hostile %s #%d: exit %d, %.2f s CPU, %d MB" % (family.__name__, i, code, cpu, rss >> 20))
                if a.keep:
                    os.makedirs(a.keep, exist_ok=True)
                    with open(os.path.join(a.keep, "heldout-hostile-%d.pkl" % i), "wb") as f:
                        f.write(data)
        print("hostile: %d inputs (seed %d), %d failures; worst %.3f s CPU, %d MB RSS" % (
            a.count, seed, len(failures), worst_cpu, worst_rss >> 20))
        for name, (cpu, rss) in sorted(worst_by_family.items()):
            print("  %-18s worst %.3f s CPU, %d MB RSS" % (name, cpu, rss >> 20))
        scan_failures = []
        for kind, make, expected in (("dangerous", dangerous_pickle, 3),
                                     ("benign", lambda r: pickle.dumps(benign_value(r), r.randint(0, 5)), 0)):
            for i in range(a.count):
                data = make(r)
                with open(path, "wb") as f:
                    f.write(data)
                code = subprocess.run([a.pickletool, "scan", path], capture_output=True).returncode
                if code != expected:
                    scan_failures.append("scan %s #%d: exit %d, expected %d: %s" % (kind, i, code, expected, data[:80]))
            print("scan %s: %d pickles, %d wrong verdicts" % (kind, a.count, sum(1 for f in scan_failures if f.startswith("scan " + kind))))
        failures += scan_failures
    for f in failures[:30]:
        print("FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
