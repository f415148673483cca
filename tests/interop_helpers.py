"""What the tests of layerkit.interop share: training a mixed net by hand."""
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
