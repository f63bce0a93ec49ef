"""The layers' formulas written in plain PyTorch, as a PyTorch user would write them by hand.

Each entry of `REFERENCES` maps a factory name to a `torch.nn.Module` class built from a built
Keras layer, whose weights it copies. Inputs are channels-last (N, ..., C) like the Keras
layers'. The modules use PyTorch's own building blocks (`nn.Linear`, `nn.BatchNorm1d/2d`,
`F.conv2d`, `F.prelu`, ...), so the comparison is with idiomatic, fused framework code rather
than with a transcription of the Keras ops; spatial convolutions run in PyTorch's NCHW layout.
"""

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.backend_steps import to_numpy


def _parameter(variable):
    return nn.Parameter(torch.from_numpy(to_numpy(variable).copy()))


def _linear(kernel, bias=None):
    """`nn.Linear` computing `x @ kernel + bias` (PyTorch stores the kernel transposed)."""
    linear = nn.Linear(*kernel.shape, bias=bias is not None)
    linear.weight = nn.Parameter(torch.from_numpy(to_numpy(kernel).T.copy()))
    if bias is not None:
        linear.bias = _parameter(bias)
    return linear


def _dense(layer):
    return _linear(layer.kernel, layer.bias)


def _batch_norm(norm, cls=nn.BatchNorm1d):
    """A PyTorch BatchNorm with a Keras BatchNormalization's state (momentum 1 - Keras's)."""
    torch_norm = cls(norm.gamma.shape[0], eps=norm.epsilon, momentum=1.0 - norm.momentum)
    torch_norm.weight = _parameter(norm.gamma)
    torch_norm.bias = _parameter(norm.beta)
    torch_norm.running_mean.copy_(torch.from_numpy(to_numpy(norm.moving_mean)))
    torch_norm.running_var.copy_(torch.from_numpy(to_numpy(norm.moving_variance)))
    return torch_norm


def _conv_weight(kernel):
    """A Keras (k, k, in, out) kernel as PyTorch's (out, in, k, k)."""
    return nn.Parameter(torch.from_numpy(to_numpy(kernel).transpose(3, 2, 0, 1).copy()))


def _spatial_mean(x):
    return x.mean(dim=tuple(range(1, x.ndim - 1)))


def _channel_map(gate, x):
    """An (N, C) gate broadcast over the spatial axes of channels-last `x`."""
    return gate.reshape(gate.shape[0], *([1] * (x.ndim - 2)), gate.shape[-1])


def _to_nchw(x):
    return x.permute(0, 3, 1, 2)


def _to_nhwc(x):
    return x.permute(0, 2, 3, 1)


class ReLU(nn.Module):
    def __init__(self, layer):
        super().__init__()

    def forward(self, x):
        return F.relu(x)


class ATAC(nn.Module):
    """x * sigmoid(BN(PW(ReLU(BN(PW(x)))))), the pointwise maps as `nn.Linear` on (M, C)."""

    def __init__(self, layer):
        super().__init__()
        self.global_context = layer.context == "global"
        self.use_inner_relu = layer.inner_activation == "relu"
        self.reduce = _linear(layer.reduce_kernel)
        self.reduce_norm = _batch_norm(layer.reduce_norm)
        self.expand = _linear(layer.expand_kernel)
        self.expand_norm = _batch_norm(layer.expand_norm)

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
        self.alpha = _parameter(layer.alpha)
        self.beta = _parameter(layer.beta)

    def forward(self, x):
        alpha = torch.clamp(self.alpha, 0.01, 0.99)
        return F.relu(x) * (1.0 + torch.sigmoid(self.beta)) - F.relu(-x) * alpha


class APL(nn.Module):
    """relu(x) + sum_s a_s * relu(b_s - x); per-channel values broadcast over the last axis."""

    def __init__(self, layer):
        super().__init__()
        self.slopes = _parameter(layer.slopes)
        self.hinges = _parameter(layer.hinges)

    def forward(self, x):
        output = F.relu(x)
        for slope, hinge in zip(self.slopes, self.hinges):
            output = output + slope * F.relu(hinge - x)
        return output


