"""examples/deep_sigmoid_diagnostics.py: the sigmoid net's gradient vanishes, the ReLU/He net's does not."""
from example_loader import load_example


def test_gradients_vanish_only_in_the_sigmoid_net(tmp_path):
    # figures are left out: drawing the log-scale panels costs more than the training
    results = load_example("deep_sigmoid_diagnostics").main(["--epochs", "2", "--no-plot", "--out", str(tmp_path)])
    assert results["sigmoid"]["first_over_last"] < 1e-3
    assert results["relu"]["first_over_last"] > 0.1
    assert results["relu"]["test_accuracy"] > results["sigmoid"]["test_accuracy"] + 0.3
    assert not list(tmp_path.iterdir())
