# -*- coding: utf-8 -*-
"""Per-interpreter worker for gen_corpus.py. Runs unchanged under Python 2.7 and 3.8+.

    python pickle_worker.py values    one JSON line per (value, pickler, protocol) with the pickle hex
    python pickle_worker.py harvest   every input CPython's own unpickling tests (test.pickletester)
                                      pass to loads(), with whether the test expects it to fail

It only produces bytes; every expectation (repr, dis, error class) is computed by gen_corpus.py
under the oracle interpreter (python3.11).
"""
from __future__ import print_function

import binascii
import json
import sys

PY2 = sys.version_info[0] == 2
if PY2:
    text_type = unicode  # noqa: F821 (Python 2 only)
    long_type = long  # noqa: F821
    int_range = xrange  # noqa: F821
else:
    text_type = str
    long_type = int
    int_range = range

# Deep values need more Python frames than the default limit to pickle (the C pickler counts
# recursion too); the deepest value below is 500 levels.
sys.setrecursionlimit(20000)


def to_hex(data):
    return binascii.hexlify(data).decode('ascii')


def emit(record):
    sys.stdout.write(json.dumps(record, sort_keys=True) + '\n')


# --- the value catalogue -------------------------------------------------------------------------

INT_BOUNDARIES = [
    0, 1, -1, 2, 99, 127, 128, -128, -129, 255, 256, -255, -256, -257, 65535, 65536, -65535,
    -65536, -65537, 2 ** 31 - 1, 2 ** 31, -2 ** 31, -2 ** 31 - 1, 2 ** 32 - 1, 2 ** 32,
    -2 ** 32, 2 ** 40, -2 ** 40, 2 ** 63 - 1, 2 ** 63, -2 ** 63, -2 ** 63 - 1, 2 ** 64 - 1,
    2 ** 64, -2 ** 64, 10 ** 20, -10 ** 20, 2 ** 100, -2 ** 100, 2 ** 1000, -2 ** 1000,
    256 ** 255 - 1, 256 ** 255, -(256 ** 255) // 2, -(256 ** 255) // 2 - 1, 2 ** 2048,
    -2 ** 2048, 2 ** 10000 + 12345, -2 ** 10000, 12345678910111213141516178920,
]

FLOATS = [
    0.0, -0.0, 1.0, -1.0, 0.1, 0.5, -2.5, 1.5e-7, 1e16, 1e22, 1e100, 1e300, -1e300, 1e-300,
    5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 123456789.123,
    3.141592653589793, 1.0 / 3, 2.0 ** 53, 2.0 ** 53 + 2, 9007199254740993.0, 1e15, 1e17,
    float('inf'), float('-inf'), float('nan'),
]

TEXTS = [
    u'', u'a', u'abc', u"quote'", u'dq"', u'both\'"', u'back\\slash', u'nl\n', u'cr\r', u'tab\t',
    u'\x00', u'\x07\x08\x0b\x0c\x1b\x7f', u'\x80\x9f\xa0\xad', u'\xe9', u'caf\xe9', u'\xff',
    u'\u03c0', u'\u20ac', u'\u65e5\u672c\u8a9e', u'\U0001f600', u'\U00010000', u'\U0010ffff',
    u'\ud800', u'\udfff', u'\ud800\udc00', u'a\udcffb', u'\u2028\u2029', u'\ufeff', u'\u200b',
    u'e\u0301', u'\ue000', u'\u0378', u'\uffff', u'\ufffd', u'\u00a0\u3000', u'\u0085',
    u'a' * 255, u'a' * 256, u'\xe9' * 200, u'x' * 65536, u'\\u0041', u'\\U0001F600', u'\\x41',
    u'\\', u'\\\n', u'line1\nline2\\u000a', u'mixed \u00e9 \U0001f600 \ud83d \\ \' "',
    u"'", u'"', u'\'"\'', u'\x01\x02\x1f', u'\U000e0001', u'\u0600', u'\u061c', u'\u180e',
    u'\U0001d7d8', u'\u0a00', u'\U00020000',
]

BYTES = [
    b'', b'\x00', b'abc', b"'", b'"', b'\'"', b'\\', b'\n\r\t', b'\x7f\x80\xff',
    b'x' * 255, b'x' * 256, b'\xff' * 10, bytes(bytearray(int_range(256))),
]


