"""Classes whose instances make up the writer's corpus (tests/writer/gen_writer_cases.py).

Every way CPython reduces an object is represented: instance __dict__, __slots__, __getnewargs__,
__getnewargs_ex__, __reduce__ returning a name or tuples of 2-6 items, list/dict subclasses,
nested classes, copyreg extension codes and persistent ids.
"""
import copyreg


class Plain:
    def __init__(self, a=1, b="x"):
        self.a = a
        self.b = b


class Empty:
    pass


class Slotted:
    __slots__ = ("a", "b", "__dict__")

    def __init__(self):
        self.a = 1
        self.b = [2]


class OnlySlots:
    __slots__ = ("a", "b")

    def __init__(self):
        self.a = 1
        self.b = 2


class NewArgs:
    def __new__(cls, x, y):
        self = object.__new__(cls)
        self.x, self.y = x, y
        return self

    def __getnewargs__(self):
        return (self.x, self.y)


class NewArgsEx:
    def __new__(cls, *args, **kwargs):
        self = object.__new__(cls)
        self.args, self.kwargs = args, kwargs
        return self

    def __getnewargs_ex__(self):
        return (self.args, self.kwargs)


INSTANCE = None


class ByName:
    def __reduce__(self):
        return "INSTANCE"


class ReduceTuple:
    def __init__(self, *args):
        self.args = args

    def __reduce__(self):
        return (ReduceTuple, self.args)


class ReduceState:
    def __init__(self, state):
        self.state = state

    def __reduce__(self):
        return (ReduceState, (None,), self.state)

    def __setstate__(self, state):
        self.state = state


class ReduceItems:
    """A reduce value with list and dict items (4th and 5th elements)."""

    def __init__(self, items=(), pairs=()):
        self.items = list(items)
        self.pairs = dict(pairs)

    def __reduce__(self):
        return (ReduceItems, (), None, iter(self.items), iter(self.pairs.items()))

    def append(self, x):
        self.items.append(x)

    def extend(self, xs):
        self.items.extend(xs)

    def __setitem__(self, k, v):
        self.pairs[k] = v


def set_state(obj, state):
    obj.state = state


class WithSetter:
    def __init__(self, state):
        self.state = state

    def __reduce__(self):
        return (WithSetter, (None,), self.state, None, None, set_state)


class MyList(list):
    pass


class MyDict(dict):
    pass


class MyInt(int):
    pass


class MyStr(str):
    pass


class MyTuple(tuple):
    pass


class MySet(set):
    pass


class Outer:
    class Inner:
        class Deeper:
            pass

        def method(self):
            return 1

    @staticmethod
    def static():
        return 2


def function():
    return 3


class Recursive:
    def __init__(self):
        self.me = self


class Child:
    """__reduce__ that recurses through its argument (CPython's POP + GET form)."""

    def __init__(self, child):
        self.child = child

    def __reduce__(self):
        return (Child, (self.child,))


class Ext1:
    pass


class Ext2:
    pass


class Ext4:
    pass


EXTENSIONS = {0xF0: ("corpus_classes", "Ext1"), 0x1234: ("corpus_classes", "Ext2"),
              0x12345678: ("corpus_classes", "Ext4")}
for _code, (_module, _name) in EXTENSIONS.items():
    copyreg.add_extension(_module, _name, _code)


class Persistent:
    """Pickled by reference: the corpus Pickler's persistent_id returns `pid`."""

    def __init__(self, pid):
        self.pid = pid
