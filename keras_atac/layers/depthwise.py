"""A stride-1, "same"-padded depthwise convolution that XLA's CPU backend runs well.

xUnit's gate is a depthwise `k x k` convolution (k = 9 in the paper). XLA's CPU compiler,
which TensorFlow (`jit_compile=True`) and JAX use, has no depthwise kernel: it expands the
grouped convolution and its kernel gradient into dense ones over all `C x C` channel pairs, so
a 9x9 depthwise step at (128, 32, 32, 16) took over a second, 15 to 25 times ReLU's whole
`cifar_resnet(20)` step once per activation site.

The same convolution is a sum over the kernel's rows of banded matrix products along the
width: for kernel row `i`, output column `v` of channel `c` is

    y[h, v, c] = sum_i sum_w  x_pad[h + i, w, c] * B_i[w, v, c],   B_i[w, v, c] = k[i, w - v, c]

(zero where `w - v` is outside the kernel). With the kernel rows' windows side by side this is
one matrix multiplication batched over the channels, which XLA hands to its fast matmul; the
width is cut into tiles of at most
`TILE_WIDTH` columns (each with its `k - 1` columns of halo) so the extra arithmetic of the
band's zeros stays bounded (`(TILE_WIDTH + k - 1) / k` times the direct convolution's per
kernel row) for wide maps. The kernel and its checkpoint layout are Keras's
`DepthwiseConv2D` / `DepthwiseConv1D` ones; the result equals `ops.depthwise_conv` up to
float rounding of a different summation order.

PyTorch has a native depthwise kernel, faster than the banded products there, so it keeps
`ops.depthwise_conv`; so does any input whose width is not known when traced.
"""

import keras
import numpy as np
from keras import ops

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
    width = x.shape[-2] if data_format == "channels_last" else x.shape[-1]
    if keras.backend.backend() == "torch" or width is None:
        return ops.depthwise_conv(x, kernel, strides=1, padding="same", data_format=data_format)
    if len(x.shape) == 3:  # 1-D: one kernel row over a map of height 1
        height_axis = 1 if data_format == "channels_last" else 2
        y = _banded_depthwise_conv_2d(
            ops.expand_dims(x, height_axis), ops.expand_dims(kernel, 0), data_format
        )
        return ops.squeeze(y, height_axis)
    return _banded_depthwise_conv_2d(x, kernel, data_format)


def single_filter_conv(x, kernel, data_format):
    """`ops.conv(x, kernel, strides=1, padding="same")` to one output channel, odd kernel sizes.

    A convolution from `C` channels to one is the depthwise convolution of each channel with
    its slice of the kernel, summed over the channels; on TensorFlow and JAX the depthwise part
    is `depthwise_conv`'s banded products. This is CBAM's spatial gate (a 7x7 convolution from
    two maps to one): with XLA's CPU convolution, the gate's whole training step at
    cifar_resnet(20)'s shapes ran 2.4x (JAX) to 3.5x (TensorFlow) slower. PyTorch keeps its
    own convolution.

    Args:
        x: a (N, L, C) / (N, H, W, C) tensor (or channels-first).
        kernel: the convolution kernel, shape `(k, C, 1)` or `(kh, kw, C, 1)`, odd sizes: as a
            depthwise kernel, the same array.
        data_format: `"channels_last"` or `"channels_first"`.
    """
    if keras.backend.backend() == "torch":
        kernel = ops.cast(ops.convert_to_tensor(kernel), x.dtype)
        return ops.conv(x, kernel, strides=1, padding="same", data_format=data_format)
    channel_axis = -1 if data_format == "channels_last" else 1
    return ops.sum(depthwise_conv(x, kernel, data_format), axis=channel_axis, keepdims=True)


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
