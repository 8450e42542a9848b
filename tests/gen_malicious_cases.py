#!/usr/bin/env python3
"""Write the inputs of tests/malicious_test.cpp and what CPython 3.11's pickle.loads does with them:
tests/data/malicious_cases.jsonl.

    python3 tests/gen_malicious_cases.py

One JSON object per line, every value a string:

  class    the number of the class of malicious input in shared/reference/hardening.md section 1.3
           (1 truncation … 13 parser differentials)
  name     the case
  data     the input, hex
  outcome  what pickle.loads() did: "ok", or "<ExceptionClass>: <message>"; "not run" for inputs
           CPython itself cannot finish in reasonable time (the hash-amplification DoS)
  strict   "yes" when the library must agree with CPython on accept/reject and on the exception
           class (the C unpickler's rules the reader follows); "no" where the library is meant to
           differ: it keeps globals, calls and persistent ids as inert data instead of importing and
           calling, and it has no recursion limit or dense memo to run out of.
"""

import json
import os
import pickle
import struct
import sys

CASES = []


def outcome_of(data):
    try:
        pickle.loads(data)
        return "ok"
    except Exception as exc:  # the record is what happened
        return f"{type(exc).__name__}: {exc}"


def case(klass, name, data, strict, run=True):
    CASES.append({"class": str(klass), "name": name, "data": data.hex(),
                  "outcome": outcome_of(data) if run else "not run", "strict": "yes" if strict else "no"})


