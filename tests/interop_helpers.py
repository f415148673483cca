"""What the tests of layerkit.interop share: training a mixed net by hand, a Python without a framework."""
import subprocess
import sys

import layerkit as lk


def train_with_steps(net, x, t, update, steps=60):
    """``steps`` full-batch steps of mean squared error with ``update`` (a rate or an optimizer); the losses."""
    losses = []
    for _ in range(steps):
        y, trace = net.forward(x)
        loss, dy = lk.mean_squared_error(y, t)
        net.backward(trace, dy, input_grad=False)
        net.step(update)
        losses.append(loss)
    return losses


def import_error_without(framework, name):
    """The ImportError message of ``from layerkit.interop import <name>`` in a Python where ``framework`` is missing."""
    code = (f"import sys; sys.modules[{framework!r}] = None\n"
            f"try:\n    from layerkit.interop import {name}\n"
            "except ImportError as e:\n    print(e)\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
