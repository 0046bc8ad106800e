"""Tests for kgzarr.model.synthetic: layouts, determinism, option checks and activation scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kgzarr.errors import ConfigError, UnsupportedModelVersion
from kgzarr.model.desc import BatchNormLayer, ConvLayer, GlobalPoolingBlock, NestedBottleneckBlock, OrdinaryBlock
from kgzarr.model.synthetic import model_summary, random_model


def small(**options: object) -> dict[str, object]:
    base: dict[str, object] = {"num_blocks": 3, "trunk_channels": 8, "mid_channels": 8, "gpool_channels": 2}
    base.update(options)
    return base


# -- layout -------------------------------------------------------------------------


def test_default_gpool_pattern() -> None:
    desc = random_model("pattern", **small(num_blocks=7))
    kinds = [block.kind for block in desc.trunk.blocks]
    assert kinds == ["ordinary_block", "ordinary_block", "gpool_block"] * 2 + ["ordinary_block"]


def test_explicit_block_kinds() -> None:
    desc = random_model("kinds", **small(block_kinds=["gpool_block", "ordinary_block", "gpool_block"]))
    assert [block.kind for block in desc.trunk.blocks] == ["gpool_block", "ordinary_block", "gpool_block"]


def test_b18c384nbt_layout() -> None:
    desc = random_model("b18c384nbt", num_blocks=18, trunk_channels=384, mid_channels=192, gpool_channels=64, nested=True)
    summary = model_summary(desc)
    blocks = desc.trunk.blocks
    assert summary["blocks"] == 18
    assert summary["block_kinds"] == {"nested_bottleneck_block": 18}
    assert all(isinstance(block, NestedBottleneckBlock) and len(block.blocks) == 2 for block in blocks)
    assert isinstance(blocks[2].blocks[0], GlobalPoolingBlock)
    assert isinstance(blocks[3].blocks[0], OrdinaryBlock)
    assert blocks[2].blocks[0].regular_conv.out_channels == 192 - 64
    assert blocks[0].pre_conv.weight.shape == (192, 384, 1, 1)
    assert blocks[0].blocks[0].regular_conv.weight.shape == (192, 192, 3, 3)
    assert desc.trunk.regular_num_channels == 128


def test_parameter_count() -> None:
    desc = random_model("count", **small(num_blocks=1))
    # Counted by hand for trunk 8, 1 ordinary block, policy width 2, value widths 2 and 4, version 15:
    # conv_spatial 1584 + linear_global 152 + block 1184 + trunk tip 16 + policy head 70 + value head 93.
    assert model_summary(desc)["parameters"] == 3099


def test_summary_fields() -> None:
    summary = model_summary(random_model("fields", **small(version=16)))
    assert summary["name"] == "fields"
    assert summary["version"] == 16
    assert summary["trunk_channels"] == 8
    assert summary["policy_out_channels"] == 4


def test_batch_norm_non_trivial() -> None:
    block = random_model("bn", **small()).trunk.blocks[0]
    assert isinstance(block.pre_bn, BatchNormLayer)
    assert block.pre_bn.has_scale
    assert np.std(block.pre_bn.mean) > 0.01
    assert np.std(block.pre_bn.variance) > 0.01
    assert np.all(block.pre_bn.variance > 0)
    assert np.std(block.pre_bn.scale) > 0.01


def test_array_layouts() -> None:
    desc = random_model("layout", **small())
    for array in (desc.trunk.initial_conv.weight, desc.trunk.initial_matmul.weight, desc.trunk.blocks[0].pre_bn.mean):
        assert array.dtype == np.float32
        assert array.flags.c_contiguous
    assert desc.trunk.initial_conv.weight.shape == (8, 22, 3, 3)
    assert desc.trunk.initial_matmul.weight.shape == (19, 8)


def test_seeded() -> None:
    first = random_model("seeded", **small(seed=3))
    second = random_model("seeded", **small(seed=3))
    other = random_model("seeded", **small(seed=4))
    assert np.array_equal(first.trunk.blocks[1].final_conv.weight, second.trunk.blocks[1].final_conv.weight)
    assert not np.array_equal(first.trunk.blocks[1].final_conv.weight, other.trunk.blocks[1].final_conv.weight)


def test_version_8_value_head() -> None:
    desc = random_model("old", **small(version=8))
    assert desc.value_head.sv3_mul.out_channels == 4
    assert desc.policy_head.policy_out_channels == 1
    assert desc.policy_head.gpool_to_pass_mul.out_channels == 1


# -- options ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"block_kinds": ["ordinary_block"]}, "block_kinds has 1 entries"),
        ({"block_kinds": ["ordinary_block", "dense_block", "ordinary_block"]}, "unknown block kind 'dense_block'"),
        ({"mid_channels": 2}, "mid_channels 2 must exceed gpool_channels 2"),
        ({"version": 10, "activation": "ACTIVATION_MISH"}, "can only hold ReLU"),
        ({"activation": "ACTIVATION_GELU"}, "unknown activation"),
        ({"version": 14, "meta_encoder": True}, "need version 15 or later"),
        ({"trunk_norm": "layer_norm"}, "unknown trunk_norm"),
        ({"version": 17, "policy_out_channels": 3}, "hold 2 or 4"),
        ({"num_blocks": 0, "block_kinds": []}, "num_blocks is 0"),
        ({"block_kinds": ["transformer_attention_block"] * 3, "num_heads": 3}, "heads of even size"),
        ({"block_kinds": ["transformer_ffn_block"] * 3, "nested": True}, "nested=True"),
    ],
)
def test_invalid_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        random_model("bad", **small(**options))
    assert message in str(info.value)


def test_unsupported_version() -> None:
    with pytest.raises(UnsupportedModelVersion):
        random_model("future", **small(version=18))


# -- activation scale ---------------------------------------------------------------


def apply_conv(x: torch.Tensor, layer: ConvLayer) -> torch.Tensor:
    return F.conv2d(x, torch.from_numpy(layer.weight), padding=(layer.conv_y // 2, layer.conv_x // 2))


def apply_norm_relu(x: torch.Tensor, layer: BatchNormLayer) -> torch.Tensor:
    shape = (1, -1, 1, 1)
    mean = torch.from_numpy(layer.mean).view(shape)
    std = torch.from_numpy(layer.variance + layer.epsilon).sqrt().view(shape)
    scale = torch.from_numpy(layer.scale).view(shape) if layer.scale is not None else 1.0
    bias = torch.from_numpy(layer.bias).view(shape) if layer.bias is not None else 0.0
    return torch.relu((x - mean) / std * scale + bias)


def residual(x: torch.Tensor, block: OrdinaryBlock | NestedBottleneckBlock) -> torch.Tensor:
    if isinstance(block, OrdinaryBlock):
        hidden = apply_conv(apply_norm_relu(x, block.pre_bn), block.regular_conv)
        return apply_conv(apply_norm_relu(hidden, block.mid_bn), block.final_conv)
    hidden = apply_conv(apply_norm_relu(x, block.pre_bn), block.pre_conv)
    for inner in block.blocks:
        hidden = hidden + residual(hidden, inner)
    return apply_conv(apply_norm_relu(hidden, block.post_bn), block.post_conv)


@pytest.mark.parametrize("nested", [False, True])
def test_trunk_scale(nested: bool) -> None:
    """Deep random trunks keep activations of order one, and every block changes the trunk."""
    num_blocks = 8 if nested else 20
    desc = random_model(
        "deep",
        num_blocks=num_blocks,
        trunk_channels=32,
        mid_channels=16 if nested else 32,
        gpool_channels=8,
        block_kinds=["ordinary_block"] * num_blocks,
        nested=nested,
    )
    trunk = torch.randn(4, 32, 9, 9, generator=torch.Generator().manual_seed(0))
    changes = []
    with torch.no_grad():
        for block in desc.trunk.blocks:
            update = residual(trunk, block)
            changes.append(float(update.norm() / trunk.norm()))
            trunk = trunk + update
    assert 0.5 < float(trunk.std()) < 4.0
    assert min(changes) > 0.02
    assert max(changes) < 1.0
