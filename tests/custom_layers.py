"""A custom layer for the optimizer tests: one parameter, named beta, no Linear in sight."""
import numpy as np

import layerkit as lk


class Scale(lk.Layer):
    """y = x * beta, element-wise over the features."""

    param_names = ("beta",)

    def __init__(self, n):
        self.beta = np.linspace(0.5, 1.5, n)

    def forward(self, x):
        return x * self.beta

    def backward(self, x, dy):
        self.dbeta = (x * dy).sum(axis=0)
        return dy * self.beta
