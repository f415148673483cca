"""Write small IDX files for the dataset and MNIST example tests."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

CODES = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype("i2"): 0x0B, np.dtype("i4"): 0x0C,
         np.dtype("f4"): 0x0D, np.dtype("f8"): 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of ``array``: header, then the big-endian data."""
    array = np.asarray(array)
    header = bytes([0, 0, CODES[array.dtype.newbyteorder("=")], array.ndim])
    return header + np.array(array.shape, dtype=">u4").tobytes() + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, *, gz: bool = False) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_mnist(folder: Path, n_train: int, n_test: int, *, gz: bool = True, seed: int = 0) -> None:
    """Four MNIST-shaped files of 28x28 images: the label is readable from the image (a bright row)."""
    rng = np.random.default_rng(seed)
    suffix = ".gz" if gz else ""
    for stem, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        images = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
        images[np.arange(n), 2 * labels + 4, :] = 255  # the class is the row that is lit
        write_idx(folder / f"{stem}-images-idx3-ubyte{suffix}", images, gz=gz)
        write_idx(folder / f"{stem}-labels-idx1-ubyte{suffix}", labels, gz=gz)
