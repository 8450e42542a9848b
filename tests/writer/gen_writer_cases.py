"""Writer expectations from CPython: for each case (a value built in Python) and protocol 0-5, the
bytes CPython's C pickler writes (or the exception it raises), with an identity-keeping description
of the value (tests/writer/describe.py) from which tests/writer_golden_test.cpp rebuilds it.

The same bytes are the round-trip corpus (tests/writer_test.cpp): loading them and writing them
back at the same protocol must reproduce them.

Run under each interpreter:  python3.X tests/writer/gen_writer_cases.py > tests/writer/cases-3.X.tsv
and once:                    python3.11 tests/writer/gen_writer_cases.py --big > tests/writer/cases-big.tsv
Each line: name <TAB> protocol <TAB> description or - <TAB> hex or - <TAB> exception or -
"""
import collections
import datetime
import decimal
import enum
import fractions
import functools
import io
import os
import pickle
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus_classes as cc  # noqa: E402
import describe  # noqa: E402

cc.INSTANCE = cc.ByName()


class Color(enum.Enum):
    RED = 1
    GREEN = 2


cc.Color = Color
Color.__module__ = "corpus_classes"
Color.__qualname__ = "Color"

odd_module = types.ModuleType("m\xf6dule")
sys.modules["m\xf6dule"] = odd_module


class OddName:
    pass


OddName.__module__ = "m\xf6dule"
odd_module.OddName = OddName


class NonAsciiName:
    pass


NonAsciiName.__qualname__ = NonAsciiName.__name__ = "N\xe9"
setattr(cc, "N\xe9", NonAsciiName)
NonAsciiName.__module__ = "corpus_classes"


def persistent_id(obj):
    if type(obj) is cc.Persistent:
        return obj.pid
    return None


class CorpusPickler(pickle.Pickler):
    def persistent_id(self, obj):
        return persistent_id(obj)


def recursive_tuple():
    lst = []
    t = (lst,)
    lst.append(t)
    return t


def recursive_tuple4():
    lst = []
    t = (1, 2, 3, lst)
    lst.append(t)
    return t


def recursive_child():
    lst = []
    r = cc.Child(lst)
    lst.append(r)
    return r


def recursive_dict_obj():
    o = cc.Plain()
    o.a = {"self": o}
    return o


def shared():
    s = "shared"
    lst = [1, 2]
    tup = (s, lst)
    return [s, lst, tup, tup, {"k": lst}, [s]]


def frozenset_recursion():
    o = cc.Plain()
    f = frozenset([o])
    o.a = f
    return f


def big_objects():
    return [b"x" * 65536, [1], "y" * 65535, b"z" * 65535, "w" * 65536]


def many_globals():
    return [int, str, len, functools.reduce, collections.OrderedDict, cc.Plain, cc.Outer.Inner,
            cc.Outer.Inner.Deeper, cc.Outer.Inner.method, cc.function, type(None), type(...),
            Ellipsis, NotImplemented, dict.get, range, zip, KeyError, FileNotFoundError,
            collections.UserDict, cc.Outer.static]


def objects():
    return [cc.Plain(), cc.Empty(), cc.Slotted(), cc.OnlySlots(), cc.NewArgs(1, "b"),
            cc.NewArgs(2, [3]), cc.INSTANCE, cc.ReduceTuple(1, "two", None),
            cc.ReduceState({"s": 1}), cc.ReduceState([]), cc.MyInt(5), cc.MyStr("s"),
            cc.MyTuple((1, 2)), cc.Recursive()]


def list_subclass(n):
    m = cc.MyList(range(n))
    m.attr = 3
    return m


def dict_subclass(n):
    return cc.MyDict((i, str(i)) for i in range(n))


def reduce_items(n, k):
    return cc.ReduceItems(range(n), ((i, -i) for i in range(k)))


def ext_objects():
    return [cc.Ext1, cc.Ext2, cc.Ext4, cc.Ext1, [cc.Ext2]]


def persistent():
    p = cc.Persistent("pid-text")
    return [p, cc.Persistent(("tuple-pid", 1)), p, 101]


def deep(n):
    v = []
    for _ in range(n):
        v = [v]
    return v


def many_memo():
    return [str(i) for i in range(300)] + ["x%d" % (i % 7) for i in range(10)]


