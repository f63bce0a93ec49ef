"""The layers' formulas written in plain PyTorch, as a PyTorch user would write them by hand.

Each entry of `REFERENCES` maps a factory name to a `torch.nn.Module` class built from a built
Keras layer, whose weights it copies; inputs are channels-last like the Keras layers'. The
modules use PyTorch's own building blocks (`nn.Linear`, `nn.BatchNorm1d`, `F.relu`, ...), so
the comparison is with idiomatic, fused framework code rather than with a transcription of the
Keras ops.
"""

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.backend_steps import layer_weights


def _parameter(array):
    return nn.Parameter(torch.from_numpy(array.copy()))


def _linear(kernel):
    """`nn.Linear` without bias computing `x @ kernel` (PyTorch stores the transpose)."""
    linear = nn.Linear(*kernel.shape, bias=False)
    linear.weight = _parameter(kernel.T)
    return linear


def _batch_norm(weights, prefix, layer):
    """`nn.BatchNorm1d` with a Keras BatchNormalization's state (momentum 1 - Keras momentum)."""
    norm = nn.BatchNorm1d(
        weights[f"{prefix}/gamma"].shape[0], eps=layer.epsilon, momentum=1.0 - layer.momentum
    )
    norm.weight = _parameter(weights[f"{prefix}/gamma"])
    norm.bias = _parameter(weights[f"{prefix}/beta"])
    norm.running_mean.copy_(torch.from_numpy(weights[f"{prefix}/moving_mean"]))
    norm.running_var.copy_(torch.from_numpy(weights[f"{prefix}/moving_variance"]))
    return norm


class ReLU(nn.Module):
    def __init__(self, layer):
        super().__init__()

    def forward(self, x):
        return F.relu(x)


class ATAC(nn.Module):
    """x * sigmoid(BN(PW(ReLU(BN(PW(x)))))), the pointwise maps as `nn.Linear` on (M, C)."""

    def __init__(self, layer):
        super().__init__()
        weights = layer_weights(layer)
        self.global_context = layer.context == "global"
        self.use_inner_relu = layer.use_inner_relu
        self.reduce = _linear(weights["reduce_kernel"])
        self.reduce_norm = _batch_norm(weights, "reduce_norm", layer)
        self.expand = _linear(weights["expand_kernel"])
        self.expand_norm = _batch_norm(weights, "expand_norm", layer)

    def forward(self, x):
        context = x
        if self.global_context and x.ndim > 2:
            context = x.mean(dim=tuple(range(1, x.ndim - 1)), keepdim=True)
        hidden = self.reduce_norm(self.reduce(context.reshape(-1, x.shape[-1])))
        if self.use_inner_relu:
            hidden = F.relu(hidden)
        logits = self.expand_norm(self.expand(hidden))
        return x * torch.sigmoid(logits).reshape(context.shape)


class AReLU(nn.Module):
    """The official PyTorch AReLU: relu(x) * (1 + sigmoid(beta)) - relu(-x) * clamp(alpha)."""

    def __init__(self, layer):
        super().__init__()
        weights = layer_weights(layer)
        self.alpha = _parameter(weights["alpha"])
        self.beta = _parameter(weights["beta"])

    def forward(self, x):
        alpha = torch.clamp(self.alpha, 0.01, 0.99)
        return F.relu(x) * (1.0 + torch.sigmoid(self.beta)) - F.relu(-x) * alpha


REFERENCES = {"relu": ReLU, "atac": ATAC, "atac_global": ATAC, "arelu": AReLU}
