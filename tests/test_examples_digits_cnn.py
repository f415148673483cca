"""examples/digits_cnn.py beats the dense net of examples/digits_multiclass.py on the same split, and draws its figure."""
from example_loader import load_example


def test_digits_cnn_beats_the_dense_net_on_the_same_split(tmp_path, capsys):
    dense = load_example("digits_multiclass").main(["--epochs", "10", "--quiet", "--no-plot"])
    accuracy = load_example("digits_cnn").main(["--epochs", "10", "--out", str(tmp_path)])
    assert accuracy > dense
    assert accuracy >= 0.97
    assert (tmp_path / "digits_cnn.png").stat().st_size > 10_000
    out = capsys.readouterr().out
    assert "Conv2d(1, 16, 3, padding=1" in out and f"test accuracy: {accuracy:.4f}" in out