class Mixture(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.p = _parameter(layer.p)

    def forward(self, x):
        return self.p * x + (1.0 - self.p) * F.relu(x)


class SLAF(nn.Module):
    """sum_i c_i x**i by Horner's scheme."""

    def __init__(self, layer):
        super().__init__()
        self.coefficients = _parameter(layer.coefficients)

    def forward(self, x):
        output = self.coefficients[-1] * torch.ones_like(x)
        for coefficient in reversed(self.coefficients[:-1]):
            output = output * x + coefficient
        return output


class PAU(nn.Module):
    """Safe Padé P(x) / (1 + sum_k |d_k| |x|**k), both polynomials by Horner's scheme."""

    def __init__(self, layer):
        super().__init__()
        self.numerator = _parameter(layer.numerator)
        self.denominator = _parameter(layer.denominator)

    def forward(self, x):
        numerator = self.numerator[-1] * torch.ones_like(x)
        for coefficient in reversed(self.numerator[:-1]):
            numerator = numerator * x + coefficient
        magnitude, weights = x.abs(), self.denominator.abs()
        denominator = weights[-1] * magnitude
        for weight in reversed(weights[:-1]):
            denominator = (denominator + weight) * magnitude
        return numerator / (1.0 + denominator)


class Maxout(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.pool_size = layer.pool_size

    def forward(self, x):
        return x.unflatten(-1, (-1, self.pool_size)).amax(dim=-1)


class PReLU(nn.Module):
    """`F.prelu` with one shared slope (per-channel slopes broadcast over the last axis)."""

    def __init__(self, layer):
        super().__init__()
        self.alpha = _parameter(layer.alpha)

    def forward(self, x):
        if self.alpha.numel() == 1:
            return F.prelu(x, self.alpha)
        return torch.where(x > 0, x, self.alpha * x)


class SqueezeExcite(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.reduce = _dense(layer.reduce)
        self.expand = _dense(layer.expand)

    def excite(self, pooled):
        return self.expand(F.relu(self.reduce(pooled)))

    def forward(self, x):
        return x * _channel_map(torch.sigmoid(self.excite(_spatial_mean(x))), x)


class ChannelAttention(SqueezeExcite):
    def forward(self, x):
        spatial = tuple(range(1, x.ndim - 1))
        logits = self.excite(x.mean(dim=spatial)) + self.excite(x.amax(dim=spatial))
        return x * _channel_map(torch.sigmoid(logits), x)


class SpatialAttention(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.weight = _conv_weight(layer.conv.kernel)
        self.norm = _batch_norm(layer.norm, nn.BatchNorm2d)

    def forward(self, x):
        pooled = torch.stack([x.amax(dim=-1), x.mean(dim=-1)], dim=1)  # (N, 2, H, W)
        logits = self.norm(F.conv2d(pooled, self.weight, padding=self.weight.shape[-1] // 2))
        return x * _to_nhwc(torch.sigmoid(logits))


class CBAM(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.channel_attention = ChannelAttention(layer.channel_attention)
        self.spatial_attention = SpatialAttention(layer.spatial_attention)

    def forward(self, x):
        return self.spatial_attention(self.channel_attention(x))


class ECA(nn.Module):
    """A 1-D convolution over the pooled channels, as the official ECA module."""

    def __init__(self, layer):
        super().__init__()
        kernel = to_numpy(layer.conv.kernel)  # (k, 1, 1)
        self.weight = nn.Parameter(torch.from_numpy(kernel.transpose(2, 1, 0).copy()))

    def forward(self, x):
        pooled = _spatial_mean(x)[:, None, :]  # (N, 1, C)
        logits = F.conv1d(pooled, self.weight, padding=self.weight.shape[-1] // 2)
        return x * _channel_map(torch.sigmoid(logits[:, 0]), x)


class GatherExcite(nn.Module):
    """GE with a global extent: averaged (θ⁻) or learned (θ, a depthwise kernel as large as
    the map, i.e. a weighted spatial sum, and a BatchNorm), optionally with the MLP (θ⁺)."""

    def __init__(self, layer):
        super().__init__()
        if layer.extent != "global":
            raise NotImplementedError("the reference covers the global extent (the factory's)")
        self.learned = layer.extra_params
        if self.learned:
            conv, norm = layer.gather_convs[0], layer.gather_norms[0]
            self.weight = nn.Parameter(torch.from_numpy(to_numpy(conv.kernel)[..., 0].copy()))
            self.norm = _batch_norm(norm)
        self.mlp = layer.use_mlp
        if self.mlp:
            self.reduce = _dense(layer.reduce)
            self.expand = _dense(layer.expand)

    def forward(self, x):
        if self.learned:
            context = self.norm(torch.einsum("nhwc,hwc->nc", x, self.weight))
        else:
            context = _spatial_mean(x)
        if self.mlp:
            context = self.expand(F.relu(self.reduce(context)))
        return x * _channel_map(torch.sigmoid(context), x)


class XUnit(nn.Module):
    """x * exp(-BN(DWConv(ReLU(BN(x))))**2), the depthwise convolution in NCHW."""

    def __init__(self, layer):
        super().__init__()
        self.input_norm = _batch_norm(layer.input_norm, nn.BatchNorm2d)
        # Keras's depthwise (k, k, C, 1) as PyTorch's grouped (C, 1, k, k).
        kernel = to_numpy(layer.depthwise.kernel).transpose(2, 3, 0, 1)
        self.weight = nn.Parameter(torch.from_numpy(kernel.copy()))
        self.gate_norm = _batch_norm(layer.gate_norm, nn.BatchNorm2d)

    def forward(self, x):
        z = F.relu(self.input_norm(_to_nchw(x)))
        z = F.conv2d(z, self.weight, padding=self.weight.shape[-1] // 2, groups=z.shape[1])
        return x * _to_nhwc(torch.exp(-self.gate_norm(z).square()))


REFERENCES = {
    "relu": ReLU,
    "atac": ATAC,
    "atac_global": ATAC,
    "arelu": AReLU,
    "apl": APL,
    "mixture": Mixture,
    "slaf": SLAF,
    "pau": PAU,
    "maxout": Maxout,
    "prelu": PReLU,
    "se": SqueezeExcite,
    "channel_attention": ChannelAttention,
    "spatial_attention": SpatialAttention,
    "cbam": CBAM,
    "eca": ECA,
    "ge": GatherExcite,
    "ge_theta": GatherExcite,
    "ge_theta_plus": GatherExcite,
    "xunit": XUnit,
}
