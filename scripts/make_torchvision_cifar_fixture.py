#!/usr/bin/env python3
"""Writes crates/longtail-data/tests/fixtures/torchvision_cifar/: tiny CIFAR-10 and CIFAR-100 sets
(fixed seed) in both on-disk layouts, for tests/torchvision_cifar.rs.

    binary/  cifar-10-batches-bin/, cifar-100-binary/   the binary version (label bytes + planar pixels)
    py2/     cifar-10-batches-py/, cifar-100-python/     pickles as the official archives hold them:
                                                         Python 2 cPickle, protocol 2, py2 `str`
                                                         (SHORT_BINSTRING / BINSTRING) keys and data
    proto4/  the same two folders re-saved by Python 3 `pickle.dump(..., protocol=4)` (str keys)
    single/  test_batch of CIFAR-10 alone, by Python 3 at protocol 2 (`_codecs.encode` bytes), at
             protocol 5 (BYTEARRAY8 + `_frombuffer`) and at protocol 4 with a Fortran-order array

The CIFAR-100 data files are gzipped (`<name>.gz`; the test unpacks them): a CIFAR-100 train file
needs an image of each of the 100 classes for the hierarchy, so its images are 4x4 random blocks
scaled 8x (compressible); the CIFAR-10 images are fully random. Prints the numbers the test checks.

Usage: python3 scripts/make_torchvision_cifar_fixture.py   (needs numpy)
"""

import gzip
import os
import pickle
import shutil
import struct

import numpy as np

SEED = 20240611
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "longtail-data", "tests", "fixtures", "torchvision_cifar")
CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
PER_BATCH, TEST10, TEST100 = 3, 3, 5


