#!/usr/bin/env python3
"""Times CPython's pickle.loads / pickle.dumps against `pickletool bench` on the same files.

    python3 bench/compare.py [--pickletool build/tools/pickletool] [--min-time 1.0]
                             [--workdir /tmp/pickle-bench] [--only NAME,...] [--quick]

Generates the workloads with this interpreter (the pyperformance pickle set at protocol 5 and the
large synthetic ones), times CPython in-process (median of repeated runs, the value destroyed inside
each timed loads as it is in a real program), runs `pickletool bench` on each file, and prints a
table: bytes, CPython ns, ours ns, ratio (CPython / ours; above 1 means we are faster), and the
memory of the loaded value (CPython: tracemalloc's traced bytes held by the value; ours: the heap
region's bytes). --quick shrinks every workload (for CI smoke runs).

For ints_1M and strs_2M_32 it also runs `pickletool bench-native` (pickle/native.hpp): `typed` rows
load into and dump from std::vector<std::int64_t> / std::vector<std::string>, `typed views` from
std::vector<std::string_view> (views into the input, no copies); `floor` rows build and destroy the
same vector from a buffer without any pickle, the least a loads into that type can cost, so their
loads ratio bounds what any typed loads can reach.
"""
import argparse
import datetime
import gc
import json
import os
import pickle
import random
import string
import subprocess
import sys
import threading
import time
import tracemalloc


def pyperformance_objects():
    """The objects of pyperformance's bm_pickle (data-files/benchmarks/bm_pickle)."""
    dict_ = {
        'ads_flags': 0, 'age': 18, 'birthday': datetime.date(1980, 5, 7), 'bulletin_count': 0,
        'comment_count': 0, 'country': 'BR', 'encrypted_id': 'G9urXXAJwjE', 'favorite_count': 9,
        'first_name': '', 'flags': 412317970704, 'friend_count': 0, 'gender': 'm',
        'gender_for_display': 'Male', 'id': 302935349, 'is_custom_profile_icon': 0,
        'last_name': '', 'locale_preference': 'pt_BR', 'member': 0,
        'tags': ['a', 'b', 'c', 'd', 'e', 'f', 'g'], 'profile_foo_id': 827119638,
        'secure_encrypted_id': 'Z_xxx2dYx3t4YAdnmfgyKw', 'session_number': 2,
        'signup_id': '201-19225-223', 'status': 'A', 'theme': 1, 'time_created': 1225237014,
        'time_updated': 1233134493, 'unread_message_count': 0, 'user_group': '0',
        'username': 'collinwinter', 'play_count': 9, 'view_count': 7, 'zip': ''}
    tuple_ = ([265867233, 265868503, 265252341, 265243910, 265879514, 266219766, 266021701,
               265843726, 265592821, 265246784, 265853180, 45526486, 265463699, 265848143,
               265863062, 265392591, 265877490, 265823665, 265828884, 265753032], 60)

    def mutate_dict(orig_dict, random_source):
        new_dict = dict(orig_dict)
        for key, value in new_dict.items():
            rand_val = random_source.random() * sys.maxsize
            if isinstance(key, (int, bytes, str)):
                new_dict[key] = type(key)(rand_val)
        return new_dict

    random_source = random.Random(5)
    dict_group = [mutate_dict(dict_, random_source) for _ in range(3)]
    list_ = [[list(range(10)), list(range(10))] for _ in range(10)]
    micro_dict = dict((key, dict.fromkeys(range(10))) for key in range(100))
    return {'DICT': dict_, 'TUPLE': tuple_, 'DICT_GROUP': dict_group, 'LIST': list_,
            'MICRO_DICT': micro_dict}


