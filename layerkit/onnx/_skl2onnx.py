"""skl2onnx converters and shape calculators of ``NetClassifier`` and ``NetRegressor``.

After ``register_skl2onnx()`` (run when ``layerkit.onnx`` is imported with
skl2onnx installed), ``skl2onnx.to_onnx`` converts pipelines that contain the
estimators. The graph is the fitted net (``to_onnx``'s nodes) followed by what
``predict``/``predict_proba`` compute from its output:

- binary (one sigmoid output ``p``): probabilities ``[1 - p, p]``, label ``p > 0.5``;
- multi-class (logits): probabilities ``softmax(logits)``, label ``argmax(logits)``;
- multi-label (one sigmoid output per label): probabilities ``p``, labels ``p > 0.5``;
- regressor: the net's output, shape ``(n, n_outputs)``.

The input is cast to the net's dtype when it differs (a float32 pipeline input
into a float64 net); the outputs have the input's type, as skl2onnx's own
converters do.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto, helper

from layerkit.onnx._builder import Builder
from layerkit.onnx._export import check_opset, export_layers, net_dtype

CLASSIFIER_ALIAS = "LayerkitNetClassifier"
REGRESSOR_ALIAS = "LayerkitNetRegressor"


def register_skl2onnx() -> None:
    """Register the converters of ``NetClassifier`` and ``NetRegressor`` with skl2onnx.

    Idempotent. Classifiers take skl2onnx's options ``zipmap`` (``True``,
    ``False`` or ``"columns"``) and ``nocl`` (labels as class indices) like its
    own classifiers; multi-label classifiers output tensors (labels
    ``(n, n_labels)`` int64), never a ZipMap. Only skl2onnx's public API is
    used (``update_registered_converter``, the ``Scope`` and ``Container``
    methods, ``skl2onnx.common.data_types``): the classifier's parser and its
    ZipMap are layerkit's own.

    Raises
    ------
    ImportError
        Without skl2onnx (``pip install "layerkit[onnx]"``).
    """
    from skl2onnx import update_registered_converter

    from layerkit.sklearn import NetClassifier, NetRegressor

    update_registered_converter(NetClassifier, CLASSIFIER_ALIAS, _classifier_shapes, _convert_classifier,
                                parser=_parse_classifier, options={"zipmap": [True, False, "columns"], "nocl": [False, True]})
    update_registered_converter(NetRegressor, REGRESSOR_ALIAS, _regressor_shapes, _convert_regressor)


# ---------------------------------------------------------------------- what the estimator computes
def _head_kind(model: Any) -> str:
    """``"binary"``, ``"multilabel"`` or ``"softmax"``: how ``predict_proba`` reads the net's output.

    The net's head tells: a ``Sigmoid`` after one output is binary, after
    several multi-label (one probability per label); anything else gives
    logits for a softmax.
    """
    last = model.net_.layers[-1]
    if type(last).__module__.startswith("layerkit.layers.") and type(last).__name__ == "Sigmoid":
        return "binary" if _net_width(model) == 1 else "multilabel"
    return "softmax"


def _label_values(model: Any) -> np.ndarray:
    """``classes_`` as int64 or str values for the label output."""
    classes = np.asarray(model.classes_)
    if classes.dtype.kind in "iub":
        return classes.astype(np.int64)
    if classes.dtype.kind == "f" and np.all(classes == np.round(classes)):
        return classes.astype(np.int64)
    if classes.dtype.kind in "USO":
        return classes.astype(str).astype(object)
    raise TypeError(f"layerkit.onnx: {type(model).__name__}'s classes_ must be integers or strings to "
                    f"convert to ONNX, got dtype {classes.dtype}")


def _float_type(variable: Any) -> Any:
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    return DoubleTensorType if isinstance(variable.type, DoubleTensorType) else FloatTensorType


def _net_width(model: Any) -> int:
    for layer in reversed(model.net_.layers):
        n_out = getattr(layer, "n_out", None)
        if n_out is not None:
            return int(n_out)
    raise TypeError(f"layerkit.onnx: cannot tell the output width of {type(model).__name__}'s net")


def _nocl(options_holder: Any, model: Any) -> bool:
    """skl2onnx's option ``nocl``: labels are class indices (the scope and the container both hold options)."""
    return bool(options_holder.get_options(model, dict(nocl=False))["nocl"])


