# Native peer of bench/train.ts: one epoch of MNIST on a 784-128-10 MLP in NumPy (BLAS: usually OpenBLAS), same
# recipe as ours: relu + softmax cross-entropy, batch 64, SGD lr 0.05 momentum 0.9, He init (hidden), shuffled.
# Usage: python3 numpy_mlp.py --data DIR/mnist --threads N [--max-batches B] [--seed S]
# Prints one JSON line: numpy and BLAS facts, samples_per_second, accuracy, seconds. BLAS threads: threadpoolctl if
# importable, else the BLAS library's own set_num_threads through ctypes, else OPENBLAS_NUM_THREADS (set by the parent).
import argparse
import ctypes
import gzip
import json
import os
import re
import sys
import time

import numpy as np


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    if magic >> 8 != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(dir, split):
    x = read_idx(os.path.join(dir, f"{split}-images-idx3-ubyte.gz")).reshape(-1, 784).astype(np.float32) / np.float32(255)
    labels = read_idx(os.path.join(dir, f"{split}-labels-idx1-ubyte.gz")).astype(np.int64)
    return x, labels


def openblas_libraries():
    """Loaded shared libraries whose name mentions openblas (Linux: /proc/self/maps)."""
    try:
        with open("/proc/self/maps") as f:
            return sorted(set(re.findall(r"(/\S*openblas\S*\.so\S*)", f.read())))
    except OSError:
        return []


def blas_control(threads):
    """Sets the BLAS thread count; returns facts about the BLAS library that runs (kernel = OpenBLAS core name)."""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits

        threadpool_limits(limits=threads, user_api="blas")
        info = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if info:
            i = info[0]
            return {"via": "threadpoolctl", "library": i.get("internal_api"), "version": i.get("version"),
                    "kernel": i.get("architecture"), "threads": i.get("num_threads")}
    except ImportError:
        pass
    facts = {"via": "OPENBLAS_NUM_THREADS", "library": None, "version": None, "kernel": None, "threads": None}
    for path in openblas_libraries():
        lib = ctypes.CDLL(path)
        for prefix, suffix in (("scipy_", "64_"), ("scipy_", ""), ("", "64_"), ("", "")):
            try:
                get_core = getattr(lib, f"{prefix}openblas_get_corename{suffix}")
                set_threads = getattr(lib, f"{prefix}openblas_set_num_threads{suffix}")
                get_threads = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}")
                get_config = getattr(lib, f"{prefix}openblas_get_config{suffix}")
            except AttributeError:
                continue
            get_core.restype = ctypes.c_char_p
            get_config.restype = ctypes.c_char_p
            set_threads(ctypes.c_int(threads))
            config = get_config().decode()
            version = re.search(r"OpenBLAS\s+(\S+)", config)
            return {"via": "ctypes openblas_set_num_threads", "library": "openblas", "version": version and version.group(1),
                    "kernel": get_core().decode(), "threads": get_threads()}
    return facts


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--max-batches", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    blas = blas_control(a.threads)
    train_x, train_labels = load(a.data, "train")
    test_x, test_labels = load(a.data, "t10k")
    train_y = np.eye(10, dtype=np.float32)[train_labels]
    lr, momentum, batch = np.float32(0.05), np.float32(0.9), 64
    rng = np.random.default_rng(a.seed)

    def init():
        # He (normal) for the relu layer, Glorot uniform for the softmax layer: what ours does with init "auto".
        w1 = (rng.standard_normal((784, 128)) * np.sqrt(2 / 784)).astype(np.float32)
        limit = np.sqrt(6 / (128 + 10))
        w2 = rng.uniform(-limit, limit, (128, 10)).astype(np.float32)
        params = [w1, np.zeros(128, np.float32), w2, np.zeros(10, np.float32)]
        return params, [np.zeros_like(t) for t in params]

    def step(params, velocity, x, y):
        w1, b1, w2, b2 = params
        h = x @ w1 + b1
        np.maximum(h, 0, out=h)
        z = h @ w2 + b2
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        dz = (z - y) / np.float32(x.shape[0])  # mean cross-entropy over the batch, through softmax
        dh = dz @ w2.T
        dh *= h > 0
        grads = (x.T @ dh, dh.sum(axis=0), h.T @ dz, dz.sum(axis=0))
        for p_, v, g in zip(params, velocity, grads):
            v *= momentum  # v = momentum v + g; p -= lr v (tfjs' and ours' momentum SGD)
            v += g
            p_ -= lr * v

    def epoch(params, velocity, max_batches):
        order = rng.permutation(train_x.shape[0])
        batches = 0
        for start in range(0, order.size, batch):
            if max_batches and batches >= max_batches:
                break
            idx = order[start : start + batch]
            step(params, velocity, train_x[idx], train_y[idx])
            batches += 1
        return min(order.size, batches * batch)

    warm, warm_v = init()
    epoch(warm, warm_v, 100)  # warm-up: BLAS thread start-up, allocator, caches
    params, velocity = init()
    t0 = time.perf_counter()
    samples = epoch(params, velocity, a.max_batches)
    seconds = time.perf_counter() - t0
    w1, b1, w2, b2 = params
    predicted = (np.maximum(test_x @ w1 + b1, 0) @ w2 + b2).argmax(axis=1)
    print(json.dumps({
        "numpy": np.__version__, "python": sys.version.split()[0], "blas": blas, "threads": a.threads,
        "samples": samples, "seconds": seconds, "samples_per_second": samples / seconds,
        "accuracy": float((predicted == test_labels).mean()),
    }))


if __name__ == "__main__":
    main()
