#!/usr/bin/env python3
"""Record what CPython's C unpickler does with each reader test input.

Writes tests/data/reader_cases.tsv, one case per line, tab-separated:

    name  options  input-hex  ok     canonical-form
    name  options  input-hex  error  ExceptionClass  message-hex

`options` is `-` or a comma list of: latin1, bytes (the encoding= argument), nofix
(fix_imports=False), buffers=N (N out-of-band buffers PickleBuffer(bytearray(b'buf0')), …), py
(the expectation comes from pickle.py's unpickler, for the frame rules the C one of 3.11 skips).

The canonical form of a loaded value (tests/reader_test.cpp computes the same form from a
pickle::Value):
    N T F                None, True, False
    i<hex>               int, as Python's hex() (e.g. i0x2a, i-0x1)
    f<hex>               float, as float.hex() ("nan", "inf", "-inf" as Python spells them)
    s<hex> b<hex> B<hex> str (UTF-8, surrogatepass), bytes, bytearray
    (a b) [a b] {k v}    tuple, list, dict (insertion order)
    S{…} Z{…}            set, frozenset: item forms sorted, no sharing labels inside
    g<module>.<qualname> a class or function (found by find_class)
    X                    any other object (the reader keeps those inert)
    M<hex>               a memoryview / PickleBuffer of those bytes
A list, dict, set, bytearray or non-empty tuple met a second time is written @n, where n counts
those containers in order of first appearance, so sharing and cycles are part of the form.

Run with the interpreter the expectations should come from (CPython 3.11):
    python3 tests/gen_reader_cases.py
The live differential test runs `gen_reader_cases.py --random FILE COUNT SEED` with the
interpreter named by PICKLE_PYTHON to get random values in the same format.
"""
import os
import pickle
import sys
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data", "reader_cases.tsv")


def frame(n):
    return b"\x95" + n.to_bytes(8, "little")


def canonical(value):
    labels = {}
    out = []
    # Explicit stack: (value, in_set). Strings are pushed as literal output pieces.
    stack = [(value, False)]
    while stack:
        item, in_set = stack.pop()
        if isinstance(item, _Text):
            out.append(item.text)
            continue
        out.append(_leaf_or_open(item, in_set, labels, stack))
    return "".join(out)


class _Text:
    __slots__ = ("text",)

    def __init__(self, text):
        self.text = text


def _set_form(prefix, items):
    return prefix + "{" + " ".join(sorted(canonical_unlabeled(x) for x in items)) + "}"


def canonical_unlabeled(value):
    return canonical(value)


def _leaf_or_open(x, in_set, labels, stack):
    t = type(x)
    if x is None:
        return "N"
    if t is bool:
        return "T" if x else "F"
    if t is int:
        return "i" + hex(x)
    if t is float:
        return "f" + (x.hex() if x == x and abs(x) != float("inf") else repr(x))
    if t is str:
        return "s" + x.encode("utf-8", "surrogatepass").hex()
    if t is bytes:
        return "b" + x.hex()
    if t is memoryview:
        return "M" + x.tobytes().hex()
    if t is pickle.PickleBuffer:
        return "M" + bytes(x.raw()).hex()
    labelled = t in (list, dict, set, bytearray) or (t is tuple and len(x) > 0)
    if labelled and not in_set:
        if id(x) in labels:
            return "@" + str(labels[id(x)][0])
        labels[id(x)] = (len(labels), x)  # keep x alive so ids stay unique
    if t is bytearray:
        return "B" + bytes(x).hex()
    if t is set:
        return _set_form("S", x)
    if t is frozenset:
        return _set_form("Z", x)
    if t in (tuple, list):
        opener, closer = ("(", ")") if t is tuple else ("[", "]")
        stack.append((_Text(closer), False))
        for i, item in reversed(list(enumerate(x))):
            stack.append((item, in_set))
            if i:
                stack.append((_Text(" "), False))
        return opener
    if t is dict:
        stack.append((_Text("}"), False))
        pairs = list(x.items())
        for i, (k, v) in reversed(list(enumerate(pairs))):
            stack.append((v, in_set))
            stack.append((_Text(" "), False))
            stack.append((k, in_set))
            if i:
                stack.append((_Text(" "), False))
        return "{"
    if isinstance(x, type) or callable(x) and hasattr(x, "__qualname__"):
        module = getattr(x, "__module__", None) or getattr(x.__objclass__, "__module__")
        return "g" + module + "." + x.__qualname__
    return "X"


def run(data, options):
    kwargs = {}
    for option in options:
        if option in ("latin1", "bytes"):
            kwargs["encoding"] = option
        elif option == "nofix":
            kwargs["fix_imports"] = False
        elif option.startswith("buffers="):
            kwargs["buffers"] = [pickle.PickleBuffer(bytearray(b"buf%d" % i))
                                 for i in range(int(option.split("=")[1]))]
    load = pickle._loads if "py" in options else pickle.loads
    try:
        value = load(data, **kwargs)
    except BaseException as e:  # noqa: BLE001 - every outcome is recorded
        return ("error", type(e).__name__, str(e).encode("utf-8", "surrogatepass").hex())
    return ("ok", canonical(value))


