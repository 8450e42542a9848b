#!/usr/bin/env python3
"""Random builtin values for tests/differential_test.cpp: pickled at protocols 0-5 by the running
interpreter, with the interpreter's own repr() of what pickle.loads gives back.

    python3 random_values.py --count 2000 --seed 20261127 [--random-count 200] [--random-seed N]

Prints one JSON object per line. The first line describes the run:
    {"python": "3.11.7", "seed": S, "random_seed": R, "count": N, "random_count": M}
then, for each value and protocol:
    {"seed": <the seed of its series>, "index": i, "proto": p, "hex": "<pickle>",
     "repr_mode": "exact" | "unordered", "repr": "...", "canonical": "..." (unordered only)}

The first `count` values come from the fixed --seed (the same every run); the next `random_count`
from --random-seed, or a fresh seed printed in the first line, so that a failure seen once can be
replayed with --random-seed. With --rerepr, records read from stdin get their repr recomputed
by this interpreter (repr of str depends on the interpreter's Unicode version). Values are nested (depth ≤ 6), share sub-objects and contain cycles;
repr_mode/canonical follow gen_corpus.py (sets whose order depends on the hash seed are compared
with their elements sorted).
"""
import argparse
import json
import os
import pickle
import random
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_corpus import canonical_repr, repr_mode  # noqa: E402  (same rules as the corpus)

sys.setrecursionlimit(20000)

INT_EDGES = [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 63 - 1,
             2 ** 63, 2 ** 64, 256 ** 255 - 1, 256 ** 255]
CODE_POINT_RANGES = [(0x20, 0x7e), (0x00, 0x1f), (0x7f, 0xa0), (0xa0, 0x2ff), (0x300, 0x36f),
                     (0x370, 0x1fff), (0x2000, 0x206f), (0x3000, 0x9fff), (0xd800, 0xdfff),
                     (0xe000, 0xffff), (0x10000, 0x1ffff), (0x1f300, 0x1faff),
                     (0x20000, 0x10ffff)]
SPECIAL_CHARS = u'\'"\\\n\r\t\x00 '


class Generator(object):
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.shared = []  # objects that later values may reference again

    def integer(self):
        r = self.rng
        choice = r.random()
        if choice < 0.4:
            value = r.choice(INT_EDGES) + r.randint(-2, 2)
        elif choice < 0.8:
            value = r.randint(-1000, 1000)
        else:
            value = r.getrandbits(r.randint(1, 2100)) if r.random() < 0.3 else r.getrandbits(70)
        return -value if r.random() < 0.4 else value

    def floating(self):
        r = self.rng
        choice = r.random()
        if choice < 0.3:
            return struct.unpack('<d', struct.pack('<Q', r.getrandbits(64)))[0]
        if choice < 0.5:
            return r.choice([0.0, -0.0, float('inf'), float('-inf'), float('nan'), 5e-324,
                             1.7976931348623157e308, 1e16, 1e-7, 0.1])
        return r.uniform(-1e6, 1e6) if r.random() < 0.5 else float(r.randint(-10 ** 6, 10 ** 6))

    def text(self):
        r = self.rng
        n = r.choice([0, 1, 2, 5, 10, 40]) if r.random() < 0.95 else r.randint(250, 300)
        chars = []
        for _ in range(n):
            if r.random() < 0.15:
                chars.append(r.choice(SPECIAL_CHARS))
            else:
                lo, hi = r.choice(CODE_POINT_RANGES)
                chars.append(chr(r.randint(lo, hi)))
        return u''.join(chars)

    def raw_bytes(self):
        r = self.rng
        n = r.choice([0, 1, 3, 20]) if r.random() < 0.95 else r.randint(250, 300)
        return bytes(r.getrandbits(8) for _ in range(n))

    def atom(self, hashable_only=False):
        r = self.rng
        kind = r.randrange(9 if hashable_only else 10)
        if kind == 0:
            return None
        if kind == 1:
            return r.random() < 0.5
        if kind in (2, 3):
            return self.integer()
        if kind == 4:
            return self.floating()
        if kind in (5, 6):
            return self.text()
        if kind in (7, 8):
            return self.raw_bytes()
        return bytearray(self.raw_bytes())

    def hashable(self, depth):
        r = self.rng
        if depth <= 0 or r.random() < 0.7:
            return self.atom(hashable_only=True)
        items = [self.hashable(depth - 1) for _ in range(r.randint(0, 4))]
        return tuple(items) if r.random() < 0.6 else frozenset(items)

    def value(self, depth):
        r = self.rng
        if self.shared and r.random() < 0.08:
            return r.choice(self.shared)
        if depth <= 0 or r.random() < 0.35:
            return self.atom()
        kind = r.randrange(6)
        size = r.choice([0, 1, 2, 3, 5, 8]) if r.random() < 0.99 else r.choice([1000, 1001, 2001])
        if size > 100:
            # Large containers (batching) hold small ints only, to keep the output small.
            items = [r.randint(-300, 70000) for _ in range(size)]
            return [list, tuple, dict, set, frozenset][kind % 5](
                zip(items, items) if kind % 5 == 2 else items)
        if kind == 0:
            result = tuple(self.value(depth - 1) for _ in range(min(size, 8)))
        elif kind in (1, 2):
            result = [self.value(depth - 1) for _ in range(size)]
        elif kind == 3:
            result = dict((self.hashable(2), self.value(depth - 1)) for _ in range(size))
        elif kind == 4:
            result = set(self.hashable(2) for _ in range(size))
        else:
            result = frozenset(self.hashable(2) for _ in range(size))
        if r.random() < 0.3:
            self.shared.append(result)
        return result

    def top_value(self):
        # Sharing can make a value's repr exponentially long; such values are drawn again.
        while True:
            value = self.draw()
            if repr_fits(value, 3000) and len(repr(value)) <= 8000:
                return value

    def draw(self):
        self.shared = []
        value = self.value(6)
        # Cycles: link some lists and dicts of the value back to containers that hold them.
        containers = [v for v in self.shared if isinstance(v, (list, dict))]
        if isinstance(value, (list, dict)):
            containers.append(value)
        for target in containers:
            if self.rng.random() < 0.3:
                back = self.rng.choice(containers)
                if isinstance(target, list):
                    target.append(back)
                else:
                    target[self.integer()] = back
        return value


