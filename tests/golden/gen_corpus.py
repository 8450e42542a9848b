#!/usr/bin/env python3
"""Generate the conformance corpus: pickles written by every CPython we have, with what CPython
itself says about each of them.

How to regenerate (from the repository root; takes about a minute):

    python3 tests/golden/gen_corpus.py

`python3` must be CPython 3.11 (the oracle: its pickle.loads, repr() and pickletools.dis() give
every expectation). The script re-executes itself with PYTHONHASHSEED=0 so that the set orders it
records are reproducible. It runs tests/golden/pickle_worker.py under each interpreter it finds
through pyenv (`PYENV_VERSION=2.7.18 python2.7`, 3.8.18, 3.9.18, 3.10.13, 3.11.7, 3.12.1,
3.13.0); an interpreter that is missing is skipped with a warning (and the corpus then lacks its
pickles, so commit only a complete run). Everything under tests/golden/corpus/ and
tests/golden/manifest.jsonl is rewritten; a rerun with the same interpreters gives identical files.

What is recorded (one JSON object per line of manifest.jsonl; pickles are files under corpus/):

  category    corpus          builtin values (pickle_worker.py's catalogue) pickled by each
                              interpreter and protocol; identical bytes are stored once and every
                              producer is listed in `producers`
              cpython_suite   every input CPython's own unpickling tests (Lib/test/pickletester.py,
                              AbstractUnpickleTests, 3.8 … 3.13) pass to loads(); `suite_expect`
                              says whether the test suite expects it to load or to fail and
                              `suite_errors` the exception classes the test accepts
              cpython_roundtrip  every pickle (up to 4 KiB) that pickletester.py's round-trip
                              tests (AbstractPickleTests) write and then load, 3.8 … 3.13; stored
                              inline as `hex` instead of a file
              cpython_vectors the DATA* constants of pickletester.py (2.7 and 3.x)
              extra           further malformed inputs (bad UTF-8, unsupported protocol, bad
                              escapes, odd DICT …)
              prefix          every proper prefix of a few corpus pickles (`file` + `length`)
  encoding    how Python 2 str is decoded (pickle.loads' encoding=): ASCII (default), latin1,
              bytes, or another codec name (readers that do not support it skip the case)
  outcome     accept | reject: what python3.11's pickle.loads(data, encoding=...) did
  repr_mode   exact      `repr` is repr(pickle.loads(data)) and must match exactly
              unordered  the value contains a set whose iteration order depends on the string
                         hash seed (or on object addresses: None, nan); compare `canonical`,
                         which is the repr with the elements of every set sorted by their own
                         canonical text (see canonical_repr below)
              none       the value holds objects other than builtin values (classes, instances),
                         whose repr is the library's inert object form; only loading is checked
  error_class / error_message    for outcome reject: type(exc).__name__ and str(exc)
  dis, dis_error_class, dis_error    pickletools.dis(data) output (the text printed before an
                         error is kept) and the exception it raised, if any
"""
import collections
import io
import json
import math
import os
import pickle
import pickletools
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, 'corpus')
MANIFEST = os.path.join(HERE, 'manifest.jsonl')
WORKER = os.path.join(HERE, 'pickle_worker.py')

# In this order: the first interpreter that produces a pickle owns its file.
INTERPRETERS = [
    ('2.7.18', 'python2.7'),
    ('3.8.18', 'python3.8'),
    ('3.9.18', 'python3.9'),
    ('3.10.13', 'python3.10'),
    ('3.11.7', 'python3.11'),
    ('3.12.1', 'python3.12'),
    ('3.13.0', 'python3.13'),
]

BUILTIN_TYPES = (type(None), bool, int, float, str, bytes, bytearray, tuple, list, dict, set,
                 frozenset)
CONTAINERS = (tuple, list, dict, set, frozenset)
RECURSION_MARK = {list: '[...]', tuple: '(...)', dict: '{...}', set: 'set(...)',
                  frozenset: 'frozenset(...)'}

# Opcodes whose argument is decoded with encoding= (Python 2 str).
PY2_STRING_OPCODES = {'STRING', 'BINSTRING', 'SHORT_BINSTRING'}

