"""The IDX file format (MNIST's): a small header, then one big-endian array.

The header is two zero bytes, a type code, the number of dimensions ``ndim``,
then ``ndim`` big-endian unsigned 32-bit sizes; the array's bytes follow in C
order. See http://yann.lecun.com/exdb/mnist/ (section "file formats").
"""
from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

__all__ = ["read_idx", "IDXFormatError"]

#: IDX type code -> big-endian NumPy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


class IDXFormatError(ValueError):
    """A file is not a valid IDX file (wrong magic, unknown type code, truncated, trailing bytes)."""


def _read_bytes(path: str | os.PathLike) -> bytes:
    """The file's bytes, decompressed when it starts with the gzip magic (whatever its name)."""
    with open(path, "rb") as handle:
        data = handle.read()
    if data[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as error:
            raise IDXFormatError(f"{os.fspath(path)}: corrupt or truncated gzip data: {error}") from error
    return data


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, plain or gzipped, into an array.

    Parameters
    ----------
    path : str or os.PathLike
        The file, e.g. ``train-images-idx3-ubyte`` or ``train-images-idx3-ubyte.gz``
        (gzip is recognised by its magic bytes, not by the name).

    Returns
    -------
    numpy.ndarray
        The array, of the shape the header gives (``(60000, 28, 28)`` for MNIST's training
        images, ``(60000,)`` for its labels) and the type its code gives (``uint8`` for MNIST),
        in native byte order.

    Raises
    ------
    IDXFormatError
        The file does not start with the IDX magic (two zero bytes), has an unknown type code,
        is shorter than its header says (truncated) or has bytes after the array.
    FileNotFoundError
        The file does not exist.
    """
    name = os.fspath(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise IDXFormatError(f"{name}: truncated IDX file: {len(data)} bytes, the header alone needs at least 4")
    if data[0] != 0 or data[1] != 0:
        raise IDXFormatError(
            f"{name}: not an IDX file: expected the magic bytes 00 00 at the start, found {data[:2].hex(' ')}"
        )
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X} ({d.name})" for c, d in IDX_DTYPES.items())
        raise IDXFormatError(f"{name}: unknown IDX type code 0x{code:02X}; expected one of {known}")
    if ndim == 0:
        raise IDXFormatError(f"{name}: IDX header declares 0 dimensions; expected at least 1")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXFormatError(
            f"{name}: truncated IDX file: the header of {ndim} dimensions needs {header} bytes, found {len(data)}"
        )
    shape = tuple(int(size) for size in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(data) - header
    if found < expected:
        raise IDXFormatError(
            f"{name}: truncated IDX file: shape {shape} of {dtype.name} needs {expected} bytes of data, "
            f"found {found}"
        )
    if found > expected:
        raise IDXFormatError(
            f"{name}: {found - expected} unexpected bytes after the array of shape {shape} of {dtype.name} "
            f"({expected} bytes of data expected)"
        )
    array = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # native order, and a writable copy
