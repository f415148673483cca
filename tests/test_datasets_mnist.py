"""layerkit.datasets.mnist: the four files of a folder, by their distributors' names."""
import numpy as np
import pytest

from idx_files import write_idx, write_mnist
from layerkit.datasets import IDXFormatError, load_mnist


@pytest.mark.parametrize("gz", [False, True])
def test_loads_the_four_files(tmp_path, gz):
    write_mnist(tmp_path, 12, 5, gz=gz)
    x_train, y_train, x_test, y_test = load_mnist(tmp_path)
    assert x_train.shape == (12, 28, 28) and y_train.shape == (12,)
    assert x_test.shape == (5, 28, 28) and y_test.shape == (5,)
    assert x_train.dtype == np.uint8 and y_test.dtype == np.uint8
    np.testing.assert_array_equal(x_train[np.arange(12), 2 * y_train.astype(int) + 4, 0], 255)


def test_dotted_names_are_found(tmp_path):
    write_mnist(tmp_path, 3, 2, gz=False)
    for path in tmp_path.iterdir():
        path.rename(tmp_path / path.name.replace("-idx", ".idx"))  # train-images.idx3-ubyte
    assert load_mnist(tmp_path)[0].shape == (3, 28, 28)


def test_missing_files_are_named_with_where_to_get_them(tmp_path):
    write_mnist(tmp_path, 3, 2)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"MNIST files missing in .*: t10k-labels-idx1-ubyte \(plain or .gz\)"
                                                r"(.|\n)*ossci-datasets.s3.amazonaws.com/mnist"):
        load_mnist(tmp_path)


def test_images_and_labels_must_match(tmp_path):
    write_mnist(tmp_path, 4, 2)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(3, dtype=np.uint8), gz=True)
    with pytest.raises(IDXFormatError, match=r"train images of shape \(4, 28, 28\) and labels of shape \(3,\) do not "
                                             r"match"):
        load_mnist(tmp_path)
