"""Plain description of a KataGo network, as stored in its model file.

The dataclasses mirror the layer and block descriptors of KataGo's C++ engine
(``cpp/neuralnet/desc.h``): the reader fills them from a ``.bin.gz`` or
``.txt.gz`` file, the writer turns them back into bytes, and the network
builder turns them into torch modules. They hold numpy arrays and no torch
objects, so a description can be inspected, pickled or written without torch.

Array layouts (all float32, C-contiguous):

- ``ConvLayer.weight``: (out_channels, in_channels, conv_y, conv_x), the torch
  layout. The file stores (y, x, in, out); the reader and writer transpose.
- ``MatMulLayer.weight``: (in_channels, out_channels), as in the file.
- every per-channel vector: (num_channels,).

Layer and block names are the names written in the file (``model.blocks.3``
in files exported by KataGo's PyTorch code, ``rconv4`` in older files).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

import numpy as np

__all__ = [
    "ACTIVATIONS",
    "ConvLayer",
    "BatchNormLayer",
    "ActivationLayer",
    "MatMulLayer",
    "MatBiasLayer",
    "RMSNormLayer",
    "TransformerRMSNorm",
    "OrdinaryBlock",
    "GlobalPoolingBlock",
    "NestedBottleneckBlock",
    "TransformerAttentionBlock",
    "TransformerFFNBlock",
    "Block",
    "SGFMetadataEncoder",
    "Trunk",
    "PolicyHead",
    "ValueHead",
    "PostProcessParams",
    "ModelDesc",
]

# Activation names as written in files of version >= 11. Older files store
# none: their activations are always ReLU.
ACTIVATIONS = ("ACTIVATION_IDENTITY", "ACTIVATION_RELU", "ACTIVATION_MISH", "ACTIVATION_SILU")


@dataclass
class ConvLayer:
    name: str
    conv_y: int
    conv_x: int
    in_channels: int
    out_channels: int
    dilation_y: int
    dilation_x: int
    weight: np.ndarray


@dataclass
class BatchNormLayer:
    """Per-channel affine layer in KataGo's batch-norm format.

    Computes ``(x - mean) / sqrt(variance + epsilon) * scale + bias``, then the
    network multiplies by the on-board mask. KataGo also uses this format for
    fixup "bias-only" norms (mean 0, variance 1, no scale).
    """

    name: str
    num_channels: int
    epsilon: float
    has_scale: bool
    has_bias: bool
    mean: np.ndarray
    variance: np.ndarray
    scale: np.ndarray | None
    bias: np.ndarray | None


@dataclass
class ActivationLayer:
    name: str
    # One of ACTIVATIONS. For files of version < 11 the reader sets
    # "ACTIVATION_RELU" and ``name`` is the name the file gives the layer.
    activation: str


@dataclass
class MatMulLayer:
    name: str
    in_channels: int
    out_channels: int
    weight: np.ndarray


@dataclass
class MatBiasLayer:
    name: str
    num_channels: int
    weight: np.ndarray


@dataclass
class RMSNormLayer:
    """Trunk-final RMS norm of version >= 15 files with trunk norm kind 1."""

    name: str
    num_channels: int
    epsilon: float
    # True: one RMS per position over channels and on-board points.
    # False: one RMS per board point over channels.
    spatial: bool
    cgroup_size: int
    gamma: np.ndarray
    beta: np.ndarray


@dataclass
class TransformerRMSNorm:
    """Pre-norm of a transformer block: RMS over channels per point, times weight."""

    name: str
    num_channels: int
    epsilon: float
    weight: np.ndarray


@dataclass
class OrdinaryBlock:
    name: str
    pre_bn: BatchNormLayer
    pre_activation: ActivationLayer
    regular_conv: ConvLayer
    mid_bn: BatchNormLayer
    mid_activation: ActivationLayer
    final_conv: ConvLayer
    kind: str = field(default="ordinary_block", init=False)


@dataclass
class GlobalPoolingBlock:
    name: str
    pre_bn: BatchNormLayer
    pre_activation: ActivationLayer
    regular_conv: ConvLayer
    gpool_conv: ConvLayer
    gpool_bn: BatchNormLayer
    gpool_activation: ActivationLayer
    gpool_to_bias_mul: MatMulLayer
    mid_bn: BatchNormLayer
    mid_activation: ActivationLayer
    final_conv: ConvLayer
    kind: str = field(default="gpool_block", init=False)


@dataclass
class NestedBottleneckBlock:
    name: str
    num_blocks: int
    pre_bn: BatchNormLayer
    pre_activation: ActivationLayer
    pre_conv: ConvLayer
    blocks: list["Block"]
    post_bn: BatchNormLayer
    post_activation: ActivationLayer
    post_conv: ConvLayer
    kind: str = field(default="nested_bottleneck_block", init=False)


@dataclass
class TransformerAttentionBlock:
    name: str
    num_heads: int
    num_kv_heads: int
    q_head_dim: int
    v_head_dim: int
    use_rope: bool
    learnable_rope: bool
    pre_ln: TransformerRMSNorm
    q_proj: MatMulLayer
    k_proj: MatMulLayer
    v_proj: MatMulLayer
    out_proj: MatMulLayer
    # Fixed RoPE: rope_theta is set and rope_freqs is None.
    # Learnable RoPE: rope_freqs has shape (rope_num_kv_heads, rope_num_pairs, 2).
    rope_theta: float | None = None
    rope_num_kv_heads: int = 0
    rope_num_pairs: int = 0
    rope_freqs: np.ndarray | None = None
    kind: str = field(default="transformer_attention_block", init=False)


@dataclass
class TransformerFFNBlock:
    name: str
    num_channels: int
    ffn_channels: int
    use_swiglu: bool
    pre_ln: TransformerRMSNorm
    linear1: MatMulLayer
    linear_gate: MatMulLayer | None
    linear2: MatMulLayer
    kind: str = field(default="transformer_ffn_block", init=False)


Block = Union[
    OrdinaryBlock,
    GlobalPoolingBlock,
    NestedBottleneckBlock,
    TransformerAttentionBlock,
    TransformerFFNBlock,
]


@dataclass
class SGFMetadataEncoder:
    name: str
    meta_encoder_version: int
    num_input_meta_channels: int
    mul1: MatMulLayer
    bias1: MatBiasLayer
    act1: ActivationLayer
    mul2: MatMulLayer
    bias2: MatBiasLayer
    act2: ActivationLayer
    mul3: MatMulLayer


@dataclass
class Trunk:
    name: str
    num_blocks: int
    trunk_num_channels: int
    mid_num_channels: int
    regular_num_channels: int
    gpool_num_channels: int
    # 0: the trunk tip is a BatchNormLayer; 1: an RMSNormLayer (version >= 15).
    trunk_norm_kind: int
    initial_conv: ConvLayer
    initial_matmul: MatMulLayer
    sgf_metadata_encoder: SGFMetadataEncoder | None
    blocks: list[Block]
    trunk_tip_norm: BatchNormLayer | RMSNormLayer
    trunk_tip_activation: ActivationLayer
    # Channel count of the unused "dilated" slot in the trunk header; exporters
    # write the gpool channel count there. None: write gpool_num_channels.
    dilated_num_channels: int | None = None


@dataclass
class PolicyHead:
    name: str
    # 1 for version <= 11, 2 for 12..15, 4 for 16, 2 or 4 (from the file) for 17.
    policy_out_channels: int
    p1_conv: ConvLayer
    g1_conv: ConvLayer
    g1_bn: BatchNormLayer
    g1_activation: ActivationLayer
    gpool_to_bias_mul: MatMulLayer
    p1_bn: BatchNormLayer
    p1_activation: ActivationLayer
    p2_conv: ConvLayer
    gpool_to_pass_mul: MatMulLayer
    # Present only in version >= 15 files.
    gpool_to_pass_bias: MatBiasLayer | None = None
    pass_activation: ActivationLayer | None = None
    gpool_to_pass_mul2: MatMulLayer | None = None


@dataclass
class ValueHead:
    name: str
    v1_conv: ConvLayer
    v1_bn: BatchNormLayer
    v1_activation: ActivationLayer
    v2_mul: MatMulLayer
    v2_bias: MatBiasLayer
    v2_activation: ActivationLayer
    v3_mul: MatMulLayer
    v3_bias: MatBiasLayer
    sv3_mul: MatMulLayer
    sv3_bias: MatBiasLayer
    v_ownership_conv: ConvLayer


@dataclass
class PostProcessParams:
    """Output multipliers; version <= 12 files store none and imply these defaults."""

    td_score_multiplier: float = 20.0
    score_mean_multiplier: float = 20.0
    score_stdev_multiplier: float = 20.0
    lead_multiplier: float = 20.0
    variance_time_multiplier: float = 40.0
    shortterm_value_error_multiplier: float = 0.25
    shortterm_score_error_multiplier: float = 30.0


@dataclass
class ModelDesc:
    name: str
    model_version: int
    num_input_channels: int
    num_input_global_channels: int
    # 0 unless the net has an SGF-metadata encoder (192 for encoder version 1).
    num_input_meta_channels: int
    meta_encoder_version: int
    prefer_pass_alive_under_suicide_rules: bool
    post_process: PostProcessParams
    trunk: Trunk
    policy_head: PolicyHead
    value_head: ValueHead
    # Hex SHA-256 of the file the description was read from; "" when built in memory.
    sha256: str = ""
