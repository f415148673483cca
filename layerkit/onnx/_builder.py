"""``Builder``: what a layer's ``to_onnx(builder, input_name)`` hook writes its ONNX nodes into."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from onnx import NodeProto, TensorProto, ValueInfoProto, helper, numpy_helper, shape_inference


class Builder:
    """Collects the nodes and initializers of one exported graph.

    A layer exports itself by adding nodes that read ``input_name`` (a tensor
    of shape ``(batch, n_in)`` and dtype ``builder.dtype``) and returning the
    name of its output tensor (shape ``(batch, n_out)``, same dtype)::

        def to_onnx(self, builder, input_name):
            beta = builder.add_initializer(self.beta, "beta")
            z = builder.add_node("Mul", [input_name, beta])
            return builder.add_node("Mul", [input_name, builder.add_node("Sigmoid", [z])])

    Every name is made unique, so hooks never clash with one another.

    Parameters
    ----------
    dtype : float32 or float64
        The dtype of every tensor between layers.
    opset : int
        The version of the default ONNX domain (``""``) the graph targets;
        a hook may choose its ops by it.
    unique : callable, optional
        ``unique(hint) -> str`` making graph-wide unique names (skl2onnx's
        scope provides it); by default the builder numbers its own.

    Attributes
    ----------
    dtype : numpy.dtype
    opset : int
    elem_type : int
        ``onnx.TensorProto.FLOAT`` or ``DOUBLE``, for ``Cast`` nodes and value infos.
    nodes : list of onnx.NodeProto
    initializers : list of onnx.TensorProto
    batches_2d : bool
        Every tensor is a 2-D batch (the graph's input is ``(batch, n_in)``
        floats), so ``Gemm`` applies; ``False`` for inputs of other ranks or
        integer indices, where a dense layer exports as ``MatMul`` + ``Add``.
    inputs : list of onnx.ValueInfoProto
        The graph's inputs, when known, for ``rank``.
    """

    def __init__(self, dtype: Any, opset: int, *, unique: Callable[[str], str] | None = None,
                 reserved: Sequence[str] = ()) -> None:
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"Builder: dtype must be float32 or float64, got {self.dtype}")
        self.opset = int(opset)
        self.elem_type = helper.np_dtype_to_tensor_dtype(self.dtype)
        self.nodes: list[NodeProto] = []
        self.initializers: list[TensorProto] = []
        self._unique = unique
        self._taken: set[str] = set(reserved)
        self._counts: dict[str, int] = {}
        self._scalars: dict[tuple[str, float], str] = {}
        self.batches_2d = True
        self.inputs: list[ValueInfoProto] = []

    # ------------------------------------------------------------------ names
    def unique_name(self, hint: str) -> str:
        """A tensor or node name no other part of the graph uses, built from ``hint``."""
        hint = hint or "t"
        if self._unique is not None:
            name = self._unique(hint)
            self._taken.add(name)
            return name
        while True:
            count = self._counts.get(hint, 0)
            self._counts[hint] = count + 1
            name = f"{hint}_{count}"
            if name not in self._taken:
                self._taken.add(name)
                return name

    # ------------------------------------------------------------------ tensors
    def add_initializer(self, value: Any, hint: str = "const", *, dtype: Any = None) -> str:
        """Store a constant array in the graph; return its name.

        Parameters
        ----------
        value : array_like
            Any shape. Converted to ``dtype``.
        hint : str
            Readable part of the name (``"W"``, ``"gamma"``).
        dtype : numpy dtype, optional
            ``builder.dtype`` by default; ``np.int64`` for shapes and axes.

        Returns
        -------
        name : str
        """
        array = np.array(value, dtype=self.dtype if dtype is None else dtype, order="C", copy=True)
        if array.dtype.byteorder == ">":  # ONNX stores little-endian raw data
            array = array.astype(array.dtype.newbyteorder("<"))
        name = self.unique_name(hint)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def scalar(self, value: float) -> str:
        """A shape-``()`` constant of ``builder.dtype`` (shared by every node that uses the same value)."""
        key = (self.dtype.name, float(value))
        if key not in self._scalars:
            self._scalars[key] = self.add_initializer(value, "c")
        return self._scalars[key]

    def rank(self, name: str) -> int | None:
        """The number of axes of tensor ``name``, by ONNX shape inference of the graph so far from
        ``inputs``; ``None`` when it cannot tell (unknown inputs, or a rank that depends on the data)."""
        if not self.inputs:
            return None
        graph = helper.make_graph(self.nodes, "partial", self.inputs, [], self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        try:
            inferred = shape_inference.infer_shapes(model).graph
        except Exception:  # noqa: BLE001 - a hook's node inference rejects: the rank is unknown
            return None
        for info in list(inferred.input) + list(inferred.value_info):
            if info.name == name and info.type.tensor_type.HasField("shape"):
                return len(info.type.tensor_type.shape.dim)
        return None

    # ------------------------------------------------------------------ nodes
    def add_node(self, op_type: str, inputs: Sequence[str], *, hint: str | None = None,
                 outputs: int | Sequence[str] = 1, domain: str = "", **attributes: Any) -> Any:
        """Append one node; return the name of its output (a tuple of names for several outputs).

        Parameters
        ----------
        op_type : str
            An ONNX operator (``"Gemm"``, ``"Sigmoid"``) of ``domain``.
        inputs : sequence of str
            Names of existing tensors (``""`` for an omitted optional input).
        hint : str, optional
            Readable part of the output names (the op type by default).
        outputs : int or sequence of str
            How many outputs to name, or their exact names.
        domain : str
            ``""`` is the default ONNX domain, at version ``builder.opset``.
        **attributes
            The node's attributes (``axis=-1``, ``alpha=0.1``).

        Returns
        -------
        str or tuple of str
        """
        if isinstance(outputs, int):
            names = [self.unique_name(hint or op_type.lower()) for _ in range(outputs)]
        else:
            names = list(outputs)
            self._taken.update(names)
        node = helper.make_node(op_type, list(inputs), names, name=self.unique_name(f"{op_type}_node"),
                                domain=domain or None, **attributes)
        self.nodes.append(node)
        return names[0] if len(names) == 1 else tuple(names)

    def reduce_mean(self, input_name: str, axes: Sequence[int] = (-1,), *, keepdims: bool = True) -> str:
        """``ReduceMean`` over ``axes``, written for the target opset (axes became an input at 18)."""
        if self.opset >= 18:
            axes_name = self.add_initializer(list(axes), "axes", dtype=np.int64)
            return self.add_node("ReduceMean", [input_name, axes_name], keepdims=int(keepdims))
        return self.add_node("ReduceMean", [input_name], axes=list(axes), keepdims=int(keepdims))

    def polynomial(self, input_name: str, coefficients: Sequence[float], *, monic: bool = False) -> str:
        """Horner's rule: ``c[0] * x**n + ... + c[n]`` (with a leading ``x**(n+1)`` when ``monic``)."""
        coefficients = list(coefficients)
        if monic:
            acc = self.add_node("Add", [input_name, self.scalar(coefficients[0])])
            rest = coefficients[1:]
        else:
            acc = self.scalar(coefficients[0])
            rest = coefficients[1:]
        for c in rest:
            acc = self.add_node("Add", [self.add_node("Mul", [acc, input_name]), self.scalar(c)])
        return acc

    # ------------------------------------------------------------------ precise functions
    # onnxruntime's Sigmoid loses the relative precision of tiny outputs, and
    # it has no float64 kernel for Softplus, Elu or Erf: these compose them
    # from ops that have both kernels, at full precision.
    def sigmoid(self, input_name: str) -> str:
        """``1 / (1 + exp(-x))`` without overflow and at full relative precision (the built-in ``Sigmoid``'s formula)."""
        from layerkit.onnx import _functions

        return _functions.sigmoid(self, input_name)

    def softplus(self, input_name: str, *, beta: float = 1.0, threshold: float | None = None) -> str:
        """``log1p(exp(beta x)) / beta`` (and ``x`` where ``beta x > threshold`` when given, as PyTorch)."""
        from layerkit.onnx import _functions

        return _functions.softplus(self, input_name, beta=float(beta),
                                   threshold=None if threshold is None else float(threshold))

    def expm1(self, input_name: str) -> str:
        """``exp(x) - 1`` at full relative precision near 0, for ``x <= 0`` (NaN above ~709)."""
        from layerkit.onnx import _functions

        return _functions.expm1(self, input_name)

    def log1p(self, input_name: str) -> str:
        """``log(1 + u)`` at full relative precision, for ``u >= 0``."""
        from layerkit.onnx import _functions

        return _functions.log1p(self, input_name)


__all__ = ["Builder"]