class Global:
    """A name written as a GLOBAL opcode (module, name), as cPickle writes a function or class."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self):  # save_reduce wants a callable
        raise TypeError


RECONSTRUCT = Global("numpy.core.multiarray", "_reconstruct")
NDARRAY = Global("numpy", "ndarray")
DTYPE = Global("numpy", "dtype")


class Py2Pickler(pickle._Pickler):
    """Python 3's pure-Python pickler made to write what Python 2's cPickle wrote at protocol 2:
    `bytes` as py2 `str` (SHORT_BINSTRING / BINSTRING), memo numbered from 1, numpy arrays as
    `numpy.core.multiarray._reconstruct` + BUILD, dtypes as `numpy.dtype('u1', 0, 1)` + BUILD."""

    dispatch = pickle._Pickler.dispatch.copy()

    def __init__(self, f):
        super().__init__(f, protocol=2)

    def put(self, idx):
        return super().put(idx + 1)

    def get(self, i):
        return super().get(i + 1)

    def save_str8(self, obj):
        n = len(obj)
        self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj if n < 256 else pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    def save_name(self, obj):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    dispatch[bytes] = save_str8
    dispatch[Global] = save_name

    def reducer_override(self, obj):
        if isinstance(obj, np.ndarray):
            return RECONSTRUCT, (NDARRAY, (0,), b"b"), (1, obj.shape, obj.dtype, False, obj.tobytes())
        if isinstance(obj, np.dtype):
            return DTYPE, (obj.str[1:].encode(), 0, 1), (3, b"|", None, None, None, -1, -1, 0)
        return NotImplemented


def write(path, data, compress=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if compress:
        with gzip.GzipFile(path + ".gz", "wb", mtime=0) as f:
            f.write(data)
    else:
        with open(path, "wb") as f:
            f.write(data)


def py2(obj):
    """A py2-cPickle-style pickle: every str becomes bytes (py2 `str`), recursively."""
    import io

    def to8(o):
        if isinstance(o, str):
            return o.encode("latin1")
        if isinstance(o, dict):
            return {to8(k): to8(v) for k, v in o.items()}
        if isinstance(o, list):
            return [to8(v) for v in o]
        return o

    buf = io.BytesIO()
    Py2Pickler(buf).dump(to8(obj))
    return buf.getvalue()


def p3(obj, protocol):
    return pickle.dumps(obj, protocol=protocol)


def blocky(rng, n):
    """n images of 4x4 random colour blocks, each 8x8 pixels, as planar CHW rows."""
    blocks = rng.integers(0, 256, (n, 3, 4, 4), dtype=np.uint8)
    return np.ascontiguousarray(blocks.repeat(8, axis=2).repeat(8, axis=3)).reshape(n, 3072)


def filenames(rng, labels, names):
    return [f"{names[label]}_s_{int(rng.integers(0, 10**6)):06d}.png" for label in labels]


def torchvision_load(folder, files, label_key="labels"):
    """torchvision.datasets.CIFAR10's loading: pickle.load(encoding="latin1") per file in order,
    np.vstack of `data`, reshape (-1, 3, 32, 32), transpose to HWC; labels concatenated."""
    data, labels = [], []
    for name in files:
        path = os.path.join(folder, name)
        opener = gzip.open if os.path.exists(path + ".gz") else open
        with opener(path + ".gz" if opener is gzip.open else path, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        data.append(entry["data"])
        labels.extend(entry["labels"] if "labels" in entry else entry[label_key])
    return np.vstack(data).reshape(-1, 3, 32, 32).transpose((0, 2, 3, 1)), labels


def check_against_binary(hwc10, labels10, hwc100, fine100):
    """The pickles, read as torchvision reads them, hold what the binary files hold."""
    train10 = [f"data_batch_{b}" for b in range(1, 6)]
    for layout in ("py2", "proto4"):
        x, y = torchvision_load(f"{OUT}/{layout}/cifar-10-batches-py", train10 + ["test_batch"])
        assert (x == hwc10).all() and y == labels10, layout
        x, y = torchvision_load(f"{OUT}/{layout}/cifar-100-python", ["train", "test"], "fine_labels")
        assert (x == hwc100).all() and y == fine100, layout
    for variant in ("proto2", "proto5", "fortran4"):
        x, y = torchvision_load(f"{OUT}/single", [f"test_batch.{variant}"])
        assert (x == hwc10[5 * PER_BATCH :]).all() and y == labels10[5 * PER_BATCH :], variant
    with open(f"{OUT}/py2/cifar-10-batches-py/batches.meta", "rb") as f:
        assert pickle.load(f, encoding="latin1")["label_names"] == CIFAR10_NAMES
    with open(f"{OUT}/py2/cifar-100-python/meta", "rb") as f:
        assert pickle.load(f, encoding="latin1")["fine_label_names"][7] == "café"


def main():
    rng = np.random.default_rng(SEED)
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)

    # CIFAR-10: 5 train batches and a test batch, labels spread over the classes
    n10 = 5 * PER_BATCH + TEST10
    labels10 = rng.permutation(np.arange(n10) % 10)
    data10 = rng.integers(0, 256, (n10, 3072), dtype=np.uint8)
    batches = [(f"data_batch_{b + 1}", f"training batch {b + 1} of 5", slice(b * PER_BATCH, (b + 1) * PER_BATCH)) for b in range(5)]
    batches.append(("test_batch", "testing batch 1 of 1", slice(5 * PER_BATCH, n10)))
    meta10 = {"num_cases_per_batch": PER_BATCH, "label_names": CIFAR10_NAMES, "num_vis": 3072}
    for name, label, s in batches:
        labels, data = labels10[s], data10[s]
        record = b"".join(bytes([int(lab)]) + row.tobytes() for lab, row in zip(labels, data))
        write(f"{OUT}/binary/cifar-10-batches-bin/{name}.bin", record)
        batch = {"data": data, "labels": labels.tolist(), "batch_label": label, "filenames": filenames(rng, labels, CIFAR10_NAMES)}
        write(f"{OUT}/py2/cifar-10-batches-py/{name}", py2(batch))
        write(f"{OUT}/proto4/cifar-10-batches-py/{name}", p3(batch, 4))
        if name == "test_batch":
            write(f"{OUT}/single/test_batch.proto2", p3(batch, 2))
            write(f"{OUT}/single/test_batch.proto5", p3(batch, 5))
            write(f"{OUT}/single/test_batch.fortran4", p3(dict(batch, data=np.asfortranarray(data)), 4))
    write(f"{OUT}/binary/cifar-10-batches-bin/batches.meta.txt", ("\n".join(CIFAR10_NAMES) + "\n\n").encode())
    write(f"{OUT}/py2/cifar-10-batches-py/batches.meta", py2(meta10))
    write(f"{OUT}/proto4/cifar-10-batches-py/batches.meta", p3(meta10, 4))

    # CIFAR-100: every fine class once in train (the hierarchy needs them all), 5 fine per coarse
    fine_names = [f"fine_{i:02d}" for i in range(100)]
    fine_names[7] = "café"  # latin-1 in the py2 pickle, UTF-8 in the binary's text file
    coarse_names = [f"coarse_{i:02d}" for i in range(20)]
    coarse_of = rng.permutation(np.repeat(np.arange(20), 5))
    splits100 = {"train": rng.permutation(100), "test": rng.choice(100, TEST100, replace=False)}
    data100 = {}
    for split, fine in splits100.items():
        data = blocky(rng, len(fine))
        data100[split] = data
        coarse = coarse_of[fine]
        record = b"".join(bytes([int(c), int(f)]) + row.tobytes() for c, f, row in zip(coarse, fine, data))
        write(f"{OUT}/binary/cifar-100-binary/{split}.bin", record, compress=True)
        batch = {
            "filenames": filenames(rng, fine, fine_names),
            "batch_label": f"{split}ing batch 1 of 1",
            "fine_labels": fine.tolist(),
            "coarse_labels": coarse.tolist(),
            "data": data,
        }
        write(f"{OUT}/py2/cifar-100-python/{split}", py2(batch), compress=True)
        write(f"{OUT}/proto4/cifar-100-python/{split}", p3(batch, 4), compress=True)
    write(f"{OUT}/binary/cifar-100-binary/fine_label_names.txt", ("\n".join(fine_names) + "\n").encode())
    write(f"{OUT}/binary/cifar-100-binary/coarse_label_names.txt", ("\n".join(coarse_names) + "\n").encode())
    meta100 = {"fine_label_names": fine_names, "coarse_label_names": coarse_names}
    write(f"{OUT}/py2/cifar-100-python/meta", py2(meta100))
    write(f"{OUT}/proto4/cifar-100-python/meta", p3(meta100, 4))

    # the numbers the test checks, as torchvision computes them (file order, CHW rows -> HWC)
    hwc10 = data10.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    train10, test10 = hwc10[: 5 * PER_BATCH], hwc10[5 * PER_BATCH :]
    print("cifar10 train labels:", labels10[: 5 * PER_BATCH].tolist())
    print("cifar10 test labels:", labels10[5 * PER_BATCH :].tolist())
    print("cifar10 train[4] (y=5, x=7):", train10[4, 5, 7].tolist())
    print("cifar10 train[14] (y=31, x=31):", train10[14, 31, 31].tolist())
    print("cifar10 test[2] (y=0, x=1):", test10[2, 0, 1].tolist())
    hwc100 = data100["train"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    print("cifar100 train fine[:8]:", splits100["train"][:8].tolist())
    print("cifar100 train coarse[:8]:", coarse_of[splits100["train"][:8]].tolist())
    print("cifar100 test fine:", splits100["test"].tolist())
    print("cifar100 parent of fine 0, 7, 99:", [int(coarse_of[f]) for f in (0, 7, 99)])
    print("cifar100 train[50] (y=9, x=30):", hwc100[50, 9, 30].tolist())
    all100 = np.concatenate([data100["train"], data100["test"]]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    fine100 = splits100["train"].tolist() + splits100["test"].tolist()
    check_against_binary(hwc10, labels10.tolist(), all100, fine100)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {OUT}: {total} bytes")


if __name__ == "__main__":
    main()