CASES = []


def case(name, data, *options):
    CASES.append((name, list(options), data))


def build_cases():
    # --- constants and numbers (test_constants, test_maxint64, …) --------------------------------
    for i, data in enumerate([b"N.", b"\x88.", b"\x89.", b"I01\n.", b"I00\n.", b"I0\n.", b"I1\n.",
                              b"I 1\n.", b"I+1\n.", b"I\t1\n.", b"I-0\n.", b"I 0\n.", b"I010\n.",
                              b"I-010\n.", b"I0x1f\n.", b"I0o17\n.", b"I0b101\n.", b"I1_000\n.",
                              b"I 42 \n.", b"I09\n.", b"I1L\n.", b"I\x00\n.", b"I1\x00junk\n.",
                              b"I\x001\n.", b"I \n.", b"I+\n.", b"I0x\n.", b"I1\r\n.", b"I\r1\n.",
                              b"I9223372036854775807\n.", b"I9223372036854775807JUNK\n.",
                              b"I9223372036854775808\n.", b"I-9223372036854775808\n.",
                              b"I-9223372036854775809\n.", b"I99999999999999999999\n.",
                              b"I0xffffffffffffffffffff\n.", b"I" + b"1" * 5000 + b"\n.",
                              b"I" + b"0" * 5000 + b"1\n.", b"I" + b"0" * 5000 + b"9\n.",
                              b"I" + b"1" * 4300 + b"\n.", b"I1__0\n.", b"I1_\n.", b"I_1\n."]):
        case("int_%d" % i, data)
    for i, data in enumerate([b"L0\n.", b"L0L\n.", b"L-1L\n.", b"L12345678901234567890L\n.",
                              b"L 1 L\n.", b"LL\n.", b"L\x00\n.", b"L1\x00x\n.", b"L12x\n.",
                              b"L0xg\n.", b"L0o9\n.", b"L0b\n.", b"L08\n.", b"L00\n.", b"L0_0\n.",
                              b"L-\n.", b"L1\r\n.", b"L\xc3\xa9x\n.", b"L\xff\n.",
                              b"L'x\n.", b"L'\"x\n.", b"L\tx\x01\n.", b"L" + b"x" * 300 + b"\n.",
                              b"L" + b"x" * 199 + b"\xc3\xa9\n.", b"L" + b"1" * 5000 + b"\n.",
                              b"L" + b"1" * 5000 + b"x\n.", b"L" + b"1_" * 4000 + b"1\n.",
                              b"L0x" + b"f" * 5000 + b"\n.", b"L" + b"9" * 4300 + b"\n.",
                              b"L-0x8000000000000000\n.", b"L123456789012345678901234567890\n."]):
        case("long_%d" % i, data)
    for i, data in enumerate([b"F1.5\n.", b"F-0.0\n.", b"Finf\n.", b"F-Infinity\n.", b"FnAn\n.",
                              b"F.5\n.", b"F5.\n.", b"F1.5E+3\n.", b"F1e500\n.", b"F-1e500\n.",
                              b"F1e-500\n.", b"F-1e-400\n.", b"F4.9e-324\n.", b"F 1\n.",
                              b"F1 \n.", b"F1_0\n.", b"F1\r\n.", b"F1\x00x\n.", b"F\x00\n.",
                              b"Fabc\n.", b"F.\n.", b"F1e\n.", b"F1e+\n.", b"F0x1p3\n.",
                              b"F\xff\n.", b"Fx\xff\n.", b"F1e500x\n.", b"Finfx\n.", b"F+\n.",
                              b"Fin\n.", b"Finfinit\n.", b"Fnanx\n.", b"F1" + b"0" * 400 + b"\n.",
                              b"F0." + b"0" * 400 + b"1e400\n.", b"F1e99999999999999999999\n.",
                              b"F1e-99999999999999999999\n.", b"F0e99999999999999999999\n.",
                              b"F" + b"1" * 5000 + b"\n.", b"F0.1\n.", b"F3.141592653589793\n.",
                              b"F1.7976931348623157e308\n.", b"F2.2250738585072014e-308\n.",
                              b"F" + b"x" * 300 + b"\n."]):
        case("float_%d" % i, data)
    case("binfloat", b"G?\xf8\x00\x00\x00\x00\x00\x00.")
    case("binfloat_neg_zero", b"G\x80\x00\x00\x00\x00\x00\x00\x00.")
    case("binint", b"J\xff\xff\xff\xff.")
    case("binint1", b"K\xff.")
    case("binint2", b"M\xff\xff.")
    for i, data in enumerate([b"\x8a\x00.", b"\x8a\x01\xff.", b"\x8a\x01\x7f.", b"\x8a\x02\x00\x80.",
                              b"\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f.",
                              b"\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80.",
                              b"\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x80\x00.",
                              b"\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\xff.",
                              b"\x8a\x10" + b"\xff" * 16 + b".",
                              b"\x8b\x00\x00\x00\x00.", b"\x8b\x03\x00\x00\x00\x01\x02\x03.",
                              b"\x8b\xff\xff\xff\xff.", b"\x8b\x00\x01\x00\x00" + b"\x5a" * 256 + b"."]):
        case("long1_4_%d" % i, data)

    # --- strings ----------------------------------------------------------------------------
    strings = [b"S'abc'\n.", b'S"abc"\n.', b"S'a'b'\n.", b"S''\n.", b'S""\n.', b"S'\\n'\n.",
               b'S"\\n"\n.', b"S'\\x41'\n.", b"S'\\x4'\n.", b"S'\\x4g'\n.", b"S'ab\\x'\n.",
               b"S'\\q'\n.", b"S'\\'\n.", b"S'\\101\\0\\1234'\n.", b"S'\\777'\n.", b"S'\\\\'\n.",
               b"S'abc\\x4'\n.", b"S'\\N{x}'\n.", b"S'\\u1234'\n.", b"S'a\x00b'\n.", b"S'a'\r\n.",
               b"S'\xe9'\n.", b"S'\\xe9'\n.", b"S'\\a\\b\\f\\t\\v\\r\\''\n.",
               # test_badly_quoted_string
               b"S'\n.", b'S"\n.', b"S' \n.", b'S" \n.', b"S'\"\n.", b"S\"'\n.", b"S' ' \n.",
               b'S" " \n.', b"S ''\n.", b'S ""\n.', b"S \n.", b"S\n.", b"S."]
    for i, data in enumerate(strings):
        case("string_%d" % i, data)
        case("string_%d_latin1" % i, data, "latin1")
        case("string_%d_bytes" % i, data, "bytes")
    for i, data in enumerate([b"U\x03abc.", b"U\x01\xff.", b"U\x02a\xff.", b"U\x00.",
                              b"T\x03\x00\x00\x00abc.", b"T\x01\x00\x00\x00\x80.",
                              b"T\x2c\x01\x00\x00" + b"x" * 300 + b".", b"\x80\x02U\x03a\x00\xa0.",
                              b"S'a\\x00\\xa0'\n."]):
        case("binstring_%d" % i, data)
        case("binstring_%d_latin1" % i, data, "latin1")
        case("binstring_%d_bytes" % i, data, "bytes")
    unicode_cases = [b"V\\u03c0\n.", b"Vabc\n.", b"V\\u12\n.", b"V\\u12g4\n.", b"Vab\\U00110000\n.",
                     b"V\\U0010ffff\n.", b"V\\\n.", b"V\\\\u1234\n.", b"V\\x41\\n\n.", b"V\xe9\xff\n.",
                     b"V\\ud800\n.", b"Vab\\U0011000\n.", b"V\\uD83D\\uDE00\n.", b"V\n.",
                     b"Va\x00b\n.", b"V\\u00e9\\U0001F600\n.", b"V\\U\n.", b"V\\u\n."]
    for i, data in enumerate(unicode_cases):
        case("unicode_%d" % i, data)
    binunicode = [b"X\x02\x00\x00\x00\xcf\x80.", b"\x80\x02X\x02\x00\x00\x00\xcf\x80.",
                  b"X\x01\x00\x00\x00\xff.", b"X\x03\x00\x00\x00\xed\xa0\x80.",
                  b"X\x02\x00\x00\x00a\xc3.", b"X\x03\x00\x00\x00ab\xe0\x80.",
                  b"X\x04\x00\x00\x00\xf4\x90\x80\x80.", b"X\x02\x00\x00\x00\xc0\x80.",
                  b"X\x03\x00\x00\x00\xe0\x80\x80.", b"X\x06\x00\x00\x00\xed\xa0\xbd\xed\xb8\x80.",
                  b"\x80\x04\x8c\x04\xe2\x82\xac\x00.", b"\x80\x04\x8d\x04\x00\x00\x00\x00\x00\x00\x00\xe2\x82\xac\x00.",
                  b"X\x00\x00\x00\x00.", b"\x8c\x00.", b"X\x05\x00\x00\x00ab\xffcd."]
    for i, data in enumerate(binunicode):
        case("binunicode_%d" % i, data)
    for i, data in enumerate([b"\x80\x03C\x04\xe2\x82\xac\x00.", b"\x80\x03B\x04\x00\x00\x00\xe2\x82\xac\x00.",
                              b"\x80\x04\x8e\x04\x00\x00\x00\x00\x00\x00\x00\xe2\x82\xac\x00.",
                              b"\x80\x05\x96\x03\x00\x00\x00\x00\x00\x00\x00xxx.", b"C\x00.",
                              b"\x80\x03U\x00q\x00."]):
        case("bytes_%d" % i, data)

    # --- containers, stack, memo ------------------------------------------------------------
    for i, data in enumerate([b"(K\x01K\x02t.", b"(K\x01K\x02l.", b"(K\x01K\x02d.", b"(K\x01d.",
                              b"(K\x01K\x02K\x01K\x03d.", b"(]K\x01d.", b"}]Ns.", b"}K\x01K\x02s.",
                              b"}(K\x01K\x02K\x03K\x04u.", b"](K\x01K\x02e.", b"]K\x01a.",
                              b"\x8f(K\x01K\x02\x90.", b"(K\x01K\x02\x91.", b"(]\x91.", b"\x8f(]\x90.",
                              b")K\x01\x85K\x01K\x02\x86K\x01K\x02K\x03\x87\x87.", b"K\x01K\x02.",
                              b"(N.", b"NN.", b"N.garbage", b"(K\x012t.", b"((l2t.",
                              b"((Kdtp0\nh\x00l.", b"((lp100000\ng100000\nt.", b"(]q\xffh\xfft.",
                              b"(]r\x00\x00\x01\x00j\x00\x00\x01\x00t.", b"K\x07q\x05\x94h\x01.",
                              b"K\x07q\x05q\x05\x94h\x01.", b"]q\x00h\x00a.", b"}q\x00K\x01h\x00s.",
                              b"\x80\x02]\x94g0\na.", b"(K\x01K\x020t.", b"(K\x01(K\x021t.",
                              b"(K\x01(0t.", b"K\x01(0.", b"]\x94(h\x00h\x00e.",
                              b"(K\x01K\x02K\x01\x91.", b"(K\x01\x88\x91.", b"}K\x01N\x88Ns.",
                              b"(K\x01K\x02\x8f\x90.", b")(\x90.", b"](e.", b"}(u.", b"\x8f(\x90.",
                              b"N(e.", b"N(u.", b"N(\x90.", b"(K\x01K\x02K\x03d.",
                              b"Va\np-1\n.", b"Va\np 1\n.", b"Va\np1_0\ng10\n.", b"Va\np0x1\n.",
                              b"Va\np99999999999999999999999\n.", b"Va\np+1\ng1\n.",
                              b"Va\np1 \ng 1\n.", b"Va\np" + b"1" * 5000 + b"\n.", b"g1\n.",
                              b"h\x01.", b"j\x01\x00\x00\x00.", b"ga\n.", b"g\n.", b"g-1\n.",
                              b"g0\np0", b"jens:", b"hens:", b"\x94.", b"N(\x94.", b"]\x94\x94h\x00.",
                              b"N\x94K\x01\x94h\x01.", b"Kdq\x05Kdq\x05\x94h\x01."]):
        case("stack_%d" % i, data)

    # test_bad_stack and test_bad_mark
    bad_stack = [b".", b"0", b"1", b"2", b"(2", b"R", b")R", b"a", b"Na", b"b", b"Nb", b"d", b"e",
                 b"(e", b"ibuiltins\nlist\n", b"l", b"o", b"(o", b"p1\n", b"q\x00", b"r\x00\x00\x00\x00",
                 b"s", b"Ns", b"NNs", b"t", b"u", b"(u", b"}(Nu", b"\x81", b")\x81", b"\x85", b"\x86",
                 b"N\x86", b"\x87", b"N\x87", b"NN\x87", b"\x90", b"(\x90", b"\x91", b"\x92", b")}\x92",
                 b"\x93", b"Vlist\n\x93", b"\x94"]
    for i, data in enumerate(bad_stack):
        case("bad_stack_%d" % i, data)
    bad_mark = [b"N(.", b"N(2", b"cbuiltins\nlist\n)(R", b"cbuiltins\nlist\n()R", b"]N(a",
                b"cbuiltins\nValueError\n)R}(b", b"cbuiltins\nValueError\n)R(}b", b"(Nd", b"N(p1\n",
                b"N(q\x00", b"N(r\x00\x00\x00\x00", b"}NN(s", b"}N(Ns", b"}(NNs", b"}((u",
                b"cbuiltins\nlist\n)(\x81", b"cbuiltins\nlist\n()\x81", b"N(\x85", b"NN(\x86",
                b"N(N\x86", b"NNN(\x87", b"NN(N\x87", b"N(NN\x87", b"]((\x90",
                b"cbuiltins\nlist\n)}(\x92", b"cbuiltins\nlist\n)(}\x92", b"cbuiltins\nlist\n()}\x92",
                b"Vbuiltins\n(Vlist\n\x93", b"Vbuiltins\nVlist\n(\x93", b"N(\x94"]
    for i, data in enumerate(bad_mark):
        case("bad_mark_%d" % i, data + b".")
    # test_truncated_data
    truncated = [b"", b"N", b"B", b"B\x03\x00\x00", b"B\x03\x00\x00\x00", b"B\x03\x00\x00\x00ab",
                 b"C", b"C\x03", b"C\x03ab", b"F", b"F0.0", b"F0.00", b"G", b"G\x00\x00\x00\x00\x00\x00\x00",
                 b"I", b"I0", b"J", b"J\x00\x00\x00", b"K", b"L", b"L0", b"L10", b"L0L", b"L10L", b"M",
                 b"M\x00", b"S", b"S'abc'", b"T", b"T\x03\x00\x00", b"T\x03\x00\x00\x00",
                 b"T\x03\x00\x00\x00ab", b"U", b"U\x03", b"U\x03ab", b"V", b"Vabc", b"X", b"X\x03\x00\x00",
                 b"X\x03\x00\x00\x00", b"X\x03\x00\x00\x00ab", b"(c", b"(cbuiltins", b"(cbuiltins\n",
                 b"(cbuiltins\nlist", b"Ng", b"Ng0", b"(i", b"(ibuiltins", b"(ibuiltins\n",
                 b"(ibuiltins\nlist", b"Nh", b"Nj", b"Nj\x00\x00\x00", b"Np", b"Np0", b"Nq", b"Nr",
                 b"Nr\x00\x00\x00", b"\x80", b"\x82", b"\x83", b"\x84\x01", b"\x84", b"\x84\x01\x00\x00",
                 b"\x8a", b"\x8b", b"\x8b\x00\x00\x00", b"\x8c", b"\x8c\x03", b"\x8c\x03ab", b"\x95",
                 b"\x95\x02\x00\x00\x00\x00\x00\x00", b"\x95\x02" + b"\x00" * 7,
                 b"\x95\x02" + b"\x00" * 7 + b"N", b"\x80\x05", b"X''.", b"X\xff\xff\xff\xff.",
                 b"T\xff\xff\xff\xff.", b"T\xff\xff\xff\x7f.", b"\x8b\xff\xff\xff\x7f.",
                 b"\x8d\xff\xff\xff\x00\x00\x00\x00\x00.", b"Pabc", b"c\nlog\n.", b"cmath\n\n.",
                 b"\x80\x04cmath\n\n."]
    for op in (b"\x8d", b"\x8e", b"\x96"):
        truncated += [op, op + b"\x03\x00\x00\x00\x00\x00\x00", op + b"\x03" + b"\x00" * 7,
                      op + b"\x03" + b"\x00" * 7 + b"ab"]
    for i, data in enumerate(truncated):
        case("truncated_%d" % i, data)
    # every prefix of a few valid pickles
    for proto in range(6):
        full = pickle.dumps([1, "a", (2.5, None, True), b"\x00", {"k": -1}, 300, 2 ** 40,
                             -2 ** 31 - 1, "\xe9", {3}, frozenset([4]), bytearray(b"z")], proto)
        for end in range(len(full)):
            case("prefix_p%d_%d" % (proto, end), full[:end])
        case("full_p%d" % proto, full)

    # --- invalid opcodes --------------------------------------------------------------------
    for byte in (0x00, 0x27, 0x5c, 0x7f, 0xff, 0x99, 0x20, 0x41, 0x7e, 0x0a):
        case("invalid_key_%02x" % byte, bytes([byte]) + b".")

    # --- globals, calls and objects -----------------------------------------------------------
    for i, data in enumerate([b"cbuiltins\nint\n.", b"cbuiltins\nint \n.", b"\x80\x02c__builtin__\nunicode\n.",
                              b"c__builtin__\nunicode\n.", b"\x80\x03c__builtin__\nunicode\n.",
                              b"\x8c\x08builtins\x8c\x03int\x93.", b"\x8c\x00\x8c\x03log\x93.",
                              b"N\x93.", b"\x8c\x01a\x93.", b"N\x8c\x03log\x93.", b"\x8c\x04mathN\x93.",
                              b"c\xff\nlog\n.", b"cmath\n\xff\n.", b"(i\xc3\xa9\nX\n.",
                              b"cbuiltins\nint\n)R.", b"N)R.", b"cbuiltins\nint\nNR.", b"NNR.",
                              b"cbuiltins\nint\n)\x81.", b"cbuiltins\nlen\n)\x81.",
                              b"cbuiltins\nint\nN\x81.", b"NN\x81.", b"N)\x81.", b"K\x01)\x81.",
                              b"cbuiltins\nint\n)}\x92.", b"cbuiltins\nlen\n)}\x92.",
                              b"cbuiltins\nint\nN}\x92.", b"cbuiltins\nint\n)N\x92.",
                              b"(ibuiltins\nint\n.", b"(ibuiltins\nint\nK\x01.",
                              b"(c__builtin__\nunicode\no.", b"(o.", b"((o.", b"(N(o.",
                              b"\x80\x02c__builtin__\nxrange\nK\x01K\x07K\x01\x87R.",
                              b"\x80\x02c__builtin__\nset\nq\x00]q\x01(K\x01K\x02e\x85q\x02Rq\x03.",
                              b"\x80\x02c__builtin__\nset\nq\x00]q\x01K\x03a\x85q\x02Rq\x03.",
                              b"\x80\x02cexceptions\nException\nU\x03ugh\x85R.",
                              b"\x80\x02c__builtin__\nset\n]\x85R.", b"c__builtin__\nset\n]\x85R.",
                              b"c__builtin__\nfrozenset\n(]tR.", b"cbuiltins\nset\n)R.",
                              b"cbuiltins\nfrozenset\n)R.", b"cbuiltins\nbytearray\n)R.",
                              b"cbuiltins\nbytes\n)R.", b"cbuiltins\nbytearray\nC\x02ab\x85R.",
                              b"c_codecs\nencode\nX\x02\x00\x00\x00\xc3\xa9X\x06\x00\x00\x00latin1\x86R.",
                              b"c__builtin__\nbytearray\nX\x02\x00\x00\x00abX\x07\x00\x00\x00latin-1\x86R.",
                              b"cbuiltins\nset\n]K\x01a]K\x02a\x86\x85R.",
                              b"\x80\x02c__builtin__\nset\n]]a\x85R.",
                              b"\x80\x02c__builtin__\nbytearray\nq\x00c_codecs\nencode\nq\x01X\x02\x00\x00\x00abq\x02X\x06\x00\x00\x00latin1q\x03\x86q\x04Rq\x05\x85q\x06Rq\x07.",
                              b"\x80\x04cbuiltins\nstr.upper\n.",
                              b"\x8c\x04math\x8c\x00\x93."]):
        case("global_%d" % i, data)
    case("nofix_unicode", b"\x80\x02c__builtin__\nunicode\n.", "nofix")
    case("nofix_set", b"\x80\x02c__builtin__\nset\n]\x85R.", "nofix")

    # --- protocol, frames, buffers, persistent ids, extensions --------------------------------
    for i, data in enumerate([b"\x80\x06N.", b"\x80\xffN.", b"\x80\x05\x80\x02N.", b"\x80\x00N.",
                              b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00I42\n.",
                              b"\x80\x04" + frame(0) + b"N.", b"\x80\x04" + frame(2) + b"N.",
                              b"\x80\x04" + frame(2) + b"NN" + frame(1) + b".",
                              frame(2 ** 63) + b"N.", frame(2 ** 64 - 1) + b"N.", frame(100) + b"N.",
                              frame(2) + b"K\x01.", frame(1) + b"K\x01.",
                              frame(2) + b"N." + b"\x80\x06", b"\x82\x01.", b"\x82\xff.",
                              b"\x83\x01\x00.", b"\x83\xff\xff.", b"\x84\x01\x00\x00\x00.",
                              b"\x84\xff\xff\xff\x7f.", b"\x82\x00.", b"\x83\x00\x00.",
                              b"\x84\x00\x00\x00\x00.", b"\x84\x00\x00\x00\x80.",
                              b"\x84\xff\xff\xff\xff.", b"\x97.", b"\x98.", b"N\x98.", b"C\x01a\x98.",
                              b"\x80\x05\x8e" + (2 ** 63).to_bytes(8, "little") + b".",
                              b"\x8d" + (2 ** 64 - 1).to_bytes(8, "little") + b".",
                              b"\x96" + (2 ** 63).to_bytes(8, "little") + b"."]):
        case("proto_frame_ext_%d" % i, data)
    # Frame boundaries: the C unpickler of 3.11 does not enforce them, pickle.py does (and so do
    # newer C unpicklers, gh-154848); these expectations come from pickle._loads ("py").
    strict_frames = [frame(3) + b"Vab\n.", frame(3) + b"Vab\n." + frame(0),
                     b"\x80\x04" + frame(3) + b"N" + frame(1) + b"..",
                     b"\x80\x04" + frame(2) + b"K\x01" + frame(1) + b".",
                     frame(1) + b"J\x01\x00\x00\x00.", frame(4) + b"\x8c\x05abcde.",
                     frame(9) + frame(1) + b"N.", frame(10) + frame(1) + b"NN.",
                     frame(2) + b"NN" + frame(1) + b".", frame(1) + b"N" + frame(1) + b".",
                     frame(0) + frame(0) + b"N.", frame(3) + b"I1\n" + b"I2\n.",
                     frame(2) + b"I1" + b"\n.", frame(12) + b"cbuiltins\nint\n.",
                     b"\x80\x04" + frame(1) + b"\x80" + b"\x04N.",
                     frame(1) + b"(" + frame(2) + b"t."]
    for i, data in enumerate(strict_frames):
        case("frame_strict_%d" % i, data, "py")

    case("buffers_none_given", b"\x97.", "buffers=0")
    case("buffer_one", b"\x97.", "buffers=1")
    case("buffer_readonly", b"\x97\x98.", "buffers=1")
    case("buffers_too_few", b"\x97\x97.", "buffers=1")
    case("buffers_two", b"\x97\x97\x86.", "buffers=2")

    # --- operations on every builtin kind (type confusion) ------------------------------------
    targets = {
        "None": b"N", "True": b"\x88", "int": b"K\x01", "float": b"G\x00\x00\x00\x00\x00\x00\x00\x00",
        "str": b"\x8c\x01a", "bytes": b"C\x01a", "bytearray": b"\x96\x01\x00\x00\x00\x00\x00\x00\x00a",
        "tuple": b")", "tuple1": b"K\x01\x85", "list": b"]", "dict": b"}", "set": b"\x8f",
        "frozenset": b"(\x91", "list5": b"]K\x05a",
    }
    ops = {
        "append": b"K\x41a", "append_str": b"\x8c\x01ba", "appends": b"(K\x41K\x42e", "appends0": b"(e",
        "appends_bad": b"(K\x41\x8c\x01be", "appends_big": b"(M\x00\x01e", "appends_bool": b"(\x88\x89e",
        "setitem": b"K\x01K\x02s", "setitem0": b"K\x00K\x02s", "setitem_neg": b"J\xff\xff\xff\xffK\x42s",
        "setitem_unhashable": b"]K\x02s", "setitem_float": b"G\x00\x00\x00\x00\x00\x00\x00\x00K\x02s",
        "setitem_bigidx": b"\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01K\x02s",
        "setitem_bigval": b"K\x00\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01s",
        "setitem_none": b"K\x00Ns", "setitem_256": b"K\x00M\x00\x01s", "setitem_true": b"\x88K\x02s",
        "setitems": b"(K\x01K\x02u", "setitems0": b"(u", "setitems_odd": b"(K\x01u",
        "additems": b"(K\x01\x90", "additems0": b"(\x90", "additems_unhashable": b"(]\x90",
        "build_dict": b"}b", "build_none": b"Nb", "build_none_emptydict": b"N}\x86b",
        "build_int": b"K\x01b", "build_dict1": b"}\x8c\x01xK\x01sb", "build_slots": b"N}\x8c\x01xK\x01s\x86b",
        "build_slots_intkey": b"N}K\x01K\x01s\x86b", "build_slots_none": b"NN\x86b",
        "build_slots_int": b"NK\x01\x86b", "build_both_dicts": b"}}\x86b",
        "reduce": b")R", "newobj": b")\x81", "stack_global": b"\x8c\x01x\x93", "readonly": b"\x98",
    }
    for tname, target in targets.items():
        for oname, op in ops.items():
            case("confuse_%s_%s" % (tname, oname), b"\x80\x05" + target + op + b".")

    # --- pickles CPython writes for builtin values --------------------------------------------
    values = [None, True, False, 0, 1, -1, 255, 256, 65535, 65536, 2 ** 31 - 1, -2 ** 31, 2 ** 31,
              2 ** 63, -2 ** 63 - 1, 2 ** 1000, -2 ** 1000, 0.0, -0.0, 1.5, float("inf"), float("-inf"),
              1e300, "", "a", "\xe9", "\u20ac", "\U0001f600", "\ud800", "a\nb\\c", "x" * 300, b"",
              b"\x00\xff", b"y" * 300, bytearray(b""), bytearray(b"ab"), (), (1,), (1, 2), (1, 2, 3),
              (1, 2, 3, 4), [], [1], list(range(1001)), {}, {1: 2}, {i: i for i in range(1001)},
              set(), {1}, set(range(1001)), frozenset(), frozenset({1, 2}), [[1, 2], (3, [4])],
              {"k": [1, {"x": (None,)}]}, {"\xe9": b"\xe9", 1.5: -2}]
    shared = [1, 2]
    values.append([shared, shared, (shared,)])
    rec = []
    rec.append(rec)
    values.append(rec)
    rt = []
    rt.append((rt,))
    values.append(rt)
    rd = {}
    rd["self"] = rd
    values.append(rd)
    s = "shared"
    values.append([s, s, (s, s)])
    for vi, value in enumerate(values):
        for proto in range(6):
            case("value_%d_p%d" % (vi, proto), pickle.dumps(value, proto))


