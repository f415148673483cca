"""Layers: one module each, all subclasses of ``Layer``."""
from layerkit.layers.base import Layer
from layerkit.layers.batch_norm import BatchNorm1d
from layerkit.layers.dropout import Dropout
from layerkit.layers.layer_norm import LayerNorm
from layerkit.layers.linear import Linear
from layerkit.layers.relu import ReLU
from layerkit.layers.sigmoid import Sigmoid
from layerkit.layers.softmax import Softmax

__all__ = ["Layer", "Linear", "ReLU", "Sigmoid", "Softmax", "Dropout", "LayerNorm", "BatchNorm1d"]
