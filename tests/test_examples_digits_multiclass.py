"""examples/digits_multiclass.py with its default seed and fewer epochs reaches 0.95 test accuracy."""
from example_loader import load_example


def test_digits_multiclass_reaches_095(tmp_path, capsys):
    accuracy = load_example("digits_multiclass").main(["--epochs", "10", "--quiet", "--out", str(tmp_path)])
    assert accuracy >= 0.95
    assert (tmp_path / "digits_confusion.png").stat().st_size > 10_000
    assert (tmp_path / "digits_multiclass_curves.png").exists()
    out = capsys.readouterr().out
    assert "confusion matrix" in out and f"test accuracy: {accuracy:.4f}" in out
