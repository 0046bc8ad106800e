"""Torch building blocks of a KataGo network, built from :mod:`kgzarr.model.desc`.

Each module computes what KataGo's engine computes for the matching layer of
the model file (checked against KataGo v1.17.2's ``cpp/neuralnet`` backends
and its PyTorch training model):

- The on-board mask is input plane 0, and every batch-norm-format layer
  multiplies its output by it.
- Global pooling concatenates the mean over on-board points, that mean scaled
  by ``(sqrt(area) - 14) / 10``, and the max over on-board points.
- The value head pools differently: its third feature is the mean scaled by
  ``((sqrt(area) - 14)^2 / 100 - 0.1)`` in place of the max.
- Every block returns its residual branch only, and the caller adds it to the
  trunk.

Blocks record intermediate tensors under the layer names of
:mod:`kgzarr.model.names` through a :class:`Recorder`. Nothing here loops over
positions: every operation works on the whole batch.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kgzarr.errors import ModelFormatError
from kgzarr.model import desc as d
from kgzarr.model.names import inner_block_prefixes

__all__ = [
    "BoardMask",
    "Recorder",
    "activation_function",
    "global_pool",
    "value_head_pool",
    "conv2d",
    "linear",
    "MaskedAffine",
    "TrunkRMSNorm",
    "NormActConv",
    "ConvAndGlobalPool",
    "ResidualBlock",
    "NestedBottleneckBlock",
    "TransformerAttention",
    "TransformerFFN",
    "build_block",
]

logger = logging.getLogger(__name__)

Activation = Callable[[torch.Tensor], torch.Tensor]

_ACTIVATIONS: dict[str, Activation] = {
    "ACTIVATION_IDENTITY": lambda x: x,
    "ACTIVATION_RELU": F.relu,
    "ACTIVATION_MISH": F.mish,
    "ACTIVATION_SILU": F.silu,
}


def activation_function(layer: d.ActivationLayer) -> Activation:
    """Return the torch function for an activation layer of the model file."""
    try:
        return _ACTIVATIONS[layer.activation]
    except KeyError:
        raise ModelFormatError(
            f"activation layer {layer.name!r} has unknown activation {layer.activation!r}; "
            f"expected one of {sorted(_ACTIVATIONS)}"
        ) from None


@dataclass
class BoardMask:
    """Quantities derived once per batch from the on-board plane (input plane 0).

    ``area`` is the number of on-board points per position, shape (N, 1, 1, 1).
    """

    mask: torch.Tensor
    area: torch.Tensor
    # (sqrt(area) - 14) / 10: the second global-pooling feature's scale.
    mean_scale: torch.Tensor
    # (sqrt(area) - 14)^2 / 100 - 0.1: the value head's third pooling feature's scale.
    value_mean_scale: torch.Tensor
    # mask - 1: added before the max so that off-board points (0 after a masked
    # norm and activation) become -1, below every on-board value.
    max_offset: torch.Tensor
    # (N, 1, 1, H*W) bool, True for on-board keys. None for nets without attention.
    attention_keys: torch.Tensor | None = None
    # RoPE cos and sin tables per attention block and tensor size, filled by the blocks.
    rotary_cache: dict = field(default_factory=dict)

    @classmethod
    def from_input(cls, binary_input: torch.Tensor, with_attention: bool) -> "BoardMask":
        mask = binary_input[:, 0:1, :, :]
        area = mask.sum(dim=(2, 3), keepdim=True)
        offset = torch.sqrt(area) - 14.0
        keys = None
        if with_attention:
            keys = (mask != 0).reshape(mask.shape[0], 1, 1, -1)
        return cls(
            mask=mask,
            area=area,
            mean_scale=offset / 10.0,
            value_mean_scale=offset * offset / 100.0 - 0.1,
            max_offset=mask - 1.0,
            attention_keys=keys,
        )


class Recorder:
    """Collects the tensors of the requested layer names during one forward pass."""

    def __init__(self, requested: frozenset[str] = frozenset()) -> None:
        self.requested = requested
        self.outputs: dict[str, torch.Tensor] = {}

    def record(self, name: str, tensor: torch.Tensor) -> None:
        if name in self.requested:
            self.outputs[name] = tensor


def global_pool(x: torch.Tensor, board: BoardMask) -> torch.Tensor:
    """Pool (N, C, H, W) to (N, 3C): mean, scaled mean and max over on-board points.

    ``x`` must be 0 off-board, as it is after a masked norm and an activation
    that maps 0 to 0. The max adds ``mask - 1`` first, as KataGo does, so an
    on-board max below -1 gives -1 here exactly as in KataGo.
    """
    mean = x.sum(dim=(2, 3), keepdim=True) / board.area
    maximum = (x + board.max_offset).amax(dim=(2, 3), keepdim=True)
    pooled = torch.cat((mean, mean * board.mean_scale, maximum), dim=1)
    return pooled.flatten(1)


def value_head_pool(x: torch.Tensor, board: BoardMask) -> torch.Tensor:
    """Pool (N, C, H, W) to (N, 3C) as KataGo's value head does: three scaled means."""
    mean = x.sum(dim=(2, 3), keepdim=True) / board.area
    pooled = torch.cat((mean, mean * board.mean_scale, mean * board.value_mean_scale), dim=1)
    return pooled.flatten(1)


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def conv2d(layer: d.ConvLayer) -> nn.Conv2d:
    """Build a bias-free 'same'-padded convolution holding the layer's weights."""
    conv = nn.Conv2d(
        layer.in_channels,
        layer.out_channels,
        kernel_size=(layer.conv_y, layer.conv_x),
        padding=(layer.dilation_y * (layer.conv_y // 2), layer.dilation_x * (layer.conv_x // 2)),
        dilation=(layer.dilation_y, layer.dilation_x),
        bias=False,
    )
    expected = (layer.out_channels, layer.in_channels, layer.conv_y, layer.conv_x)
    if tuple(layer.weight.shape) != expected:
        raise ModelFormatError(
            f"conv layer {layer.name!r} has weights of shape {tuple(layer.weight.shape)}, "
            f"expected {expected} (out, in, y, x)"
        )
    if layer.conv_y % 2 == 0 or layer.conv_x % 2 == 0:
        raise ModelFormatError(
            f"conv layer {layer.name!r} has an even kernel {layer.conv_y}x{layer.conv_x}; "
            "KataGo nets use odd kernels only"
        )
    conv.weight.data.copy_(_tensor(layer.weight))
    return conv


def linear(layer: d.MatMulLayer, bias: d.MatBiasLayer | None = None) -> nn.Linear:
    """Build a linear layer from a file matmul (weights stored as (in, out)) and optional bias."""
    module = nn.Linear(layer.in_channels, layer.out_channels, bias=bias is not None)
    if tuple(layer.weight.shape) != (layer.in_channels, layer.out_channels):
        raise ModelFormatError(
            f"matmul layer {layer.name!r} has weights of shape {tuple(layer.weight.shape)}, "
            f"expected {(layer.in_channels, layer.out_channels)} (in, out)"
        )
    module.weight.data.copy_(_tensor(layer.weight).T)
    if bias is not None:
        if bias.num_channels != layer.out_channels:
            raise ModelFormatError(
                f"bias layer {bias.name!r} has {bias.num_channels} channels but matmul "
                f"{layer.name!r} outputs {layer.out_channels}"
            )
        module.bias.data.copy_(_tensor(bias.weight))
    return module


class MaskedAffine(nn.Module):
    """KataGo's batch-norm-format layer in inference form, followed by the mask.

    ``(x - mean) / sqrt(variance + epsilon) * scale + bias`` is folded into one
    multiplier and one offset per channel (computed in float64).
    """

    def __init__(self, layer: d.BatchNormLayer) -> None:
        super().__init__()
        channels = layer.num_channels
        mean = np.asarray(layer.mean, dtype=np.float64)
        variance = np.asarray(layer.variance, dtype=np.float64)
        scale = np.ones(channels) if layer.scale is None else np.asarray(layer.scale, dtype=np.float64)
        bias = np.zeros(channels) if layer.bias is None else np.asarray(layer.bias, dtype=np.float64)
        multiplier = scale / np.sqrt(variance + layer.epsilon)
        offset = bias - mean * multiplier
        self.register_buffer("multiplier", _tensor(multiplier).view(1, channels, 1, 1))
        self.register_buffer("offset", _tensor(offset).view(1, channels, 1, 1))

    def forward(self, x: torch.Tensor, board: BoardMask) -> torch.Tensor:
        return (x * self.multiplier + self.offset) * board.mask


class TrunkRMSNorm(nn.Module):
    """Trunk-final RMS norm of version 17 files, followed by the mask.

    Spatial: one RMS per position over channels and on-board points,
    ``x / sqrt(sum(x^2 * mask) / (C * area + eps) + eps)``. Non-spatial: one RMS
    per board point over channels, as ``torch.nn.RMSNorm``. Both then apply
    ``* gamma + beta``.
    """

    def __init__(self, layer: d.RMSNormLayer) -> None:
        super().__init__()
        if layer.cgroup_size:
            raise ModelFormatError(
                f"norm layer {layer.name!r} uses grouped RMS norm (group size {layer.cgroup_size}), "
                "which KataGo's exporter and engine do not support"
            )
        channels = layer.num_channels
        self.spatial = layer.spatial
        self.epsilon = float(layer.epsilon)
        self.register_buffer("gamma", _tensor(layer.gamma).view(1, channels, 1, 1))
        self.register_buffer("beta", _tensor(layer.beta).view(1, channels, 1, 1))

    def forward(self, x: torch.Tensor, board: BoardMask) -> torch.Tensor:
        if self.spatial:
            channels = x.shape[1]
            sum_squares = (x * x * board.mask).sum(dim=(1, 2, 3), keepdim=True)
            mean_square = sum_squares / (channels * board.area + self.epsilon)
        else:
            mean_square = (x * x).mean(dim=1, keepdim=True)
        normalized = x * torch.rsqrt(mean_square + self.epsilon)
        return (normalized * self.gamma + self.beta) * board.mask


class NormActConv(nn.Module):
    """Masked norm, activation, then convolution: one half of a residual block."""

    def __init__(self, norm: d.BatchNormLayer, activation: d.ActivationLayer, conv: d.ConvLayer) -> None:
        super().__init__()
        self.norm = MaskedAffine(norm)
        self.act = activation_function(activation)
        self.conv = conv2d(conv)

    def forward(self, x: torch.Tensor, board: BoardMask) -> torch.Tensor:
        return self.conv(self.act(self.norm(x, board)))


class ConvAndGlobalPool(nn.Module):
    """First half of a gpool block: a regular conv plus a bias from pooled gpool channels."""

    def __init__(self, block: d.GlobalPoolingBlock) -> None:
        super().__init__()
        self.norm = MaskedAffine(block.pre_bn)
        self.act = activation_function(block.pre_activation)
        self.regular_conv = conv2d(block.regular_conv)
        self.gpool_conv = conv2d(block.gpool_conv)
        self.gpool_norm = MaskedAffine(block.gpool_bn)
        self.gpool_act = activation_function(block.gpool_activation)
        self.gpool_to_bias = linear(block.gpool_to_bias_mul)

    def forward(self, x: torch.Tensor, board: BoardMask) -> torch.Tensor:
        h = self.act(self.norm(x, board))
        regular = self.regular_conv(h)
        g = self.gpool_act(self.gpool_norm(self.gpool_conv(h), board))
        bias = self.gpool_to_bias(global_pool(g, board))
        return regular + bias[:, :, None, None]


class ResidualBlock(nn.Module):
    """Ordinary or gpool residual block; records ``.normactconv1.out``, ``.normactconv2.out``, ``.out``."""

    def __init__(self, block: d.OrdinaryBlock | d.GlobalPoolingBlock, name: str) -> None:
        super().__init__()
        self.name = name
        if isinstance(block, d.GlobalPoolingBlock):
            self.normactconv1: nn.Module = ConvAndGlobalPool(block)
        else:
            self.normactconv1 = NormActConv(block.pre_bn, block.pre_activation, block.regular_conv)
        self.normactconv2 = NormActConv(block.mid_bn, block.mid_activation, block.final_conv)

    def forward(self, x: torch.Tensor, board: BoardMask, recorder: Recorder) -> torch.Tensor:
        h = self.normactconv1(x, board)
        recorder.record(self.name + ".normactconv1.out", h)
        out = self.normactconv2(h, board)
        recorder.record(self.name + ".normactconv2.out", out)
        recorder.record(self.name + ".out", out)
        return out


class NestedBottleneckBlock(nn.Module):
    """1x1 conv down, a stack of inner residual blocks, 1x1 conv up."""

    def __init__(self, block: d.NestedBottleneckBlock, name: str, inner_names: list[str]) -> None:
        super().__init__()
        self.name = name
        self.normactconvp = NormActConv(block.pre_bn, block.pre_activation, block.pre_conv)
        self.blockstack = nn.ModuleList(
            build_block(inner, inner_name) for inner, inner_name in zip(block.blocks, inner_names)
        )
        self.normactconvq = NormActConv(block.post_bn, block.post_activation, block.post_conv)

    def forward(self, x: torch.Tensor, board: BoardMask, recorder: Recorder) -> torch.Tensor:
        h = self.normactconvp(x, board)
        recorder.record(self.name + ".normactconvp.out", h)
        for inner in self.blockstack:
            h = h + inner(h, board, recorder)
        out = self.normactconvq(h, board)
        recorder.record(self.name + ".normactconvq.out", out)
        recorder.record(self.name + ".out", out)
        return out


def _rms_norm(layer: d.TransformerRMSNorm) -> nn.RMSNorm:
    norm = nn.RMSNorm(layer.num_channels, eps=float(layer.epsilon))
    norm.weight.data.copy_(_tensor(layer.weight))
    return norm


def _fixed_rope_frequencies(theta: float, head_dim: int) -> np.ndarray:
    """Frequencies (1, head_dim/2, 2) as (omega_x, omega_y) of KataGo's fixed 2D RoPE.

    The first quarter of the head dims rotates with the row, the second with
    the column, each at ``theta^(-4i/head_dim)`` for i in 0..head_dim/4-1.
    """
    if head_dim % 4 != 0:
        raise ModelFormatError(f"fixed 2D RoPE needs a query head dim divisible by 4, got {head_dim}")
    quarter = head_dim // 4
    exponents = np.arange(0, head_dim // 2, 2, dtype=np.float32) / np.float32(head_dim // 2)
    base = (np.float32(1.0) / (np.float32(theta) ** exponents)).astype(np.float32)
    freqs = np.zeros((1, 2 * quarter, 2), dtype=np.float32)
    freqs[0, :quarter, 1] = base
    freqs[0, quarter:, 0] = base
    return freqs


class TransformerAttention(nn.Module):
    """Pre-norm multi-head self-attention over board points with 2D RoPE.

    Supports grouped-query attention (query head h uses kv head
    ``h // (num_heads / num_kv_heads)``), query and value head dims other than
    C / heads, and fixed or learnable RoPE. Off-board points are masked as keys;
    their query rows produce values that no later on-board result depends on.
    """

    def __init__(self, block: d.TransformerAttentionBlock, name: str) -> None:
        super().__init__()
        self.name = name
        self.num_heads = block.num_heads
        self.num_kv_heads = block.num_kv_heads
        if self.num_heads % self.num_kv_heads != 0:
            raise ModelFormatError(
                f"attention block {block.name!r} has {self.num_heads} query heads, "
                f"not a multiple of its {self.num_kv_heads} kv heads"
            )
        self.q_head_dim = block.q_head_dim
        self.v_head_dim = block.v_head_dim
        self.norm = _rms_norm(block.pre_ln)
        self.q_proj = linear(block.q_proj)
        self.k_proj = linear(block.k_proj)
        self.v_proj = linear(block.v_proj)
        self.out_proj = linear(block.out_proj)
        # (kv heads or 1, head dim / 2, 2) rotation speeds per (column, row); None without RoPE.
        frequencies = _tensor(self._rope_frequencies(block)) if block.use_rope else None
        self.register_buffer("rope_frequencies", frequencies)

    def _rope_frequencies(self, block: d.TransformerAttentionBlock) -> np.ndarray:
        if not block.learnable_rope:
            return _fixed_rope_frequencies(float(block.rope_theta), self.q_head_dim)
        freqs = np.asarray(block.rope_freqs, dtype=np.float32)
        expected = (self.num_kv_heads, self.q_head_dim // 2, 2)
        if freqs.shape != expected:
            raise ModelFormatError(
                f"attention block {block.name!r} has RoPE frequencies of shape {freqs.shape}, expected {expected}"
            )
        return freqs

    def _rotary_tables(self, height: int, width: int, board: BoardMask) -> tuple[torch.Tensor, torch.Tensor]:
        """Return cos and sin of shape (S, kv heads or 1, pairs), cached per batch."""
        key = (id(self), height, width)
        cached = board.rotary_cache.get(key)
        if cached is None:
            freqs = self.rope_frequencies
            rows = torch.arange(height, device=freqs.device, dtype=freqs.dtype)
            cols = torch.arange(width, device=freqs.device, dtype=freqs.dtype)
            row = rows.repeat_interleave(width)[:, None, None]
            col = cols.repeat(height)[:, None, None]
            angles = col * freqs[None, :, :, 0] + row * freqs[None, :, :, 1]
            cached = (torch.cos(angles), torch.sin(angles))
            board.rotary_cache[key] = cached
        return cached

    @staticmethod
    def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        # x: (N, S, heads, D) with D/2 interleaved (even, odd) pairs.
        pairs = x.unflatten(-1, (-1, 2))
        even, odd = pairs[..., 0], pairs[..., 1]
        rotated = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1)
        return rotated.flatten(-2)

    def _apply_rope(self, q: torch.Tensor, k: torch.Tensor, height: int, width: int, board: BoardMask):
        cos_k, sin_k = self._rotary_tables(height, width, board)
        cos_q, sin_q = cos_k, sin_k
        if 1 < cos_k.shape[1] < self.num_heads:
            # Learnable frequencies are per kv head; each query head uses its kv head's.
            repeats = self.num_heads // cos_k.shape[1]
            cos_q = cos_k.repeat_interleave(repeats, dim=1)
            sin_q = sin_k.repeat_interleave(repeats, dim=1)
        return self._rotate(q, cos_q, sin_q), self._rotate(k, cos_k, sin_k)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keys: torch.Tensor | None) -> torch.Tensor:
        # Scaled dot-product attention falls back to a slow kernel when query
        # and value head dims differ (3.5x slower for q 32 / v 16 on CPU, torch
        # 2.13). Zero-padding the smaller one to the larger changes no result.
        scale = 1.0 / math.sqrt(self.q_head_dim)
        width = max(self.q_head_dim, self.v_head_dim)
        if self.v_head_dim < width:
            v = F.pad(v, (0, width - self.v_head_dim))
        if self.q_head_dim < width:
            q = F.pad(q, (0, width - self.q_head_dim))
            k = F.pad(k, (0, width - self.q_head_dim))
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=keys, scale=scale)
        return attended[..., : self.v_head_dim]

    def _attend_with_weights(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keys: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend with an explicit softmax and return the weights (N, heads, S, S) too."""
        logits = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.q_head_dim)
        if keys is not None:
            logits = logits.masked_fill(~keys, float("-inf"))
        weights = torch.softmax(logits, dim=-1)
        return torch.matmul(weights, v), weights

    def forward(self, x: torch.Tensor, board: BoardMask, recorder: Recorder) -> torch.Tensor:
        batch, channels, height, width = x.shape
        points = height * width
        seq = x.reshape(batch, channels, points).transpose(1, 2)
        normed = self.norm(seq)

        q = self.q_proj(normed).view(batch, points, self.num_heads, self.q_head_dim)
        k = self.k_proj(normed).view(batch, points, self.num_kv_heads, self.q_head_dim)
        v = self.v_proj(normed).view(batch, points, self.num_kv_heads, self.v_head_dim)
        if self.rope_frequencies is not None:
            q, k = self._apply_rope(q, k, height, width, board)

        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        repeats = self.num_heads // self.num_kv_heads
        if repeats > 1:
            k = k.repeat_interleave(repeats, dim=1)
            v = v.repeat_interleave(repeats, dim=1)
        weights_name = self.name + ".attn_weights"
        if weights_name in recorder.requested:
            attended, weights = self._attend_with_weights(q, k, v, board.attention_keys)
            recorder.record(weights_name, weights)
        else:
            attended = self._attend(q, k, v, board.attention_keys)

        merged = attended.transpose(1, 2).reshape(batch, points, self.num_heads * self.v_head_dim)
        out = self.out_proj(merged).transpose(1, 2).reshape(batch, channels, height, width)
        recorder.record(self.name + ".out", out)
        return out


class TransformerFFN(nn.Module):
    """Pre-norm feed-forward block per board point: SwiGLU, or linear-activation-linear."""

    def __init__(self, block: d.TransformerFFNBlock, name: str) -> None:
        super().__init__()
        self.name = name
        self.norm = _rms_norm(block.pre_ln)
        self.linear1 = linear(block.linear1)
        self.linear_gate = linear(block.linear_gate) if block.use_swiglu else None
        self.linear2 = linear(block.linear2)
        if not block.use_swiglu:
            # NOTE: the file does not store the activation of a plain FFN. KataGo's
            # training model uses the config's activation; ReLU is the default and
            # the only one seen in such configs. KataGo's engine rejects these nets.
            logger.warning("FFN block %s is not SwiGLU; assuming ReLU, which the file does not record", block.name)

    def forward(self, x: torch.Tensor, board: BoardMask, recorder: Recorder) -> torch.Tensor:
        batch, channels, height, width = x.shape
        seq = x.reshape(batch, channels, height * width).transpose(1, 2)
        normed = self.norm(seq)
        if self.linear_gate is not None:
            hidden = F.silu(self.linear1(normed)) * self.linear_gate(normed)
        else:
            hidden = F.relu(self.linear1(normed))
        out = self.linear2(hidden).transpose(1, 2).reshape(batch, channels, height, width)
        recorder.record(self.name + ".out", out)
        return out


def build_block(block: d.Block, name: str, inner_names: list[str] | None = None) -> nn.Module:
    """Build the torch module of one block; ``name`` is its KataGo layer-name prefix."""
    if isinstance(block, (d.OrdinaryBlock, d.GlobalPoolingBlock)):
        return ResidualBlock(block, name)
    if isinstance(block, d.NestedBottleneckBlock):
        return NestedBottleneckBlock(block, name, inner_names or inner_block_prefixes(name, block.blocks))
    if isinstance(block, d.TransformerAttentionBlock):
        return TransformerAttention(block, name)
    if isinstance(block, d.TransformerFFNBlock):
        return TransformerFFN(block, name)
    raise ModelFormatError(f"block {getattr(block, 'name', '?')!r} has unsupported kind {type(block).__name__}")
