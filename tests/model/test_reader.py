"""Tests for kgzarr.model.reader on real KataGo files and on corrupt copies of them."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kgzarr.errors import KgzarrError, ModelFileNotFoundError, ModelFormatError, UnsupportedModelVersion
from kgzarr.model.desc import BatchNormLayer, ModelDesc, RMSNormLayer, TransformerAttentionBlock
from kgzarr.model.reader import read_model
from kgzarr.model.synthetic import model_summary, random_model
from kgzarr.model.writer import write_model

# Header version, top-level block kinds, trunk/mid/gpool channels and exported
# policy channels of each reference net, as its training config sets them.
REFERENCE = {
    "ref-b1c6nbt.bin.gz": (15, {"nested_bottleneck_block": 1}, (6, 4, 4), 2),
    "ref-b2c16.bin.gz": (15, {"ordinary_block": 1, "gpool_block": 1}, (16, 16, 8), 2),
    "ref-b4c32.bin.gz": (15, {"ordinary_block": 3, "gpool_block": 1}, (32, 32, 16), 2),
    "ref-b6c96.bin.gz": (15, {"ordinary_block": 4, "gpool_block": 2}, (96, 96, 32), 2),
    "ref-b1c6nbt-bn.bin.gz": (15, {"nested_bottleneck_block": 1}, (6, 4, 4), 2),
    "ref-b1c6nbt-silu.bin.gz": (15, {"nested_bottleneck_block": 1}, (6, 4, 4), 2),
    "ref-b1c6nbt-rsnh.bin.gz": (17, {"nested_bottleneck_block": 1}, (6, 4, 4), 2),
    "ref-b1c6nbt-meta.bin.gz": (15, {"nested_bottleneck_block": 1}, (6, 4, 4), 2),
    "ref-b7c96h3tfrs.bin.gz": (
        17,
        {"transformer_attention_block": 7, "transformer_ffn_block": 7},
        (96, 96, 32),
        2,
    ),
    "ref-b2c16-v11.bin.gz": (11, {"ordinary_block": 1, "gpool_block": 1}, (16, 16, 8), 1),
    "ref-b2c16-v13.bin.gz": (13, {"ordinary_block": 1, "gpool_block": 1}, (16, 16, 8), 2),
    "ref-b2c16-v16.bin.gz": (16, {"ordinary_block": 1, "gpool_block": 1}, (16, 16, 8), 4),
    "ref-b4c32-v12.bin.gz": (12, {"ordinary_block": 3, "gpool_block": 1}, (32, 32, 16), 2),
}

# SHA-256 of the test networks shipped in KataGo's cpp/tests/models (v1.17.2).
ENGINE_MODELS = {
    "g170-b6c96-s175395328-d26788732.bin.gz": "f5d32604e3675c480c7c8f6aa579a1ea857135628a0afccc8fa56330fbacd38d",
    "b7c96h3tfrs-test5-cnorm.bin.gz": "e0c11d1d2532af0b89792605e4d9edcca15bf6a0589bf28b967e6358277941b8",
    "b7c96h6kv3qk32v16tflrs-fson-bnh.bin.gz": "3e56eedcda8f997dcdc0d18324fa8390ea10e3dd687cbf5d0d4ed66674d3f74f",
}

V8_NET = "g170-b6c96-s175395328-d26788732.bin.gz"


def reference_path(shared_data: Path, name: str) -> Path:
    return shared_data / "reference" / "models" / name


def engine_path(shared_data: Path, name: str) -> Path:
    return shared_data / "models" / name


def all_arrays(value: object) -> list[np.ndarray]:
    """Collect every numpy array in a description tree."""
    if isinstance(value, np.ndarray):
        return [value]
    if dataclasses.is_dataclass(value):
        found = []
        for field in dataclasses.fields(value):
            found += all_arrays(getattr(value, field.name))
        return found
    if isinstance(value, list):
        return [array for item in value for array in all_arrays(item)]
    return []


def walk_outline(content: bytes, outline: list[list]) -> None:
    """Assert that ``content`` is exactly the exporter's lines and float blobs, in order."""
    pos = 0
    for index, (kind, value) in enumerate(outline):
        if kind == "line":
            end = content.index(b"\n", pos)
            assert content[pos:end].decode("ascii") == value, f"outline entry {index}"
            pos = end + 1
        else:
            assert content[pos : pos + 5] == b"@BIN@", f"outline entry {index}"
            pos += 5 + 4 * value
            assert content[pos : pos + 1] == b"\n", f"outline entry {index}"
            pos += 1
    assert pos == len(content)