COMPAT_OUT = os.path.join(HERE, "data", "reader_cases.compat.tsv")

# How pickle.py's find_class (reading) and save_global (writing) apply the tables, for one
# interpreter; run in a subprocess for the other versions.
COMPAT_SCRIPT = r"""
import _compat_pickle as c, sys
minor = sys.version_info[1]
def read(m, n):
    if (m, n) in c.NAME_MAPPING: return c.NAME_MAPPING[(m, n)]
    if m in c.IMPORT_MAPPING: return (c.IMPORT_MAPPING[m], n)
    return (m, n)
def write(m, n):
    if (m, n) in c.REVERSE_NAME_MAPPING: return c.REVERSE_NAME_MAPPING[(m, n)]
    if m in c.REVERSE_IMPORT_MAPPING: return (c.REVERSE_IMPORT_MAPPING[m], n)
    return (m, n)
keys = set(c.NAME_MAPPING) | {(m, "anything") for m in c.IMPORT_MAPPING}
keys |= {("builtins", "int"), ("mymodule", "Thing"), ("__builtin__", "nonexistent"), ("tkinter", "Tk")}
rkeys = set(c.REVERSE_NAME_MAPPING) | {(m, "anything") for m in c.REVERSE_IMPORT_MAPPING}
rkeys |= {("builtins", "int"), ("mymodule", "Thing"), ("tkinter.tix", "Tix"), ("collections", "OrderedDict")}
for m, n in sorted(keys):
    print("\t".join(["read", str(minor), m, n, *read(m, n)]))
for m, n in sorted(rkeys):
    print("\t".join(["write", str(minor), m, n, *write(m, n)]))
"""


