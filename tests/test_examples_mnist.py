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
def test_without_the_files_it_says_where_to_get_them_and_exits_non_zero(tmp_path, capsys, with_folder):
    example = load_example("mnist")
    with pytest.raises(SystemExit) as exit_info:
        example.main(["--data", str(tmp_path)] if with_folder else [])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte" in err
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/" in err
