"""The compiled fast path of a ``Net`` made of built-in layers.

When a net is a sequence of built-in layers (``Linear`` and the built-in
activations, starting with a ``Linear``, all ``Linear`` of one dtype), each
``Linear`` and the activation that follows it become one stage of a
``_core.DenseChain``: one kernel call runs the whole forward pass (matrix
product, bias and activation per stage) and one the whole backward pass
(activation gradient, ``dW``, ``db``, ``dx`` per stage, the input's ``dx``
skipped when not needed), with the GIL released throughout. The SGD update is
one call of in-place axpys.

The plan computes exactly what the layers compute (the same kernels, in the
same order), keeps no per-call state, and writes the trace the layers would
have written. Whatever it cannot take as it is (an input of another dtype or
layout, a parameter replaced by a list) goes through the same checks and
conversions as the layers, with the same messages; the net falls back to
calling its layers one by one when the plan does not apply.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from layerkit._backend import core
from layerkit._fusable import chain_activation, is_dense
from layerkit._validation import check_batch, check_grad_output


class Plan:
    """A net's layers compiled into one ``DenseChain`` (see the module docstring)."""

    def __init__(self, layers: list, trace_type: type, entry_type: type) -> None:
        self.layers = list(layers)
        self.linears = [layer for layer in layers if is_dense(layer)]
        self.dtype = self.linears[0].dtype
        holders, acts, params, widths = [], [], [], [self.linears[0].n_in]
        for layer in layers:
            if is_dense(layer):
                holders.append(layer)
                acts.append(core.ACT_NONE)
                params.append((0.0, 0.0))
                widths.append(layer.n_out)
                continue
            code, values = chain_activation(layer)
            if acts[-1] == core.ACT_NONE and holders[-1] is not None:
                acts[-1], params[-1] = code, values
            else:
                holders.append(None)
                acts.append(code)
                params.append(values)
                widths.append(widths[-1])
        self.chain = core.DenseChain(holders, acts, widths, self.dtype, params)
        self.n_in = widths[0]
        self.last = layers[-1]
        self.last_is_linear = is_dense(self.last)
        self._trace_type = trace_type
        self._entry = entry_type._make

    @staticmethod
    def compile(layers: Sequence[Any], trace_type: type, entry_type: type) -> "Plan | None":
        """The plan of ``layers``, or ``None`` when they are not all built-ins it can fuse."""
        if not layers or not is_dense(layers[0]):
            return None
        dtypes = set()
        for layer in layers:
            if is_dense(layer):
                dtypes.add(np.dtype(layer.dtype))
            elif chain_activation(layer) is None:
                return None
        linears = [layer for layer in layers if is_dense(layer)]
        widths_chain = all(a.n_out == b.n_in for a, b in zip(linears, linears[1:]))
        if len(dtypes) != 1 or not widths_chain:
            return None
        return Plan(list(layers), trace_type, entry_type)

    # ------------------------------------------------------------------ passes
    def forward(self, x: Any, workspace: Any) -> tuple[np.ndarray, Any] | None:
        """``(y, trace)``, or ``None`` when the net must run its layers one by one."""
        chain = self.chain
        buffers = None
        if workspace is not None:
            n = x.shape[0] if type(x) is np.ndarray and x.ndim == 2 else None
            if n is not None:
                buffers = workspace._buffers_for(chain, n)
        out = chain.forward(x, buffers)
        if out is None:
            # the first layer's own checks and conversion (same messages), then the parameters'
            x = check_batch(x, repr(self.linears[0]), n_features=self.n_in, dtype=self.dtype,
                            allow_fortran=True)
            for layer in self.linears:
                layer._params_checked()
            if workspace is not None:
                buffers = workspace._buffers_for(chain, x.shape[0])
            out = chain.forward(x, buffers)
            if out is None:
                return None
        y, saved = out
        trace = self._trace_type(map(self._entry, zip(self.layers, saved)))
        if workspace is not None:
            workspace.generation += 1
            trace._workspace = (workspace, workspace.generation)
        return y, trace

    def backward(self, trace: Any, dy: Any, input_grad: bool) -> Any:
        """The input gradient (``None`` unless ``input_grad``), or ``NotImplemented``."""
        ticket = getattr(trace, "_workspace", None)
        buffers = None
        saved = [entry[1] for entry in trace]
        n = saved[0].shape[0] if type(saved[0]) is np.ndarray and saved[0].ndim == 2 else None
        if n is None:
            return NotImplemented
        if ticket is not None:
            workspace, generation = ticket
            if workspace.generation != generation:
                raise RuntimeError(
                    "Net.backward: this trace's workspace was used by a later forward pass, which "
                    "overwrote the trace's arrays; one workspace serves one trace in flight (run the "
                    "backward before the next forward, or give each trace its own workspace)")
            buffers = workspace._buffers_for(self.chain, n)
        dx = self.chain.backward(saved, dy, buffers, input_grad)
        if dx is NotImplemented:
            # the last layer's own checks and conversion of dy (same messages), then once more
            who = repr(self.last)
            dtype = self.dtype
            shape = (n, self.last.n_out if self.last_is_linear else np.shape(saved[-1])[1])
            dy = check_grad_output(dy, who, shape, dtype, allow_fortran=self.last_is_linear)
            for layer in self.linears:
                layer._params_checked()
            dx = self.chain.backward(saved, dy, buffers, input_grad)
        return dx

    def step(self, rate: float) -> bool:
        """Plain gradient descent on every parameter; ``False`` when the layers must do it."""
        return self.chain.sgd(rate)
