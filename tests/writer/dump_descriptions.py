"""Reads lines `protocol description` (tests/writer/describe.py grammar) and writes, for each, the
pickle CPython makes of the rebuilt value as hex, or `!Class: message`. Used by the differential
property of tests/writer_property_test.cpp."""
import os
import pickle
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import describe  # noqa: E402


def main():
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line:
            continue
        protocol, _, text = line.partition(" ")
        try:
            data = pickle.dumps(describe.build(text), int(protocol)).hex()
        except Exception as e:
            data = "!%s: %s" % (type(e).__name__, e)
        sys.stdout.write(data + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
