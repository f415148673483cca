"""What the tests of the batch normalisation layers share: one pass through a torch module, and through ours."""
import numpy as np


def torch_pass(module, x, dy):
    """``(y, dx, dweight, dbias)`` of one forward and backward pass of a torch normalisation module."""
    import torch

    xt = torch.tensor(x, requires_grad=True)
    y = module(xt)
    y.backward(torch.tensor(dy))
    return (y.detach().numpy(), xt.grad.numpy(), module.weight.grad.numpy().copy(),
            module.bias.grad.numpy().copy())


def our_pass(layer, x, dy, training):
    """``(y, dx, dgamma, dbeta)`` of one ``forward_pass``/``backward_pass`` of a layerkit normalisation layer."""
    y, ctx = layer.forward_pass(x, training)
    dx = layer.backward_pass(x, ctx, dy)
    return y, dx, np.copy(layer.dgamma), np.copy(layer.dbeta)
