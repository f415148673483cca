"""examples/iris_softmax.py with its default settings: every optimizer reaches 0.93 test accuracy."""
from example_loader import load_example


def test_iris_softmax_reaches_093_with_each_optimizer(tmp_path, capsys):
    accuracies = load_example("iris_softmax").main(["--out", str(tmp_path / "iris.png")])
    assert len(accuracies) == 3
    assert min(accuracies.values()) >= 0.93, accuracies
    assert (tmp_path / "iris.png").stat().st_size > 10_000
    assert "test accuracy" in capsys.readouterr().out