def values():
    """(name, value, protocols) for every value of the catalogue this interpreter can build."""
    out = []

    def add(name, value, protos=None):
        out.append((name, value, protos))

    add('none', None)
    add('true', True)
    add('false', False)
    for n, i in enumerate(INT_BOUNDARIES):
        if abs(i) < 10 ** 30:
            add('int_%s' % (('m%d' % -i) if i < 0 else str(i)), i)
        else:
            add('int_big_%02d' % n, i)
    for n, f in enumerate(FLOATS):
        add('float_%02d' % n, f)
    for n, t in enumerate(TEXTS):
        add('str_%02d' % n, t)
    if PY2:
        # Python 2's str is a byte string; a Python 3 reader decodes it as ASCII by default.
        for n, b in enumerate(BYTES):
            add('py2str_%02d' % n, b)
        add('py2_long_0', long_type(0))
        add('py2_long_1', long_type(1))
        add('py2_long_m1', long_type(-1))
        add('py2_long_2_70', long_type(2) ** 70)
        add('py2_long_m2_70', -long_type(2) ** 70)
        add('py2_int_max', sys.maxint)  # noqa: F821
        add('py2_mixed', [b'str', u'unicode', long_type(3), 4, 5.0, (b'a', u'b')])
        add('py2_dict_str_keys', {b'a': 1, u'b': 2})
    else:
        for n, b in enumerate(BYTES):
            add('bytes_%02d' % n, b)
    add('bytearray_empty', bytearray())
    add('bytearray_abc', bytearray(b'abc'))
    add('bytearray_all', bytearray(int_range(256)))
    add('bytearray_300', bytearray(b'\x00' * 300))
    # bytearray's repr escapes ' even inside double quotes (bytes' repr does not).
    add('bytearray_quote', bytearray(b"'"))
    add('bytearray_dquote', bytearray(b'"'))
    add('bytearray_both_quotes', bytearray(b'a\'b"c'))
    add('bytearray_quote_backslash', bytearray(b"\\'x"))

    for n in range(6):
        add('tuple_%d' % n, tuple(int_range(1, n + 1)))
    add('tuple_nested', ((), (1,), ((2,), (3, (4,)))))
    add('tuple_mixed', (None, True, False, 1, -1.5, u'a', 2 ** 70))
    add('tuple_300', tuple(int_range(300)))

    add('list_empty', [])
    add('list_1', [1])
    add('list_3', [1, 2, 3])
    add('list_mixed', [None, True, False, 0, 255, 65536, -1, 2 ** 64, 0.5, u'text', u'\xe9',
                       (), (1,), [], {}, [[]]])
    # Batching boundaries: the picklers write APPENDS/SETITEMS/ADDITEMS in batches of 1000.
    for n in (1000, 1001, 2000, 2001):
        add('list_range_%d' % n, list(int_range(n)))
    add('list_strs_1001', [u's%d' % i for i in int_range(1001)])

    add('dict_empty', {})
    add('dict_1', {1: 2})
    add('dict_str', {u'a': 1, u'b': 2, u'c': [3]})
    add('dict_keys', {None: 0, True: 1, 2: u'two', 2.5: 3, u'k': 4, (1, 2): 5, 2 ** 70: 6,
                      frozenset([1]): 7, -0.0: 8})
    for n in (1000, 1001, 2000, 2001):
        add('dict_range_%d' % n, dict((i, -i) for i in int_range(n)))

    add('set_empty', set())
    add('set_1', set([1]))
    add('set_ints', set([3, 1, 2, -1, 2 ** 70, 0]))
    add('set_collisions', set([0, 2 ** 61 - 1, 2 ** 62, -1, -2, 2 ** 61, 8, 16, 32]))
    add('set_floats', set([0.5, 1.5, -2.0, 1e300]))
    add('set_tuples', set([(1, 2), (3, 4), (), (5,)]))
    add('set_str', set([u'a', u'b', u'c', u'\xe9']))
    add('set_mixed', set([None, 1, u'x', (1, u'y'), frozenset([2])]))
    for n in (1000, 1001, 2000, 2001):
        add('set_range_%d' % n, set(int_range(n)))
    add('set_str_300', set(u's%d' % i for i in int_range(300)))
    add('frozenset_empty', frozenset())
    add('frozenset_ints', frozenset([5, 4, 3]))
    add('frozenset_str', frozenset([u'x', u'y']))
    add('frozenset_nested', frozenset([frozenset([1]), frozenset([frozenset()])]))
    add('frozenset_range_1001', frozenset(int_range(1001)))

    # Sharing and cycles.
    shared = [1, 2]
    add('shared_list', [shared, shared, (shared,)])
    shared_dict = {u'k': u'v'}
    add('shared_dict', {u'a': shared_dict, u'b': shared_dict, u'c': [shared_dict]})
    shared_text = u'shared text'
    add('shared_str', [shared_text, shared_text, (shared_text,)])
    shared_tuple = (1, u'two', 3.0)
    add('shared_tuple', [shared_tuple, shared_tuple, {u't': shared_tuple}])
    shared_fs = frozenset([1, 2])
    add('shared_frozenset', [shared_fs, shared_fs])
    shared_set = set([7])
    add('shared_set', [shared_set, (shared_set,), shared_set])
    shared_ba = bytearray(b'ba')
    add('shared_bytearray', [shared_ba, shared_ba])
    shared_big = 2 ** 80
    add('shared_bigint', [shared_big, shared_big])
    if not PY2:
        shared_bytes = b'shared bytes'
        add('shared_bytes', [shared_bytes, shared_bytes])
    empty = ()
    add('shared_empty_tuple', [empty, empty, (empty, empty)])

    self_list = []
    self_list.append(self_list)
    add('recursive_list', self_list)
    self_list2 = [1]
    self_list2.extend([self_list2, 2, self_list2])
    add('recursive_list_twice', self_list2)
    self_dict = {}
    self_dict[u'self'] = self_dict
    add('recursive_dict', self_dict)
    holder = []
    tup = (holder, 1)
    holder.append(tup)
    add('recursive_tuple', tup)
    add('recursive_tuple_list', holder)
    outer = {u'children': []}
    child = {u'parent': outer}
    outer[u'children'].append(child)
    add('recursive_parent_child', outer)
    a, b = [], []
    a.append(b)
    b.append(a)
    add('recursive_mutual', [a, b])
    loop_dict = {}
    loop_dict[1] = [loop_dict, (loop_dict,)]
    add('recursive_dict_list_tuple', loop_dict)
    deep_tuple_cycle = []
    t3 = ((deep_tuple_cycle,),)
    deep_tuple_cycle.append(t3)
    add('recursive_tuple_3', t3)

    for depth in (10, 100, 500):
        nested = []
        for _ in range(depth):
            nested = [nested]
        add('nested_list_%d' % depth, nested)
    nested = {}
    for i in range(100):
        nested = {i: nested}
    add('nested_dict_100', nested)
    nested = ()
    for i in range(100):
        nested = (nested, i)
    add('nested_tuple_100', nested)
    add('nested_mixed', {u'a': [1, (2, [3, {u'b': set([4]), u'c': frozenset([5])}])],
                         u'd': (bytearray(b'x'),)})
    return out