def workloads(quick):
    scale = 100 if quick else 1
    rng = random.Random(1)
    out = {name: (obj, 5) for name, obj in pyperformance_objects().items()}
    out['ints_1M'] = (list(range(1_000_000 // scale)), 5)
    out['floats_1M'] = ([rng.random() for _ in range(1_000_000 // scale)], 5)
    letters = string.ascii_letters + string.digits
    out['strs_2M_32'] = ([''.join(rng.choice(letters) for _ in range(32))
                          for _ in range(2_000_000 // scale)], 5)
    out['dict_100k_str_int'] = ({f'key{i:08d}': i for i in range(100_000 // scale)}, 5)
    out['records_30k'] = ([{'id': i, 'name': f'user{i}', 'score': i * 0.5,
                            'tags': ['a', 'b', str(i % 7)], 'pos': (i, -i),
                            'meta': {'active': bool(i % 2), 'parent': None}}
                           for i in range(30_000 // scale)], 5)
    out['bytes_256MiB'] = (b'\xab' * ((256 << 20) // (scale * 16 if quick else 1)), 5)
    depth = 100_000 // scale
    nested = []
    for _ in range(depth - 1):
        nested = [nested]
    out['nested_list_100k'] = (nested, 5)
    return out


def time_median(fn, min_time, clock=time.perf_counter_ns):
    """Median ns of one call. A sample times a batch of calls lasting at least 200 us: reading the
    thread CPU clock is a system call (about 1.5 us in a VM, as long as a whole small dumps).
    pickletool bench batches its runs the same way."""
    batch = 1
    while True:
        t0 = clock()
        for _ in range(batch):
            fn()
        if clock() - t0 >= 200_000 or batch >= 1 << 20:
            break
        batch *= 2
    samples = []
    start = time.perf_counter()
    while len(samples) < 5 or time.perf_counter() - start < min_time:
        t0 = clock()
        for _ in range(batch):
            fn()
        samples.append((clock() - t0) // batch)
    samples.sort()
    return samples[len(samples) // 2]


def cpython_value_bytes(data):
    gc.collect()
    tracemalloc.start()
    value = pickle.loads(data)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del value
    return held


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument('--pickletool', default=os.path.join(here, '..', 'build', 'tools', 'pickletool'))
    parser.add_argument('--min-time', type=float, default=1.0)
    parser.add_argument('--workdir', default='/tmp/pickle-bench')
    parser.add_argument('--only', default='')
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--zero-copy', action='store_true',
                        help='load with pickle::loads(data, owner): bytes/str payloads of 4 KiB '
                             'or more become views of the input instead of copies')
    parser.add_argument('--clock', choices=('wall', 'cpu'), default='wall',
                        help="cpu: time both sides by the thread's CPU time (user + system), "
                             "which a machine shared with busy processes does not inflate")
    args = parser.parse_args()
    clock = time.thread_time_ns if args.clock == 'cpu' else time.perf_counter_ns
    os.makedirs(args.workdir, exist_ok=True)
    sys.setrecursionlimit(1_000_000)
    only = set(filter(None, args.only.split(',')))

    rows = []
    for name, (obj, protocol) in workloads(args.quick).items():
        if only and name not in only:
            continue
        try:
            data = pickle.dumps(obj, protocol)
        except RecursionError:
            # CPython cannot write very deep structures; write the equivalent pickle directly.
            depth = 100_000 // (100 if args.quick else 1)
            data = b'\x80\x05' + b']' * depth + b'a' * (depth - 1) + b'.'
        path = os.path.join(args.workdir, name + '.pkl')
        with open(path, 'wb') as f:
            f.write(data)
        del obj
        value = pickle.loads(data)
        try:
            py_dumps = time_median(lambda: pickle.dumps(value, protocol), args.min_time, clock)
        except RecursionError:
            py_dumps = None
        del value
        py_loads = time_median(lambda: pickle.loads(data), args.min_time, clock)
        py_bytes = cpython_value_bytes(data)
        ours = {}
        for op in ('loads', 'dumps'):
            result = subprocess.run([args.pickletool, 'bench', '--op', op, '--min-time',
                                     str(args.min_time), '--clock', args.clock, path]
                                    + (['--zero-copy'] if args.zero_copy else []),
                                    capture_output=True, text=True)
            if result.returncode != 0:
                ours[op] = None
                print(f'{name} {op}: pickletool failed: {result.stderr.strip()}', file=sys.stderr)
                continue
            ours[op] = json.loads(result.stdout)
        rows.append((name, len(data), py_loads, ours['loads'], py_dumps, ours['dumps'], py_bytes))
        # Typed rows (pickle/native.hpp, issue 7): loads<std::vector<…>> and dumps of the same file,
        # as std::string copies and as std::string_views borrowing the input ('typed views').
        typed = {'ints_1M': [('typed', 'list-int')],
                 'strs_2M_32': [('typed', 'list-str'), ('typed views', 'list-str-view')]}.get(name, [])
        for label, native_type in typed:
            ours_typed = {}
            for op in ('loads', 'dumps', 'floor'):
                result = subprocess.run([args.pickletool, 'bench-native', '--op', op, '--type',
                                         native_type, '--min-time', str(args.min_time), '--clock',
                                         args.clock, path],
                                        capture_output=True, text=True)
                ours_typed[op] = json.loads(result.stdout) if result.returncode == 0 else None
                if result.returncode != 0:
                    print(f'{name} {native_type} {op}: pickletool failed: {result.stderr.strip()}',
                          file=sys.stderr)
            rows.append((f'{name} {label}', len(data), py_loads, ours_typed['loads'], py_dumps,
                         ours_typed['dumps'], py_bytes))
            # The floor of any loads into that C++ type: building and destroying the same vector
            # from a buffer, no pickle (its loads ratio is the most any typed loads can reach).
            rows.append((f'{name} {label} floor', len(data), py_loads, ours_typed['floor'], None,
                         None, py_bytes))

    def fmt_ratio(py, ours):
        if py is None or ours is None:
            return 'n/a'
        return f"{py / max(ours['ns_per_op'], 1):.2f}"

    def fmt_ns(x):
        if x is None:
            return 'n/a'
        return str(x['ns_per_op']) if isinstance(x, dict) else str(x)

    print(f"CPython {sys.version.split()[0]}, pickletool {args.pickletool}, {args.clock} clock"
          + (', zero-copy loads' if args.zero_copy else ''))
    # our value B: what the value's nodes take (the bytes its region handed out, as tracemalloc
    # counts CPython's objects); our system B: the region's chunks, free tails included.
    header = ('workload', 'bytes', 'py loads ns', 'our loads ns', 'loads ratio',
              'py dumps ns', 'our dumps ns', 'dumps ratio', 'py value B', 'our value B',
              'our system B')
    print('| ' + ' | '.join(header) + ' |')
    print('|' + '---|' * len(header))
    for name, size, py_l, our_l, py_d, our_d, py_b in rows:
        our_b = our_l.get('value_heap_bytes') if our_l else None
        our_sys = our_l.get('value_system_bytes') if our_l else None
        print(f"| {name} | {size} | {py_l} | {fmt_ns(our_l)} | {fmt_ratio(py_l, our_l)} | "
              f"{fmt_ns(py_d)} | {fmt_ns(our_d)} | {fmt_ratio(py_d, our_d)} | {py_b} | {our_b} | "
              f"{our_sys} |")


if __name__ == '__main__':
    # CPython's C pickler recurses once per nesting level; with the recursion limit raised for the
    # 100k-deep list, the default 8 MiB thread stack overflows (a segfault, not a RecursionError).
    threading.stack_size(1 << 30)
    worker = threading.Thread(target=main)
    worker.start()
    worker.join()
