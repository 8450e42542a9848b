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
import statistics
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


def time_median(fn, min_time, clock=time.perf_counter_ns, before_sample=None):
    """Median ns of one call. A sample times a batch of calls lasting at least 200 us: reading the
    thread CPU clock is a system call (about 1.5 us in a VM, as long as a whole small dumps).
    before_sample(i), untimed, runs before the i-th timed batch. pickletool bench batches its runs
    the same way."""
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
        if before_sample is not None:
            before_sample(len(samples))
        t0 = clock()
        for _ in range(batch):
            fn()
        samples.append((clock() - t0) // batch)
    samples.sort()
    return samples[len(samples) // 2]


def placed_copies(data):
    """Copies of a small input at spread addresses. Where the input falls modulo 4096 relative to a
    loader's own buffers can slow a load by half (loads waiting on stores to addresses equal in
    their low 12 bits), so each sample loads from the next copy, as `pickletool bench` does."""
    if len(data) > 1 << 20:
        return [data]
    copies, padding = [], []
    for k in range(16):
        padding.append(bytes(256 * k + 64))  # moves where the next copy lands
        copies.append(bytes(bytearray(data)))
    return copies


def time_loads_placed(copies, min_time, clock):
    """time_median of pickle.loads, each sample on the next copy of the input."""
    current = [copies[0]]

    def next_copy(sample):
        current[0] = copies[sample % len(copies)]

    return time_median(lambda: pickle.loads(current[0]), min_time, clock, next_copy)


def run_tool(args, command, min_time):
    """One pickletool bench/bench-native run: its JSON line, or None (reported) when it fails."""
    result = subprocess.run([args.pickletool] + command[:-1]
                            + ['--min-time', str(min_time), '--clock', args.clock, command[-1]],
                            capture_output=True, text=True)
    if result.returncode != 0:
        print(f"{' '.join(command)}: pickletool failed: {result.stderr.strip()}", file=sys.stderr)
        return None
    return json.loads(result.stdout)


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
    parser.add_argument('--rounds', type=int, default=5,
                        help='alternate the two sides this many times per workload (min-time is '
                             'shared between the rounds)')
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
        copies = placed_copies(data)
        typed = {'ints_1M': [('typed', 'list-int')],
                 'strs_2M_32': [('typed', 'list-str'), ('typed views', 'list-str-view')]}.get(name, [])
        # The two sides alternate, round by round, so that both are timed at the same moments: the
        # speed of a shared VM's CPU drifts by up to 2x over seconds, and timed apart, a ratio
        # measured the drift. Each side's figure is its median over the rounds, and each ratio the
        # median of the rounds' ratios.
        share = args.min_time / args.rounds
        py = {'loads': [], 'dumps': []}
        ours = {'loads': [], 'dumps': []}
        ours_typed = {(label, op): [] for label, _ in typed for op in ('loads', 'dumps', 'floor')}
        for _ in range(args.rounds):
            py['loads'].append(time_loads_placed(copies, share, clock))
            try:
                py['dumps'].append(time_median(lambda: pickle.dumps(value, protocol), share, clock))
            except RecursionError:
                py['dumps'].append(None)
            for op in ('loads', 'dumps'):
                ours[op].append(run_tool(args, ['bench', '--op', op, path]
                                         + (['--zero-copy'] if args.zero_copy else []), share))
            for label, native_type in typed:
                for op in ('loads', 'dumps', 'floor'):
                    ours_typed[(label, op)].append(
                        run_tool(args, ['bench-native', '--op', op, '--type', native_type, path], share))
        del value
        py_bytes = cpython_value_bytes(data)
        rows.append((name, len(data), py['loads'], ours['loads'], py['dumps'], ours['dumps'], py_bytes))
        # Typed rows (pickle/native.hpp, issue 7): loads<std::vector<…>> and dumps of the same file,
        # as std::string copies and as std::string_views borrowing the input ('typed views').
        for label, _ in typed:
            rows.append((f'{name} {label}', len(data), py['loads'], ours_typed[(label, 'loads')],
                         py['dumps'], ours_typed[(label, 'dumps')], py_bytes))
            # The floor of any loads into that C++ type: building and destroying the same vector
            # from a buffer, no pickle (its loads ratio is the most any typed loads can reach).
            rows.append((f'{name} {label} floor', len(data), py['loads'], ours_typed[(label, 'floor')],
                         None, None, py_bytes))

    def ns_of(samples):
        """Median ns of a side's rounds (CPython: ints; ours: pickletool's JSON lines)."""
        values = [x['ns_per_op'] if isinstance(x, dict) else x for x in samples or [] if x is not None]
        return statistics.median(values) if values and len(values) == len(samples) else None

    def fmt_ratio(py_samples, our_samples):
        if py_samples is None or our_samples is None:
            return 'n/a'
        pairs = list(zip(py_samples, our_samples))
        if not pairs or any(p is None or o is None for p, o in pairs):
            return 'n/a'
        return f"{statistics.median(p / max(o['ns_per_op'], 1) for p, o in pairs):.2f}"

    def fmt_ns(samples):
        ns = ns_of(samples)
        return 'n/a' if ns is None else str(round(ns))

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
        last = our_l[-1] if our_l and our_l[-1] else {}
        our_b = last.get('value_heap_bytes')
        our_sys = last.get('value_system_bytes')
        print(f"| {name} | {size} | {fmt_ns(py_l)} | {fmt_ns(our_l)} | {fmt_ratio(py_l, our_l)} | "
              f"{fmt_ns(py_d)} | {fmt_ns(our_d)} | {fmt_ratio(py_d, our_d)} | {py_b} | {our_b} | "
              f"{our_sys} |")


if __name__ == '__main__':
    # CPython's C pickler recurses once per nesting level; with the recursion limit raised for the
    # 100k-deep list, the default 8 MiB thread stack overflows (a segfault, not a RecursionError).
    threading.stack_size(1 << 30)
    worker = threading.Thread(target=main)
    worker.start()
    worker.join()
