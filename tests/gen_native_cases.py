#!/usr/bin/env python3
"""Expected bytes for tests/native_test.cpp: CPython's pickle.dumps of the Python values that the
C++ values of the test stand for, at protocols 0-5, for every CPython 3.8-3.13 found.

    python3 tests/gen_native_cases.py            # writes tests/native/cases.tsv
    python3 tests/gen_native_cases.py --emit     # one interpreter's rows on stdout (internal)

Values are built the way the typed writer assumes (pickle/NATIVE.md): every str is a fresh object
made at run time (decoded from bytes, as json.loads or file input make them), so only CPython's own
singletons ('' and 1-character latin-1 strs, b'' and 1-byte bytes) are shared; dict keys and field
names are interned (sys.intern, as Python literals, json.loads keys and attribute names are).
Sets hold small non-negative ints only, whose CPython iteration order is ascending like std::set's.

Row format: name, protocol, the CPython minor versions giving these bytes (comma-separated), hex.
"""
import dataclasses
import os
import pickle
import pickletools
import subprocess
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, 'native', 'cases.tsv')


def fresh(text):
    """A str object made at run time (not a code constant)."""
    return text.encode('utf-8').decode('utf-8')


def key(text):
    return sys.intern(fresh(text))


def fresh_bytes(data):
    """A bytes object made at run time, as slicing, reading or encoding make it (these return
    CPython's cached b'' and 1-byte objects; bytes(bytearray) would not)."""
    return (b'\0' + data)[1:]


# The classes of the described-struct cases live in a module named 'geometry'.
geometry = types.ModuleType('geometry')
sys.modules['geometry'] = geometry
exec(
    'import dataclasses\n'
    '@dataclasses.dataclass\n'
    'class Point:\n'
    '    x: int\n'
    '    name: str\n'
    '@dataclasses.dataclass\n'
    'class Label:\n'
    '    text: str\n'
    'class Empty:\n'
    '    pass\n',
    geometry.__dict__)


def point(x, name):
    p = geometry.Point.__new__(geometry.Point)
    p.__dict__[key('x')] = x
    p.__dict__[key('name')] = fresh(name)
    return p


def label(text):
    obj = geometry.Label.__new__(geometry.Label)
    obj.__dict__[key('text')] = fresh(text)
    return obj


def int_widths():
    """Ints at both edges of every encoding CPython picks: BININT1, BININT2, BININT, and LONG1 of
    each length 1-8 (each length's largest and smallest value and their neighbours), within int64.
    tests/native_test.cpp builds the same list (int_widths())."""
    values = [0, 1, 0xFF, 0x100, 0xFFFF, 0x10000, 2 ** 31 - 1, 2 ** 31, -1, -0x80, -0x81, -0x100,
              -0x101, -0x8000, -0x8001, -0x10000, -2 ** 31, -2 ** 31 - 1]
    for n in range(1, 9):
        values += [2 ** (8 * n - 1) - 1, 2 ** (8 * n - 1), -2 ** (8 * n - 1), -2 ** (8 * n - 1) - 1]
    out = []
    for v in values:
        if -2 ** 63 <= v < 2 ** 63 and v not in out:
            out.append(v)
    return out


def frame_starts(data):
    """The names of the two opcodes before each FRAME but the first."""
    ops = list(pickletools.genops(data))
    return [(ops[i - 2][0].name, ops[i - 1][0].name) for i in range(1, len(ops))
            if ops[i][0].name == 'FRAME' and i >= 2]


def ints_frame_after_mark():
    """A list whose first frame fills up exactly at the first item of a batch: the frame is
    committed after 'APPENDS MARK', not before APPENDS (CPython checks for a full frame only when
    it starts saving an object)."""
    return [2 ** 62 + i for i in range(6104)] + [100000 + i for i in range(896 + 500)]


def ints_then_sibling():
    """(list, 5) where the frame fills up with the list's last item: committed before the 5."""
    return ([100000 + i for i in range(13102)], 5)


