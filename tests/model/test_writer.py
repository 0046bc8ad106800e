"""Tests for kgzarr.model.writer: round trips, byte identity with KataGo's exporter, atomic writes."""

from __future__ import annotations

import dataclasses
import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from kgzarr.errors import ModelFormatError, OutputWriteError, UnsupportedModelVersion
from kgzarr.model.desc import ModelDesc
from kgzarr.model.reader import read_model
from kgzarr.model.synthetic import random_model
from kgzarr.model.writer import write_model

REFERENCE_MODELS = [
    "ref-b1c6nbt.bin.gz",
    "ref-b1c6nbt-bn.bin.gz",
    "ref-b1c6nbt-meta.bin.gz",
    "ref-b1c6nbt-rsnh.bin.gz",
    "ref-b1c6nbt-silu.bin.gz",
    "ref-b2c16.bin.gz",
    "ref-b2c16-v11.bin.gz",
    "ref-b2c16-v13.bin.gz",
    "ref-b2c16-v16.bin.gz",
    "ref-b4c32.bin.gz",
    "ref-b4c32-v12.bin.gz",
    "ref-b6c96.bin.gz",
    "ref-b7c96h3tfrs.bin.gz",
]
ENGINE_MODELS = [
    "g170-b6c96-s175395328-d26788732.bin.gz",
    "b7c96h3tfrs-test5-cnorm.bin.gz",
    "b7c96h6kv3qk32v16tflrs-fson-bnh.bin.gz",
]


def real_path(shared_data: Path, name: str) -> Path:
    folder = shared_data / "reference" / "models" if name.startswith("ref-") else shared_data / "models"
    return folder / name


def assert_same_desc(first: object, second: object, where: str = "desc") -> None:
    """Assert two description trees are equal, with arrays equal bit for bit."""
    assert type(first) is type(second), where
    if isinstance(first, np.ndarray):
        assert first.dtype == second.dtype, where
        assert first.shape == second.shape, where
        assert np.array_equal(first.view(np.uint32), second.view(np.uint32)), where
    elif dataclasses.is_dataclass(first):
        for field in dataclasses.fields(first):
            if field.name != "sha256":
                assert_same_desc(getattr(first, field.name), getattr(second, field.name), f"{where}.{field.name}")
    elif isinstance(first, list):
        assert len(first) == len(second), where
        for index, (a, b) in enumerate(zip(first, second)):
            assert_same_desc(a, b, f"{where}[{index}]")
    else:
        assert first == second, where


def round_trip(desc: ModelDesc, path: Path, *, binary: bool = True) -> ModelDesc:
    write_model(desc, path, binary=binary)
    return read_model(path)


# -- real files -------------------------------------------------------------------


@pytest.mark.shared
@pytest.mark.parametrize("name", REFERENCE_MODELS + ENGINE_MODELS)
def test_exporter_bytes(shared_data: Path, tmp_path: Path, name: str) -> None:
    """Writing a parsed exporter file reproduces its uncompressed bytes exactly."""
    original = real_path(shared_data, name)
    copy = tmp_path / name
    write_model(read_model(original), copy)
    assert gzip.decompress(copy.read_bytes()) == gzip.decompress(original.read_bytes())


@pytest.mark.shared
@pytest.mark.parametrize("name", REFERENCE_MODELS + ENGINE_MODELS)
def test_real_round_trip(shared_data: Path, tmp_path: Path, name: str) -> None:
    desc = read_model(real_path(shared_data, name))
    assert_same_desc(round_trip(desc, tmp_path / "copy.bin"), desc)


@pytest.mark.shared
@pytest.mark.parametrize("name", REFERENCE_MODELS[:9])
def test_real_text_round_trip(shared_data: Path, tmp_path: Path, name: str) -> None:
    desc = read_model(real_path(shared_data, name))
    assert_same_desc(round_trip(desc, tmp_path / "copy.txt.gz", binary=False), desc)


# -- synthetic nets -----------------------------------------------------------------


@pytest.mark.parametrize("version", [8, 9, 10, 11, 12, 13, 14, 15, 16, 17])
@pytest.mark.parametrize("nested", [False, True])
def test_version_round_trip(tmp_path: Path, version: int, nested: bool) -> None:
    desc = random_model(
        f"v{version}", version=version, num_blocks=3, trunk_channels=8, mid_channels=6, gpool_channels=2, nested=nested
    )
    assert_same_desc(round_trip(desc, tmp_path / "net.bin.gz"), desc)


@pytest.mark.parametrize("version", [8, 11, 15, 17])
def test_version_text_round_trip(tmp_path: Path, version: int) -> None:
    desc = random_model(f"t{version}", version=version, num_blocks=2, trunk_channels=8, mid_channels=6, gpool_channels=2)
    assert_same_desc(round_trip(desc, tmp_path / "net.txt", binary=False), desc)