def outline_float_counts(outline: list[list]) -> list[int]:
    return [value for kind, value in outline if kind == "floats"]


@pytest.fixture(scope="module")
def outlines(shared_data: Path) -> dict[str, list[list]]:
    with open(reference_path(shared_data, "outlines.json")) as stream:
        return json.load(stream)


# -- real files -------------------------------------------------------------------


@pytest.mark.shared
@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_reference_header(shared_data: Path, name: str) -> None:
    version, kinds, (trunk, mid, gpool), policy_channels = REFERENCE[name]
    desc = read_model(reference_path(shared_data, name))
    assert desc.model_version == version
    assert model_summary(desc)["block_kinds"] == kinds
    assert desc.trunk.trunk_num_channels == trunk
    assert desc.trunk.mid_num_channels == mid
    assert desc.trunk.gpool_num_channels == gpool
    assert desc.trunk.regular_num_channels == mid - gpool
    assert desc.policy_head.policy_out_channels == policy_channels
    assert desc.num_input_channels == 22
    assert desc.num_input_global_channels == 19


@pytest.mark.shared
@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_reference_outline(shared_data: Path, outlines: dict, name: str) -> None:
    path = reference_path(shared_data, name)
    outline = outlines[name]
    desc = read_model(path)

    walk_outline(gzip.decompress(path.read_bytes()), outline)
    sizes = [array.size for array in all_arrays(desc)]
    assert sum(sizes) == sum(outline_float_counts(outline))
    assert sorted(sizes) == sorted(outline_float_counts(outline))


@pytest.mark.shared
@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_reference_multipliers(shared_data: Path, name: str) -> None:
    desc = read_model(reference_path(shared_data, name))
    post = desc.post_process
    expected_score_error = 150.0 if desc.model_version >= 13 else 30.0
    assert (post.td_score_multiplier, post.score_mean_multiplier) == (20.0, 20.0)
    assert (post.score_stdev_multiplier, post.lead_multiplier) == (20.0, 20.0)
    assert post.variance_time_multiplier == 40.0
    assert post.shortterm_value_error_multiplier == 0.25
    assert post.shortterm_score_error_multiplier == expected_score_error


@pytest.mark.shared
def test_reference_bias_only_norms(shared_data: Path) -> None:
    desc = read_model(reference_path(shared_data, "ref-b2c16.bin.gz"))
    tip = desc.trunk.trunk_tip_norm
    assert isinstance(tip, BatchNormLayer)
    assert tip.epsilon == 1e-20
    assert not tip.has_scale
    assert tip.has_bias
    assert np.all(tip.mean == 0.0)
    assert np.all(tip.variance == 1.0)


@pytest.mark.shared
def test_reference_batch_norm_stats(shared_data: Path) -> None:
    desc = read_model(reference_path(shared_data, "ref-b1c6nbt-bn.bin.gz"))
    block = desc.trunk.blocks[0]
    assert np.any(block.pre_bn.mean != 0.0)
    assert np.any(block.pre_bn.variance != 1.0)
    assert np.all(block.pre_bn.variance > 0.0)


@pytest.mark.shared
def test_reference_rms_trunk_tip(shared_data: Path) -> None:
    desc = read_model(reference_path(shared_data, "ref-b1c6nbt-rsnh.bin.gz"))
    tip = desc.trunk.trunk_tip_norm
    assert desc.trunk.trunk_norm_kind == 1
    assert isinstance(tip, RMSNormLayer)
    assert tip.spatial
    assert tip.epsilon == 1e-6
    assert tip.cgroup_size == 0