# ---------------------------------------------------------------------- parser and shapes
def _zipmap(scope: Any, model: Any, inputs: list) -> Any:
    """The ZipMap the outputs get: ``False``, ``True`` or ``"columns"`` (skl2onnx's option, True by default).

    Multi-label classifiers and float64 inputs get none (onnxruntime's ZipMap
    takes float32 only, and a map per label makes no sense).
    """
    from skl2onnx.common.data_types import DoubleTensorType

    if _head_kind(model) == "multilabel" or isinstance(inputs[0].type, DoubleTensorType):
        return False
    return scope.get_options(model, dict(zipmap=True))["zipmap"]


def _parse_classifier(scope: Any, model: Any, inputs: list, custom_parsers: Any = None) -> list:
    """The classifier's outputs, declared with skl2onnx's public ``Scope`` methods.

    Labels, then probabilities: a tensor, a ZipMap's list of ``{label: p}``
    (``zipmap=True``, as skl2onnx's own classifiers) or one column per class
    (``zipmap="columns"``). The converter writes the ZipMap itself, so no
    private parser of skl2onnx is called.
    """
    from skl2onnx.common.data_types import DictionaryType, Int64TensorType, SequenceType, StringTensorType

    operator = scope.declare_local_operator(CLASSIFIER_ALIAS, model)
    operator.inputs = inputs
    zipmap = _zipmap(scope, model, inputs)
    string_labels = _head_kind(model) != "multilabel" and not _nocl(scope, model) and \
        _label_values(model).dtype == object
    label_type = StringTensorType if string_labels else Int64TensorType
    if zipmap is False:
        outputs = [scope.declare_local_variable("label", label_type()),
                   scope.declare_local_variable("probabilities", _float_type(inputs[0])())]
    elif zipmap == "columns":
        outputs = [scope.declare_local_variable("output_label", label_type())]
        outputs += [scope.declare_local_variable(name, _float_type(inputs[0])())
                    for name in _column_names(model, _nocl(scope, model))]
    else:
        outputs = [scope.declare_local_variable("output_label", label_type()),
                   scope.declare_local_variable("output_probability", SequenceType(
                       DictionaryType(label_type([]), _float_type(inputs[0])([]))))]
    operator.outputs.extend(outputs)
    return outputs


def _column_names(model: Any, nocl: bool) -> list[str]:
    """The outputs of ``zipmap="columns"``, as skl2onnx names them: ``i<label>`` for integers, ``s<label>`` else."""
    labels = np.arange(len(model.classes_)) if nocl else _label_values(model)
    return [f"i{label}" if labels.dtype == np.int64 else f"s{label}" for label in labels]


def _classifier_shapes(operator: Any) -> None:
    from skl2onnx.common.data_types import Int64TensorType, StringTensorType

    model = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    width = _net_width(model) if _head_kind(model) == "multilabel" else len(model.classes_)
    if _head_kind(model) == "multilabel":
        operator.outputs[0].type = Int64TensorType([n, width])
    else:
        labels = np.arange(width) if _nocl(operator.scope_inst, model) else _label_values(model)
        operator.outputs[0].type = (Int64TensorType if labels.dtype == np.int64 else StringTensorType)([n])
    if len(operator.outputs) > 2:  # zipmap="columns": one probability column per class
        for variable in operator.outputs[1:]:
            variable.type = _float_type(operator.inputs[0])([n])
    elif not _is_sequence(operator.outputs[1]):  # a ZipMap's list of maps keeps its declared type
        operator.outputs[1].type = _float_type(operator.inputs[0])([n, width])


def _is_sequence(variable: Any) -> bool:
    from skl2onnx.common.data_types import SequenceType

    return isinstance(variable.type, SequenceType)


def _regressor_shapes(operator: Any) -> None:
    model = operator.raw_operator
    operator.outputs[0].type = _float_type(operator.inputs[0])([operator.inputs[0].get_first_dimension(),
                                                                _net_width(model)])


