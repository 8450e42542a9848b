#!/usr/bin/env python3
"""Writes tests/data/utf8_cases.txt: how CPython's UTF-8 decoder (with "surrogatepass", as pickle
uses it) judges byte strings: valid, or the first error's range, reason and message.

Line format (tab separated):  <hex bytes>  ok
                         or:  <hex bytes>  <start>  <end>  <reason>  <message>
Run: python3 tests/gen_utf8_cases.py > tests/data/utf8_cases.txt
"""
import random
import sys

SAMPLE_BYTES = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
                0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF8, 0xFF]


def cases():
    seen = set()

    def emit(data):
        data = bytes(data)
        if data not in seen:
            seen.add(data)
            yield data

    for b in range(256):
        yield from emit([b])
    for a in SAMPLE_BYTES:
        for b in SAMPLE_BYTES:
            yield from emit([a, b])
            if not (0xE0 <= a <= 0xF4 and 0x80 <= b <= 0xBF):
                continue  # a third byte only matters after a 3- or 4-byte lead and a trail byte
            for c in (0x41, 0x80, 0xBF, 0xC0):
                yield from emit([a, b, c])
                for d in (0x41, 0x80, 0xBF):
                    yield from emit([a, b, c, d])
    # Surrogates (accepted by surrogatepass), boundaries of each sequence length, errors after text.
    for data in [b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xed\xb0\x80x", b"\xed\xa0", b"\xed\x9f\xbf",
                 b"\xf4\x8f\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf0\x90\x80\x80", b"\xf0\x8f\xbf\xbf",
                 b"\xe0\xa0\x80", b"\xe0\x9f\xbf", b"\xc2\x80", b"\xdf\xbf", b"\xef\xbf\xbf",
                 b"hello \xe2\x82\xac world", b"abcdefghijklmnop\xff", b"abcdefgh\xe2\x82",
                 b"\xe2\x82\xac" * 5 + b"\xe2\x41", "snowman \u2603 and \U0001F600".encode(),
                 b"", b"plain ascii text that is longer than one word"]:
        yield from emit(data)
    rng = random.Random(20261127)
    alphabet = list(range(0x00, 0x80, 17)) + list(range(0x80, 0x100))
    for _ in range(1500):
        length = rng.randint(1, 9)
        yield from emit(rng.choice(alphabet) for _ in range(length))


def main():
    out = sys.stdout
    for data in cases():
        try:
            data.decode("utf-8", "surrogatepass")
            out.write(f"{data.hex()}\tok\n")
        except UnicodeDecodeError as error:
            out.write(f"{data.hex()}\t{error.start}\t{error.end}\t{error.reason}\t{error}\n")


if __name__ == "__main__":
    main()
