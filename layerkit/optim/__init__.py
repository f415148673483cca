"""Optimizers and learning-rate schedules that live outside the layers.

``net.step(opt)`` or ``layer.step(opt)`` hands each layer to
``opt.update_layer``; the rules match ``torch.optim`` exactly.
"""
from layerkit.optim.adagrad import AdaGrad, Adagrad
from layerkit.optim.adam import Adam, AdamW
from layerkit.optim.base import Optimizer, named_parameters, net_parameters, optimizer_from_state_dict
from layerkit.optim.clipping import clip_grad_norm, global_grad_norm
from layerkit.optim.lbfgs import LBFGS
from layerkit.optim.rmsprop import RMSprop
from layerkit.optim.names import OPTIMIZER_NAMES, optimizer_by_name
from layerkit.optim.schedules import (Constant, CosineDecay, ExponentialDecay, PerEpoch, ReduceLROnPlateau, Schedule,
                                      StepDecay, Warmup, as_schedule, schedule_from_config)
from layerkit.optim.sgd import SGD

OPTIMIZERS: dict[str, type[Optimizer]] = {cls.__name__: cls for cls in (SGD, Adam, AdamW, RMSprop, AdaGrad)}

__all__ = [
    "Optimizer", "LBFGS", "SGD", "Adam", "AdamW", "RMSprop", "AdaGrad", "Adagrad", "OPTIMIZERS", "OPTIMIZER_NAMES",
    "optimizer_by_name", "Schedule", "Constant", "ExponentialDecay", "StepDecay", "CosineDecay", "Warmup",
    "PerEpoch", "ReduceLROnPlateau",
    "as_schedule", "schedule_from_config", "optimizer_from_state_dict",
    "clip_grad_norm", "global_grad_norm", "named_parameters", "net_parameters",
]