def sbu(text):
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def main():
    rich = {"a": [1, 2.5, None, True], "b": (b"xy", "h\u00e9"), "c": {frozenset({1}), 3}, "d": 10 ** 30}

    # 1. Truncation (the test also cuts each valid pickle at every offset).
    case(1, "empty", b"", True)
    case(1, "PROTO alone", b"\x80\x05", True)
    case(1, "BINUNICODE length past the end", b"X\xff\xff\xff\xff.", True)
    for protocol in range(6):
        case(1, f"valid pickle p{protocol} (every prefix is cut from it)", pickle.dumps(rich, protocol), True)
    case(1, "inside a FRAME header", pickle.dumps(rich, 4)[:6], True)

    # 2. Length fields larger than the input.
    case(2, "BINUNICODE 0xffffffff", b"X\xff\xff\xff\xff", True)
    for op, name in [(b"\x8e", "BINBYTES8"), (b"\x8d", "BINUNICODE8"), (b"\x96", "BYTEARRAY8")]:
        case(2, f"{name} 2**32", b"\x80\x05" + op + struct.pack("<Q", 1 << 32) + b"ab.", True)
        case(2, f"{name} 2**63+1", b"\x80\x05" + op + struct.pack("<Q", (1 << 63) + 1) + b"ab.", True)
    case(2, "LONG4 huge", b"\x80\x02\x8b\xff\xff\xff\x7fab.", True)
    case(2, "LONG4 negative", b"\x80\x02\x8b\xff\xff\xff\xffab.", True)
    case(2, "FRAME huge", b"\x80\x04\x95" + struct.pack("<Q", 1 << 40) + b"N.", True)
    case(2, "BINSTRING negative", b"T\xff\xff\xff\xffab.", True)
    case(2, "BINSTRING above 2**31", b"T\x00\x00\x00\x80ab.", True)
    case(2, "BINBYTES 0xffffffff", b"\x80\x03B\xff\xff\xff\xffab.", True)

    # 3. Memo abuse.
    case(3, "sparse LONG_BINPUT (]replace.)", b"]replace.", False)  # CPython: MemoryError
    case(3, "LONG_BINPUT 0xffffffff", b"]r\xff\xff\xff\xff.", False)
    case(3, "text PUT above 2**63", b"Np99999999999999999999\n.", True)
    case(3, "GET missing", b"g0\n.", True)
    case(3, "BINGET missing", b"h\x00.", True)
    case(3, "LONG_BINGET missing", b"j\x00\x00\x00\x00.", True)
    case(3, "GET of an index stored later", b"h\x00Nq\x00.", True)
    case(3, "overwritten memo slot", b"Nq\x00K\x01q\x00h\x00.", True)
    case(3, "MEMOIZE on an empty stack", b"\x94", True)
    case(3, "PUT with the MARK on top", b"N(q\x00", True)
    case(3, "negative PUT", b"Np-1\n.", True)
    case(3, "negative GET", b"Np0\n0g-1\n.", True)

    # 4. Stack and MARK discipline (CPython's test_bad_stack and test_bad_mark).
    bad_stack = [b".", b"0", b"1", b"2", b"(2", b"R", b")R", b"a", b"Na", b"b", b"Nb", b"d", b"e", b"(e",
                 b"ibuiltins\nlist\n", b"l", b"o", b"(o", b"p1\n", b"q\x00", b"r\x00\x00\x00\x00", b"s",
                 b"Ns", b"NNs", b"t", b"u", b"(u", b"}(Nu", b"\x81", b")\x81", b"\x85", b"\x86", b"N\x86",
                 b"\x87", b"N\x87", b"NN\x87", b"\x90", b"(\x90", b"\x91", b"\x92", b")}\x92", b"\x93",
                 b"Vlist\n\x93", b"\x94"]
    for data in bad_stack:
        case(4, f"bad stack {data!r}", data, True)
    bad_mark = [b"N(.", b"N(2", b"cbuiltins\nlist\n)(R", b"cbuiltins\nlist\n()R", b"]N(a",
                b"cbuiltins\nValueError\n)R}(b", b"cbuiltins\nValueError\n)R(}b", b"(Nd", b"N(p1\n",
                b"N(q\x00", b"N(r\x00\x00\x00\x00", b"}NN(s", b"}N(Ns", b"}(NNs", b"}((u",
                b"cbuiltins\nlist\n)(\x81", b"cbuiltins\nlist\n()\x81", b"N(\x85", b"NN(\x86",
                b"N(N\x86", b"NNN(\x87", b"NN(N\x87", b"N(NN\x87", b"]((\x90", b"cbuiltins\nlist\n)}(\x92",
                b"cbuiltins\nlist\n)(}\x92", b"cbuiltins\nlist\n()}\x92", b"Vbuiltins\n(Vlist\n\x93",
                b"Vbuiltins\nVlist\n(\x93", b"N(\x94"]
    for data in bad_mark:
        # A MARK consumed as an operand is always an error; which one can depend on a global being
        # called, which the library does not do.
        strict = b"cbuiltins" not in data
        case(4, f"bad mark {data!r}", data, strict)
    case(4, "extra stack items at STOP", b"NN.", True)
    case(4, "trailing bytes after STOP", b"N.garbage", True)

    # 5. Type confusion.
    case(5, "APPEND to an int", b"K\x01Na.", False)
    case(5, "APPENDS to an int", b"K\x01(Ne.", False)
    case(5, "APPENDS of nothing to an int", b"K\x01(e.", False)
    case(5, "SETITEM on a list", b"]NNs.", False)
    case(5, "SETITEMS odd count", b"}(Nu.", True)
    case(5, "DICT odd count", b"(Nd.", True)
    case(5, "ADDITEMS on a list", b"\x80\x04](N\x90.", False)
    case(5, "BUILD on an int", b"K\x01}b.", False)
    case(5, "unhashable dict key", b"}]Ns.", True)
    case(5, "unhashable set item", b"\x80\x04\x8f(]\x90.", True)
    case(5, "unhashable frozenset item", b"\x80\x04(]\x91.", True)
    case(5, "unhashable key in DICT", b"(]Nd.", True)
    case(5, "STACK_GLOBAL with ints", b"\x80\x04K\x01K\x02\x93.", True)
    case(5, "STACK_GLOBAL with bytes", b"\x80\x04C\x01aC\x01b\x93.", True)
    case(5, "REDUCE on an int", b"K\x01)R.", False)
    case(5, "NEWOBJ on an int", b"\x80\x02K\x01)\x81.", False)
    case(5, "NEWOBJ_EX with non-dict kwargs", b"\x80\x04cbuiltins\nint\n)N\x92.", False)
    case(5, "NEWOBJ_EX with a list for args", b"\x80\x04cbuiltins\nint\n]}\x92.", False)
    case(5, "PERSID without a handler", b"P0\n.", False)
    case(5, "BINPERSID without a handler", b"K\x01Q.", False)
    case(5, "EXT1 unregistered", b"\x80\x02\x82\x01.", True)
    case(5, "EXT2 unregistered", b"\x80\x02\x83\x01\x02.", True)
    case(5, "EXT4 unregistered", b"\x80\x02\x84\x01\x02\x03\x04.", True)
    case(5, "EXT1 code 0", b"\x80\x02\x82\x00.", True)
    case(5, "NEXT_BUFFER without buffers", b"\x80\x05\x97.", True)
    case(5, "READONLY_BUFFER on None", b"\x80\x05N\x98.", False)

    # 6. Deep nesting.
    for n in (201, 100_000):
        case(6, f"nested lists {n}", b"\x80\x02" + b"]" * n + b"a" * (n - 1) + b".", True)
    case(6, "TUPLE1 chain 100000", b"\x80\x02N" + b"\x85" * 100_000 + b".", True)
    case(6, "dict chain 100000", b"\x80\x02}" + b"K\x00}" * 100_000 + b"s" * 100_000 + b".", True)
    case(6, "BINPERSID Q-chain 100000", b"\x80\x02N" + b"Q" * 100_000 + b".", False)
    case(6, "REDUCE chain 100000", b"\x80\x02" + b"cbuiltins\ntuple\n" * 100_000 + b")R" +
         b"\x85R" * 99_999 + b".", False)
    case(6, "BUILD chain 100000", b"\x80\x02" + b"ccollections\nOrderedDict\n)\x81" * 100_000 +
         b"b" * 99_999 + b".", False)

    # 7. Cycles.
    case(7, "list containing itself", b"\x80\x02]\x94g0\na.", True)
    case(7, "dict containing itself", b"}q\x00(X\x01\x00\x00\x00ah\x00u.", True)
    case(7, "cycle through BUILD state", b"\x80\x02ccollections\nOrderedDict\n)\x81q\x00}X\x01\x00\x00\x00sh\x00sb.",
         False)
    case(7, "tuple inside a list inside itself", b"\x80\x02]q\x00h\x00\x85a.", True)

    # 8. Amplification through shared references.
    laughs = "lol"
    for _ in range(10):
        laughs = [laughs] * 10
    case(8, "billion laughs 10x10 (p4)", pickle.dumps(laughs, 4), True)
    case(8, "billion laughs 10x10 (p2)", pickle.dumps(laughs, 2), True)
    bomb = b"\x80\x04Nq\x00" + b"0h\x00h\x00\x86q\x00" * 40 + b"."
    case(8, "memo doubling bomb, 40 doublings", bomb, True)
    for doublings, run in [(16, True), (40, False)]:
        key = b"\x80\x04}N" + b"q\x00" + b"0h\x00h\x00\x86q\x00" * doublings + b"Ns."
        case(8, f"doubling tuple as a dict key, {doublings} doublings", key, True, run=run)

    # 9. Expensive numbers.
    case(9, "LONG with 5000 digits", b"L" + b"7" * 5000 + b"L\n.", True)
    case(9, "INT with 5000 digits", b"I" + b"7" * 5000 + b"\n.", True)
    case(9, "LONG with 4300 digits", b"L" + b"7" * 4300 + b"L\n.", True)
    case(9, "FLOAT with 100000 digits", b"F" + b"1" * 100_000 + b"\n.", True)
    case(9, "LONG4 of 1 MiB", b"\x80\x02\x8b" + struct.pack("<i", 1 << 20) + b"\x7f" * (1 << 20) + b".", True)
    case(9, "LONG1 255 bytes", b"\x80\x02\x8a\xff" + b"\xff" * 255 + b".", True)

    # 10. Hash flooding: int keys that all hash to 0 in Python.
    colliding = {i * ((1 << 61) - 1): None for i in range(2000)}
    case(10, "2000 dict keys with one hash", pickle.dumps(colliding, 4), True)
    case(10, "2000 set items with one hash", pickle.dumps(set(colliding), 4), True)

    # 11. Text encoding.
    case(11, "BINUNICODE invalid UTF-8", b"X\x01\x00\x00\x00\xff.", True)
    case(11, "BINUNICODE lone surrogate", b"X\x03\x00\x00\x00\xed\xa0\x80.", True)
    case(11, "SHORT_BINUNICODE truncated sequence", b"\x80\x04\x8c\x02\xe2\x82.", True)
    case(11, "STRING non-ASCII", b"S'\xe9'\n.", True)
    case(11, "SHORT_BINSTRING non-ASCII", b"U\x01\xe9.", True)
    for data in [b"S'\n.", b"S\"\n.", b"S'abc\n.", b"S\"abc'\n.", b"S'abc\"\n.", b"S'\\'\n.",
                 b"S\n.", b"S'\\x4'\n.", b"S'\\x'\n."]:
        case(11, f"badly quoted or escaped {data!r}", data, True)
    case(11, "UNICODE truncated escape", b"V\\u12\n.", True)
    case(11, "UNICODE escape out of range", b"V\\U00110000\n.", True)
    case(11, "UNICODE escape with non-ASCII digits", b"V\\u\xca\xd1\x00\x00\n.", True)

    # 12. Protocol and framing.
    case(12, "PROTO 6", b"\x80\x06N.", True)
    case(12, "PROTO 255", b"\x80\xffN.", True)
    case(12, "FRAME in a protocol 2 pickle", b"\x80\x02\x95\x02\x00\x00\x00\x00\x00\x00\x00N.", True)
    case(12, "protocol 4 opcodes without PROTO", sbu("a") + b"\x94.", True)
    case(12, "duplicate PROTO", b"\x80\x04\x80\x02N.", True)
    case(12, "opcode straddling a frame", b"\x80\x04\x95\x03\x00\x00\x00\x00\x00\x00\x00" + sbu("abc") + b".",
         False)
    case(12, "FRAME inside a frame", b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00\x95\x02\x00\x00\x00\x00\x00\x00\x00N.",
         False)

    # 13. Parser differentials.
    case(13, "INT in hex (C loads it, pickletools does not)", b"I0xf\n.", True)
    case(13, "INT with a space", b"I 0\n.", True)
    case(13, "INT +0", b"I+0\n.", True)
    case(13, "INT 01 (True)", b"I01\n.", True)
    case(13, "APPENDS with zero items on a dict", b"}(e.", False)
    case(13, "PUT index above LONG_MAX", b"Np9223372036854775808\n.", True)
    case(13, "BINSTRING 0x80000000", b"T\x00\x00\x00\x80.", True)
    case(13, "two pickles in one file", b"N.K\x01.", True)
    # These would run os.system in CPython: not run here.
    case(13, "error after a dangerous REDUCE (nullifAI)", b"cos\nsystem\n(Vid\ntRX.", False, run=False)
    case(13, "FLOAT before a dangerous GLOBAL", b"F1.5\n0cos\nsystem\n(Vid\ntR.", False, run=False)

    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "malicious_cases.jsonl")
    with open(out, "w", encoding="utf-8") as f:
        for item in CASES:
            f.write(json.dumps(item, ensure_ascii=True) + "\n")
    print(f"{len(CASES)} cases -> {out} (python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
