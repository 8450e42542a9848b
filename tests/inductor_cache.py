#!/usr/bin/env python3
"""PyTorch Inductor's on-disk cache, re-implemented from the documented format
(/work/shared/reference/inductor-cache.md §5), so C++ can be tested against the Python side
without torch installed.

What it reproduces (the generation with _OnDiskCacheImpl and utils._try_pickle_key):
  - base directory: tempfile.gettempdir() / "torchinductor_<user>" (sanitised), then cache/<sub_dir>;
  - entry file name: sha256(pickle.dumps(key)).hexdigest()[:32], at the default protocol;
  - entry content: sha256(str(0).encode()).digest()[:4] + pickle.dumps(value);
  - get: miss when the path is not a file; a wrong header or an empty payload unlinks the file and
    misses;
  - insert: open(path, "xb"); on FileExistsError a stale entry is unlinked and re-created,
    otherwise False; header then payload written in place (not atomic, as in the original);
  - every get/insert under <cache dir>/dir.lock, taken as filelock.UnixFileLock does (filelock is
    not installed here): os.open(O_RDWR|O_TRUNC|O_NOFOLLOW|O_CREAT, 0o644), flock(LOCK_EX|LOCK_NB)
    polled every 0.05 s, a lock on an unlinked file (st_nlink == 0) dropped and retried; release
    unlocks and closes, and (newer filelock releases, unlink_lock_on_release=True) unlinks first.

Used as a module by gen_cache_cases.py and as a program by tests/cache_interop_test.cpp:
  inductor_cache.py put CACHE_DIR PROTOCOL          stdin: KEY<TAB>VALUE literals; prints inserted/exists
  inductor_cache.py check CACHE_DIR PROTOCOL        stdin: KEY<TAB>VALUE; prints ok / miss / mismatch
  inductor_cache.py names PROTOCOL                  stdin: KEY; prints NAME<TAB>PICKLED-HEX
  inductor_cache.py hold-lock LOCK SECONDS          prints "locked", holds the lock, releases
  inductor_cache.py try-lock LOCK TIMEOUT           prints "acquired" or "timeout"
  inductor_cache.py default-cache-dir               prints default_cache_dir()
  inductor_cache.py worker CACHE_DIR PROTOCOL ID SECONDS UNLINK_LOCK   (the concurrency worker)
"""
import ast
import errno
import fcntl
import getpass
import hashlib
import os
import pickle
import re
import sys
import tempfile
import time

VERSION = 0
HEADER_LENGTH = 4


def version_header(version=VERSION):
    return hashlib.sha256(str(version).encode()).digest()[:HEADER_LENGTH]


def default_cache_dir():
    sanitized_username = re.sub(r'[\\/:*?"<>|]', "_", getpass.getuser())
    return os.path.join(tempfile.gettempdir(), "torchinductor_" + sanitized_username)


def pickle_key(key, protocol=None):
    return pickle.dumps(key, protocol=protocol)


def entry_name(key, protocol=None):
    return hashlib.sha256(pickle_key(key, protocol)).hexdigest()[:32]


class FileLockTimeoutError(RuntimeError):
    pass


class UnixFlock:
    """filelock.UnixFileLock's acquire/release algorithm on fcntl.flock."""

    def __init__(self, path, timeout=60.0, poll_interval=0.05, unlink_on_release=False):
        self.path = path
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.unlink_on_release = unlink_on_release
        self.fd = None

    def _try_acquire(self):
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        flags = os.O_RDWR | os.O_TRUNC | os.O_NOFOLLOW
        try:
            fd = os.open(self.path, flags | os.O_CREAT, 0o644)
        except FileNotFoundError:
            return False
        except PermissionError:
            if not os.path.exists(self.path):
                raise
            fd = os.open(self.path, flags)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                raise
            return False
        if os.fstat(fd).st_nlink == 0:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def acquire(self, timeout=None):
        timeout = self.timeout if timeout is None else timeout
        start = time.monotonic()
        while not self._try_acquire():
            if 0 <= timeout <= time.monotonic() - start:
                raise FileLockTimeoutError(
                    f"Failed to acquire file lock {self} within {timeout} seconds.")
            time.sleep(self.poll_interval)

    def release(self):
        fd, self.fd = self.fd, None
        if self.unlink_on_release:
            try:
                os.unlink(self.path)
            except OSError:
                pass
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc_info):
        self.release()


MISS = object()