# Malformed inputs beyond CPython's test suite. Only the bytes are written here; what CPython does
# with them is measured.
EXTRA_REJECTS = {
    'bad_utf8_binunicode': b'X\x01\x00\x00\x00\xff.',
    'bad_utf8_short_binunicode': b'\x80\x04\x8c\x02\xc3(.',
    'bad_utf8_binunicode8': b'\x80\x04\x8d\x01\x00\x00\x00\x00\x00\x00\x00\x80.',
    'bad_utf8_overlong': b'\x8c\x02\xc0\xaf.',
    'bad_utf8_truncated_seq': b'\x8c\x02\xe2\x82.',
    'bad_utf8_above_max': b'\x8c\x04\xf4\x90\x80\x80.',
    'bad_utf8_global_module': b'c\xff\nlog\n.',
    'bad_raw_unicode_escape_short': b'V\\u12\n.',
    'bad_raw_unicode_escape_big': b'V\\U00110000\n.',
    'bad_raw_unicode_escape_truncated_U': b'V\\U0001F60\n.',
    'py2_str_non_ascii_string': b"S'\\xff'\n.",
    'py2_str_non_ascii_binstring': b'T\x01\x00\x00\x00\xff.',
    'py2_str_non_ascii_short_binstring': b'U\x01\xe9.',
    'string_bad_hex_escape': b"S'\\x4'\n.",
    'string_trailing_backslash': b"S'abc\\'\n.",
    'string_unquoted': b'Sabc\n.',
    'string_mismatched_quotes': b'S\'abc"\n.',
    'unsupported_protocol_6': b'\x80\x06N.',
    'unsupported_protocol_255': b'\x80\xffN.',
    'unknown_opcode_ff': b'\xff',
    'unknown_opcode_00': b'\x00.',
    'unknown_opcode_quote': b"'.",
    'unknown_opcode_backslash': b'\\.',
    'unknown_opcode_printable': b'N!',
    'int_junk': b'I1x\n.',
    'int_empty_line': b'I\n.',
    'int_octal_9': b'I09\n.',
    'long_junk': b'L12a\n.',
    'long_octal': b'L010\n.',
    'float_junk': b'F1.0x\n.',
    'float_spaces': b'F 1.0\n.',
    'float_overflow': b'F1e500\n.',
    'dict_odd': b'(K\x01d.',
    'setitems_odd': b'}(K\x01u.',
    'long4_negative': b'\x8b\xff\xff\xff\xff.',
    'get_missing': b'h\x05.',
    'long_binget_missing': b'j\x00\x00\x01\x00.',
    'get_text_missing': b'g7\n.',
    'put_negative': b'Np-5\n.',
    'get_not_decimal': b'Np0\ng0x0\n.',
    'next_buffer_without_buffers': b'\x80\x05\x97.',
    'persid_without_hook': b'Pabc\n.',
    'binpersid_without_hook': b'K\x01Q.',
    'persid_non_ascii': b'P\xe2\x88\x85\n.',
    'ext_code_zero': b'\x82\x00.',
    'ext_unregistered': b'\x82\x01.',
    'ext4_negative': b'\x84\xff\xff\xff\xff.',
    'frame_truncated': b'\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00N.',
    'reduce_args_not_tuple': b'cbuiltins\nint\nNR.',
    'newobj_args_not_tuple': b'cbuiltins\nint\nN\x81.',
    'newobj_ex_kwargs_not_dict': b'cbuiltins\nint\n)N\x92.',
    'stack_global_not_str': b'N\x8c\x03log\x93.',
    'stack_global_empty_module': b'\x8c\x00\x8c\x03log\x93.',
    'additems_to_frozenset': b'\x80\x04(\x91(K\x01\x90.',
    'build_list_int_state': b']K\x01b.',
    'setitem_on_tuple': b')K\x01K\x02s.',
    'append_to_int': b'K\x01K\x02a.',
    'appends_to_dict': b'}(K\x01e.',
    'unhashable_dict_key': b'}]K\x01s.',
    'unhashable_set_item': b'\x80\x04\x8f(]\x90.',
    'unhashable_frozenset_item': b'\x80\x04(]\x91.',
    'empty_input': b'',
    'stop_only': b'.',
}

# Pickles whose every proper prefix becomes a truncation case: (value name, producer, protocols).
PREFIX_SOURCES = [
    ('list_mixed', '3.11.7', range(6)),
    ('nested_mixed', '3.11.7', (0, 2, 4)),
    ('recursive_dict', '3.11.7', (0, 1, 5)),
    ('str_48', '3.11.7', (0, 1, 3)),
    ('int_big_41', '3.11.7', (2,)),
    ('float_04', '3.11.7', (0, 1)),
    ('py2_mixed', '2.7.18', (0, 1, 2)),
    ('bytearray_abc', '3.11.7', (0, 2, 5)),
    ('set_ints', '3.11.7', (1, 4)),
]


def ensure_hash_seed():
    if os.environ.get('PYTHONHASHSEED') != '0':
        env = dict(os.environ, PYTHONHASHSEED='0')
        os.execve(sys.executable, [sys.executable] + sys.argv, env)