def compat_rows():
    import subprocess
    rows = []
    for minor in (11, 13):
        if sys.version_info[:2] == (3, minor):
            cmd = [sys.executable, "-c", COMPAT_SCRIPT]
            env = None
        else:
            cmd = ["python3.%d" % minor, "-c", COMPAT_SCRIPT]
            env = dict(os.environ, PYENV_VERSION=next(
                (v for v in subprocess.run(["pyenv", "versions", "--bare"], capture_output=True,
                                           text=True).stdout.split() if v.startswith("3.%d." % minor)),
                ""))
        rows += subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout.splitlines()
    return rows


def random_value(rng, depth=0):
    kinds = ["none", "bool", "int", "bigint", "float", "str", "bytes", "bytearray"]
    if depth < 4:
        kinds += ["list", "tuple", "dict", "set", "frozenset", "shared"] * 2
    kind = rng.choice(kinds)
    if kind == "none":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "int":
        return rng.randint(-2 ** 40, 2 ** 40) >> rng.randint(0, 40)
    if kind == "bigint":
        return rng.randint(-2 ** 300, 2 ** 300)
    if kind == "float":
        return rng.choice([0.0, -0.0, float("inf"), rng.uniform(-1e9, 1e9), rng.random() * 1e-300])
    if kind == "str":
        return "".join(chr(rng.choice([rng.randint(32, 126), rng.randint(0xa0, 0x2fff),
                                       rng.randint(0x10000, 0x10ffff)])) for _ in range(rng.randint(0, 12)))
    if kind == "bytes":
        return bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 12)))
    if kind == "bytearray":
        return bytearray(rng.randint(0, 255) for _ in range(rng.randint(0, 6)))
    n = rng.randint(0, 6)
    if kind == "list":
        return [random_value(rng, depth + 1) for _ in range(n)]
    if kind == "tuple":
        return tuple(random_value(rng, depth + 1) for _ in range(n))
    if kind in ("set", "frozenset"):
        items = {rng.randint(-5, 5) for _ in range(n)} | {str(rng.randint(0, 9)) for _ in range(n)}
        return set(items) if kind == "set" else frozenset(items)
    if kind == "dict":
        return {rng.choice([rng.randint(-9, 9), str(rng.randint(0, 99)), None, (1, 2)]):
                random_value(rng, depth + 1) for _ in range(n)}
    inner = random_value(rng, depth + 1)
    return [inner, inner, (inner,)]


