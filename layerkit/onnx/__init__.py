"""ONNX export of layerkit nets, for onnxruntime and every other ONNX runtime.

Needs the ``onnx`` extra (``pip install "layerkit[onnx]"``: onnx, onnxruntime,
skl2onnx); ``import layerkit`` never imports this package.

- ``to_onnx(net, opset=None, path=None)`` exports a ``Net``: every built-in
  layer, and any layer with the hook ``to_onnx(self, builder, input_name)``.
- ``Builder`` is what such a hook writes its nodes into.
- ``register_skl2onnx()`` teaches skl2onnx ``NetClassifier`` and
  ``NetRegressor``, so pipelines that contain them convert with
  ``skl2onnx.to_onnx`` (importing this package calls it when skl2onnx is installed).
"""
from layerkit.onnx._builder import Builder
from layerkit.onnx._export import DEFAULT_OPSET, HOOK, MIN_OPSET, to_onnx
from layerkit.onnx._skl2onnx import register_skl2onnx

try:
    register_skl2onnx()
except ImportError:  # skl2onnx is optional for to_onnx
    pass

__all__ = ["to_onnx", "Builder", "register_skl2onnx", "DEFAULT_OPSET", "MIN_OPSET", "HOOK"]
