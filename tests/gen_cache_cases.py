#!/usr/bin/env python3
"""Writes the committed expectations of tests/cache_test.cpp and tests/cache_interop_test.cpp, from
CPython and tests/inductor_cache.py (the Python side of the cache format):

  tests/cache/keys.tsv        PROTOCOL  KEY-LITERAL  PICKLED-KEY-HEX  ENTRY-NAME  VALUE-LITERAL  ENTRY-FILE-HEX
  tests/cache/sha256.tsv      PATTERN  LENGTH  SHA256-HEX    (hashlib over generated inputs)
  tests/cache/misc.tsv        NAME  HEX                      (version header, memoizer entries, CLI output)

Run:  python3 tests/gen_cache_cases.py   (CPython 3.8–3.13; keys are protocols 4 and 5 explicitly)
"""
import ast
import dataclasses
import hashlib
import json
import os
import pickle
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import inductor_cache  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "cache")

# (key literal, value literal). Keys: str, ints, tuples, nested dicts, bytes, and the memoizer and
# fcache key shapes; literals have no tab or newline.
CASES = [
    ("'x'", "1"),
    ("''", "None"),
    ("'tuned_mm'", "'result'"),
    ("'h\\xe9llo \\u20ac \\U0001f600'", "b'\\x00\\xff'"),
    ("'" + "long " * 60 + "'", "[1, 2, 3]"),
    ("0", "0.5"),
    ("1", "True"),
    ("-1", "False"),
    ("255", "{'a': 1}"),
    ("256", "(1,)"),
    ("65535", "()"),
    ("65536", "''"),
    ("2147483647", "b''"),
    ("-2147483648", "[[1, [2, [3]]]]"),
    ("2147483648", "{'nested': {'deeper': [1, (2, 3)]}}"),
    ("18446744073709551616", "None"),
    ("-1267650600228229401496703205376", "1"),
    ("10000000000000000000000000000000000000000", "2"),
    ("(3, 'x')", "(3, 'x')"),
    ("((3, 'x'), {})", "{'args': (3, 'x'), 'kwargs': {}}"),
    ("((), {})", "None"),
    ("('a', 'a', 'b')", "'shared one-character strs'"),
    ("(1, (2, (3, (4, ()))))", "-7"),
    ("('tuned_mm', ({'nodes': [{'dtype': 'torch.float32', 'shape': [64, 64], 'stride': [64, 1]}]}, ()))", "{'_type': 'single_choice', 'choice': {'template_id': 'mm', 'params': {'BLOCK_M': '64'}}}"),
    ("{'a': 1, 'b': {'c': [1, 2, 3], 'd': {'e': None}}}", "'dict key'"),
    ("{'mat1': {'shape': (64, 32), 'stride': (32, 1), 'dtype': 'torch.float16'}, 'op': 'mm', 'input': None, 'tf32': True}", "1.25"),
    ("{}", "{}"),
    ("{1: 'one', (2, 3): [4], 'x': b'y'}", "[None, True, 1.5]"),
    ("b''", "1"),
    ("b'\\x00\\x01\\xfe\\xff'", "2"),
    ("b'" + "abc" * 100 + "'", "3"),
    ("(b'k', 'k', 1.5, None, True, False)", "4"),
    ("(" + ", ".join(str(i) for i in range(300)) + ")", "5"),
    ("[1, 2, 3]", "'a list key pickles although it cannot be hashed'"),
    ("3.5", "-0.0"),
    ("-0.0", "6"),
    ("None", "7"),
    ("True", "8"),
]

CLI_VALUE = "[1, 'two', None, {'k': [2.5, True]}]"  # JSON-representable as it is

SHA_LENGTHS = [0, 1, 2, 3, 31, 32, 33, 55, 56, 57, 63, 64, 65, 111, 112, 119, 120, 127, 128, 129,
               191, 192, 255, 256, 1000, 4095, 4096, 4097, 65536, 100003]


def sequence_input(length):
    return bytes((i * 131 + 17) % 256 for i in range(length))


def memoizer_entry_class():
    """A stand-in for torch._inductor.runtime.caching.interfaces.CacheEntry (a dataclass)."""
    module = types.ModuleType("torch._inductor.runtime.caching.interfaces")
    for name in ("torch", "torch._inductor", "torch._inductor.runtime", "torch._inductor.runtime.caching"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules[module.__name__] = module

    @dataclasses.dataclass
    class CacheEntry:
        encoded_params: object
        encoded_result: object

    CacheEntry.__module__ = module.__name__
    CacheEntry.__qualname__ = "CacheEntry"
    module.CacheEntry = CacheEntry
    return CacheEntry


def main():
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "keys.tsv"), "w") as out:
        for protocol in (4, 5):
            for key_text, value_text in CASES:
                assert "\t" not in key_text and "\t" not in value_text
                key = ast.literal_eval(key_text)
                value = ast.literal_eval(value_text)
                pickled_key = inductor_cache.pickle_key(key, protocol)
                name = inductor_cache.entry_name(key, protocol)
                file_bytes = inductor_cache.version_header() + pickle.dumps(value, protocol=protocol)
                out.write("\t".join([str(protocol), key_text, pickled_key.hex(), name, value_text,
                                     file_bytes.hex()]) + "\n")
    with open(os.path.join(OUT, "sha256.tsv"), "w") as out:
        for length in SHA_LENGTHS:
            out.write(f"seq\t{length}\t{hashlib.sha256(sequence_input(length)).hexdigest()}\n")
        out.write(f"a\t1000000\t{hashlib.sha256(b'a' * 1000000).hexdigest()}\n")
        out.write(f"text\tabc\t{hashlib.sha256(b'abc').hexdigest()}\n")
        for version in range(3):
            out.write(f"text\t{version}\t{hashlib.sha256(str(version).encode()).hexdigest()}\n")
    CacheEntry = memoizer_entry_class()
    with open(os.path.join(OUT, "misc.tsv"), "w") as out:
        out.write(f"header\t{inductor_cache.version_header().hex()}\n")
        entry = CacheEntry(encoded_params={"args": (3, "x"), "kwargs": {}}, encoded_result=[1, 2])
        for protocol in (2, 3, 4, 5):
            out.write(f"memoizer_entry_{protocol}\t{pickle.dumps(entry, protocol=protocol).hex()}\n")
        # What pickletool cache get prints for the CLI test's value, as repr and as JSON.
        cli_value = ast.literal_eval(CLI_VALUE)
        out.write(f"cli_value_literal\t{CLI_VALUE.encode().hex()}\n")
        out.write(f"cli_value_repr\t{repr(cli_value).encode().hex()}\n")
        out.write(f"cli_value_json\t{json.dumps(cli_value, ensure_ascii=False).encode().hex()}\n")


if __name__ == "__main__":
    main()
