#!/usr/bin/python3
"""Writes examples/numpy_sample.pkl, the numpy array examples/numpy_zero_copy.cpp reads, and
examples/numpy_sample.expected, what that program must print for it (computed here by numpy).

Run with an interpreter that has numpy (Debian's python3-numpy 1.24):

    /usr/bin/python3 examples/make_numpy_sample.py
"""
import os
import pickle

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

# 1000 samples of 3 channels, float64: 24,000 bytes of data, pickled at the default protocol (4),
# where numpy's reduction carries the data as one BINBYTES payload.
samples = np.sin(np.arange(3000, dtype=np.float64) / 100.0).reshape(1000, 3)
with open(os.path.join(HERE, "numpy_sample.pkl"), "wb") as f:
    pickle.dump(samples, f, protocol=4)

total = 0.0
for x in samples.flat:  # in C order, one addition at a time, as the C++ program sums
    total += float(x)
lines = [
    "shape (%d, %d)" % samples.shape,
    "dtype %s" % samples.dtype,
    "strides (%d, %d)" % samples.strides,
    "a[0, 1] = %.17g" % samples[0, 1],
    "a[999, 2] = %.17g" % samples[999, 2],
    "sum = %.17g" % total,
    "zero-copy: the data lies inside the input buffer",
]
with open(os.path.join(HERE, "numpy_sample.expected"), "w") as f:
    f.write("\n".join(lines) + "\n")
