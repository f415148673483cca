"""Readers for data sets in their standard file formats.

``read_idx`` reads one IDX file (the format of MNIST and Fashion-MNIST, plain
or gzipped); ``load_mnist`` finds and reads the four MNIST files of a folder.
"""
from layerkit.datasets.idx import IDXFormatError, read_idx
from layerkit.datasets.mnist import MNIST_FILES, MNIST_SOURCES, load_mnist

__all__ = ["read_idx", "IDXFormatError", "load_mnist", "MNIST_FILES", "MNIST_SOURCES"]
