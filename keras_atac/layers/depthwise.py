"""Stride-1, "same"-padded convolutions over single channels that XLA's CPU backend runs well.

XLA's CPU compiler, which TensorFlow (`jit_compile=True`) and JAX use, has no depthwise
convolution kernel: it expands a grouped convolution and its kernel gradient into dense ones
over all `C x C` channel pairs, so xUnit's 9x9 depthwise step at (128, 32, 32, 16) took over a
second, 15 to 25 times ReLU's whole `cifar_resnet(20)` step once per activation site. Its
convolutions with one or two channels (CBAM's spatial gate) are slow too. Two formulations
replace them; both keep Keras's kernels and checkpoint layouts, and equal Keras's convolutions
up to float rounding of a different summation order.

**Depthwise (`depthwise_conv`, xUnit): window sums.** Under XLA the convolution is the sum of
the kernel's shifted windows,

    y[n, h, w, c] = sum_{i, j} x_pad[n, h + i, w + j, c] * k[i, j, c],

`k * k` multiply-adds per output that XLA fuses into one loop, and its gradient is written out
(`keras.ops.custom_gradient`):

    dL/dx[n, h, w, c] = sum_{i, j} g_pad[n, h + i, w + j, c] * k[k_h - 1 - i, k_w - 1 - j, c]
    dL/dk[i, j, c]    = sum_{n, h, w} x_pad[n, h + i, w + j, c] * g[n, h, w, c]

with `g` the gradient of the output: the input's gradient is the same convolution of `g` with
the kernel flipped in both axes, and the kernel's is `k * k` sums that variadic XLA reduces
compute in three passes over `x` and `g` (`xla_sums`; as `k * k` separate sums, XLA makes a
pass over both for each). Outside XLA the backends' own depthwise kernels are faster, so the
convolution is Keras's `ops.depthwise_conv` on PyTorch, on TensorFlow when XLA does not
compile it (eager, or `jit_compile=False`), and for an input whose spatial sizes are unknown
when traced. Under JAX's transformations the written-out gradient gives first-order
reverse-mode derivatives (`jax.grad`, `jax.vjp`) only.

**To one filter (`single_filter_conv`, CBAM's spatial gate): banded matrix products.** For
kernel row `i`, output column `v` of channel `c` is

    y[h, v, c] = sum_i sum_w  x_pad[h + i, w, c] * B_i[w, v, c],   B_i[w, v, c] = k[i, w - v, c]

(zero where `w - v` is outside the kernel), and the convolution to one filter sums this over
the channels. With the kernel rows' windows side by side it is one matrix multiplication
batched over the channels, which XLA hands to its matrix kernel; the width is cut into tiles
of at most `TILE_WIDTH` columns (each with its `k - 1` columns of halo) so the extra arithmetic
of the band's zeros stays bounded. Window sums are not used here: with one or two channels
XLA fuses their `k * k` terms into every consumer of the input's gradient, which CBAM
broadcasts over all channels, and recomputes them there for each channel. PyTorch keeps its
own convolution.
"""

import itertools

import keras
import numpy as np
from keras import ops

from keras_atac.layers import xla_sums
from keras_atac.utils import checks

# Widest tile of the banded products: 32 columns covers CIFAR-sized maps in one tile.
TILE_WIDTH = 32


def depthwise_conv(x, kernel, data_format):
    """`ops.depthwise_conv(x, kernel, strides=1, padding="same")` for odd kernel sizes.

    Args:
        x: a (N, L, C) / (N, H, W, C) tensor (or channels-first).
        kernel: the depthwise kernel, shape `(k, C, 1)` or `(kh, kw, C, 1)`, odd sizes.
        data_format: `"channels_last"` or `"channels_first"`.
    """
    kernel = ops.cast(ops.convert_to_tensor(kernel), x.dtype)
    spatial_axes = checks.spatial_axes(len(x.shape), data_format)
    if not xla_sums.compiled_by_xla() or any(x.shape[axis] is None for axis in spatial_axes):
        return ops.depthwise_conv(x, kernel, strides=1, padding="same", data_format=data_format)
    return _window_sum_conv(x, kernel, data_format)


