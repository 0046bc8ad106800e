"""Layer names: KataGo's block names, aliases, layer info and nearest-name suggestions."""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import pytest
import torch

from kgzarr.errors import LayerNotFoundError
from kgzarr.model import desc as d
from kgzarr.model.names import HEAD_OUTPUTS, block_prefixes
from kgzarr.model.network import KataGoNet, load_model
from kgzarr.model.synthetic import random_model

MODELS = Path("reference") / "models"
G170 = Path("models") / "g170-b6c96-s175395328-d26788732.bin.gz"


@functools.lru_cache(maxsize=None)
def _net(path: str) -> KataGoNet:
    return load_model(path)


def _reference_net(shared_data: Path, name: str) -> KataGoNet:
    return _net(str(shared_data / MODELS / f"{name}.bin.gz"))


def _inputs(batch: int = 2, size: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(5)
    binary = (torch.rand(batch, 22, size, size, generator=generator) < 0.3).float()
    binary[:, 0] = 1.0
    return binary, torch.rand(batch, 19, generator=generator)


def _manifest(shared_data: Path) -> dict:
    return json.loads((shared_data / "reference" / "manifest.json").read_text())


# Block names ------------------------------------------------------------------


@pytest.mark.shared
def test_prefixes_match_training_configs(shared_data: Path) -> None:
    nets = _manifest(shared_data)["nets"]
    assert len(nets) >= 13
    for net_name, facts in nets.items():
        net = _net(str(shared_data / facts["model_file"].replace("models/", "reference/models/")))
        expected = [block_name for block_name, _ in facts["training_block_kinds"]]
        assert net.catalog.prefixes == expected, net_name


def test_mixed_trunk_prefixes() -> None:
    """Conv blocks then attention/FFN pairs get KataGo's b2b10c96h3tfrs names."""
    kinds = ["ordinary_block", "ordinary_block"] + ["transformer_attention_block", "transformer_ffn_block"] * 2
    desc = random_model("mixed", version=17, num_blocks=6, trunk_channels=16, mid_channels=16,
                        gpool_channels=8, block_kinds=kinds, num_heads=2, seed=1)
    assert block_prefixes(desc.trunk.blocks) == ["rconv1", "rconv2", "attn3", "ffn3", "attn4", "ffn4"]


def test_mixed_trunk_captures_every_name() -> None:
    kinds = ["gpool_block", "transformer_attention_block", "transformer_ffn_block"]
    desc = random_model("mixed", version=17, num_blocks=3, trunk_channels=16, mid_channels=16,
                        gpool_channels=8, block_kinds=kinds, num_heads=2, seed=2)
    net = KataGoNet.from_desc(desc)
    binary, global_ = _inputs()
    names = net.layer_names(include_heads=True)
    captured = net.capture(binary, global_, names)
    assert "attn2.out" in names
    assert sorted(captured) == sorted(names)


def _nested_transformer_desc() -> d.ModelDesc:
    outer = random_model("nested", version=17, num_blocks=1, trunk_channels=16, mid_channels=8,
                         gpool_channels=4, nested=True, block_kinds=["ordinary_block"], seed=3)
    inner = random_model("inner", version=17, num_blocks=2, trunk_channels=8, mid_channels=8, gpool_channels=4,
                         block_kinds=["transformer_attention_block", "transformer_ffn_block"], num_heads=2, seed=4)
    nested = dataclasses.replace(outer.trunk.blocks[0], num_blocks=2, blocks=inner.trunk.blocks)
    return dataclasses.replace(outer, trunk=dataclasses.replace(outer.trunk, blocks=[nested]))


def test_nested_transformer_names() -> None:
    """Nested transformer blocks get KataGo's block{n}.blockstack.attn{m} names."""
    net = KataGoNet.from_desc(_nested_transformer_desc())
    assert net.layer_names() == [
        "trunk_after_embedding",
        "block1.normactconvp.out",
        "block1.blockstack.attn1.out",
        "block1.blockstack.ffn1.out",
        "block1.normactconvq.out",
        "block1.out",
        "trunk_after_block0",
        "trunkfinal",
    ]


def test_nested_transformer_captures() -> None:
    net = KataGoNet.from_desc(_nested_transformer_desc())
    binary, global_ = _inputs()
    captured = net.capture(binary, global_, net.layer_names())
    assert tuple(captured["block1.blockstack.ffn1.out"].shape) == (2, 8, 7, 7)


# Aliases ----------------------------------------------------------------------


@pytest.mark.shared
def test_trunk_block_alias(shared_data: Path) -> None:
    net = _reference_net(shared_data, "ref-b6c96")
    assert net.resolve_layer("trunk_block_3_output") == "trunk_after_block3"


@pytest.mark.shared
def test_file_block_name_alias(shared_data: Path) -> None:
    net = _reference_net(shared_data, "ref-b6c96")
    assert net.resolve_layer("model.blocks.3") == "rconv4.out"


@pytest.mark.shared
def test_nested_file_name_alias(shared_data: Path) -> None:
    net = _reference_net(shared_data, "ref-b1c6nbt")
    assert net.resolve_layer("model.blocks.0.blockstack.1") == "rconv1.blockstack.1.out"


@pytest.mark.shared
def test_old_file_name_alias(shared_data: Path) -> None:
    net = _net(str(shared_data / G170))
    assert net.desc.trunk.blocks[2].name == "rconv3"
    assert net.resolve_layer("rconv3") == "rconv3.out"


@pytest.mark.shared
def test_bare_prefix_alias(shared_data: Path) -> None:
    net = _reference_net(shared_data, "ref-b7c96h3tfrs")
    assert net.resolve_layer("ffn2") == "ffn2.out"


@pytest.mark.shared
def test_trunkfinal_file_alias(shared_data: Path) -> None:
    net = _reference_net(shared_data, "ref-b2c16")
    assert net.resolve_layer("model.norm_trunkfinal") == "trunkfinal"


@pytest.mark.shared
def test_canonical_resolves_to_itself(shared_data: Path) -> None:
    net = _reference_net(shared_data, "ref-b1c6nbt")
    for name in net.layer_names(include_heads=True):
        assert net.resolve_layer(name) == name


@pytest.mark.shared
def test_alias_captures_equal_canonical(shared_data: Path) -> None:
    net = _reference_net(shared_data, "ref-b4c32")
    binary, global_ = _inputs()
    captured = net.capture(binary, global_, ["model.blocks.2", "rconv3.out", "trunk_block_2_output",
                                             "trunk_after_block2"])
    assert torch.equal(captured["model.blocks.2"], captured["rconv3.out"])
    assert torch.equal(captured["trunk_block_2_output"], captured["trunk_after_block2"])


@pytest.mark.shared
def test_layer_info_lists_aliases(shared_data: Path) -> None:
    net = _reference_net(shared_data, "ref-b6c96")
    info = {item.name: item for item in net.layer_info()}
    assert set(info["rconv4.out"].aliases) == {"model.blocks.3", "rconv4"}
    assert info["trunk_after_block3"].aliases == ("trunk_block_3_output",)


# Layer info -------------------------------------------------------------------


@pytest.mark.shared
def test_layer_info_gpool_block(shared_data: Path) -> None:
    net = _reference_net(shared_data, "ref-b6c96")
    info = {item.name: item for item in net.layer_info(board_size=7)}
    # rconv3 is a gpool block with mid 96 and gpool 32: its first conv keeps 96 - 32 channels.
    assert info["rconv3.normactconv1.out"].channels == 64
    assert info["rconv3.normactconv1.out"].kind == "conv"
    assert info["rconv3.out"].kind == "residual"
    assert info["rconv3.out"].block == 2
    assert info["trunk_after_block2"].shape == (96, 7, 7)


@pytest.mark.shared
def test_layer_info_embedding_and_tip(shared_data: Path) -> None:
    net = _reference_net(shared_data, "ref-b6c96")
    info = {item.name: item for item in net.layer_info()}
    assert info["trunk_after_embedding"].block == -1
    assert info["trunkfinal"].block is None
    assert info["trunkfinal"].shape == (96, 19, 19)


@pytest.mark.shared
def test_layer_info_inner_residual(shared_data: Path) -> None:
    net = _reference_net(shared_data, "ref-b1c6nbt")
    info = {item.name: item for item in net.layer_info()}
    assert info["rconv1.blockstack.0.out"].kind == "inner_residual"
    assert info["rconv1.blockstack.0.out"].channels == 4
    assert info["rconv1.out"].kind == "residual"


@pytest.mark.shared
def test_layer_info_heads_v8(shared_data: Path) -> None:
    net = _net(str(shared_data / G170))
    info = {item.name: item for item in net.layer_info(board_size=9)}
    assert info["policy"].shape == (1, 9, 9)
    assert info["pass"].shape == (1,)
    assert info["value"].shape == (3,)
    # Version 8 value heads have no short-term error outputs.
    assert info["miscvalue"].shape == (4,)
    assert info["ownership"].shape == (1, 9, 9)


@pytest.mark.shared
def test_head_names_documented(shared_data: Path) -> None:
    net = _reference_net(shared_data, "ref-b2c16")
    heads = net.layer_names(include_heads=True)[len(net.layer_names()):]
    assert heads == list(HEAD_OUTPUTS)


# Unknown names ----------------------------------------------------------------


@pytest.mark.shared
def test_unknown_name_suggests_nearest(shared_data: Path) -> None:
    net = _reference_net(shared_data, "ref-b6c96")
    with pytest.raises(LayerNotFoundError) as caught:
        net.resolve_layer("trunk_after_blok1")
    assert "trunk_after_block1" in str(caught.value)
    assert "ref-b6c96" in str(caught.value)


@pytest.mark.shared
def test_unknown_name_is_key_error(shared_data: Path) -> None:
    net = _reference_net(shared_data, "ref-b6c96")
    with pytest.raises(KeyError):
        net.resolve_layer("rconv9.out")


@pytest.mark.shared
def test_unrelated_name_lists_valid(shared_data: Path) -> None:
    net = _reference_net(shared_data, "ref-b6c96")
    with pytest.raises(LayerNotFoundError, match="trunk_after_embedding"):
        net.resolve_layer("zzz")


@pytest.mark.shared
def test_attention_weights_unlisted(shared_data: Path) -> None:
    net = _reference_net(shared_data, "ref-b7c96h3tfrs")
    assert "attn1.attn_weights" not in net.layer_names(include_heads=True)
    assert "attn1.attn_weights" not in {info.name for info in net.layer_info()}
    assert net.resolve_layer("attn1.attn_weights") == "attn1.attn_weights"
