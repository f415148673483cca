"""Every schedule and optimizer argument error names the class, the argument and the value received."""
import pytest

import layerkit as lk


@pytest.mark.parametrize("build, message", [
    (lambda: lk.optim.StepDecay(0.1, 0.5, 2), "StepDecay: step_size: expected an integer, got float 0.5"),
    (lambda: lk.optim.StepDecay(0.1, 2, 2), r"StepDecay: gamma: expected a number <= 1.0, got 2.0"),
    (lambda: lk.optim.StepDecay("0.1", 2), "StepDecay: lr: expected a real number, got str '0.1'"),
    (lambda: lk.optim.CosineDecay(0.1, 10.0), "CosineDecay: total_steps: expected an integer, got float 10.0"),
    (lambda: lk.optim.CosineDecay(0.1, True), "CosineDecay: total_steps: expected an integer, got bool True"),
    (lambda: lk.optim.ExponentialDecay(0.1, [0.9]), r"ExponentialDecay: decay: expected a real number, got list \[0.9\]"),
    (lambda: lk.optim.SGD("fast"), "SGD: lr: expected a learning rate .* got str 'fast'"),
    (lambda: lk.optim.SGD(0.1, nesterov=1), "SGD: nesterov must be a bool, got int 1"),
    (lambda: lk.optim.SGD(0.1, weight_decay="0"), "SGD: weight_decay: expected a real number, got str '0'"),
    (lambda: lk.optim.Adam(amsgrad="yes"), "Adam: amsgrad must be a bool, got str 'yes'"),
    (lambda: lk.optim.Adam(eps="1e-8"), "Adam: eps: expected a real number, got str '1e-8'"),
    (lambda: lk.optim.RMSprop(centered=0), "RMSprop: centered must be a bool, got int 0"),
    (lambda: lk.optim.AdaGrad(lr_decay=None), "AdaGrad: lr_decay: expected a real number, got NoneType None"),
])
def test_message_names_the_argument_and_the_value(build, message):
    with pytest.raises((TypeError, ValueError), match=message):
        build()