def single_filter_conv(x, kernel, data_format):
    """`ops.conv(x, kernel, strides=1, padding="same")` to one output channel, odd kernel sizes.

    A convolution from `C` channels to one is the depthwise convolution of each channel with
    its slice of the kernel, summed over the channels. On TensorFlow and JAX the depthwise
    part is the banded matrix products (see the module docstring): this is CBAM's spatial
    gate (a 7x7 convolution from two maps to one), whose whole training step at
    cifar_resnet(20)'s shapes ran 2.4x (JAX) to 3.5x (TensorFlow) slower with XLA's CPU
    convolution. PyTorch keeps its own convolution.

    Args:
        x: a (N, L, C) / (N, H, W, C) tensor (or channels-first).
        kernel: the convolution kernel, shape `(k, C, 1)` or `(kh, kw, C, 1)`, odd sizes: as a
            depthwise kernel, the same array.
        data_format: `"channels_last"` or `"channels_first"`.
    """
    kernel = ops.cast(ops.convert_to_tensor(kernel), x.dtype)
    width = x.shape[-2] if data_format == "channels_last" else x.shape[-1]
    if keras.backend.backend() == "torch" or width is None:
        return ops.conv(x, kernel, strides=1, padding="same", data_format=data_format)
    if len(x.shape) == 3:  # 1-D: one kernel row over a map of height 1
        height_axis = 1 if data_format == "channels_last" else 2
        y = _banded_depthwise_conv_2d(
            ops.expand_dims(x, height_axis), ops.expand_dims(kernel, 0), data_format
        )
        y = ops.squeeze(y, height_axis)
    else:
        y = _banded_depthwise_conv_2d(x, kernel, data_format)
    channel_axis = -1 if data_format == "channels_last" else 1
    return ops.sum(y, axis=channel_axis, keepdims=True)


def _window_sum_conv(x, kernel, data_format):
    """The depthwise window-sum convolution with its gradient written out (see the module
    docstring)."""
    taps = _Taps(len(x.shape), kernel.shape, data_format)

    @ops.custom_gradient
    def convolve(x, kernel):
        # Only JAX and TensorFlow run this, and both pass the upstream gradient positionally.
        def gradient(upstream):
            x_gradient = taps.weighted_sum(upstream, taps.flipped(kernel))
            return x_gradient, taps.kernel_gradient(x, upstream)

        return taps.weighted_sum(x, kernel), gradient

    return convolve(x, kernel)