@pytest.mark.shared
def test_reference_silu(shared_data: Path) -> None:
    desc = read_model(reference_path(shared_data, "ref-b1c6nbt-silu.bin.gz"))
    assert desc.trunk.trunk_tip_activation.activation == "ACTIVATION_SILU"
    assert desc.trunk.blocks[0].pre_activation.activation == "ACTIVATION_SILU"


@pytest.mark.shared
def test_reference_meta_encoder(shared_data: Path) -> None:
    desc = read_model(reference_path(shared_data, "ref-b1c6nbt-meta.bin.gz"))
    encoder = desc.trunk.sgf_metadata_encoder
    assert desc.meta_encoder_version == 1
    assert desc.num_input_meta_channels == 192
    assert encoder is not None
    assert encoder.mul1.weight.shape == (192, 6)
    # The exporter folds the feature mask into mul1, zeroing input channel 86.
    assert np.all(encoder.mul1.weight[86] == 0.0)
    assert np.any(encoder.mul1.weight[85] != 0.0)


@pytest.mark.shared
def test_reference_nested_block(shared_data: Path) -> None:
    desc = read_model(reference_path(shared_data, "ref-b1c6nbt.bin.gz"))
    block = desc.trunk.blocks[0]
    assert block.name == "model.blocks.0"
    assert block.num_blocks == 2
    assert [inner.name for inner in block.blocks] == ["model.blocks.0.blockstack.0", "model.blocks.0.blockstack.1"]
    assert block.pre_conv.weight.shape == (4, 6, 1, 1)
    assert block.post_conv.weight.shape == (6, 4, 1, 1)


@pytest.mark.shared
def test_reference_fixed_rope(shared_data: Path) -> None:
    desc = read_model(reference_path(shared_data, "ref-b7c96h3tfrs.bin.gz"))
    attention, ffn = desc.trunk.blocks[0], desc.trunk.blocks[1]
    assert isinstance(attention, TransformerAttentionBlock)
    assert (attention.num_heads, attention.num_kv_heads) == (3, 3)
    assert attention.use_rope
    assert not attention.learnable_rope
    assert attention.rope_theta == 100.0
    assert attention.pre_ln.epsilon == 1e-6
    assert ffn.ffn_channels == 256
    assert ffn.use_swiglu
    assert ffn.linear_gate is not None


@pytest.mark.shared
def test_learnable_rope_net(shared_data: Path) -> None:
    desc = read_model(engine_path(shared_data, "b7c96h6kv3qk32v16tflrs-fson-bnh.bin.gz"))
    attention = desc.trunk.blocks[0]
    assert attention.learnable_rope
    assert (attention.num_heads, attention.num_kv_heads) == (6, 3)
    assert (attention.q_head_dim, attention.v_head_dim) == (32, 16)
    assert attention.rope_freqs is not None
    assert attention.rope_freqs.shape == (3, 16, 2)
    assert attention.rope_theta is None
    assert attention.q_proj.weight.shape == (96, 192)


@pytest.mark.shared
@pytest.mark.parametrize("name", sorted(ENGINE_MODELS))
def test_engine_model_sha256(shared_data: Path, name: str) -> None:
    desc = read_model(engine_path(shared_data, name))
    assert desc.sha256 == ENGINE_MODELS[name]


@pytest.mark.shared
def test_v8_net(shared_data: Path) -> None:
    desc = read_model(engine_path(shared_data, V8_NET))
    summary = model_summary(desc)
    assert desc.model_version == 8
    assert summary["blocks"] == 6
    assert summary["trunk_channels"] == 96
    assert summary["parameters"] == 1_027_911