def run_worker(version, program, mode):
    env = dict(os.environ, PYENV_VERSION=version, PYTHONHASHSEED='0')
    try:
        proc = subprocess.run([program, WORKER, mode], env=env, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        sys.stderr.write('warning: %s %s unavailable (%s); its pickles are missing\n'
                         % (program, version, exc))
        return []
    return [json.loads(line) for line in proc.stdout.decode('ascii').splitlines()]


# --- what CPython says -----------------------------------------------------------------------------

def walk(value):
    """Every object reachable from value, once each (iteratively; values may be deep or cyclic)."""
    seen = set()
    stack = [value]
    while stack:
        obj = stack.pop()
        if isinstance(obj, CONTAINERS) and type(obj) in CONTAINERS:
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            # Keys and values separately: a temporary (key, value) tuple could be freed and its
            # id reused by the next one, which `seen` would then wrongly skip.
            if type(obj) is dict:
                stack.extend(obj.keys())
                stack.extend(obj.values())
            else:
                stack.extend(obj)
        yield obj


def set_order_is_deterministic(element):
    """True when element hashes the same in every process (no str/bytes hash seed, no id())."""
    stack = [element]
    while stack:
        obj = stack.pop()
        if type(obj) in (bool, int):
            continue
        if type(obj) is float and not math.isnan(obj):
            continue
        if type(obj) in (tuple, frozenset):
            stack.extend(obj)
            continue
        return False
    return True


def repr_mode(value):
    unordered = False
    for obj in walk(value):
        if type(obj) not in BUILTIN_TYPES:
            return 'none'
        if type(obj) in (set, frozenset) and len(obj) > 1:
            if not all(set_order_is_deterministic(e) for e in obj):
                unordered = True
    return 'unordered' if unordered else 'exact'


def canonical_repr(value, active=None):
    """repr(value), except that the elements of every set and frozenset are sorted by their own
    canonical text (code point order), so that the text does not depend on iteration order."""
    if active is None:
        active = set()
    kind = type(value)
    if kind not in CONTAINERS:
        return repr(value)
    if id(value) in active:
        return RECURSION_MARK[kind]
    active.add(id(value))
    try:
        if kind is list:
            return '[' + ', '.join(canonical_repr(x, active) for x in value) + ']'
        if kind is tuple:
            items = [canonical_repr(x, active) for x in value]
            return '(' + ', '.join(items) + (',' if len(items) == 1 else '') + ')'
        if kind is dict:
            return '{' + ', '.join(canonical_repr(k, active) + ': ' + canonical_repr(v, active)
                                   for k, v in value.items()) + '}'
        items = sorted(canonical_repr(x, active) for x in value)
        if not items:
            return kind.__name__ + '()'
        body = '{' + ', '.join(items) + '}'
        return body if kind is set else 'frozenset(' + body + ')'
    finally:
        active.discard(id(value))


def oracle(data, encoding):
    """What python3.11 does with data: loads, repr and pickletools.dis."""
    import test.pickletester  # noqa: F401 (defines __main__.C etc., which the DATA* vectors use)
    record = collections.OrderedDict()
    kwargs = {} if encoding == 'ASCII' else {'encoding': encoding}
    try:
        value = pickle.loads(data, **kwargs)
    except Exception as exc:  # CPython's verdict, whatever it is
        record['outcome'] = 'reject'
        record['error_class'] = type(exc).__name__
        record['error_message'] = str(exc)
    else:
        record['outcome'] = 'accept'
        mode = repr_mode(value)
        record['repr_mode'] = mode
        if mode != 'none':
            record['repr'] = repr(value)
            canonical = canonical_repr(value)
            if mode == 'unordered':
                record['canonical'] = canonical
            elif not any(type(o) in (set, frozenset) for o in walk(value)):
                # Self-check of canonical_repr against repr where sets cannot differ.
                assert canonical == record['repr'], (canonical, record['repr'])
        del value
    out = io.StringIO()
    try:
        pickletools.dis(data, out=out)
    except Exception as exc:
        record['dis_error_class'] = type(exc).__name__
        record['dis_error'] = str(exc)
    record['dis'] = out.getvalue()
    return record


def py2_string_opcodes_in(data):
    try:
        return any(op.name in PY2_STRING_OPCODES for op, _, _ in pickletools.genops(data))
    except Exception:
        return False


# --- assembling the manifest --------------------------------------------------------------------

def write_file(relpath, data):
    path = os.path.join(HERE, relpath)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data)