def check_frame_cases():
    for protocol in (4, 5):
        starts = frame_starts(pickle.dumps(ints_frame_after_mark(), protocol))
        assert starts == [('APPENDS', 'MARK')], starts
        starts = frame_starts(pickle.dumps(ints_then_sibling(), protocol))
        assert starts == [('BININT', 'APPENDS')], starts


def cases():
    """name -> (Python value, lowest protocol); the C++ side has the same names."""
    c = {}
    c['none'] = (None, 0)
    c['true'] = (True, 0)
    c['int_small'] = (5, 0)
    c['int_300'] = (300, 0)
    c['int_70000'] = (70000, 0)
    c['int_negative'] = (-1, 0)
    c['int_2p40'] = (2 ** 40, 0)
    c['int64_min'] = (-2 ** 63, 0)
    c['uint64_max'] = (2 ** 64 - 1, 0)
    c['float'] = (1.5, 0)
    c['float_negative_zero'] = (-0.0, 0)
    c['float_1e100'] = (1e100, 0)
    c['str_empty'] = (fresh(''), 0)
    c['str_char'] = (fresh('a'), 0)
    c['str_latin1'] = (fresh('\u00e9t\u00e9'), 0)
    c['str_euro'] = (fresh('\u20ac x'), 0)
    c['str_300'] = (fresh('ab' * 150), 0)
    c['str_70000'] = (fresh('x' * 70000), 4)
    c['bytes_empty'] = (fresh_bytes(b''), 0)
    c['bytes_one'] = (fresh_bytes(b'\xe9'), 0)
    c['bytes_abc'] = (fresh_bytes(b'abc'), 0)
    c['bytes_300'] = (fresh_bytes(bytes(range(256)) + b'x' * 44), 0)
    c['bytearray'] = (bytearray(b'ab'), 0)
    c['list_empty'] = ([], 0)
    c['list_one'] = ([1], 0)
    c['list_three'] = ([1, 2, 3], 0)
    c['list_1000'] = (list(range(1000)), 0)
    c['list_1001'] = (list(range(1001)), 0)
    c['list_2001'] = (list(range(2001)), 0)
    c['list_strs_shared'] = ([fresh('ab'), fresh('ab'), fresh('a'), fresh('a'), fresh(''), fresh('')], 0)
    c['list_bytes_shared'] = ([fresh_bytes(b'ab'), fresh_bytes(b'ab'), fresh_bytes(b'a'), fresh_bytes(b'a'),
                               fresh_bytes(b''), fresh_bytes(b'')], 0)
    c['list_nested'] = ([[], [1], [], [2, 3]], 0)
    c['list_optional'] = ([1, None, 3], 0)
    c['list_variant'] = ([1, fresh('two'), 3], 0)
    c['list_10000_strs'] = ([fresh('s%05d' % i) for i in range(10000)], 4)
    c['tuple_empty'] = ((), 0)
    c['tuple_one'] = ((1,), 0)
    c['pair'] = ((1, fresh('x')), 0)
    c['tuple_three'] = ((1, 2.5, fresh('three')), 0)
    c['tuple_four'] = ((1, 2, 3, 4), 0)
    c['dict_empty'] = ({}, 0)
    c['dict_one'] = ({key('a'): 1}, 0)
    c['dict_two'] = ({key('a'): [1.5], key('b'): []}, 0)
    c['dict_int_keys'] = ({1: fresh('one'), 2: fresh('two')}, 0)
    c['dict_1000'] = ({key('k%04d' % i): i for i in range(1000)}, 0)
    c['dict_1001'] = ({key('k%04d' % i): i for i in range(1001)}, 0)
    c['records'] = ([{key('name'): fresh('ann'), key('id'): 1}, {key('name'): fresh('bob'), key('id'): 2}], 0)
    c['key_equals_value'] = ({key('same'): fresh('same')}, 0)
    c['set_empty'] = (set(), 0)
    c['set_three'] = ({1, 2, 3}, 0)
    c['set_1000'] = (set(range(1000)), 0)
    c['set_1001'] = (set(range(1001)), 0)
    c['points'] = ([point(1, 'a'), point(2, 'bc')], 2)
    c['point_and_label'] = ((point(7, 'seven'), label('hi')), 2)
    c['empty_object'] = (geometry.Empty(), 2)
    c['struct_as_dict'] = ({key('a'): 3, key('b'): [1.0]}, 0)
    c['value_inside'] = ([fresh('xy'), [fresh('yz'), 1]], 0)
    c['value_shares_singletons'] = ([fresh('x'), [fresh('x'), 1]], 0)
    c['latin1_char_and_byte'] = ((fresh('\u00e9'), fresh_bytes(b'\xe9'), fresh('\u00e9')), 0)
    c['deep_types'] = ({key('m'): [[(1, fresh('pq'))]]}, 0)
    # Integral vectors (the typed writer's and parser's int loops): every encoding's edges, the
    # widths cycling across full batches, and frames filling up at a batch start, after the last
    # item, and anywhere in a batch of mixed widths.
    widths = int_widths()
    c['ints_every_width'] = (widths, 0)
    c['ints_cycling_widths_2500'] = ([widths[i % len(widths)] for i in range(2500)], 0)
    c['ints_frame_after_mark'] = (ints_frame_after_mark(), 4)
    c['ints_then_sibling_at_frame_end'] = (ints_then_sibling(), 4)
    c['ints_cycling_widths_14000'] = ([widths[i * 7 % len(widths)] for i in range(14000)], 4)
    c['int32s_every_width'] = ([v for v in widths if -2 ** 31 <= v < 2 ** 31], 0)
    c['uint8s_all'] = (list(range(256)), 0)
    c['uint64s_above_int64'] = ([0, 255, 2 ** 63 - 1, 2 ** 63, 2 ** 63 + 1, 2 ** 64 - 1], 0)
    return c