# ---------------------------------------------------------------------- converters
def _net_part(scope: Any, operator: Any, container: Any) -> tuple[Builder, str]:
    """A builder on skl2onnx's names holding the fitted net; returns it and the net's output name."""
    model = operator.raw_operator
    if getattr(model, "out_activation_", None) == "exp":
        raise ValueError(f"layerkit.onnx: {type(model).__name__}(loss='poisson') predicts exp() of its net's output, "
                         "which the converter does not add; export model.net_ (lk.onnx.to_onnx) and apply exp")
    layers = model.net_.layers
    dtype = net_dtype(model.net_, layers)
    opset = check_opset(container.target_opset, f"layerkit.onnx ({type(model).__name__})")
    builder = Builder(dtype, opset, unique=scope.get_unique_variable_name)
    x = operator.inputs[0].full_name
    if operator.inputs[0].type.to_onnx_type().tensor_type.elem_type != builder.elem_type:
        x = builder.add_node("Cast", [x], hint="cast", to=builder.elem_type)
    return builder, export_layers(layers, builder, x)


def _to_output(builder: Builder, name: str, variable: Any) -> str:
    """Cast ``name`` to the element type of the declared output ``variable`` when they differ."""
    target = variable.type.to_onnx_type().tensor_type.elem_type
    return name if target == builder.elem_type else builder.add_node("Cast", [name], to=target)


def _emit(builder: Builder, container: Any) -> None:
    """Move the builder's initializers and nodes into skl2onnx's container."""
    for tensor in builder.initializers:
        if tensor.data_type == TensorProto.STRING:
            container.add_initializer(tensor.name, TensorProto.STRING, list(tensor.dims),
                                      [s.decode("utf-8") for s in tensor.string_data])
        else:
            container.add_initializer(tensor.name, tensor.data_type, list(tensor.dims), tensor)
    for node in builder.nodes:
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        container.add_node(node.op_type, list(node.input), list(node.output), op_domain=node.domain,
                           name=node.name, **attributes)


def _convert_classifier(scope: Any, operator: Any, container: Any) -> None:
    model = operator.raw_operator
    b, out = _net_part(scope, operator, container)
    kind = _head_kind(model)
    label_var, proba_var = operator.outputs[0], operator.outputs[1]
    if kind == "softmax":
        proba = b.add_node("Softmax", [out], axis=1)
        index = b.add_node("ArgMax", [out], axis=1, keepdims=0)
    else:
        positive = b.add_node("Greater", [out, b.scalar(0.5)])  # predict: the larger of 1 - p and p
        if kind == "binary":
            proba = b.add_node("Concat", [b.add_node("Sub", [b.scalar(1.0), out]), out], axis=1)
            flat = b.add_initializer([-1], "shape", dtype=np.int64)
            index = b.add_node("Reshape", [b.add_node("Cast", [positive], to=TensorProto.INT64), flat])
        else:
            proba = out
            b.add_node("Cast", [positive], outputs=[label_var.full_name], to=TensorProto.INT64)
    if kind != "multilabel" and _nocl(container, model):
        b.add_node("Identity", [index], outputs=[label_var.full_name])
    elif kind != "multilabel":
        labels = _label_values(model)
        classes = b.add_initializer(labels, "classes", dtype=labels.dtype)
        b.add_node("Gather", [classes, index], outputs=[label_var.full_name], axis=0)
    proba = _to_output(b, proba, operator.inputs[0])  # the probabilities have the input's float type
    if len(operator.outputs) > 2:  # zipmap="columns"
        for column, variable in enumerate(operator.outputs[1:]):
            index = b.add_initializer(np.array(column, dtype=np.int64), "column", dtype=np.int64)
            b.add_node("Gather", [proba, index], outputs=[variable.full_name], axis=1)
    elif _is_sequence(proba_var):  # zipmap=True: onnxruntime's ZipMap (float32 only)
        labels = np.arange(len(model.classes_)) if _nocl(container, model) else _label_values(model)
        key = "classlabels_int64s" if labels.dtype == np.int64 else "classlabels_strings"
        b.add_node("ZipMap", [proba], outputs=[proba_var.full_name], domain="ai.onnx.ml",
                   **{key: [int(v) if key.endswith("int64s") else str(v) for v in labels]})
    else:
        b.add_node("Identity", [proba], outputs=[proba_var.full_name])
    _emit(b, container)


def _convert_regressor(scope: Any, operator: Any, container: Any) -> None:
    b, out = _net_part(scope, operator, container)
    variable = operator.outputs[0]
    b.add_node("Identity", [_to_output(b, out, variable)], outputs=[variable.full_name])
    _emit(b, container)


__all__ = ["register_skl2onnx"]