@pytest.mark.shared
def test_v8_layout(shared_data: Path) -> None:
    """Version 8 files store no activation kinds and 4 score outputs."""
    desc = read_model(engine_path(shared_data, V8_NET))
    assert desc.policy_head.policy_out_channels == 1
    assert desc.policy_head.gpool_to_pass_bias is None
    assert desc.value_head.sv3_mul.out_channels == 4
    assert desc.trunk.trunk_tip_activation.activation == "ACTIVATION_RELU"
    assert desc.post_process.shortterm_score_error_multiplier == 30.0
    assert desc.trunk.dilated_num_channels == 32
    assert desc.trunk.initial_conv.weight.shape == (96, 22, 5, 5)


@pytest.mark.shared
def test_conv_weight_layout(shared_data: Path) -> None:
    path = reference_path(shared_data, "ref-b2c16.bin.gz")
    content = gzip.decompress(path.read_bytes())
    start = content.index(b"@BIN@") + 5
    # model.conv_spatial is 3x3, 22 -> 16; the file stores (y, x, in, out).
    stored = np.frombuffer(content, dtype="<f4", count=3 * 3 * 22 * 16, offset=start).reshape(3, 3, 22, 16)
    weight = read_model(path).trunk.initial_conv.weight
    assert weight.shape == (16, 22, 3, 3)
    assert weight[5, 7, 0, 2] == stored[0, 2, 7, 5]
    assert weight.flags.c_contiguous
    assert weight.flags.writeable


# -- encodings --------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_content(shared_data: Path) -> bytes:
    return gzip.decompress(reference_path(shared_data, "ref-b2c16.bin.gz").read_bytes())


@pytest.mark.shared
@pytest.mark.parametrize("file_name", ["plain.bin", "misnamed.bin.gz", "misnamed.txt"])
def test_plain_binary(tmp_path: Path, small_content: bytes, file_name: str) -> None:
    path = tmp_path / file_name
    path.write_bytes(small_content)
    desc = read_model(path)
    assert desc.name == "ref-b2c16"
    assert desc.sha256 == hashlib.sha256(small_content).hexdigest()


@pytest.mark.shared
def test_gzip_by_content(tmp_path: Path, small_content: bytes) -> None:
    path = tmp_path / "compressed.bin"
    path.write_bytes(gzip.compress(small_content))
    assert read_model(path).name == "ref-b2c16"


@pytest.mark.shared
@pytest.mark.parametrize("file_name", ["net.txt", "net.txt.gz"])
def test_text_encoding(tmp_path: Path, shared_data: Path, file_name: str) -> None:
    binary = read_model(reference_path(shared_data, "ref-b2c16.bin.gz"))
    path = tmp_path / file_name
    write_model(binary, path, binary=False)
    text = read_model(path)
    assert b"@BIN@" not in (gzip.decompress(path.read_bytes()) if file_name.endswith(".gz") else path.read_bytes())
    assert np.array_equal(text.trunk.initial_conv.weight, binary.trunk.initial_conv.weight)
    assert np.array_equal(text.value_head.v_ownership_conv.weight, binary.value_head.v_ownership_conv.weight)


def test_text_whitespace(tmp_path: Path) -> None:
    """Text files may separate tokens with any whitespace, as KataGo's stream reader allows."""
    desc = random_model("spaced", version=11, num_blocks=1, trunk_channels=4, mid_channels=4, gpool_channels=2)
    lines = tmp_path / "lines.txt"
    write_model(desc, lines, binary=False)
    spaced = tmp_path / "spaced.txt"
    spaced.write_bytes(lines.read_bytes().replace(b"\n", b" \t\r\n "))
    again = read_model(spaced)
    assert np.array_equal(again.trunk.initial_conv.weight, desc.trunk.initial_conv.weight)


# -- synthetic layouts per version --------------------------------------------------