LARGE_VALUES = set(['list_range_2000', 'list_range_2001', 'dict_range_1000', 'dict_range_1001',
                    'dict_range_2000', 'dict_range_2001', 'set_range_2000', 'set_range_2001',
                    'list_strs_1001', 'frozenset_range_1001', 'str_39'])


def pickle_values():
    import pickle
    picklers = [('pickle', pickle.dumps)]
    if PY2:
        import cPickle  # noqa: F401 (Python 2 only)
        picklers.append(('cPickle', cPickle.dumps))
    elif sys.version_info[:2] == (3, 11):
        # The pure-Python pickler differs from the C one in a few places (memo, batching, framing).
        def py_dumps(obj, proto):
            import io
            buf = io.BytesIO()
            pickle._Pickler(buf, proto).dump(obj)
            return buf.getvalue()
        picklers.append(('pypickle', py_dumps))
    for name, value, protos in values():
        for proto in (protos or range(pickle.HIGHEST_PROTOCOL + 1)):
            for pickler_name, dumps in picklers:
                if pickler_name != 'pickle' and name in LARGE_VALUES:
                    continue  # the alternative picklers add little there but megabytes of dis
                try:
                    data = dumps(value, proto)
                except Exception as exc:  # a value this interpreter cannot pickle at proto
                    sys.stderr.write('skip %s p%d %s: %r\n' % (name, proto, pickler_name, exc))
                    continue
                emit({'name': name, 'proto': proto, 'pickler': pickler_name, 'hex': to_hex(data)})


# --- harvesting CPython's own unpickling tests ----------------------------------------------------

# Larger inputs (the suite's framing and huge-object tests) would only add megabytes of dis.
MAX_HARVESTED_BYTES = 4096
MAX_PER_TEST = 300

# Tests that need more than pickle.loads(data) (a custom Unpickler, threads, a patched registry).
# test_structseq pickles os.stat()/time.localtime() results, which change from run to run.
SKIPPED_TESTS = set(['test_find_class', 'test_custom_find_class', 'test_unpickle_module_race',
                     'test_bad_ext_inverted_registry', 'test_structseq'])


