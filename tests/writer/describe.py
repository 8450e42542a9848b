"""A text description of a Python value graph that keeps object identity, shared by the writer's
tests: CPython objects are described (describe), descriptions are rebuilt into CPython objects
(build), and tests/writer_*_test.cpp rebuild them as pickle::Value graphs.

Grammar (tokens separated by spaces):
  N T F                      None True False
  i<decimal>                 int
  f<16 hex digits>           float, IEEE-754 bits big-endian
  s<hex>  b<hex>  a<hex>     str (UTF-8, surrogatepass), bytes, bytearray
  ( t … )  ( l … )  ( d k v … )  ( S … )  ( Z … )      tuple list dict set frozenset
  ( g MOD NAME )             global; MOD and NAME are str items
  ( o FORM CALLABLE ARGS [KWARGS] OP… )               object; FORM R (reduce), n (newobj: ARGS
                             without the class), x (newobj_ex, with KWARGS); OP = ( B state )
                             ( A item ) ( I key value )
  ( o P PID )                a persistent id (written with BINPERSID, or PERSID at protocol 0)
  ( o E i<code> ( g … ) )    a global written as an extension code (protocol >= 2)
  =K ITEM                    the item, labelled K
  @K                         the item labelled K (the same object)
"""
import builtins
import copyreg
import importlib
import pickle
import struct

_ATOMS = (type(None), bool, int, float)