@pytest.mark.parametrize("version", [8, 9, 10, 11, 12, 13, 14, 15, 16, 17])
def test_version_layout(tmp_path: Path, version: int) -> None:
    desc = random_model(f"v{version}", version=version, num_blocks=3, trunk_channels=8, mid_channels=8, gpool_channels=2)
    path = tmp_path / "net.bin"
    write_model(desc, path)
    content = path.read_bytes()
    again = read_model(path)

    assert again.model_version == version
    assert (b"ACTIVATION_RELU" in content) == (version >= 11)
    assert (b"\n150.0\n" in content) == (version >= 13)
    assert (b"linear_pass2" in content) == (version >= 15)
    assert again.policy_head.policy_out_channels == {8: 1, 9: 1, 10: 1, 11: 1, 16: 4}.get(version, 2)
    assert again.value_head.sv3_mul.out_channels == (4 if version == 8 else 6)


def test_v17_policy_count(tmp_path: Path) -> None:
    desc = random_model(
        "q", version=17, num_blocks=1, trunk_channels=8, mid_channels=8, gpool_channels=2, policy_out_channels=4
    )
    path = tmp_path / "net.bin"
    write_model(desc, path)
    assert read_model(path).policy_head.policy_out_channels == 4


# -- errors -------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.bin.gz"
    with pytest.raises(ModelFileNotFoundError) as info:
        read_model(path)
    assert isinstance(info.value, FileNotFoundError)
    assert str(path) in str(info.value)


