"""KataGoNet behaviour: board-size invariance, truncated forward, input checks, loading."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from kgzarr.errors import DeviceUnavailableError, InputShapeError, LayerNotFoundError
from kgzarr.model.network import KataGoNet, load_model
from kgzarr.model.synthetic import random_model
from kgzarr.model.writer import write_model

MODELS = Path("reference") / "models"
S7 = Path("reference") / "activations" / "ref-b2c16__s7.npz"

# One net per trunk feature: gpool blocks, nested bottleneck, spatial RMS
# trunk norm, metadata encoder, attention with fixed RoPE.
INVARIANCE_NETS = ["ref-b6c96", "ref-b1c6nbt", "ref-b1c6nbt-rsnh", "ref-b1c6nbt-meta", "ref-b7c96h3tfrs"]


@functools.lru_cache(maxsize=None)
def _net(path: str) -> KataGoNet:
    return load_model(path)


def _reference_net(shared_data: Path, name: str) -> KataGoNet:
    return _net(str(shared_data / MODELS / f"{name}.bin.gz"))


@functools.lru_cache(maxsize=1)
def _s7_arrays(path: str) -> dict[str, np.ndarray]:
    with np.load(path) as archive:
        return {key: archive[key] for key in ("input.bin", "input.global")}


def _s7_inputs(shared_data: Path, rows: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    arrays = _s7_arrays(str(shared_data / S7))
    return torch.from_numpy(arrays["input.bin"][:rows]), torch.from_numpy(arrays["input.global"][:rows])


def _metadata(rows: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(3)
    return (torch.rand(rows, 192, generator=generator) < 0.1).float()


def _embed(binary: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad (N, C, 7, 7) into the top-left of (N, C, size, size)."""
    padded = torch.zeros(binary.shape[0], binary.shape[1], size, size)
    padded[:, :, :7, :7] = binary
    return padded


@pytest.fixture(scope="module")
def tiny_net(tmp_path_factory: pytest.TempPathFactory) -> KataGoNet:
    """A random 3-block net written to and read back from a real .bin.gz file."""
    path = tmp_path_factory.mktemp("models") / "tiny.bin.gz"
    write_model(random_model("tiny", num_blocks=3, trunk_channels=8, mid_channels=8, gpool_channels=4, seed=7), path)
    return load_model(path)