def emit():
    check_frame_cases()
    minor = sys.version_info[1]
    for name, (value, lowest) in cases().items():
        for protocol in range(lowest, 6):
            print(f'{name}\t{protocol}\t{minor}\t{pickle.dumps(value, protocol).hex()}')


INTERPRETERS = [
    (8, {'PYENV_VERSION': '3.8.18'}, 'python3.8'),
    (9, {'PYENV_VERSION': '3.9.18'}, 'python3.9'),
    (10, {'PYENV_VERSION': '3.10.13'}, 'python3.10'),
    (11, {}, sys.executable),
    (12, {'PYENV_VERSION': '3.12.1'}, 'python3.12'),
    (13, {'PYENV_VERSION': '3.13.0'}, 'python3.13'),
]


def main():
    if '--emit' in sys.argv:
        emit()
        return
    rows = {}  # (name, protocol) -> {hex: [minors]}
    order = []
    for minor, extra_env, exe in INTERPRETERS:
        env = dict(os.environ, **extra_env)
        try:
            out = subprocess.run([exe, os.path.abspath(__file__), '--emit'], env=env, check=True,
                                 capture_output=True, text=True).stdout
        except (OSError, subprocess.CalledProcessError) as error:
            print(f'skipping 3.{minor}: {error}', file=sys.stderr)
            continue
        for line in out.splitlines():
            name, protocol, got_minor, data = line.split('\t')
            assert int(got_minor) == minor, (exe, got_minor)
            k = (name, int(protocol))
            if k not in rows:
                rows[k] = {}
                order.append(k)
            rows[k].setdefault(data, []).append(minor)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, 'w') as f:
        f.write('# Generated by tests/gen_native_cases.py from CPython; do not edit.\n')
        for k in order:
            for data, minors in rows[k].items():
                f.write(f'{k[0]}\t{k[1]}\t{",".join(map(str, minors))}\t{data}\n')


if __name__ == '__main__':
    main()
