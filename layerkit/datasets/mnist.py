"""MNIST (or Fashion-MNIST) from the four standard IDX files in a folder."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from layerkit.datasets.idx import IDXFormatError, read_idx

__all__ = ["load_mnist", "MNIST_FILES", "MNIST_SOURCES"]

#: The four files, by role, as their distributors name them (``.gz`` optional).
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

#: Where to get the files (what the error message for a missing file says).
MNIST_SOURCES = (
    "MNIST: https://ossci-datasets.s3.amazonaws.com/mnist/ (the mirror torchvision uses; "
    "torchvision.datasets.MNIST(root, download=True) leaves them in root/MNIST/raw/)",
    "Fashion-MNIST: http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/ "
    "(or keras.datasets.fashion_mnist.load_data(), which leaves them in ~/.keras/datasets/fashion-mnist/)",
)


def _find(directory: Path, stem: str) -> Path | None:
    """``stem``, ``stem.gz`` or the ``.idx`` spelling (``train-images.idx3-ubyte``) in ``directory``."""
    dotted = stem.replace("-idx", ".idx")
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def load_mnist(directory: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read MNIST's four IDX files (plain or gzipped) from one folder.

    Parameters
    ----------
    directory : str or os.PathLike
        The folder with ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each may end in ``.gz``).
        Fashion-MNIST's files have the same names and work the same way.

    Returns
    -------
    x_train : numpy.ndarray of shape (n_train, rows, cols), uint8
    y_train : numpy.ndarray of shape (n_train,), uint8
    x_test : numpy.ndarray of shape (n_test, rows, cols), uint8
    y_test : numpy.ndarray of shape (n_test,), uint8

    Raises
    ------
    FileNotFoundError
        A file is missing; the message names the files and where to download them.
    IDXFormatError
        A file is not valid IDX, or images and labels do not match in number.
    """
    folder = Path(directory)
    paths = {role: _find(folder, stem) for role, stem in MNIST_FILES.items()}
    missing = [MNIST_FILES[role] for role, path in paths.items() if path is None]
    if missing:
        raise FileNotFoundError(
            f"MNIST files missing in {folder}: {', '.join(missing)} (plain or .gz). Download the four files "
            "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
            "t10k-labels-idx1-ubyte.gz from\n  " + "\n  ".join(MNIST_SOURCES)
        )
    arrays = {role: read_idx(path) for role, path in paths.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise IDXFormatError(
                f"{folder}: {split} images of shape {images.shape} and labels of shape {labels.shape} do not "
                "match: expected (n, rows, cols) images and (n,) labels"
            )
    return arrays["train_images"], arrays["train_labels"], arrays["test_images"], arrays["test_labels"]
