"""Layers: one module each, all subclasses of ``Layer``."""
from layerkit.layers.base import Layer
from layerkit.layers.batch_norm import BatchNorm1d, BatchNorm2d
from layerkit.layers.conv import Conv1d, Conv2d
from layerkit.layers.dropout import Dropout
from layerkit.layers.elu import ELU
from layerkit.layers.embedding import Embedding
from layerkit.layers.flatten import Flatten
from layerkit.layers.gelu import GELU
from layerkit.layers.identity import Identity
from layerkit.layers.layer_norm import LayerNorm
from layerkit.layers.leaky_relu import LeakyReLU
from layerkit.layers.linear import Linear
from layerkit.layers.pooling import (AvgPool1d, AvgPool2d, GlobalAvgPool1d, GlobalAvgPool2d, MaxPool1d,
                                     MaxPool2d)
from layerkit.layers.relu import ReLU
from layerkit.layers.sigmoid import Sigmoid
from layerkit.layers.softmax import Softmax
from layerkit.layers.softplus import Softplus
from layerkit.layers.tanh import Tanh

__all__ = ["Layer", "Linear", "ReLU", "Sigmoid", "Softmax", "Tanh", "LeakyReLU", "ELU", "GELU",
           "Softplus", "Identity", "Dropout", "LayerNorm", "BatchNorm1d", "BatchNorm2d", "Embedding", "Conv1d",
           "Conv2d", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "GlobalAvgPool1d", "GlobalAvgPool2d",
           "Flatten"]