def test_directory_path(tmp_path: Path) -> None:
    with pytest.raises(ModelFileNotFoundError) as info:
        read_model(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.bin.gz"
    path.write_bytes(b"")
    with pytest.raises(ModelFormatError) as info:
        read_model(path)
    assert "empty" in str(info.value)
    assert str(path) in str(info.value)


def test_wrong_magic(tmp_path: Path) -> None:
    path = tmp_path / "picture.bin.gz"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    with pytest.raises(ModelFormatError) as info:
        read_model(path)
    assert str(path) in str(info.value)


def test_corrupt_gzip(tmp_path: Path) -> None:
    compressed = gzip.compress(b"some model\n" * 1000)
    path = tmp_path / "cut.bin.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(ModelFormatError) as info:
        read_model(path)
    assert "truncated or corrupt" in str(info.value)
    assert str(path) in str(info.value)


def write_edited(tmp_path: Path, content: bytes, old: bytes, new: bytes) -> Path:
    assert old in content
    path = tmp_path / "edited.bin"
    path.write_bytes(content.replace(old, new, 1))
    return path


@pytest.mark.shared
@pytest.mark.parametrize("fraction", [0.0005, 0.01, 0.3, 0.7, 0.9999])
def test_truncated(tmp_path: Path, small_content: bytes, fraction: float) -> None:
    cut = max(1, int(len(small_content) * fraction))
    path = tmp_path / "cut.bin.gz"
    path.write_bytes(gzip.compress(small_content[:cut]))
    with pytest.raises(ModelFormatError) as info:
        read_model(path)
    message = str(info.value)
    assert "truncated" in message
    assert str(path) in message


@pytest.mark.shared
def test_truncated_names_layer(tmp_path: Path, small_content: bytes) -> None:
    start = small_content.index(b"model.blocks.0.normactconv1.conv\n")
    blob = small_content.index(b"@BIN@", start)
    path = tmp_path / "cut.bin"
    path.write_bytes(small_content[: blob + 100])
    with pytest.raises(ModelFormatError) as info:
        read_model(path)
    message = str(info.value)
    assert message.startswith("model.blocks.0.normactconv1.conv: expected 2304 float32 weights")
    assert f"byte {blob + 100} of {path}" in message
    assert "download it again" in message


@pytest.mark.shared
@pytest.mark.parametrize("version", [b"5", b"18", b"99"])
def test_unsupported_version(tmp_path: Path, small_content: bytes, version: bytes) -> None:
    path = write_edited(tmp_path, small_content, b"ref-b2c16\n15\n", b"ref-b2c16\n" + version + b"\n")
    with pytest.raises(UnsupportedModelVersion) as info:
        read_model(path)
    assert f"model version is {int(version)}" in str(info.value)
    assert str(path) in str(info.value)


@pytest.mark.shared
def test_unknown_block_kind(tmp_path: Path, small_content: bytes) -> None:
    path = write_edited(tmp_path, small_content, b"\nordinary_block\n", b"\nfancy_block\n")
    with pytest.raises(ModelFormatError) as info:
        read_model(path)
    assert "unknown block kind 'fancy_block'" in str(info.value)
    assert str(info.value).startswith("trunk block 0")


@pytest.mark.shared
def test_unknown_activation(tmp_path: Path, small_content: bytes) -> None:
    path = write_edited(tmp_path, small_content, b"ACTIVATION_RELU", b"ACTIVATION_GELU")
    with pytest.raises(ModelFormatError) as info:
        read_model(path)
    assert "unknown activation 'ACTIVATION_GELU'" in str(info.value)
    assert str(info.value).startswith("model.blocks.0.normactconv1.act")


@pytest.mark.shared
@pytest.mark.parametrize("channels", [b"-3", b"0", b"2000000", b"999999999999", b"abc"])
def test_bad_channel_count(tmp_path: Path, small_content: bytes, channels: bytes) -> None:
    old = b"model.conv_spatial\n3\n3\n22\n16\n"
    path = write_edited(tmp_path, small_content, old, b"model.conv_spatial\n3\n3\n" + channels + b"\n16\n")
    with pytest.raises(ModelFormatError) as info:
        read_model(path)
    assert str(info.value).startswith("model.conv_spatial:")
    assert "in_channels" in str(info.value)


@pytest.mark.shared
def test_huge_size_fits_check(tmp_path: Path, small_content: bytes) -> None:
    """A corrupt header asking for gigabytes fails before any allocation."""
    old = b"model.conv_spatial\n3\n3\n22\n16\n"
    path = write_edited(tmp_path, small_content, old, b"model.conv_spatial\n255\n255\n22\n999999\n")
    with pytest.raises(ModelFormatError) as info:
        read_model(path)
    assert f"expected {255 * 255 * 22 * 999999} float32 weights, found end of file" in str(info.value)


@pytest.mark.shared
def test_channel_mismatch(tmp_path: Path, small_content: bytes) -> None:
    # The trunk header says 16 channels; claim 17 and the first conv disagrees.
    path = write_edited(tmp_path, small_content, b"trunk\n2\n16\n", b"trunk\n2\n17\n")
    with pytest.raises(ModelFormatError) as info:
        read_model(path)
    assert "out_channels is 16 but trunk channels is 17" in str(info.value)


@pytest.mark.shared
def test_non_finite_weight(tmp_path: Path, small_content: bytes) -> None:
    start = small_content.index(b"@BIN@") + 5
    edited = small_content[: start + 8] + struct.pack("<f", float("nan")) + small_content[start + 12 :]
    path = tmp_path / "nan.bin"
    path.write_bytes(edited)
    with pytest.raises(ModelFormatError) as info:
        read_model(path)
    assert "weight 2 of 3168 is nan" in str(info.value)


@pytest.mark.shared
def test_invalid_model_name(tmp_path: Path, small_content: bytes) -> None:
    path = write_edited(tmp_path, small_content, b"ref-b2c16\n", b"ref/b2c16\n")
    with pytest.raises(ModelFormatError) as info:
        read_model(path)
    assert "model name" in str(info.value)


def test_text_bad_weight(tmp_path: Path) -> None:
    desc = random_model("bad", version=11, num_blocks=1, trunk_channels=4, mid_channels=4, gpool_channels=2)
    path = tmp_path / "net.txt"
    write_model(desc, path, binary=False)
    lines = path.read_bytes().split(b"\n")
    # The weights follow the name and 6 header lines of model.conv_spatial.
    weights = lines.index(b"model.conv_spatial") + 7
    lines[weights] = lines[weights].replace(b" ", b" 1.5e3x ", 1)
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(ModelFormatError) as info:
        read_model(path)
    assert str(info.value).startswith("model.conv_spatial: expected 792 decimal weights, found '1.5e3x'")
    assert f"line {weights + 1} " in str(info.value)


def test_deep_nesting(tmp_path: Path) -> None:
    # Trunk and mid channels are equal, so a nested block fits inside another.
    desc = random_model(
        "deep", num_blocks=1, trunk_channels=4, mid_channels=4, gpool_channels=2, nested=True, block_kinds=["ordinary_block"]
    )
    for _ in range(9):
        outer = desc.trunk.blocks[0]
        wrapper = dataclasses.replace(outer, blocks=[outer, outer.blocks[1]])
        desc.trunk.blocks[0] = wrapper
    path = tmp_path / "deep.bin"
    write_model(desc, path)
    with pytest.raises(ModelFormatError) as info:
        read_model(path)
    assert "nested more than 8 levels deep" in str(info.value)


def test_errors_are_kgzarr_errors(tmp_path: Path) -> None:
    path = tmp_path / "junk.txt"
    path.write_bytes(b"name 15 22 19 x")
    with pytest.raises(KgzarrError):
        read_model(path)


def test_trailing_bytes_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    desc = random_model("tail", num_blocks=1, trunk_channels=4, mid_channels=4, gpool_channels=2)
    path = tmp_path / "tail.bin"
    write_model(desc, path)
    path.write_bytes(path.read_bytes() + b"extra\n")
    with caplog.at_level("WARNING", logger="kgzarr"):
        read_model(path)
    assert "6 unexpected bytes after the value head" in caplog.text


def test_result_type(tmp_path: Path) -> None:
    desc = random_model("typed", num_blocks=1, trunk_channels=4, mid_channels=4, gpool_channels=2)
    path = tmp_path / "typed.bin.gz"
    write_model(desc, path)
    assert isinstance(read_model(str(path)), ModelDesc)


# -- fuzzing ------------------------------------------------------------------------

# No example database: the examples are cheap to regenerate and the repository stays clean.
FUZZ_SETTINGS = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@pytest.fixture(scope="module")
def fuzz_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def fuzz_seed(shared_data: Path) -> bytes:
    return gzip.decompress(reference_path(shared_data, "ref-b1c6nbt-meta.bin.gz").read_bytes())


def read_or_reject(folder: Path, content: bytes) -> None:
    """Read ``content`` as a model file; only a description or a KgzarrError may come out."""
    path = folder / "fuzz.bin"
    path.write_bytes(content)
    try:
        desc = read_model(path)
    except KgzarrError as error:
        assert str(path) in str(error)
        return
    assert isinstance(desc, ModelDesc)


@FUZZ_SETTINGS
@given(content=st.binary(max_size=512))
def test_fuzz_any_bytes(fuzz_folder: Path, content: bytes) -> None:
    read_or_reject(fuzz_folder, content)


@FUZZ_SETTINGS
@given(
    header=st.sampled_from([b"", b"\x1f\x8b", b"net\n15\n22\n19\n", b"net\n8\n22\n19\ntrunk\n"]),
    tail=st.binary(max_size=256),
)
def test_fuzz_plausible_prefix(fuzz_folder: Path, header: bytes, tail: bytes) -> None:
    read_or_reject(fuzz_folder, header + tail)


@pytest.mark.shared
@FUZZ_SETTINGS
@given(data=st.data())
def test_fuzz_real_file(fuzz_folder: Path, fuzz_seed: bytes, data: st.DataObject) -> None:
    content = bytearray(fuzz_seed)
    for _ in range(data.draw(st.integers(0, 4), label="flips")):
        bit = data.draw(st.integers(0, 8 * len(content) - 1), label="bit")
        content[bit // 8] ^= 1 << (bit % 8)
    cut = data.draw(st.integers(0, len(content)), label="cut")
    compress = data.draw(st.booleans(), label="gzip")
    blob = bytes(content[:cut])
    read_or_reject(fuzz_folder, gzip.compress(blob, mtime=0) if compress else blob)
