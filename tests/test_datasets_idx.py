"""layerkit.datasets.idx: IDX files, plain and gzipped, and every way one can be broken."""
import gzip

import numpy as np
import pytest

from idx_files import idx_bytes, write_idx
from layerkit.datasets import IDXFormatError, read_idx


@pytest.mark.parametrize("dtype", ["u1", "i1", "i2", "i4", "f4", "f8"])
@pytest.mark.parametrize("gz", [False, True])
def test_round_trip_of_every_type_plain_and_gzipped(tmp_path, dtype, gz):
    rng = np.random.default_rng(0)
    array = (rng.normal(size=(3, 4, 5)) * 50).astype(dtype)
    read = read_idx(write_idx(tmp_path / "a", array, gz=gz))
    assert read.dtype == np.dtype(dtype) and read.dtype.isnative
    assert read.shape == (3, 4, 5)
    np.testing.assert_array_equal(read, array)
    assert read.flags.writeable and read.flags.c_contiguous


def test_big_endian_values_are_decoded(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0x01, 0x02, 0xFF, 0xFE]))  # int16 258 and -2
    np.testing.assert_array_equal(read_idx(path), np.array([258, -2], dtype=np.int16))


def test_gzip_is_recognised_by_content_not_name(tmp_path):
    path = tmp_path / "images-without-gz-suffix"
    path.write_bytes(gzip.compress(idx_bytes(np.arange(6, dtype=np.uint8).reshape(2, 3))))
    np.testing.assert_array_equal(read_idx(path), np.arange(6).reshape(2, 3))


def test_wrong_magic(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    with pytest.raises(IDXFormatError, match=r"x.png: not an IDX file: expected the magic bytes 00 00 .* found 89 50"):
        read_idx(path)


def test_unknown_type_code(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(bytes([0, 0, 0x0A, 1, 0, 0, 0, 1, 7]))
    with pytest.raises(IDXFormatError, match=r"unknown IDX type code 0x0A; expected one of 0x08 \(uint8\)"):
        read_idx(path)


def test_zero_dimensions(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(bytes([0, 0, 0x08, 0]))
    with pytest.raises(IDXFormatError, match="declares 0 dimensions"):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_data(tmp_path, gz):
    data = idx_bytes(np.zeros((4, 28, 28), dtype=np.uint8))[:-10]
    path = tmp_path / "images"
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(IDXFormatError, match=r"truncated IDX file: shape \(4, 28, 28\) of uint8 needs 3136 bytes "
                                             r"of data, found 3126"):
        read_idx(path)


@pytest.mark.parametrize("size", [0, 3, 9])
def test_truncated_header(tmp_path, size):
    path = tmp_path / "short"
    path.write_bytes(idx_bytes(np.zeros((2, 2, 2), dtype=np.uint8))[:size])
    with pytest.raises(IDXFormatError, match="truncated IDX file"):
        read_idx(path)


def test_truncated_gzip_stream(tmp_path):
    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32)))[:-12])
    with pytest.raises(IDXFormatError, match="images.gz: corrupt or truncated gzip data"):
        read_idx(path)


def test_trailing_bytes(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(np.arange(5, dtype=np.uint8)) + b"\x00\x01")
    with pytest.raises(IDXFormatError, match=r"2 unexpected bytes after the array of shape \(5,\) of uint8"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")


def test_format_error_is_a_value_error():
    assert issubclass(IDXFormatError, ValueError)