def _random_inputs(batch: int = 4, size: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(11)
    binary = (torch.rand(batch, 22, size, size, generator=generator) < 0.3).float()
    binary[:, 0] = 1.0
    return binary, torch.rand(batch, 19, generator=generator)


# Board-size invariance --------------------------------------------------------


@pytest.mark.shared
@pytest.mark.parametrize("net_name", INVARIANCE_NETS)
@pytest.mark.parametrize("size", [9, 19])
def test_embedded_board_same_activations(shared_data: Path, net_name: str, size: int) -> None:
    net = _reference_net(shared_data, net_name)
    binary, global_ = _s7_inputs(shared_data, rows=16)
    meta = _metadata(16) if net.num_meta_channels else None
    names = net.layer_names(include_heads=True)
    small = net.capture(binary, global_, names, metadata_input=meta)
    large = net.capture(_embed(binary, size), global_, names, metadata_input=meta)

    mask = binary[:, 0:1]
    for name in names:
        if small[name].dim() != 4:
            torch.testing.assert_close(large[name], small[name], rtol=0, atol=1e-5, msg=name)
            continue
        on_board = large[name][:, :, :7, :7] * mask
        torch.testing.assert_close(on_board, small[name] * mask, rtol=0, atol=1e-5, msg=name)


@pytest.mark.shared
@pytest.mark.parametrize("net_name", INVARIANCE_NETS)
def test_embedded_board_same_means(shared_data: Path, net_name: str) -> None:
    net = _reference_net(shared_data, net_name)
    binary, global_ = _s7_inputs(shared_data, rows=16)
    meta = _metadata(16) if net.num_meta_channels else None
    names = net.layer_names()
    small = net.capture(binary, global_, names, metadata_input=meta, zero_off_board=True)
    large = net.capture(_embed(binary, 19), global_, names, metadata_input=meta, zero_off_board=True)

    area = binary[:, 0].sum(dim=(1, 2))[:, None]
    for name in names:
        small_mean = small[name].sum(dim=(2, 3)) / area
        large_mean = large[name].sum(dim=(2, 3)) / area
        torch.testing.assert_close(large_mean, small_mean, rtol=0, atol=1e-5, msg=name)


@pytest.mark.shared
def test_zero_off_board_masks(shared_data: Path) -> None:
    net = _reference_net(shared_data, "ref-b2c16")
    binary, global_ = _s7_inputs(shared_data, rows=4)
    padded = _embed(binary, 9)
    captured = net.capture(padded, global_, ["trunk_after_embedding"], zero_off_board=True)
    raw = net.capture(padded, global_, ["trunk_after_embedding"])

    off_board = padded[:, 0:1] == 0
    assert raw["trunk_after_embedding"].masked_select(off_board).abs().max() > 0
    assert captured["trunk_after_embedding"].masked_select(off_board).abs().max() == 0


@pytest.mark.shared
def test_attention_weights_on_embedded_board(shared_data: Path) -> None:
    net = _reference_net(shared_data, "ref-b7c96h3tfrs")
    binary, global_ = _s7_inputs(shared_data, rows=4)
    padded = _embed(binary, 9)
    weights = net.capture(padded, global_, ["attn3.attn_weights"], zero_off_board=True)["attn3.attn_weights"]

    off_board_keys = padded[:, 0].flatten(1) == 0
    assert tuple(weights.shape) == (4, 3, 81, 81)
    torch.testing.assert_close(weights.sum(dim=-1), torch.ones(4, 3, 81))
    assert weights.transpose(1, 3)[off_board_keys].abs().max() == 0


# Truncated forward ------------------------------------------------------------


@pytest.mark.shared
def test_capture_stops_after_block(shared_data: Path) -> None:
    net = _reference_net(shared_data, "ref-b6c96")
    binary, global_ = _s7_inputs(shared_data, rows=4)
    net.capture(binary, global_, ["rconv2.normactconv1.out"])
    assert net.blocks_executed == 2
    assert net.heads_executed == ()


@pytest.mark.shared
def test_capture_embedding_runs_no_block(shared_data: Path) -> None:
    net = _reference_net(shared_data, "ref-b6c96")
    binary, global_ = _s7_inputs(shared_data, rows=4)
    net.capture(binary, global_, "trunk_after_embedding")
    assert net.blocks_executed == 0


@pytest.mark.shared
def test_capture_latest_layer_sets_depth(shared_data: Path) -> None:
    net = _reference_net(shared_data, "ref-b6c96")
    binary, global_ = _s7_inputs(shared_data, rows=4)
    net.capture(binary, global_, ["trunk_after_block3", "rconv1.out", "trunk_block_0_output"])
    assert net.blocks_executed == 4


@pytest.mark.shared
def test_capture_heads_only_when_asked(shared_data: Path) -> None:
    net = _reference_net(shared_data, "ref-b6c96")
    binary, global_ = _s7_inputs(shared_data, rows=4)
    net.capture(binary, global_, ["trunkfinal"])
    assert net.blocks_executed == 6
    assert net.heads_executed == ()
    net.capture(binary, global_, ["pass"])
    assert net.heads_executed == ("policy",)
    net.capture(binary, global_, ["ownership", "policy"])
    assert net.heads_executed == ("policy", "value")


@pytest.mark.shared
def test_truncated_equals_full(shared_data: Path) -> None:
    net = _reference_net(shared_data, "ref-b7c96h3tfrs")
    binary, global_ = _s7_inputs(shared_data, rows=6)
    early = net.capture(binary, global_, ["attn2.out"])
    full = net.capture(binary, global_, ["attn2.out", "value"])
    assert net.blocks_executed == 14
    torch.testing.assert_close(early["attn2.out"], full["attn2.out"], rtol=0, atol=0)


# Capture API ------------------------------------------------------------------


def test_capture_keys_as_requested(tiny_net: KataGoNet) -> None:
    binary, global_ = _random_inputs()
    requested = ["trunk_block_1_output", "trunk_after_block1", "model.blocks.0", "policy"]
    captured = tiny_net.capture(binary, global_, requested)
    assert list(captured) == requested
    torch.testing.assert_close(captured["trunk_block_1_output"], captured["trunk_after_block1"], rtol=0, atol=0)


def test_capture_shapes_match_layer_info(tiny_net: KataGoNet) -> None:
    binary, global_ = _random_inputs(batch=3, size=9)
    infos = tiny_net.layer_info(board_size=9)
    captured = tiny_net.capture(binary, global_, [info.name for info in infos])
    for info in infos:
        assert tuple(captured[info.name].shape) == (3, *info.shape), info.name


def test_capture_residual_is_trunk_difference(tiny_net: KataGoNet) -> None:
    binary, global_ = _random_inputs()
    captured = tiny_net.capture(binary, global_, ["trunk_after_block0", "rconv2.out", "trunk_after_block1"])
    expected = captured["trunk_after_block1"] - captured["trunk_after_block0"]
    torch.testing.assert_close(captured["rconv2.out"], expected, rtol=1e-5, atol=1e-6)


def test_forward_returns_heads(tiny_net: KataGoNet) -> None:
    binary, global_ = _random_inputs(batch=2, size=9)
    heads = tiny_net(binary, global_)
    assert list(heads) == ["policy", "pass", "value", "miscvalue", "ownership"]
    assert tuple(heads["policy"].shape) == (2, 2, 9, 9)
    assert tuple(heads["pass"].shape) == (2, 2)
    assert tuple(heads["value"].shape) == (2, 3)
    assert tuple(heads["miscvalue"].shape) == (2, 6)
    assert tuple(heads["ownership"].shape) == (2, 1, 9, 9)


def test_forward_needs_no_grad(tiny_net: KataGoNet) -> None:
    binary, global_ = _random_inputs()
    heads = tiny_net(binary, global_)
    assert not heads["value"].requires_grad
    assert not tiny_net.training


def test_capture_unknown_layer_suggests(tiny_net: KataGoNet) -> None:
    binary, global_ = _random_inputs()
    with pytest.raises(LayerNotFoundError, match="rconv1.out"):
        tiny_net.capture(binary, global_, ["rconv1.outt"])


# Input checks -----------------------------------------------------------------


def test_wrong_plane_count_raises(tiny_net: KataGoNet) -> None:
    binary, global_ = _random_inputs()
    with pytest.raises(InputShapeError, match=r"\(4, 21, 7, 7\).*\(N, 22, H, W\)"):
        tiny_net(binary[:, :21], global_)


def test_three_dim_binary_raises(tiny_net: KataGoNet) -> None:
    binary, global_ = _random_inputs()
    with pytest.raises(InputShapeError, match="binary_input"):
        tiny_net(binary[0], global_)


def test_global_batch_mismatch_raises(tiny_net: KataGoNet) -> None:
    binary, global_ = _random_inputs()
    with pytest.raises(InputShapeError, match=r"\(3, 19\).*\(4, 19\)"):
        tiny_net(binary, global_[:3])


def test_metadata_without_encoder_raises(tiny_net: KataGoNet) -> None:
    binary, global_ = _random_inputs()
    with pytest.raises(InputShapeError, match="no SGF-metadata encoder"):
        tiny_net(binary, global_, torch.zeros(4, 192))


@pytest.mark.shared
def test_missing_metadata_raises(shared_data: Path) -> None:
    net = _reference_net(shared_data, "ref-b1c6nbt-meta")
    binary, global_ = _s7_inputs(shared_data, rows=2)
    with pytest.raises(InputShapeError, match=r"metadata_input of shape \(2, 192\)"):
        net(binary, global_)


def test_empty_board_raises(tiny_net: KataGoNet) -> None:
    """A row with no on-board point divided by zero in pooling and gave NaN."""
    binary, global_ = _random_inputs()
    binary[2, 0] = 0.0
    with pytest.raises(InputShapeError, match=r"rows \[2\]"):
        tiny_net(binary, global_)


def test_numpy_and_bool_inputs_accepted(tiny_net: KataGoNet) -> None:
    binary, global_ = _random_inputs()
    from_numpy = tiny_net(binary.bool().numpy(), global_.numpy())
    from_torch = tiny_net(binary, global_)
    torch.testing.assert_close(from_numpy["value"], from_torch["value"], rtol=0, atol=0)


# Loading ----------------------------------------------------------------------


@pytest.mark.shared
def test_load_model_attributes(shared_data: Path) -> None:
    path = shared_data / MODELS / "ref-b4c32-v12.bin.gz"
    net = load_model(path)
    assert net.name == "ref-b4c32-v12"
    assert net.version == 12
    assert net.num_blocks == 4
    assert net.trunk_channels == 32
    assert net.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert net.path == path
    assert net.desc.model_version == 12


def test_from_desc_without_path() -> None:
    desc = random_model("mem", num_blocks=1, trunk_channels=4, mid_channels=4, gpool_channels=2)
    net = KataGoNet.from_desc(desc)
    assert net.path is None
    assert net.num_blocks == 1


@pytest.mark.shared
def test_channels_last_same_result(shared_data: Path) -> None:
    path = shared_data / MODELS / "ref-b2c16.bin.gz"
    binary, global_ = _s7_inputs(shared_data, rows=8)
    plain = load_model(path)(binary, global_)
    nhwc = load_model(path, channels_last=True)(binary, global_)
    for name in plain:
        torch.testing.assert_close(nhwc[name], plain[name], rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_unavailable_device_raises(tmp_path: Path) -> None:
    path = tmp_path / "tiny.bin.gz"
    write_model(random_model("tiny", num_blocks=1, trunk_channels=4, mid_channels=4, gpool_channels=2), path)
    with pytest.raises(DeviceUnavailableError, match="CUDA is not available"):
        load_model(path, device="cuda")