CASES = {
    "none": lambda: None,
    "bools": lambda: [True, False],
    "ints": lambda: [0, 1, 255, 256, 65535, 65536, -1, -128, -255, -256, 2**31 - 1, -2**31,
                     2**31, -2**31 - 1, 2**32, 2**40, 2**63 - 1, 2**63, -2**63, -2**63 - 1, 2**64],
    "long1_max": lambda: 2**2039 - 1,
    "long4": lambda: [2**2040 - 1, -2**2047, -2**2048, 2**9000],
    "floats": lambda: [0.0, -0.0, 1.5, -2.25, 1e16, 1e15, 1e-5, 0.0001, 123456789012345678.0,
                       1.5e300, float("inf"), float("-inf"), float("nan"), 5e-324, 1 / 3, 1e22],
    "strs": lambda: ["", "a", "abc", "\xe9", "\u20ac", "\U0001f600", "\ud800", "a\\b\x00\n\r\x1a",
                     "x" * 255, "x" * 256, "\xe9" * 128],
    "str_sharing": lambda: ["", "", "a", "a", "\xe9", "\xe9", "ab", "ab"],
    "bytes": lambda: [b"", b"\x00", b"\xff", b"ab", b"x" * 256, bytes(range(256))],
    # 1-character strs made at run time are CPython's latin-1 singletons (as loaded or parsed ones
    # are); 1-character literals in a code object are not always (3.10/3.11 intern them apart).
    "bytes_sharing": lambda: [b"", b"", b"a", b"a", b"ab", bytes(b"ab"), b"\xe9", "\xe9", chr(97)],
    "bytes_reduce": lambda: (b"a", b"b", b"a"),
    "latin1_link": lambda: ["\xe9", b"\xe9", b"q", chr(113)],
    # A bytearray's temporary bytes is a fresh copy even of one byte (not CPython's cached 1-byte
    # bytes, which bytes([c]) returns), and bytes(bytearray) is another fresh one.
    "one_byte_identity": lambda: [bytes([72]), bytearray(b"H"), bytes(bytearray(b"H")), bytes([72]),
                                  bytearray(b"H")],
    # The latin-1 str of b'a' at protocols 0-2 is the cached 'a' (chr(97)); in 3.10-3.12 the
    # literal "a" is another object. Round trip only: a description cannot say which is which.
    "latin1_literal_link": lambda: ["a", b"a", chr(97), bytearray(b"a"), "a"],
    "bytearrays": lambda: [bytearray(), bytearray(b"\x00\x80"), bytearray(b"a"), bytearray(b"x" * 300)],
    "tuples": lambda: [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), ((),), ((1,), (1,))],
    "empty_containers": lambda: [[], {}, set(), frozenset(), (), bytearray(), "", b""],
    # Up to 3.9 every empty frozenset is one object, however it is made (the writer differential
    # found it at protocol 0, where the frozenset is a reduce).
    "empty_frozensets": lambda: [frozenset(), frozenset([]), [frozenset(list())], frozenset(), set()],
    "list_1": lambda: [7],
    "list_1000": lambda: list(range(1000)),
    "list_1001": lambda: list(range(1001)),
    "list_2001": lambda: list(range(2001)),
    "dict_1": lambda: {"k": 1},
    "dict_999": lambda: dict.fromkeys(range(999)),
    "dict_1000": lambda: dict.fromkeys(range(1000)),
    "dict_1001": lambda: dict.fromkeys(range(1001)),
    "dict_2000": lambda: dict.fromkeys(range(2000)),
    "set_small": lambda: [{3}, {1, 2}, {9, 1}, {1, 9}],
    "set_1000": lambda: set(range(1000)),
    "set_1001": lambda: set(range(1001)),
    "set_strs": lambda: {"a", "b", "c", "dd"},
    "frozensets": lambda: [frozenset(), frozenset({1, 2}), frozenset(range(1500)), frozenset({"x"})],
    "frozenset_empty_twice": lambda: [frozenset(), frozenset()],
    "recursive_list": lambda: (lambda l: (l.append(l), l)[1])([]),
    "recursive_dict": lambda: (lambda d: (d.__setitem__("d", d), d)[1])({}),
    "recursive_tuple": recursive_tuple,
    "recursive_tuple4": recursive_tuple4,
    "recursive_child": recursive_child,
    "recursive_dict_obj": recursive_dict_obj,
    "frozenset_recursion": frozenset_recursion,
    "shared": shared,
    "worked_example": lambda: [1, "a", (2.5, None, True), b"\x00", {"k": -1}, 300, 2**40,
                               -2**31 - 1, "\xe9"],
    "frames_30000": lambda: list(range(25000)),
    "big_objects": big_objects,
    "str_65536": lambda: "\xe9" * 32768,
    "str_65535": lambda: "\xe9" * 32767 + "a",
    "bytes_70000": lambda: b"x" * 70000,
    "bytearray_70000": lambda: bytearray(b"y" * 70000),
    "frame_boundary": lambda: ["%05d" % i for i in range(9000)],
    "many_memo": many_memo,
    "globals": many_globals,
    "objects": objects,
    "newargs_ex": lambda: cc.NewArgsEx(1, x=3),
    "newargs_ex_noargs": lambda: cc.NewArgsEx(),
    "list_subclass_2": lambda: list_subclass(2),
    "list_subclass_1001": lambda: list_subclass(1001),
    "dict_subclass_1": lambda: dict_subclass(1),
    "dict_subclass_1000": lambda: dict_subclass(1000),
    "dict_subclass_1001": lambda: dict_subclass(1001),
    "reduce_items": lambda: reduce_items(3, 2),
    "reduce_items_big": lambda: reduce_items(1001, 2001),
    "state_setter": lambda: cc.WithSetter({"v": 1}),
    "ordered_dict": lambda: collections.OrderedDict([("a", 1), ("b", [2])]),
    "defaultdict": lambda: collections.defaultdict(list, {"a": [1]}),
    "deque": lambda: collections.deque([1, 2, 3], maxlen=5),
    "counter": lambda: collections.Counter("abracadabra"),
    "complex": lambda: [1 + 2j, complex(0, -1)],
    "range": lambda: [range(5), range(1, 10, 2)],
    "datetime": lambda: [datetime.date(2024, 2, 29), datetime.datetime(2020, 1, 2, 3, 4, 5, 6),
                         datetime.timedelta(days=1, seconds=2)],
    "decimal": lambda: decimal.Decimal("1.10"),
    "fraction": lambda: fractions.Fraction(1, 3),
    "enum": lambda: [Color.RED, Color.GREEN, Color.RED],
    "exceptions": lambda: [ValueError("bad"), KeyError(1), StopIteration()],
    "slice_ellipsis": lambda: [slice(1, 2), ..., NotImplemented],
    "ext_codes": ext_objects,
    "persistent": persistent,
    "deep_100": lambda: deep(100),
    "non_ascii_module": lambda: OddName,
    "non_ascii_name": lambda: NonAsciiName,
    "mixed": lambda: {"list": [1, 2.5, "s"], "tuple": (None, True), "set": {1}, "bytes": b"by",
                      "nested": {"a": {"b": {"c": []}}}},
}


