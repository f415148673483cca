"""examples/mnist.py on tiny generated IDX files, and without files."""
import pytest

from example_loader import load_example
from idx_files import write_mnist


def test_trains_on_idx_files_and_reports_accuracy_and_time(tmp_path, capsys):
    write_mnist(tmp_path, 300, 100, gz=True)
    example = load_example("mnist")
    result = example.main(["--data", str(tmp_path), "--epochs", "3", "--out", str(tmp_path / "curves.png")])
    out = capsys.readouterr().out
    assert "300 training and 100 test images of 784 pixels" in out
    assert f"test accuracy: {result['accuracy']:.4f}" in out
    assert result["accuracy"] > 0.9  # the lit row gives the class away: a working net finds it
    assert "time per epoch: " in out and result["seconds_per_epoch"] > 0
    assert (tmp_path / "curves.png").stat().st_size > 10_000


def test_limit_uses_the_first_images(tmp_path, capsys):
    write_mnist(tmp_path, 50, 20, gz=False)
    load_example("mnist").main(["--data", str(tmp_path), "--epochs", "1", "--limit", "30", "--no-plot"])
    assert "30 training and 20 test images" in capsys.readouterr().out


@pytest.mark.parametrize("with_folder", [False, True])
def test_without_the_files_it_says_where_to_get_them_and_trains_on_the_upscaled_digits(tmp_path, capsys,
                                                                                      with_folder):
    example = load_example("mnist")
    result = example.main((["--data", str(tmp_path)] if with_folder else [])
                          + ["--epochs", "3", "--limit", "600", "--no-plot"])
    captured = capsys.readouterr()
    assert "train-images-idx3-ubyte" in captured.err
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/" in captured.err
    assert "stand-in: scikit-learn's 8x8 digits upscaled to 28x28" in captured.err
    assert "600 training and 450 test images of 784 pixels" in captured.out
    assert result["accuracy"] > 0.8


def test_lenet_trains_on_idx_files(tmp_path, capsys):
    write_mnist(tmp_path, 300, 100, gz=True)
    result = load_example("mnist").main(["--data", str(tmp_path), "--model", "lenet", "--epochs", "3",
                                         "--out", str(tmp_path / "lenet.png")])
    out = capsys.readouterr().out
    assert f"test accuracy: {result['accuracy']:.4f}" in out
    assert result["accuracy"] > 0.8  # 10 classes: a broken net stays near 0.1
    assert (tmp_path / "lenet.png").stat().st_size > 10_000


def test_stand_in_images_are_the_upscaled_digits():
    x_train, y_train, x_test, y_test = load_example("mnist").stand_in(0)
    assert x_train.shape == (1347, 28, 28) and x_test.shape == (450, 28, 28) and x_train.dtype == "uint8"
    assert x_train.max() > 200 and set(y_train) == set(range(10))