class _Taps:
    """The kernel taps of a stride-1, "same"-padded convolution of odd sizes over maps of a
    given rank and layout: the window of the map that each tap multiplies, and the sums the
    convolution and its gradient make of them."""

    def __init__(self, rank, kernel_shape, data_format):
        self.rank = rank
        self.data_format = data_format
        self.spatial_axes = checks.spatial_axes(rank, data_format)
        self.sizes = tuple(kernel_shape[:-2])

    def windows(self, tensor):
        """The window of every tap (i, j, ...) of `tensor`, "same"-padded, in the kernel's
        row-major order: the part of the padded `tensor` that the tap multiplies."""
        padding = [[0, 0]] * self.rank
        for axis, size in zip(self.spatial_axes, self.sizes):
            padding[axis] = [size // 2, size // 2]
        padded = ops.pad(tensor, padding)
        windows = []
        for offset in itertools.product(*(range(size) for size in self.sizes)):
            # Slices, not `ops.slice`: the batch size may be unknown when traced.
            index = [slice(None)] * self.rank
            for axis, start in zip(self.spatial_axes, offset):
                index[axis] = slice(start, start + tensor.shape[axis])
            windows.append(padded[tuple(index)])
        return windows

    def flipped(self, kernel):
        """The kernel reversed along every spatial axis."""
        return kernel[(slice(None, None, -1),) * len(self.sizes)]

    def weighted_sum(self, tensor, kernel):
        """sum over taps t of window_t(tensor) * kernel[t, c]: the depthwise convolution."""
        weights = ops.reshape(kernel, (-1, kernel.shape[-2]))  # (taps, C)
        total = None
        for index, window in enumerate(self.windows(tensor)):
            term = window * _channel_map(weights[index], self.rank, self.data_format)
            total = term if total is None else total + term
        return total

    def kernel_gradient(self, x, upstream):
        """sum over batch and positions of window_t(x) * upstream, per tap and channel, shaped
        as the kernel. Summed over the positions first (`xla_sums.sums`: all taps in three
        passes), then over the batch: faster under XLA than summing over all three axes at
        once, and fewer terms in each float32 sum."""
        products = [window * upstream for window in self.windows(x)]
        per_example = ops.stack(xla_sums.sums(products, self.spatial_axes))  # (taps, N, C)
        return ops.reshape(ops.sum(per_example, axis=1), (*self.sizes, -1, 1))


def _channel_map(values, rank, data_format):
    """(C,) values shaped to broadcast against a map of rank `rank` in `data_format`.

    `layer_utils.to_channel_map` does this too, but `layer_utils` imports this module."""
    shape = [1] * rank
    shape[checks.channel_axis(data_format)] = values.shape[0]
    return ops.reshape(values, shape)


def _band_indices(tile, size):
    """For a tile of `tile` outputs and `tile + size - 1` inputs: the kernel tap `w - v` of
    every (input w, output v) pair, clipped into range, and the mask of the taps that exist."""
    taps = np.arange(tile + size - 1)[:, None] - np.arange(tile)[None, :]
    inside = (taps >= 0) & (taps < size)
    return np.clip(taps, 0, size - 1).astype("int32"), inside


def _banded_depthwise_conv_2d(x, kernel, data_format):
    # Channels lead inside, (C, N, H, W): every product is then a plain batched matmul over
    # the channels, without the transposes XLA inserts around a trailing batch axis.
    channels_last = data_format == "channels_last"
    x = ops.transpose(x, (3, 0, 1, 2) if channels_last else (1, 0, 2, 3))
    channels, height, width = x.shape[0], x.shape[2], x.shape[3]
    kernel_height, kernel_width = kernel.shape[0], kernel.shape[1]
    tile = min(width, TILE_WIDTH)
    tiles = -(-width // tile)
    window = tile + kernel_width - 1
    pad_h, pad_w = kernel_height // 2, kernel_width // 2
    padded = ops.pad(x, [[0, 0], [0, 0], [pad_h, pad_h], [pad_w, pad_w + tiles * tile - width]])
    # (C, N, H + kh - 1, tiles, tile + kw - 1): overlapping windows along the width.
    windows = ops.stack(
        [padded[..., start * tile : start * tile + window] for start in range(tiles)], axis=3
    )
    # (C, N, H, tiles, kh * window): the kernel rows' windows side by side, so one matmul
    # contracts over the whole kernel.
    rows = ops.concatenate(
        [windows[:, :, row : row + height] for row in range(kernel_height)], axis=-1
    )
    taps, inside = _band_indices(tile, kernel_width)
    # bands[c, i, w, v] = kernel[i, w - v, c] inside the band, else 0.
    bands = ops.take(ops.transpose(kernel[..., 0], (2, 0, 1)), taps, axis=2)
    bands = bands * ops.convert_to_tensor(inside, dtype=bands.dtype)
    bands = ops.reshape(bands, (channels, kernel_height * window, tile))
    y = ops.einsum("cnhtk,ckv->cnhtv", rows, bands)
    # Merge the tiles back into the width and drop the padding columns of the last tile.
    y = ops.reshape(y, (channels, -1, height, tiles * tile))[..., :width]
    return ops.transpose(y, (1, 2, 3, 0) if channels_last else (1, 0, 2, 3))