# Large cases: the same bytes under every interpreter 3.8-3.13 (checked when regenerating), so
# they are kept once, in cases-big.tsv, written by `--big`.
BIG = {"big_objects", "frames_30000", "frame_boundary", "bytearray_70000", "bytes_70000",
       "str_65535", "str_65536", "reduce_items_big", "dict_subclass_1000", "dict_subclass_1001",
       "dict_2000", "list_2001", "frozensets", "long4"}


# Cases whose identities a description cannot state (which 1-character str is CPython's cached one).
ROUND_TRIP_ONLY = {"latin1_literal_link"}


# Cases about framing: only protocols 4 and 5 frame.
FRAMING = {"big_objects", "frames_30000", "frame_boundary", "bytearray_70000", "bytes_70000",
           "str_65535", "str_65536"}


def main():
    out = sys.stdout
    big = "--big" in sys.argv
    for name, make in CASES.items():
        if (name in BIG) != big:
            continue
        for protocol in range(4 if name in FRAMING else 0, 6):
            obj = make()
            try:
                d = describe.Describer(protocol, persistent_id).describe(obj)
            except Exception:
                d = "-"
            if name in ROUND_TRIP_ONLY:
                d = "-"
            obj = make()
            buf = io.BytesIO()
            try:
                CorpusPickler(buf, protocol).dump(obj)
                data, error = describe.pack_hex(buf.getvalue()), "-"
            except Exception as e:
                data, error = "-", "%s: %s" % (type(e).__name__, e)
            error = error.split(" object at 0x")[0]  # addresses differ between runs
            out.write("%s\t%d\t%s\t%s\t%s\n" % (name, protocol, d, data, error))


if __name__ == "__main__":
    main()