def write_random(path, count, seed):
    """Random values at every protocol, for the live differential test (PICKLE_PYTHON)."""
    import random
    rng = random.Random(seed)
    with open(path, "w", encoding="ascii") as f:
        for i in range(count):
            value = random_value(rng)
            for proto in range(6):
                data = pickle.dumps(value, proto)
                f.write("\t".join(["random_%d_p%d" % (i, proto), "-", data.hex() or "-",
                                   *run(data, [])]) + "\n")


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--random":
        write_random(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    with open(COMPAT_OUT, "w", encoding="ascii") as f:
        f.write("# Generated by tests/gen_reader_cases.py from CPython 3.11 and 3.13's _compat_pickle.\n")
        f.write("# direction, minor, module, name, mapped module, mapped name\n")
        f.write("\n".join(compat_rows()) + "\n")
    build_cases()
    lines = []
    seen = set()
    for name, options, data in CASES:
        assert name not in seen, name
        seen.add(name)
        outcome = run(data, options)
        opts = ",".join(options) if options else "-"
        lines.append("\t".join([name, opts, data.hex() or "-", *outcome]))
    with open(OUT, "w", encoding="ascii") as f:
        f.write("# Generated by tests/gen_reader_cases.py with CPython %s. Do not edit.\n"
                % sys.version.split()[0])
        f.write("\n".join(lines) + "\n")
    print("wrote %d cases to %s" % (len(lines), OUT))


if __name__ == "__main__":
    sys.setrecursionlimit(10000)
    warnings.simplefilter("ignore")  # STRING escapes such as \\q warn as in a bytes literal
    main()