def pack_hex(data):
    """Hex, with runs of a 1- or 2-byte pattern (32 bytes or more) written [pattern*count]."""
    out = []
    i, n, plain = 0, len(data), 0
    while i < n:
        best = None
        for width in (1, 2):
            pattern = data[i:i + width]
            j = i
            while data[j:j + width] == pattern and j + width <= n:
                j += width
            if j - i >= 32 and (best is None or j - i > best[1] - i):
                best = (pattern, j)
        if best is None:
            i += 1
            continue
        out.append(data[plain:i].hex())
        out.append("[%s*%d]" % (best[0].hex(), (best[1] - i) // len(best[0])))
        i = plain = best[1]
    out.append(data[plain:].hex())
    return "".join(out)


def unpack_hex(text):
    out = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "[":
            end = text.index("]", i)
            pattern, count = text[i + 1:end].split("*")
            out += bytes.fromhex(pattern) * int(count)
            i = end + 1
        else:
            end = text.find("[", i)
            end = len(text) if end < 0 else end
            out += bytes.fromhex(text[i:end])
            i = end
    return bytes(out)


class Describer:
    def __init__(self, protocol, persistent_id=None):
        self.protocol = protocol
        self.persistent_id = persistent_id or (lambda obj: None)
        self.pids = {}
        self.labels = {}       # id → label
        self.keep = []         # keep described objects alive: ids must not be reused
        self.reduced = {}      # id → reduce value (one __reduce_ex__ call per object)
        self.counts = {}

    def describe(self, obj):
        self._count(obj)
        out = []
        self._emit(obj, out)
        return " ".join(out)

    # Which objects are reached more than once (they get labels).
    def _count(self, obj):
        stack = [obj]
        while stack:
            o = stack.pop()
            if type(o) in _ATOMS:
                continue
            self.keep.append(o)
            k = id(o)
            self.counts[k] = self.counts.get(k, 0) + 1
            if self.counts[k] > 1:
                continue
            stack.extend(reversed(list(self._children(o))))

    def _children(self, o):
        t = type(o)
        if t in (tuple, list, set, frozenset):
            return list(o)
        if t is dict:
            return [x for kv in o.items() for x in kv]
        if t in (str, bytes, bytearray):
            return []
        if t is _Global:
            return [o.module, o.name]
        kind, parts = self._classify(o)
        return parts

    def _classify(self, o):
        if id(o) in self.reduced:
            r = self.reduced[id(o)]
            return r[0], r[1] if r[0] != "o" else self._object_parts(r)
        if id(o) in self.pids:
            return "p", [self.pids[id(o)]]
        pid = self.persistent_id(o)
        if pid is not None:
            self.pids[id(o)] = pid
            self.keep.append(pid)
            return "p", [pid]
        if o is type(None) or o is type(...) or o is type(NotImplemented):
            # save_type: (type, (singleton,))
            singleton = {type(None): None, type(...): ..., type(NotImplemented): NotImplemented}[o]
            r = ("o", ("R", [type, (singleton,)]), [])
            self.reduced[id(o)] = r
            self.keep.append(r)
            return "o", self._object_parts(r)
        if isinstance(o, type) or type(o).__name__ in ("function", "builtin_function_or_method"):
            mod = o.__module__
            name = o.__qualname__
            self.keep.extend([mod, name])
            r = self._global(o, mod, name)
            self.reduced[id(o)] = r
            self.keep.append(r)
            return r[0], r[1]
        r = None
        if r is None:
            reducer = copyreg.dispatch_table.get(type(o))
            r = reducer(o) if reducer is not None else o.__reduce_ex__(self.protocol)
            if isinstance(r, str):
                mod = pickle.whichmodule(o, r)
                r = self._global(o, mod, r)
            else:
                if len(r) > 5 and r[5] is not None:
                    raise ValueError("state setters cannot be described")
                r = tuple(r) + (None,) * (5 - len(r))
                func, args, state, listitems, dictitems = r[:5]
                listitems = list(listitems) if listitems is not None else []
                dictitems = list(dictitems) if dictitems is not None else []
                ops = []
                for x in listitems:
                    ops.append(("A", [x]))
                for k, v in dictitems:
                    ops.append(("I", [k, v]))
                if state is not None:
                    ops.append(("B", [state]))
                name = getattr(func, "__name__", "")
                if self.protocol >= 2 and name == "__newobj__":
                    head = ("n", [args[0], tuple(args[1:])])
                elif self.protocol >= 2 and name == "__newobj_ex__":
                    head = ("x", [args[0], args[1], args[2]])
                else:
                    head = ("R", [func, args])
                r = ("o", head, ops)
            self.reduced[id(o)] = r
            self.keep.append(r)
        if r[0] in ("g", "e"):
            return r[0], r[1]
        return "o", self._object_parts(r)

    def _global(self, o, mod, name):
        if self.protocol >= 2:
            code = copyreg._extension_registry.get((mod, name))
            if code is not None:
                g = _Global(mod, name)
                self.keep.append(g)
                return ("e", [code, g])
        return ("g", [mod, name])

    @staticmethod
    def _object_parts(r):
        _, head, ops = r
        parts = list(head[1])
        for _, items in ops:
            parts.extend(items)
        return parts

    def _emit(self, obj, out):
        # Iterative: the stack holds objects to emit or literal tokens (wrapped in a 1-tuple).
        stack = [obj]
        while stack:
            o = stack.pop()
            if type(o) is _Token:
                out.append(o.text)
                continue
            t = type(o)
            if o is None:
                out.append("N"); continue
            if t is bool:
                out.append("T" if o else "F"); continue
            if t is int:
                out.append("i%d" % o); continue
            if t is float:
                out.append("f" + struct.pack(">d", o).hex()); continue
            k = id(o)
            if k in self.labels:
                out.append("@%d" % self.labels[k]); continue
            if self.counts.get(k, 0) > 1:
                self.labels[k] = len(self.labels)
                out.append("=%d" % self.labels[k])
            if t is str:
                out.append("s" + pack_hex(o.encode("utf-8", "surrogatepass"))); continue
            if t is bytes:
                out.append("b" + pack_hex(o)); continue
            if t is bytearray:
                out.append("a" + pack_hex(o)); continue
            tag = {tuple: "t", list: "l", dict: "d", set: "S", frozenset: "Z"}.get(t)
            if tag is not None:
                out.append("(" + tag)
                stack.append(_Token(")"))
                stack.extend(reversed(self._children(o)))
                continue
            if t is _Global:
                out.append("(g")
                stack.append(_Token(")"))
                stack.extend(reversed([o.module, o.name]))
                continue
            kind, parts = self._classify(o)
            if kind == "p":
                out.append("(o P")
                stack.append(_Token(")"))
                stack.extend(reversed(parts))
                continue
            if kind == "e":
                out.append("(o E")
                stack.append(_Token(")"))
                stack.extend(reversed(parts))
                continue
            if kind == "g":
                out.append("(g")
                stack.append(_Token(")"))
                stack.extend(reversed(parts))
                continue
            _, head, ops = self.reduced[id(o)]
            seq = [_Token("(o " + head[0])] + list(head[1])
            for opname, items in ops:
                seq.append(_Token("(" + opname))
                seq.extend(items)
                seq.append(_Token(")"))
            seq.append(_Token(")"))
            stack.extend(reversed(seq))


class _Global:
    """A global by name, for describing what an extension code stands for."""

    def __init__(self, module, name):
        self.module, self.name = module, name


class _Token:
    __slots__ = ("text",)

    def __init__(self, text):
        self.text = text


def describe(obj, protocol):
    return Describer(protocol).describe(obj)


# --- building CPython objects from a description -----------------------------------------------

class Reduced:
    """An object that pickles as the reduce value it was given."""

    def __init__(self, func, args):
        self.func, self.args = func, args
        self.state, self.listitems, self.dictitems = None, [], []

    def __reduce_ex__(self, protocol):
        # A fresh argument tuple per call, as real reductions make: an object reached again through
        # its own arguments is reduced again, and a shared tuple would be memoized across the calls.
        return (self.func, tuple(list(self.args)), self.state,
                iter(self.listitems) if self.listitems else None,
                iter(self.dictitems) if self.dictitems else None)


def _resolve(module, name):
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def build(text):
    tokens = text.split()
    labels = {}
    pending = {}  # label of an unfinished tuple → places (list, index) / (dict, key) to patch
    # Each frame: [tag, items, label]; mutable containers exist from their opening.
    stack = [["top", [], None]]
    pending_label = None
    for tok in tokens:
        c = tok[0]
        if c == "=":
            pending_label = int(tok[1:]); continue
        if c == "@":
            k = int(tok[1:])
            value = labels[k] if k in labels else _Pending(k)
        elif tok == "N":
            value = None
        elif tok == "T":
            value = True
        elif tok == "F":
            value = False
        elif c == "i":
            value = int(tok[1:])
        elif c == "f":
            value = struct.unpack(">d", bytes.fromhex(tok[1:]))[0]
        elif c == "s":
            value = unpack_hex(tok[1:]).decode("utf-8", "surrogatepass")
        elif c == "b":
            value = unpack_hex(tok[1:])
            if len(value) == 1:
                # As a literal or an index would: CPython's shared 1-byte bytes object, which is
                # what the writer's cpython identities assume (bytes(bytearray) makes a new one).
                value = bytes([value[0]])
        elif c == "a":
            value = bytearray(unpack_hex(tok[1:]))
        elif c == "(":
            tag = tok[1:]
            frame = [tag, [], pending_label]
            pending_label = None
            if tag in ("l", "d", "S"):
                frame.append({"l": list, "d": dict, "S": set}[tag]())
                if frame[2] is not None:
                    labels[frame[2]] = frame[3]
            stack.append(frame)
            continue
        elif c == ")":
            frame = stack.pop()
            tag, items, label = frame[0], frame[1], frame[2]
            if tag in ("l", "d", "S"):
                value = frame[3]
            elif tag == "t":
                value = tuple(items)
            elif tag == "Z":
                value = frozenset(items)
            elif tag == "g":
                value = _resolve(items[0], items[1])
            elif tag in ("B", "A", "I"):
                stack[-1][1].append((tag, items))
                continue
            elif tag == "o":
                value = frame[3]
                for optag, opitems in items[3:]:
                    if optag == "A":
                        value.listitems.append(opitems[0])
                    elif optag == "I":
                        value.dictitems.append((opitems[0], opitems[1]))
                    else:
                        value.state = opitems[0]
            if label is not None and tag not in ("l", "d", "S"):
                labels[label] = value
                for container, key in pending.pop(label, []):
                    container[key] = value
        elif tok in ("R", "n", "x"):
            stack[-1][1].append(tok); continue
        else:
            raise ValueError("bad token " + tok)
        if c != ")" and pending_label is not None:
            labels[pending_label] = value
            pending_label = None
        _add(stack, value, labels, pending)
    return stack[0][1][0]


class _Pending:
    def __init__(self, label):
        self.label = label


def _add(stack, value, labels, pending):
    frame = stack[-1]
    tag = frame[0]
    if type(value) is _Pending:
        if tag == "l":
            pending.setdefault(value.label, []).append((frame[3], len(frame[3])))
            frame[3].append(None)
            return
        if tag == "d" and len(frame[1]) == 1:
            pending.setdefault(value.label, []).append((frame[3], frame[1][0]))
            frame[3][frame[1][0]] = None
            frame[1].clear()
            return
        raise ValueError("a reference to an unfinished tuple outside a list or dict value")
    if tag == "l":
        frame[3].append(value)
    elif tag == "S":
        frame[3].add(value)
    elif tag == "d":
        frame[1].append(value)
        if len(frame[1]) == 2:
            frame[3][frame[1][0]] = frame[1][1]
            frame[1].clear()
    elif tag == "o":
        items = frame[1]
        items.append(value)
        if len(items) == 3:
            if items[0] != "R":
                raise ValueError("only the reduce form can be rebuilt from a description")
            obj = Reduced(items[1], items[2])
            frame.append(obj)
            if frame[2] is not None:
                labels[frame[2]] = obj
    else:
        frame[1].append(value)
