"""``Identity``: ``y = x``."""
from layerkit._backend import core
from layerkit.layers._elementwise import KernelActivation


class Identity(KernelActivation):
    """The identity ``y = x`` (``torch.nn.Identity``); the backward passes ``dy`` through.

    Useful as a placeholder in a spec (``hidden_layers`` of the estimators,
    scikit-learn's ``activation="identity"``). It stays on the fused path: in
    a ``DenseChain`` it is one copy of the stage's output, and the output is a
    new array, never the input itself.
    """

    _act_code = core.ACT_IDENTITY