class OnDiskCache:
    def __init__(self, sub_dir=None, *, base_dir=None, cache_dir=None, protocol=None, lock=True,
                 timeout=60.0, unlink_lock_on_release=False):
        if cache_dir is None:
            cache_dir = os.path.join(base_dir or default_cache_dir(), "cache", sub_dir or "")
        self.cache_dir = os.path.normpath(cache_dir)
        self.protocol = protocol
        self.lock = UnixFlock(os.path.join(self.cache_dir, "dir.lock"), timeout,
                              unlink_on_release=unlink_lock_on_release) if lock else None

    def path_of(self, key):
        return os.path.join(self.cache_dir, entry_name(key, self.protocol))

    def _locked(self):
        if self.lock is None:
            return _NoLock()
        return self.lock

    def get(self, key):
        """The value, or MISS."""
        with self._locked():
            path = self.path_of(key)
            if not os.path.isfile(path):
                return MISS
            payload = None
            with open(path, "rb") as fp:
                if fp.read(HEADER_LENGTH) == version_header():
                    payload = fp.read()
            if not payload:
                os.unlink(path)
                return MISS
            return pickle.loads(payload)

    def insert(self, key, value):
        with self._locked():
            path = self.path_of(key)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            try:
                fp = open(path, "xb")
            except FileExistsError:
                with open(path, "rb") as reader:
                    stale = reader.read(HEADER_LENGTH) != version_header()
                if not stale:
                    return False
                os.unlink(path)
                fp = open(path, "xb")
            with fp:
                payload = pickle.dumps(value, protocol=self.protocol)
                fp.write(version_header())
                fp.write(payload)
            return True


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        pass


# --- the concurrency worker (tests/cache_interop_test.cpp runs C++ twins of it) -----------------

KEYS_PER_ROUND = 6
PAYLOAD_SIZE = 24000


def worker_key(round_number, index):
    return ("concurrency", round_number, index)


def worker_value(round_number, index, worker_id):
    fill = (worker_id * 7 + index * 3 + round_number) % 251
    return ("v", round_number, index, worker_id, bytes([fill]) * PAYLOAD_SIZE)


def check_worker_value(value, round_number, index):
    """The writer id when `value` is whole and for this key, else raises."""
    if not (isinstance(value, tuple) and len(value) == 5 and value[:3] == ("v", round_number, index)):
        raise ValueError(f"not a worker value for {round_number},{index}: {value!r:.80}")
    if value != worker_value(round_number, index, value[3]):
        raise ValueError(f"corrupt worker value for {round_number},{index}")
    return value[3]


def run_worker(cache_dir, protocol, worker_id, seconds, unlink_lock):
    cache = OnDiskCache(cache_dir=cache_dir, protocol=protocol,
                        unlink_lock_on_release=unlink_lock)
    deadline = time.monotonic() + seconds
    out = []
    round_number = 0
    while time.monotonic() < deadline:
        for step in range(KEYS_PER_ROUND):
            index = (step + worker_id) % KEYS_PER_ROUND
            key = worker_key(round_number, index)
            try:
                value = cache.get(key)
                if value is MISS:
                    if cache.insert(key, worker_value(round_number, index, worker_id)):
                        out.append(f"inserted {round_number} {index} {worker_id}")
                    value = cache.get(key)
                    if value is MISS:
                        out.append(f"error {round_number} {index} miss after insert")
                        continue
                out.append(f"seen {round_number} {index} {check_worker_value(value, round_number, index)}")
            except Exception as error:  # reported to the test, which fails on any
                out.append(f"error {round_number} {index} {type(error).__name__}: {error}")
        round_number += 1
    sys.stdout.write("\n".join(out) + "\n")


def _lines():
    for line in sys.stdin:
        line = line.rstrip("\n")
        if line:
            yield line


def main(argv):
    command = argv[1]
    if command == "put":
        cache = OnDiskCache(cache_dir=argv[2], protocol=int(argv[3]))
        for line in _lines():
            key, value = line.split("\t")
            inserted = cache.insert(ast.literal_eval(key), ast.literal_eval(value))
            print("inserted" if inserted else "exists")
    elif command == "check":
        cache = OnDiskCache(cache_dir=argv[2], protocol=int(argv[3]))
        for line in _lines():
            key, expected = line.split("\t")
            got = cache.get(ast.literal_eval(key))
            if got is MISS:
                print("miss", key)
            elif type(got) is not type(ast.literal_eval(expected)) or repr(got) != repr(ast.literal_eval(expected)):
                print("mismatch", key, repr(got), expected)
            else:
                print("ok")
    elif command == "names":
        protocol = int(argv[2])
        for line in _lines():
            key = ast.literal_eval(line)
            print(entry_name(key, protocol) + "\t" + pickle_key(key, protocol).hex())
    elif command == "hold-lock":
        lock = UnixFlock(argv[2], timeout=10)
        with lock:
            print("locked", flush=True)
            time.sleep(float(argv[3]))
    elif command == "try-lock":
        lock = UnixFlock(argv[2], timeout=float(argv[3]))
        try:
            lock.acquire()
        except FileLockTimeoutError:
            print("timeout")
        else:
            lock.release()
            print("acquired")
    elif command == "default-cache-dir":
        print(default_cache_dir())
    elif command == "worker":
        run_worker(argv[2], int(argv[3]), int(argv[4]), float(argv[5]), argv[6] == "1")
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv)