def harvest():
    import pickle
    import struct
    import unittest
    import test.pickletester as pt

    # The suite's recursion tests expect the default limit (a higher one overflows the C stack).
    sys.setrecursionlimit(1000)
    state = {'test': None, 'expect_error': None}
    seen = set()
    per_test = {}

    def record(data, kwargs, expect_error):
        if not isinstance(data, bytes) or len(data) > MAX_HARVESTED_BYTES:
            return
        if set(kwargs) - set(['encoding']):
            return  # buffers=, fix_imports=… : more than loads(data) can express
        key = (data, tuple(sorted(kwargs.items())), state['test'])
        if key in seen:
            return
        seen.add(key)
        # A few round-trip tests (test_bytes, test_ints) load thousands of near-identical pickles.
        per_test[state['test']] = per_test.get(state['test'], 0) + 1
        if per_test[state['test']] > MAX_PER_TEST:
            return
        emit({'test': state['test'], 'hex': to_hex(data),
              'kwargs': dict((k, v) for k, v in kwargs.items()),
              'expect': 'reject' if expect_error is not None else 'accept',
              'errors': sorted(set(e.__name__ for e in expect_error)) if expect_error else []})

    def as_tuple(errors):
        return errors if isinstance(errors, tuple) else (errors,)

    class ExpectError(object):
        def __init__(self, inner, errors):
            self.inner, self.errors = inner, errors

        def __enter__(self):
            state['expect_error'] = self.errors
            return self.inner.__enter__()

        def __exit__(self, *exc):
            state['expect_error'] = None
            return self.inner.__exit__(*exc)

    class RecordingMixin(object):
        bad_stack_errors = (pickle.UnpicklingError, IndexError)
        truncated_errors = (pickle.UnpicklingError, EOFError, AttributeError, ValueError,
                            struct.error, IndexError, ImportError)

        def loads(self, data, **kwargs):
            record(data, kwargs, state['expect_error'])
            return pickle.loads(data, **kwargs)

        def check_unpickling_error(self, errors, data):
            state['expect_error'] = as_tuple(errors)
            try:
                return pt.AbstractUnpickleTests.check_unpickling_error(self, errors, data)
            finally:
                state['expect_error'] = None

        def assertRaises(self, errors, *args, **kwargs):
            if args:
                state['expect_error'] = as_tuple(errors)
                try:
                    return unittest.TestCase.assertRaises(self, errors, *args, **kwargs)
                finally:
                    state['expect_error'] = None
            return ExpectError(unittest.TestCase.assertRaises(self, errors), as_tuple(errors))

    class UnpickleRecorder(RecordingMixin, pt.AbstractUnpickleTests, unittest.TestCase):
        pass

    # The round-trip tests: every pickle they load was just written by this interpreter's pickler
    # from the objects pickletester.py defines, and the suite expects each to load.
    class RoundTripRecorder(RecordingMixin, pt.AbstractPickleTests, unittest.TestCase):
        pickler = pickle.Pickler
        unpickler = pickle.Unpickler
        py_version = sys.version_info

        def dumps(self, arg, proto=None, **kwargs):
            return pickle.dumps(arg, proto, **kwargs)

    for prefix, recorder, base in (('', UnpickleRecorder, pt.AbstractUnpickleTests),
                                   ('roundtrip_', RoundTripRecorder, pt.AbstractPickleTests)):
        names = sorted(n for n in dir(base) if n.startswith('test_') and n not in SKIPPED_TESTS)
        for name in names:
            state['test'] = prefix + name
            result = unittest.TestResult()
            recorder(name).run(result)
            for _, trace in result.errors + result.failures:
                sys.stderr.write('note: %s did not pass here: %s\n'
                                 % (name, trace.splitlines()[-1]))


def legacy_vectors():
    """The DATA* constants of this interpreter's test.pickletester (Python 2.7's differ from 3's)."""
    import test.pickletester as pt
    for name in sorted(dir(pt)):
        value = getattr(pt, name)
        if name.startswith('DATA') and not name.endswith('_DIS') and isinstance(value, bytes):
            emit({'test': 'vector_' + name, 'hex': to_hex(value), 'kwargs': {},
                  'expect': 'accept', 'errors': []})


if __name__ == '__main__':
    mode = sys.argv[1]
    if mode == 'values':
        pickle_values()
    elif mode == 'harvest':
        legacy_vectors()
        if not PY2:
            harvest()
    else:
        sys.exit('usage: pickle_worker.py values|harvest')
