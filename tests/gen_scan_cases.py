#!/usr/bin/env python3
"""Write the CPython expectations for tests/scan_test.cpp: tests/data/scan_cases.jsonl.

Run with Python 3.11 (the oracle), from the repository root:

    python3 tests/gen_scan_cases.py

Each line is one JSON object whose values are all strings:

  name        what the case is
  label       the case's class, decided here by hand: "dangerous" (it would run code, touch
              files or processes, or reach such a thing), "benign" (builtin data), "malformed"
  data        the pickle, hex
  find_class  the (module, name) pairs CPython's C unpickler asked find_class for, in order, one
              "module name" per line, recorded with an Unpickler whose find_class hands back inert
              stand-ins (so the load runs to its end without importing or calling anything)
  outcome     "ok" when that load finished, else "<ExceptionClass>: <message>"

Benign cases are pickle.dumps() of builtin data at every protocol; dangerous ones are built opcode by
opcode, following the published scanner bypasses (picklescan, fickling, nullifAI) and the modules the
reference lists.
"""

import collections
import datetime
import decimal
import fractions
import io
import json
import os
import pickle
import struct
import sys
import uuid


class _Inert:
    """What every global loads as: callable, instantiable, accepts any state."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return _Inert()

    # Static, so that BUILD on a stand-in class (not only on an instance) is accepted too.
    __setstate__ = staticmethod(lambda state: None)


class RecordingUnpickler(pickle.Unpickler):
    def __init__(self, data):
        super().__init__(io.BytesIO(data))
        self.calls = []

    def find_class(self, module, name):
        self.calls.append(f"{module} {name}")
        return type("Stand_in", (_Inert,), {})

    def persistent_load(self, pid):
        return _Inert()


def record(data):
    """One pickle.load() of the data."""
    unpickler = RecordingUnpickler(data)
    try:
        unpickler.load()
        outcome = "ok"
    except Exception as exc:  # what happened is the record
        outcome = f"{type(exc).__name__}: {exc}"
    return "\n".join(unpickler.calls), outcome


def record_loads(data):
    """pickle.loads() itself, for cases without globals whose outcome depends on reading from
    memory rather than from a file (frames)."""
    try:
        pickle.loads(data)
        return "", "ok"
    except Exception as exc:
        return "", f"{type(exc).__name__}: {exc}"


def record_stream(data):
    """Every pickle of a file in turn with one Unpickler (the memo carries over)."""
    unpickler = RecordingUnpickler(data)
    outcome = "ok"
    while True:
        try:
            unpickler.load()
        except EOFError:
            break
        except Exception as exc:
            outcome = f"{type(exc).__name__}: {exc}"
            break
    return "\n".join(unpickler.calls), outcome


# --- opcode helpers (inputs, not expectations) ------------------------------------------------------

def sbu(text):  # SHORT_BINUNICODE
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def binunicode(text):
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def glob(module, name):  # GLOBAL
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def stack_global(module, name):
    return sbu(module) + sbu(name) + b"\x93"


def call0(module, name, arg=b"Vid\n"):  # protocol 0: GLOBAL, MARK, arg, TUPLE, REDUCE
    return glob(module, name) + b"(" + arg + b"tR"


def call4(module, name, arg="id"):
    return stack_global(module, name) + sbu(arg) + b"\x85R"


def proto(n):
    return b"\x80" + bytes([n])


CASES = []


def case(name, label, data, stream=False, loads=False):
    calls, outcome = (record_stream if stream else record_loads if loads else record)(data)
    CASES.append({"name": name, "label": label, "data": data.hex(), "find_class": calls,
                  "outcome": outcome})


def benign():
    class Values:
        pass

    values = {
        "none": None, "int": 12345678901234567890, "float": 1.5, "str": "h\u00e9llo",
        "bytes": b"\x00\xff", "bytearray": bytearray(b"abc"), "list": [1, [2, 3]],
        "tuple": (1, (2,)), "dict": {"a": 1, "b": [1, 2]}, "set": {1, 2, 3},
        "frozenset": frozenset({"x"}), "complex": complex(1, 2),
        "datetime": datetime.datetime(2024, 5, 17, 12, 30, 1, 123),
        "date": datetime.date(2020, 1, 2), "timedelta": datetime.timedelta(days=3),
        "timezone": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
        "decimal": decimal.Decimal("3.14159"), "fraction": fractions.Fraction(1, 3),
        "ordereddict": collections.OrderedDict(a=1, b=2), "counter": collections.Counter("abca"),
        "deque": collections.deque([1, 2]), "defaultdict": collections.defaultdict(list, a=[1]),
        "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"), "range": range(1, 10, 2),
        "slice": slice(1, 2, 3), "ellipsis": Ellipsis,
        "shared": (lambda s: [s, s, {"k": s}])(["shared"]),
    }
    recursive = []
    recursive.append(recursive)
    values["recursive"] = recursive
    del Values
    for key, value in values.items():
        for protocol in range(6):
            try:
                data = pickle.dumps(value, protocol)
            except Exception:
                continue
            case(f"benign/{key}/p{protocol}", "benign", data)


def dangerous():
    # The classic: os.system at every protocol style.
    case("os.system/GLOBAL+REDUCE", "dangerous", call0("os", "system") + b".")
    case("posix.system/GLOBAL+REDUCE", "dangerous", call0("posix", "system") + b".")
    case("nt.system/GLOBAL+REDUCE", "dangerous", call0("nt", "system") + b".")
    case("os.system/STACK_GLOBAL", "dangerous", proto(4) + call4("os", "system") + b".")
    case("subprocess.Popen/NEWOBJ", "dangerous",
         proto(2) + glob("subprocess", "Popen") + b"(Vid\nl\x85\x81.")
    case("subprocess.check_output/REDUCE", "dangerous",
         proto(4) + call4("subprocess", "check_output") + b".")
    case("builtins.eval", "dangerous", proto(4) + call4("builtins", "eval", "1+1") + b".")
    case("builtins.exec", "dangerous", proto(4) + call4("builtins", "exec", "pass") + b".")
    case("__builtin__.eval (py2 name)", "dangerous", call0("__builtin__", "eval", b"V1\n") + b".")
    case("builtins.open", "dangerous", proto(4) + call4("builtins", "open", "/etc/passwd") + b".")
    case("builtins.compile", "dangerous", call0("builtins", "compile", b"V1\nVf\nVeval\n") + b".")
    case("builtins.__import__", "dangerous", call0("builtins", "__import__", b"Vos\n") + b".")
    # getattr(__import__('os'), 'system')('id'): calls the result of a call.
    case("getattr chain", "dangerous",
         proto(2) + glob("builtins", "getattr") + glob("builtins", "__import__") + b"(Vos\ntR"
         + b"Vsystem\n\x86R" + b"(Vid\ntR.")
    # INST and OBJ make calls too.
    case("os.system/INST", "dangerous", b"(Vid\nios\nsystem\n.")
    case("os.system/OBJ", "dangerous", b"(" + glob("os", "system") + b"Vid\no.")
    # STACK_GLOBAL with memoized operands (picklescan PR #23: PUT 2 ... GET 2 GET 3).
    case("STACK_GLOBAL through the memo", "dangerous",
         proto(4) + sbu("os") + b"p2\n0" + sbu("system") + b"p3\n0" + b"g2\ng3\n\x93" + sbu("id")
         + b"\x85R.")
    case("STACK_GLOBAL through MEMOIZE", "dangerous",
         proto(4) + sbu("os") + b"\x94" + sbu("system") + b"\x94" + b"00" + b"h\x00h\x01\x93"
         + sbu("id") + b"\x85R.")
    # Overwritten memo slot: the first value put at slot 0 is a decoy.
    case("memo slot overwritten", "dangerous",
         proto(4) + sbu("json") + b"q\x00" + sbu("os") + b"q\x00" + b"00" + b"h\x00" + sbu("system")
         + b"\x93" + sbu("id") + b"\x85R.")
    # Python 2 str operands for STACK_GLOBAL (load as str by default).
    case("STACK_GLOBAL with STRING operands", "dangerous",
         proto(4) + b"S'o\\x73'\n" + b"U\x06system" + b"\x93" + sbu("id") + b"\x85R.")
    case("STACK_GLOBAL with UNICODE escapes", "dangerous",
         proto(4) + b"V\\u006fs\n" + b"Vsystem\n" + b"\x93" + sbu("id") + b"\x85R.")
    # Payload in a second pickle of the same file (picklescan keeps scanning, loaders loop).
    case("second pickle carries the payload", "dangerous",
         proto(4) + b"N." + proto(4) + call4("os", "system") + b".", stream=True)
    # Second pickle refers to strings memoized by the first.
    case("second pickle uses the first's memo", "dangerous",
         proto(4) + sbu("os") + b"\x94" + sbu("system") + b"\x94" + b"\x86." + proto(4)
         + b"h\x00h\x01\x93" + sbu("id") + b"\x85R.", stream=True)
    # nullifAI: the payload runs, then the pickle breaks.
    case("error after the payload (nullifAI)", "dangerous",
         proto(2) + call0("os", "system") + b"X.")
    # fickling #322: a FLOAT before the payload.
    case("FLOAT prefix", "dangerous", b"F1.5\n0" + call0("os", "system") + b".")
    # BUILD on a module attribute: monkey-patching.
    case("BUILD on a global", "dangerous",
         proto(2) + glob("os", "path") + b"N}Vsep\nV!\ns\x86b.")
    case("BUILD on an unlisted module's global", "dangerous",
         proto(2) + glob("logging", "Logger") + b"N}Vmanager\nNs\x86b.")
    # Dotted names (protocol 4 getattr paths).
    case("posixpath.os.system (dotted)", "dangerous",
         proto(4) + call4("posixpath", "os.system") + b".")
    case("object.__subclasses__", "dangerous",
         proto(4) + stack_global("builtins", "object.__subclasses__") + b")R.")
    # Denylist bypasses reported against fickling and the modules picklescan lists.
    for module, name in [("_posixsubprocess", "fork_exec"), ("site", "execsitecustomize"),
                         ("atexit", "_run_exitfuncs"), ("cProfile", "run"), ("pty", "spawn"),
                         ("marshal", "loads"), ("types", "FunctionType"), ("runpy", "_run_code"),
                         ("timeit", "timeit"), ("importlib", "import_module"),
                         ("code", "InteractiveInterpreter"), ("operator", "attrgetter"),
                         ("_operator", "methodcaller"), ("functools", "partial"),
                         ("shutil", "rmtree"), ("socket", "create_connection"),
                         ("webbrowser", "open"), ("ctypes", "CDLL"), ("pickle", "loads"),
                         ("_pickle", "loads"), ("sys", "exit"), ("asyncio", "create_subprocess_shell"),
                         ("pdb", "run"), ("bdb", "Bdb"), ("pydoc", "pipepager"), ("venv", "create"),
                         ("torch", "load"), ("numpy", "load"), ("io", "open"), ("codecs", "open"),
                         ("os", "popen"), ("os.path", "join"), ("builtins", "getattr"),
                         ("builtins", "setattr"), ("builtins", "breakpoint"), ("dill", "loads"),
                         ("multiprocessing", "Process"), ("threading", "Thread"),
                         ("urllib.request", "urlopen"), ("http.client", "HTTPConnection"),
                         ("mymodule", "system"), ("somelib.util", "run_path")]:
        case(f"{module}.{name}", "dangerous", proto(4) + call4(module, name) + b".")
    # A global referenced but never called is still reported.
    case("reference only", "dangerous", proto(4) + stack_global("os", "system") + b".")


def malformed():
    case("empty", "malformed", b"")
    case("truncated BINUNICODE", "malformed", b"X\xff\xff\xff\xff.")
    case("unexpected MARK", "malformed", b"N(.")
    case("stack underflow", "malformed", b"0")
    case("unknown opcode", "malformed", b"\xff")
    case("PROTO 6", "malformed", b"\x80\x06N.")
    case("STACK_GLOBAL with an int", "malformed", proto(4) + b"K\x01" + sbu("x") + b"\x93.")
    case("missing memo", "malformed", b"h\x05.")
    case("frame too long", "malformed", proto(4) + b"\x95\xff\x00\x00\x00\x00\x00\x00\x00N.")


def anomalies():
    # Benign data, but shaped as no pickler shapes it: suspicious, not dangerous.
    case("bytes after STOP", "suspicious", pickle.dumps([1, 2], 2) + b"garbage")
    case("two data pickles", "suspicious", pickle.dumps(1, 4) + pickle.dumps("x", 4), stream=True)
    case("duplicate PROTO", "suspicious", b"\x80\x04\x80\x04N.")
    case("misplaced PROTO", "suspicious", b"N0\x80\x02N.")
    case("values left at STOP", "suspicious", b"NN.")
    case("user class", "suspicious", proto(4) + stack_global("__main__", "Point") + b")\x81.")
    case("persistent id", "suspicious", b"Pstorage0\n.")
    case("straddling frame", "suspicious",
         proto(4) + b"\x95\x03\x00\x00\x00\x00\x00\x00\x00" + sbu("abc") + b".", loads=True)


def main():
    benign()
    dangerous()
    malformed()
    anomalies()
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "scan_cases.jsonl")
    with open(out, "w", encoding="utf-8") as f:
        for item in CASES:
            f.write(json.dumps(item, ensure_ascii=True) + "\n")
    print(f"{len(CASES)} cases -> {out} (python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