@pytest.mark.parametrize("learnable_rope", [False, True])
@pytest.mark.parametrize("swiglu", [False, True])
def test_transformer_round_trip(tmp_path: Path, learnable_rope: bool, swiglu: bool) -> None:
    desc = random_model(
        "tf",
        version=17,
        num_blocks=2,
        trunk_channels=8,
        mid_channels=8,
        gpool_channels=2,
        block_kinds=["transformer_attention_block", "transformer_ffn_block"],
        learnable_rope=learnable_rope,
        swiglu=swiglu,
        trunk_norm="rms",
        policy_out_channels=4,
    )
    assert_same_desc(round_trip(desc, tmp_path / "tf.bin.gz"), desc)
    assert_same_desc(round_trip(desc, tmp_path / "tf.txt", binary=False), desc)


@pytest.mark.parametrize("activation", ["ACTIVATION_MISH", "ACTIVATION_SILU", "ACTIVATION_IDENTITY"])
def test_meta_encoder_round_trip(tmp_path: Path, activation: str) -> None:
    desc = random_model(
        "meta",
        num_blocks=1,
        trunk_channels=8,
        mid_channels=4,
        gpool_channels=2,
        nested=True,
        meta_encoder=True,
        trunk_norm="rms_spatial",
        activation=activation,
    )
    assert_same_desc(round_trip(desc, tmp_path / "meta.bin"), desc)


def test_negative_zero_kept(tmp_path: Path) -> None:
    desc = random_model("zeros", num_blocks=1, trunk_channels=4, mid_channels=4, gpool_channels=2)
    desc.trunk.initial_matmul.weight[0, 0] = -0.0
    for binary in (True, False):
        again = round_trip(desc, tmp_path / f"net-{binary}.txt", binary=binary)
        assert np.signbit(again.trunk.initial_matmul.weight[0, 0])


# -- file handling ------------------------------------------------------------------


def test_gzip_deterministic(tmp_path: Path) -> None:
    desc = random_model("same", num_blocks=2, trunk_channels=8, mid_channels=8, gpool_channels=2)
    write_model(desc, tmp_path / "a.bin.gz")
    write_model(desc, tmp_path / "b.bin.gz")
    first = (tmp_path / "a.bin.gz").read_bytes()
    assert first == (tmp_path / "b.bin.gz").read_bytes()
    assert first[4:8] == b"\0\0\0\0"  # gzip mtime field


def test_plain_paths_uncompressed(tmp_path: Path) -> None:
    desc = random_model("plain", num_blocks=1, trunk_channels=4, mid_channels=4, gpool_channels=2)
    write_model(desc, tmp_path / "net.bin")
    assert (tmp_path / "net.bin").read_bytes().startswith(b"plain\n15\n22\n19\n")


def test_no_temporary_left(tmp_path: Path) -> None:
    desc = random_model("tidy", num_blocks=1, trunk_channels=4, mid_channels=4, gpool_channels=2)
    write_model(desc, tmp_path / "net.bin.gz")
    assert sorted(os.listdir(tmp_path)) == ["net.bin.gz"]


def test_failed_write_keeps_old_file(tmp_path: Path) -> None:
    """A description that fails halfway leaves the previous file and no temporary behind."""
    path = tmp_path / "net.bin.gz"
    good = random_model("good", num_blocks=2, trunk_channels=4, mid_channels=4, gpool_channels=2)
    write_model(good, path)
    before = path.read_bytes()
    bad = random_model("bad", num_blocks=2, trunk_channels=4, mid_channels=4, gpool_channels=2)
    bad.value_head.v2_activation.activation = "ACTIVATION_GELU"
    with pytest.raises(ModelFormatError) as info:
        write_model(bad, path)
    assert "ACTIVATION_GELU" in str(info.value)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["net.bin.gz"]


def test_missing_folder(tmp_path: Path) -> None:
    desc = random_model("lost", num_blocks=1, trunk_channels=4, mid_channels=4, gpool_channels=2)
    target = tmp_path / "absent" / "net.bin.gz"
    with pytest.raises(OutputWriteError) as info:
        write_model(desc, target)
    assert str(target) in str(info.value)


def test_old_version_needs_relu(tmp_path: Path) -> None:
    desc = random_model(
        "old", version=11, num_blocks=1, trunk_channels=4, mid_channels=4, gpool_channels=2, activation="ACTIVATION_MISH"
    )
    desc.model_version = 10
    with pytest.raises(ModelFormatError) as info:
        write_model(desc, tmp_path / "old.bin")
    assert "only hold ReLU" in str(info.value)


def test_unwritable_name(tmp_path: Path) -> None:
    desc = random_model("named", num_blocks=1, trunk_channels=4, mid_channels=4, gpool_channels=2)
    desc.trunk.initial_conv.name = "conv spatial"
    with pytest.raises(ModelFormatError) as info:
        write_model(desc, tmp_path / "net.bin")
    assert "'conv spatial'" in str(info.value)


def test_unsupported_version(tmp_path: Path) -> None:
    desc = random_model("future", num_blocks=1, trunk_channels=4, mid_channels=4, gpool_channels=2)
    desc.model_version = 18
    with pytest.raises(UnsupportedModelVersion):
        write_model(desc, tmp_path / "net.bin")
    assert not (tmp_path / "net.bin").exists()