def repr_fits(value, budget):
    """Whether repr(value) visits at most `budget` objects (it revisits shared ones)."""
    active = set()
    stack = [(value, False)]
    while stack:
        obj, leaving = stack.pop()
        if leaving:
            active.discard(id(obj))
            continue
        budget -= 1
        if budget < 0:
            return False
        if isinstance(obj, (list, tuple, dict, set, frozenset)) and id(obj) not in active:
            active.add(id(obj))
            stack.append((obj, True))
            if isinstance(obj, dict):
                stack.extend((part, False) for pair in obj.items() for part in pair)
            else:
                stack.extend((child, False) for child in obj)
    return True


def emit_series(seed, count):
    gen = Generator(seed)
    for index in range(count):
        value = gen.top_value()
        for proto in range(pickle.HIGHEST_PROTOCOL + 1):
            data = pickle.dumps(value, proto)
            loaded = pickle.loads(data)
            record = {'seed': seed, 'index': index, 'proto': proto, 'hex': data.hex(),
                      'repr_mode': repr_mode(loaded), 'repr': repr(loaded)}
            if record['repr_mode'] == 'unordered':
                record['canonical'] = canonical_repr(loaded)
            sys.stdout.write(json.dumps(record) + '\n')


def rerepr():
    """Recompute repr/canonical of every record on stdin with this interpreter: repr() of str
    depends on the Unicode version of the interpreter, so pickles written by another Python are
    judged by the oracle's repr."""
    for line in sys.stdin:
        record = json.loads(line)
        if 'hex' in record:
            loaded = pickle.loads(bytes.fromhex(record['hex']))
            record['repr_mode'] = repr_mode(loaded)
            record['repr'] = repr(loaded)
            record.pop('canonical', None)
            if record['repr_mode'] == 'unordered':
                record['canonical'] = canonical_repr(loaded)
        else:
            record['repr_by'] = sys.version.split()[0]
        sys.stdout.write(json.dumps(record) + '\n')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--count', type=int, default=2000)
    parser.add_argument('--seed', type=int, default=20261127)
    parser.add_argument('--random-count', type=int, default=0)
    parser.add_argument('--random-seed', type=int, default=None)
    parser.add_argument('--rerepr', action='store_true',
                        help='read records from stdin and recompute their repr here')
    args = parser.parse_args()
    if args.rerepr:
        rerepr()
        return
    random_seed = args.random_seed if args.random_seed is not None else \
        random.SystemRandom().getrandbits(48)
    sys.stdout.write(json.dumps({'python': sys.version.split()[0], 'seed': args.seed,
                                 'random_seed': random_seed, 'count': args.count,
                                 'random_count': args.random_count}) + '\n')
    emit_series(args.seed, args.count)
    emit_series(random_seed, args.random_count)


if __name__ == '__main__':
    main()
