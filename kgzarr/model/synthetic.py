"""Random KataGo network descriptions, for demos, tests and benchmarks.

:func:`random_model` builds a :class:`~kgzarr.model.desc.ModelDesc` with the
layer layout KataGo's exporter writes for the requested model version, filled
with seeded random weights. Convolution and matmul weights are drawn with a
fan-in scale: He scale inside a residual branch, and the last layer of each
branch shrunk by the square root of the block count. Activations therefore
stay of order one through many blocks. Batch-norm layers get non-trivial mean,
variance and scale, so every layer kind computes something.

:func:`model_summary` counts parameters the way KataGo's engine reports them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kgzarr.errors import ConfigError, UnsupportedModelVersion
from kgzarr.model.desc import (
    ACTIVATIONS,
    ActivationLayer,
    BatchNormLayer,
    Block,
    ConvLayer,
    GlobalPoolingBlock,
    MatBiasLayer,
    MatMulLayer,
    ModelDesc,
    NestedBottleneckBlock,
    OrdinaryBlock,
    PolicyHead,
    PostProcessParams,
    RMSNormLayer,
    SGFMetadataEncoder,
    TransformerAttentionBlock,
    TransformerFFNBlock,
    TransformerRMSNorm,
    Trunk,
    ValueHead,
)
from kgzarr.model.reader import MAX_MODEL_VERSION, MIN_MODEL_VERSION

__all__ = ["random_model", "model_summary", "BLOCK_KINDS", "TRUNK_NORMS"]

BLOCK_KINDS = ("ordinary_block", "gpool_block", "transformer_attention_block", "transformer_ffn_block")
# trunk_norm values: a batch-norm-format tip, or an RMS norm (version >= 15)
# that is spatial (one RMS per position) or per board point.
TRUNK_NORMS = ("batch_norm", "rms_spatial", "rms")

_NUM_SPATIAL_FEATURES = 22
_NUM_GLOBAL_FEATURES = 19
_NUM_META_FEATURES = 192
_META_HIDDEN_CHANNELS = 32
# The exporter writes this epsilon for every batch-norm-format layer.
_BN_EPSILON = 1e-20
_RMS_EPSILON = 1e-6
_ROPE_THETA = 100.0


def random_model(
    name: str,
    *,
    version: int = 15,
    num_blocks: int,
    trunk_channels: int,
    mid_channels: int,
    gpool_channels: int,
    block_kinds: Sequence[str] | None = None,
    nested: bool = False,
    activation: str = "ACTIVATION_RELU",
    seed: int = 0,
    trunk_norm: str = "batch_norm",
    meta_encoder: bool = False,
    policy_out_channels: int = 2,
    num_heads: int = 2,
    learnable_rope: bool = False,
    ffn_channels: int | None = None,
    swiglu: bool = True,
) -> ModelDesc:
    """Build a valid random network description.

    ``block_kinds`` lists one entry of :data:`BLOCK_KINDS` per top-level
    block; the default is KataGo's usual pattern, a gpool block every third
    block. With ``nested=True`` every top-level block is a nested bottleneck
    (the b*nbt layout): a 1x1 conv down to ``mid_channels``, two inner blocks
    (the first is a gpool block where the entry is ``gpool_block``) and a 1x1
    conv back up. ``trunk_norm``, ``meta_encoder`` and ``policy_out_channels``
    (2 or 4) only apply to the versions whose files can store them: 15 and
    later, 15 and later, and 17. Transformer blocks use ``num_heads`` heads
    of size ``trunk_channels / num_heads`` with fixed (or learnable) RoPE and
    a SwiGLU (or plain) FFN of ``ffn_channels`` (default twice the trunk).

    Head widths follow KataGo's configs loosely: policy trunk/8, value
    trunk/4, value hidden trunk/3 (at least 2, 2 and 4).
    """
    kinds = _resolve_block_kinds(num_blocks, block_kinds)
    shape = _Shape(
        version=version,
        trunk=trunk_channels,
        mid=mid_channels,
        gpool=gpool_channels,
        activation=activation,
        total_blocks=num_blocks * (3 if nested else 1),
        num_heads=num_heads,
        learnable_rope=learnable_rope,
        ffn=ffn_channels or 2 * trunk_channels,
        swiglu=swiglu,
    )
    _check_options(shape, kinds, nested, trunk_norm, meta_encoder, policy_out_channels)
    builder = _Builder(np.random.default_rng(seed), shape)

    trunk = builder.trunk(kinds, nested, trunk_norm, meta_encoder)
    return ModelDesc(
        name=name,
        model_version=version,
        num_input_channels=_NUM_SPATIAL_FEATURES,
        num_input_global_channels=_NUM_GLOBAL_FEATURES,
        num_input_meta_channels=_NUM_META_FEATURES if meta_encoder else 0,
        meta_encoder_version=1 if meta_encoder else 0,
        prefer_pass_alive_under_suicide_rules=False,
        post_process=_post_process(version),
        trunk=trunk,
        policy_head=builder.policy_head(_policy_channels(version, policy_out_channels)),
        value_head=builder.value_head(),
    )


def model_summary(desc: ModelDesc) -> dict[str, Any]:
    """Return name, version, block counts, channel counts and the parameter count of ``desc``.

    Parameters are counted as KataGo's engine counts them: every conv, matmul
    and bias weight, batch-norm scale and bias but not the running mean and
    variance, RMS-norm weights and learnable RoPE frequencies.
    """
    trunk = desc.trunk
    kinds: dict[str, int] = {}
    for block in trunk.blocks:
        kinds[block.kind] = kinds.get(block.kind, 0) + 1
    return {
        "name": desc.name,
        "version": desc.model_version,
        "blocks": len(trunk.blocks),
        "block_kinds": kinds,
        "trunk_channels": trunk.trunk_num_channels,
        "mid_channels": trunk.mid_num_channels,
        "gpool_channels": trunk.gpool_num_channels,
        "policy_out_channels": desc.policy_head.policy_out_channels,
        "meta_encoder_version": desc.meta_encoder_version,
        "parameters": _count_parameters(desc),
    }


# -- options ------------------------------------------------------------------


@dataclass(frozen=True)
class _Shape:
    version: int
    trunk: int
    mid: int
    gpool: int
    activation: str
    total_blocks: int
    num_heads: int
    learnable_rope: bool
    ffn: int
    swiglu: bool

    @property
    def policy(self) -> int:
        return max(2, self.trunk // 8)

    @property
    def value(self) -> int:
        return max(2, self.trunk // 4)

    @property
    def value_hidden(self) -> int:
        return max(4, self.trunk // 3)


def _resolve_block_kinds(num_blocks: int, block_kinds: Sequence[str] | None) -> list[str]:
    if num_blocks < 1:
        raise ConfigError(f"num_blocks is {num_blocks}, expected at least 1")
    if block_kinds is None:
        # Global pooling in blocks 3, 6, 9, ... (1-based), as in KataGo's b28c512nbt config.
        return ["gpool_block" if index % 3 == 2 else "ordinary_block" for index in range(num_blocks)]
    kinds = list(block_kinds)
    if len(kinds) != num_blocks:
        raise ConfigError(f"block_kinds has {len(kinds)} entries but num_blocks is {num_blocks}; give one kind per block")
    for kind in kinds:
        if kind not in BLOCK_KINDS:
            raise ConfigError(f"unknown block kind {kind!r} in block_kinds; use one of {', '.join(BLOCK_KINDS)}")
    return kinds


def _check_options(
    shape: _Shape, kinds: list[str], nested: bool, trunk_norm: str, meta_encoder: bool, policy_out_channels: int
) -> None:
    version = shape.version
    if not MIN_MODEL_VERSION <= version <= MAX_MODEL_VERSION:
        raise UnsupportedModelVersion(
            f"version is {version}, expected {MIN_MODEL_VERSION} to {MAX_MODEL_VERSION}; pick a supported model version"
        )
    if min(shape.trunk, shape.mid, shape.gpool) < 1:
        raise ConfigError("trunk_channels, mid_channels and gpool_channels must all be at least 1")
    if "gpool_block" in kinds and shape.mid <= shape.gpool:
        raise ConfigError(
            f"mid_channels {shape.mid} must exceed gpool_channels {shape.gpool}, because a gpool block "
            "keeps mid - gpool regular channels"
        )
    if activation_error := _activation_error(shape):
        raise ConfigError(activation_error)
    if trunk_norm not in TRUNK_NORMS:
        raise ConfigError(f"unknown trunk_norm {trunk_norm!r}; use one of {', '.join(TRUNK_NORMS)}")
    if version < 15 and (trunk_norm != "batch_norm" or meta_encoder):
        raise ConfigError("an RMS trunk norm and the SGF-metadata encoder need version 15 or later")
    if version == 17 and policy_out_channels not in (2, 4):
        raise ConfigError(f"policy_out_channels is {policy_out_channels}; version 17 files hold 2 or 4")
    if any(kind.startswith("transformer") for kind in kinds):
        _check_transformer(shape, nested)


def _activation_error(shape: _Shape) -> str:
    if shape.activation not in ACTIVATIONS:
        return f"unknown activation {shape.activation!r}; use one of {', '.join(ACTIVATIONS)}"
    if shape.version < 11 and shape.activation != "ACTIVATION_RELU":
        return f"version {shape.version} files can only hold ReLU activations; use version 11 or later"
    return ""


def _check_transformer(shape: _Shape, nested: bool) -> None:
    if nested:
        raise ConfigError("transformer blocks cannot be combined with nested=True; use nested=False")
    if shape.num_heads < 1 or shape.trunk % shape.num_heads or (shape.trunk // shape.num_heads) % 2:
        raise ConfigError(
            f"trunk_channels {shape.trunk} must split into num_heads {shape.num_heads} heads of even size"
        )


def _policy_channels(version: int, requested: int) -> int:
    if version == 17:
        return requested
    if version == 16:
        return 4
    return 2 if version >= 12 else 1


def _post_process(version: int) -> PostProcessParams:
    if version < 13:
        return PostProcessParams()
    # Version 13 and later files store the multipliers, and exporters write 150 for this one.
    return PostProcessParams(shortterm_score_error_multiplier=150.0)


# -- layers and blocks ----------------------------------------------------------


class _Builder:
    """Creates seeded random layers with the exporter's names."""

    def __init__(self, rng: np.random.Generator, shape: _Shape) -> None:
        self.rng = rng
        self.shape = shape
        # Shrinks the last layer of each residual branch so the trunk, a sum
        # of all branches, keeps a variance of order one.
        self.branch_scale = 1.0 / math.sqrt(shape.total_blocks)

    def normal(self, size: int | tuple[int, ...], std: float, mean: float = 0.0) -> np.ndarray:
        return (mean + std * self.rng.standard_normal(size)).astype(np.float32)

    # -- layers --------------------------------------------------------------

    def conv(self, name: str, in_channels: int, out_channels: int, kernel: int = 3, gain: float = math.sqrt(2.0)) -> ConvLayer:
        std = gain / math.sqrt(in_channels * kernel * kernel)
        weight = self.normal((out_channels, in_channels, kernel, kernel), std)
        return ConvLayer(name, kernel, kernel, in_channels, out_channels, 1, 1, weight)

    def batch_norm(self, name: str, channels: int, *, has_scale: bool = True) -> BatchNormLayer:
        return BatchNormLayer(
            name,
            channels,
            _BN_EPSILON,
            has_scale,
            True,
            mean=self.normal(channels, 0.2),
            variance=np.exp(self.normal(channels, 0.2)).astype(np.float32),
            scale=self.normal(channels, 0.1, mean=1.0) if has_scale else None,
            bias=self.normal(channels, 0.1),
        )

    def bias_mask(self, name: str, channels: int) -> BatchNormLayer:
        """Build a bias-only layer in batch-norm format, as the exporter writes head biases."""
        ones = np.ones(channels, dtype=np.float32)
        zeros = np.zeros(channels, dtype=np.float32)
        return BatchNormLayer(name, channels, _BN_EPSILON, False, True, zeros, ones, None, self.normal(channels, 0.1))

    def activation(self, name: str) -> ActivationLayer:
        return ActivationLayer(name, self.shape.activation)

    def matmul(self, name: str, in_channels: int, out_channels: int, gain: float = 1.0) -> MatMulLayer:
        weight = self.normal((in_channels, out_channels), gain / math.sqrt(in_channels))
        return MatMulLayer(name, in_channels, out_channels, weight)

    def matbias(self, name: str, channels: int) -> MatBiasLayer:
        return MatBiasLayer(name, channels, self.normal(channels, 0.1))

    def transformer_norm(self, name: str) -> TransformerRMSNorm:
        channels = self.shape.trunk
        return TransformerRMSNorm(name, channels, _RMS_EPSILON, self.normal(channels, 0.1, mean=1.0))

    # -- blocks --------------------------------------------------------------

    def ordinary_block(self, name: str, channels: int, mid: int) -> OrdinaryBlock:
        return OrdinaryBlock(
            name,
            pre_bn=self.batch_norm(f"{name}.normactconv1.norm", channels),
            pre_activation=self.activation(f"{name}.normactconv1.act"),
            regular_conv=self.conv(f"{name}.normactconv1.conv", channels, mid),
            mid_bn=self.batch_norm(f"{name}.normactconv2.norm", mid),
            mid_activation=self.activation(f"{name}.normactconv2.act"),
            final_conv=self.conv(f"{name}.normactconv2.conv", mid, channels, gain=self.branch_scale),
        )

    def gpool_block(self, name: str, channels: int, mid: int) -> GlobalPoolingBlock:
        regular, gpool, prefix = mid - self.shape.gpool, self.shape.gpool, f"{name}.normactconv1"
        return GlobalPoolingBlock(
            name,
            pre_bn=self.batch_norm(f"{prefix}.norm", channels),
            pre_activation=self.activation(f"{prefix}.act"),
            regular_conv=self.conv(f"{prefix}.convpool.conv1r", channels, regular),
            gpool_conv=self.conv(f"{prefix}.convpool.conv1g", channels, gpool),
            gpool_bn=self.batch_norm(f"{prefix}.convpool.normg", gpool),
            gpool_activation=self.activation(f"{prefix}.convpool.actg"),
            gpool_to_bias_mul=self.matmul(f"{prefix}.convpool.linear_g", 3 * gpool, regular),
            mid_bn=self.batch_norm(f"{name}.normactconv2.norm", regular),
            mid_activation=self.activation(f"{name}.normactconv2.act"),
            final_conv=self.conv(f"{name}.normactconv2.conv", regular, channels, gain=self.branch_scale),
        )

    def nested_block(self, name: str, gpool_first: bool) -> NestedBottleneckBlock:
        trunk, mid = self.shape.trunk, self.shape.mid
        inner: list[Block] = []
        for index in range(2):
            inner_name = f"{name}.blockstack.{index}"
            if gpool_first and index == 0:
                inner.append(self.gpool_block(inner_name, mid, mid))
            else:
                inner.append(self.ordinary_block(inner_name, mid, mid))
        return NestedBottleneckBlock(
            name,
            len(inner),
            pre_bn=self.batch_norm(f"{name}.normactconvp.norm", trunk),
            pre_activation=self.activation(f"{name}.normactconvp.act"),
            pre_conv=self.conv(f"{name}.normactconvp.conv", trunk, mid, kernel=1),
            blocks=inner,
            post_bn=self.batch_norm(f"{name}.normactconvq.norm", mid),
            post_activation=self.activation(f"{name}.normactconvq.act"),
            post_conv=self.conv(f"{name}.normactconvq.conv", mid, trunk, kernel=1, gain=self.branch_scale),
        )

    def attention_block(self, name: str) -> TransformerAttentionBlock:
        trunk, heads = self.shape.trunk, self.shape.num_heads
        head_dim = trunk // heads
        block = TransformerAttentionBlock(
            name,
            heads,
            heads,
            head_dim,
            head_dim,
            True,
            self.shape.learnable_rope,
            pre_ln=self.transformer_norm(f"{name}.norm1"),
            q_proj=self.matmul(f"{name}.q_proj", trunk, trunk),
            k_proj=self.matmul(f"{name}.k_proj", trunk, trunk),
            v_proj=self.matmul(f"{name}.v_proj", trunk, trunk),
            out_proj=self.matmul(f"{name}.out_proj", trunk, trunk, gain=self.branch_scale),
        )
        if self.shape.learnable_rope:
            block.rope_num_kv_heads, block.rope_num_pairs = heads, head_dim // 2
            # Positive frequencies per kv head, pair and axis (x, y), spread around exp(-2).
            block.rope_freqs = np.exp(self.normal((heads, head_dim // 2, 2), 1.0, mean=-2.0))
        else:
            block.rope_theta = _ROPE_THETA
        return block

    def ffn_block(self, name: str) -> TransformerFFNBlock:
        trunk, ffn = self.shape.trunk, self.shape.ffn
        gate = self.matmul(f"{name}.ffn_linear_gate", trunk, ffn) if self.shape.swiglu else None
        return TransformerFFNBlock(
            name,
            trunk,
            ffn,
            self.shape.swiglu,
            pre_ln=self.transformer_norm(f"{name}.norm"),
            linear1=self.matmul(f"{name}.ffn_linear1", trunk, ffn, gain=math.sqrt(2.0)),
            linear_gate=gate,
            linear2=self.matmul(f"{name}.ffn_linear2", ffn, trunk, gain=self.branch_scale),
        )

    def block(self, name: str, kind: str, nested: bool) -> Block:
        if nested:
            return self.nested_block(name, gpool_first=kind == "gpool_block")
        if kind == "ordinary_block":
            return self.ordinary_block(name, self.shape.trunk, self.shape.mid)
        if kind == "gpool_block":
            return self.gpool_block(name, self.shape.trunk, self.shape.mid)
        if kind == "transformer_attention_block":
            return self.attention_block(name)
        return self.ffn_block(name)

    # -- trunk and heads -----------------------------------------------------

    def meta_encoder(self) -> SGFMetadataEncoder:
        name, hidden = "model.sgf_metadata_encoder", _META_HIDDEN_CHANNELS
        return SGFMetadataEncoder(
            name,
            1,
            _NUM_META_FEATURES,
            mul1=self.matmul(f"{name}.mul1", _NUM_META_FEATURES, hidden),
            bias1=self.matbias(f"{name}.bias1", hidden),
            act1=self.activation(f"{name}.act1"),
            mul2=self.matmul(f"{name}.mul2", hidden, hidden),
            bias2=self.matbias(f"{name}.bias2", hidden),
            act2=self.activation(f"{name}.act2"),
            mul3=self.matmul(f"{name}.mul3", hidden, self.shape.trunk, gain=0.5),
        )

    def trunk_tip(self, trunk_norm: str) -> BatchNormLayer | RMSNormLayer:
        name, channels = "model.norm_trunkfinal", self.shape.trunk
        if trunk_norm == "batch_norm":
            return self.batch_norm(name, channels)
        gamma, beta = self.normal(channels, 0.1, mean=1.0), self.normal(channels, 0.1)
        return RMSNormLayer(name, channels, _RMS_EPSILON, trunk_norm == "rms_spatial", 0, gamma, beta)

    def trunk(self, kinds: list[str], nested: bool, trunk_norm: str, meta_encoder: bool) -> Trunk:
        shape = self.shape
        return Trunk(
            "trunk",
            len(kinds),
            shape.trunk,
            shape.mid,
            shape.mid - shape.gpool,
            shape.gpool,
            0 if trunk_norm == "batch_norm" else 1,
            initial_conv=self.conv("model.conv_spatial", _NUM_SPATIAL_FEATURES, shape.trunk, gain=1.0),
            initial_matmul=self.matmul("model.linear_global", _NUM_GLOBAL_FEATURES, shape.trunk),
            sgf_metadata_encoder=self.meta_encoder() if meta_encoder else None,
            blocks=[self.block(f"model.blocks.{index}", kind, nested) for index, kind in enumerate(kinds)],
            trunk_tip_norm=self.trunk_tip(trunk_norm),
            trunk_tip_activation=self.activation("model.act_trunkfinal"),
            dilated_num_channels=shape.gpool,
        )

    def policy_head(self, out_channels: int) -> PolicyHead:
        name, trunk, p1 = "model.policy_head", self.shape.trunk, self.shape.policy
        head = PolicyHead(
            name,
            out_channels,
            p1_conv=self.conv(f"{name}.conv1p", trunk, p1, kernel=1),
            g1_conv=self.conv(f"{name}.conv1g", trunk, p1, kernel=1),
            g1_bn=self.bias_mask(f"{name}.biasg", p1),
            g1_activation=self.activation(f"{name}.actg"),
            gpool_to_bias_mul=self.matmul(f"{name}.linear_g", 3 * p1, p1),
            p1_bn=self.bias_mask(f"{name}.bias2", p1),
            p1_activation=self.activation(f"{name}.act2"),
            p2_conv=self.conv(f"{name}.conv2p", p1, out_channels, kernel=1, gain=1.0),
            gpool_to_pass_mul=self.matmul(f"{name}.linear_pass", 3 * p1, p1 if self.shape.version >= 15 else out_channels),
        )
        if self.shape.version >= 15:
            head.gpool_to_pass_bias = self.matbias(f"{name}.linear_pass_bias", p1)
            head.pass_activation = self.activation(f"{name}.act_pass")
            head.gpool_to_pass_mul2 = self.matmul(f"{name}.linear_pass2", p1, out_channels)
        return head

    def value_head(self) -> ValueHead:
        name, trunk, v1, v2 = "model.value_head", self.shape.trunk, self.shape.value, self.shape.value_hidden
        # Version 8 predicts 4 score values; later versions add 2 short-term errors.
        score_outputs = 4 if self.shape.version == 8 else 6
        return ValueHead(
            name,
            v1_conv=self.conv(f"{name}.conv1", trunk, v1, kernel=1),
            v1_bn=self.bias_mask(f"{name}.bias1", v1),
            v1_activation=self.activation(f"{name}.act1"),
            v2_mul=self.matmul(f"{name}.linear2", 3 * v1, v2),
            v2_bias=self.matbias(f"{name}.bias2", v2),
            v2_activation=self.activation(f"{name}.act2"),
            v3_mul=self.matmul(f"{name}.linear_valuehead", v2, 3),
            v3_bias=self.matbias(f"{name}.bias_valuehead", 3),
            sv3_mul=self.matmul(f"{name}.linear_miscvaluehead", v2, score_outputs),
            sv3_bias=self.matbias(f"{name}.bias_miscvaluehead", score_outputs),
            v_ownership_conv=self.conv(f"{name}.conv_ownership", v1, 1, kernel=1, gain=1.0),
        )


# -- parameter counting -----------------------------------------------------------


def _count_parameters(desc: ModelDesc) -> int:
    trunk = desc.trunk
    total = _layer_parameters(trunk.initial_conv) + _layer_parameters(trunk.initial_matmul)
    if trunk.sgf_metadata_encoder is not None:
        total += _layers_parameters(trunk.sgf_metadata_encoder)
    total += sum(_layers_parameters(block) for block in trunk.blocks)
    total += _layer_parameters(trunk.trunk_tip_norm)
    return total + _layers_parameters(desc.policy_head) + _layers_parameters(desc.value_head)


def _layers_parameters(owner: Any) -> int:
    """Sum the parameters of every layer and inner block held by a block, head or encoder."""
    total = 0
    for value in vars(owner).values():
        if isinstance(value, list):
            total += sum(_layers_parameters(block) for block in value)
        else:
            total += _layer_parameters(value)
    if isinstance(owner, TransformerAttentionBlock) and owner.rope_freqs is not None:
        total += owner.rope_freqs.size
    return total


def _layer_parameters(layer: Any) -> int:
    if isinstance(layer, (ConvLayer, MatMulLayer, MatBiasLayer, TransformerRMSNorm)):
        return int(layer.weight.size)
    if isinstance(layer, BatchNormLayer):
        # Running mean and variance are statistics, not learned parameters.
        return layer.num_channels * (int(layer.has_scale) + int(layer.has_bias))
    if isinstance(layer, RMSNormLayer):
        return int(layer.gamma.size + layer.beta.size)
    return 0
