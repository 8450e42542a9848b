#!/usr/bin/env python3
"""Writes tests/data/value_hash_cases.txt: CPython's hash() of numbers, tuples and frozensets.

Line format: <value> <hash>, where <value> is written in prefix tokens separated by spaces:
  i:<decimal int>   f:<float.hex()>   b:0 / b:1   ( <items> )  tuple   {{ <items> }}  frozenset
Run: python3 tests/gen_value_hash_cases.py > tests/data/value_hash_cases.txt
"""
import math
import random
import sys


def encode(value):
    if isinstance(value, bool):
        return f"b:{int(value)}"
    if isinstance(value, int):
        return f"i:{value}"
    if isinstance(value, float):
        return f"f:{value.hex()}"
    if isinstance(value, tuple):
        return " ".join(["("] + [encode(item) for item in value] + [")"])
    if isinstance(value, frozenset):
        # Iteration order is irrelevant to the hash; the test builds the set in this order.
        return " ".join(["{{"] + [encode(item) for item in value] + ["}}"])
    raise TypeError(type(value))


def values():
    ints = [0, 1, -1, 2, -2, 7, 42, -42, 1000, 2**31 - 1, 2**31, -2**31, 2**32, 2**53, 2**53 + 1,
            2**60, 2**61 - 2, 2**61 - 1, 2**61, 2**61 + 1, -(2**61 - 1), -(2**61), 2**62,
            2**63 - 1, -2**63, 2**63, -2**63 - 1, 2**64 - 1, 2**64, 2**64 + 1, -2**64, 2**100,
            -2**100, 3**100, -(3**100), 10**30 + 7, 2**122 - 1, 2**183 + 12345, 2**1000 + 1,
            -(7**400), 123456789012345678901234567890]
    yield from ints
    rng = random.Random(61)
    for bits in (8, 31, 62, 63, 64, 65, 100, 128, 200, 640):
        for _ in range(4):
            n = rng.getrandbits(bits)
            yield n
            yield -n
    floats = [0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 1.5, 2.0, 3.14159, -2.718281828459045, 1e-300,
              5e-324, -5e-324, 2.2250738585072014e-308, 1e100, -1e100, 1.7976931348623157e308,
              float(2**53), float(2**61 - 1), float(2**61), float(2**63), float(2**64),
              float(2**100), 1e22, 0.1, 0.2, 0.3, 1 / 3, math.inf, -math.inf, 123456.789]
    yield from floats
    for _ in range(40):
        yield rng.uniform(-1e6, 1e6)
        yield math.ldexp(rng.random(), rng.randint(-1074, 1023))
    yield from [True, False]
    yield from [(), (1,), (1, 2), (2, 1), (1, 2, 3), (0,), (-1,), (-2,), (True, False),
                (1.5, -2, 2**100), ((),), (((),),), ((1, 2), (3, (4, 5))), (1, (1, (1, (1,)))),
                tuple(range(20)), (2**61 - 1, -2**61, 1e100, math.inf, -math.inf)]
    yield from [frozenset(), frozenset({1}), frozenset({1, 2, 3}), frozenset({-1, -2}),
                frozenset({1.5, 2**100}), frozenset({(1, 2), (3,)}),
                frozenset({frozenset({1}), frozenset()}), (frozenset({1, 2}), 3),
                frozenset(range(50))]
    for _ in range(30):
        yield random_tuple(rng, 3)


def random_atom(rng):
    choice = rng.randrange(4)
    if choice == 0:
        return rng.randint(-10**6, 10**6)
    if choice == 1:
        return rng.getrandbits(rng.randint(1, 130)) * rng.choice((1, -1))
    if choice == 2:
        return rng.uniform(-100, 100)
    return rng.random() < 0.5


def random_tuple(rng, depth):
    items = []
    for _ in range(rng.randint(0, 4)):
        if depth > 0 and rng.random() < 0.3:
            items.append(random_tuple(rng, depth - 1))
        else:
            items.append(random_atom(rng))
    return tuple(items)


def main():
    for value in values():
        sys.stdout.write(f"{encode(value)} {hash(value)}\n")


if __name__ == "__main__":
    main()