def main():
    ensure_hash_seed()
    if sys.version_info[:2] != (3, 11):
        sys.exit('gen_corpus.py must run under CPython 3.11 (the oracle); this is %s'
                 % sys.version.split()[0])
    sys.setrecursionlimit(20000)
    if os.path.isdir(CORPUS):
        shutil.rmtree(CORPUS)
    records = []

    # 1. Builtin values from every interpreter and protocol, stored once per distinct pickle.
    unique = collections.OrderedDict()  # bytes -> [file, [producers]]
    by_source = {}  # (name, producer version, proto) -> file
    for version, program in INTERPRETERS:
        for item in run_worker(version, program, 'values'):
            data = bytes.fromhex(item['hex'])
            label = version if item['pickler'] == 'pickle' else version + '-' + item['pickler']
            producer = '%s p%d' % (label, item['proto'])
            if data not in unique:
                rel = 'corpus/%s/%s.p%d.pkl' % (label, item['name'], item['proto'])
                if rel in (f for f, _ in unique.values()):
                    raise SystemExit('duplicate file name ' + rel)
                unique[data] = [rel, []]
            unique[data][1].append(producer)
            if item['pickler'] == 'pickle':
                by_source.setdefault((item['name'], version, item['proto']), unique[data][0])
    for data, (rel, producers) in unique.items():
        write_file(rel, data)
        encodings = ['ASCII'] + (['latin1', 'bytes'] if py2_string_opcodes_in(data) else [])
        for encoding in encodings:
            rec = collections.OrderedDict(
                id=rel[len('corpus/'):-len('.pkl')] + ('' if encoding == 'ASCII' else
                                                       '#' + encoding),
                category='corpus', file=rel, producers=producers, encoding=encoding)
            rec.update(oracle(data, encoding))
            records.append(rec)

    # 2. CPython's own unpickling tests and test vectors.
    harvested = collections.OrderedDict()  # (bytes, encoding) -> merged record
    for version, program in INTERPRETERS:
        for item in run_worker(version, program, 'harvest'):
            data = bytes.fromhex(item['hex'])
            encoding = item['kwargs'].get('encoding', 'ASCII')
            if set(item['kwargs']) - {'encoding'}:
                sys.stderr.write('skip harvested input with %r\n' % item['kwargs'])
                continue
            key = (data, encoding)
            entry = harvested.setdefault(key, {'tests': [], 'expect': set(), 'errors': set()})
            entry['tests'].append('%s (%s)' % (item['test'], version))
            entry['expect'].add(item['expect'])
            entry['errors'].update(item['errors'])
    counters = collections.Counter()
    for (data, encoding), entry in harvested.items():
        if len(entry['expect']) != 1:
            sys.stderr.write('skip %r: the test suites disagree (%r)\n' % (data, entry))
            continue
        first = entry['tests'][0].split(' ')[0]
        category = 'cpython_vectors' if first.startswith('vector_') else \
            'cpython_roundtrip' if first.startswith('roundtrip_') else 'cpython_suite'
        if entry['tests'][0].endswith('(2.7.18)'):
            first += '_py27'
        counters[first] += 1
        rel = '%s/%s_%02d.pkl' % (category, first, counters[first])
        rec = collections.OrderedDict(id=rel[:-len('.pkl')], category=category)
        if category == 'cpython_roundtrip':
            rec['hex'] = data.hex()  # thousands of small pickles: inline rather than files
        else:
            write_file(rel, data)
            rec['file'] = rel
        rec.update(tests=sorted(set(entry['tests'])), encoding=encoding,
                                      suite_expect=entry['expect'].pop(),
                                      suite_errors=sorted(entry['errors']))
        rec.update(oracle(data, encoding))
        records.append(rec)

    # 3. Further malformed inputs.
    for name, data in EXTRA_REJECTS.items():
        rel = 'extra/%s.pkl' % name
        write_file(rel, data)
        rec = collections.OrderedDict(id=rel[:-len('.pkl')], category='extra', file=rel,
                                      encoding='ASCII')
        rec.update(oracle(data, 'ASCII'))
        records.append(rec)

    # 4. Every proper prefix of a few corpus pickles.
    for name, version, protos in PREFIX_SOURCES:
        for proto in protos:
            rel = by_source[(name, version, proto)]
            with open(os.path.join(HERE, rel), 'rb') as f:
                data = f.read()
            for length in range(len(data)):
                rec = collections.OrderedDict(id='prefix/%s[:%d]' % (rel[len('corpus/'):-4], length),
                                              category='prefix', file=rel, length=length,
                                              encoding='ASCII')
                rec.update(oracle(data[:length], 'ASCII'))
                records.append(rec)

    with open(MANIFEST, 'w', encoding='ascii', newline='\n') as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=True) + '\n')

    summary = collections.Counter((r['category'], r['outcome'], r.get('repr_mode', '-'))
                                  for r in records)
    for key in sorted(summary):
        print('%-16s %-7s %-10s %6d' % (key + (summary[key],)))
    print('%d records, %d distinct corpus pickles' % (len(records), len(unique)))


if __name__ == '__main__':
    main()
