"""Writes examples/sample.pkl, the pickle the README's first command shows, and what Python
prints for it (sample.repr: repr(pickle.load(f)); sample.dis: pickletools.dis).

A user record like the ones Python services cache: builtin values, shared references and a cycle,
written by CPython at protocol 4 (pickle.DEFAULT_PROTOCOL).

    python3 examples/make_sample.py
"""
import os
import pickle

tags = ["python", "pickle", "c++"]
user = {
    "id": 302935349,
    "name": "Ada Lovelace",
    "email": "ada@example.org",
    "born": (1815, 12, 10),
    "score": 97.5,
    "big": 2**80,
    "tags": tags,
    "favourite_tags": tags,  # the same list object: pickled once, fetched from the memo after
    "avatar": b"\x89PNG\r\n\x1a\n",
    "lucky_numbers": {7, 13, 42},
    "location": (51.5074, -0.1278),
    "nothing": None,
    "active": True,
    "greeting": "héllo wörld ✓",
}
user["self"] = user  # a cycle

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "sample.pkl"), "wb") as f:
    pickle.dump(user, f, protocol=4)

# What Python prints for it, for the CLI tests (tests/cli_test.cpp).
import io
import pickletools

with open(os.path.join(here, "sample.pkl"), "rb") as f:
    data = f.read()
with open(os.path.join(here, "sample.repr"), "w", encoding="utf-8") as f:
    f.write(repr(pickle.loads(data)) + "\n")
out = io.StringIO()
pickletools.dis(data, out)
with open(os.path.join(here, "sample.dis"), "w", encoding="utf-8") as f:
    f.write(out.getvalue())
