"""examples/residual_mlp.py with its default seed and fewer epochs reaches 0.95 test accuracy on ten digits."""
from example_loader import load_example


def test_residual_mlp_reaches_095(tmp_path, capsys):
    module = load_example("residual_mlp")
    accuracy = module.main(["--epochs", "8", "--quiet", "--out", str(tmp_path)])
    assert accuracy >= 0.95
    assert (tmp_path / "residual_mlp_curves.png").stat().st_size > 10_000
    out = capsys.readouterr().out
    assert "2.f.0 Linear" in out and "inner ReLU saw inputs of shape (5, 64)" in out
    assert f"test accuracy: {accuracy:.4f}" in out


def test_the_example_net_is_residual_and_ends_in_ten_logits():
    net = load_example("residual_mlp").build_net(0)
    assert sum(isinstance(layer, load_example("residual_mlp").lk.Residual) for layer in net) == 2
    assert net.predict(load_example("residual_mlp").load_data(0)[1][:3]).shape == (3, 10)
