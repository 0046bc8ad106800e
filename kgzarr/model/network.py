"""KataGo network in PyTorch, built from a model file, with layer capture.

:class:`KataGoNet` computes what KataGo's engine computes from a ``.bin.gz``
file, for any board size and any tensor size. A board smaller than the tensor
sits in its top-left corner, with input plane 0 (the on-board mask) zero
elsewhere. Its on-board results equal those of a tensor of the board's size.

:meth:`KataGoNet.capture` returns intermediate tensors by the layer names of
:mod:`kgzarr.model.names` and runs only the blocks those layers need.

Performance notes: one forward pass handles the whole batch with no per-position
Python loop. The mask, the pooling denominators and the attention key mask are
computed once per batch. Spatial tensors are returned as computed, which for
trunk states and 3x3 conv outputs means garbage off-board (as in KataGo);
pass ``zero_off_board=True`` to ``capture`` or multiply by plane 0 before
pooling.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from kgzarr.errors import DeviceUnavailableError, InputShapeError
from kgzarr.model import desc as d
from kgzarr.model.layers import (
    BoardMask,
    MaskedAffine,
    Recorder,
    TrunkRMSNorm,
    activation_function,
    build_block,
    conv2d,
    global_pool,
    linear,
    value_head_pool,
)
from kgzarr.model.names import HEAD_OUTPUTS, LayerCatalog, LayerInfo
from kgzarr.model.reader import read_model

__all__ = ["KataGoNet", "load_model", "LayerInfo"]

logger = logging.getLogger(__name__)

_POLICY_OUTPUTS = frozenset({"policy", "pass"})
_VALUE_OUTPUTS = frozenset({"value", "miscvalue", "ownership"})


class MetadataEncoder(nn.Module):
    """SGF-metadata encoder: three matmuls with biases and activations, to a trunk bias."""

    def __init__(self, encoder: d.SGFMetadataEncoder) -> None:
        super().__init__()
        # The file's mul1 already zeroes the board-area input (channel 86), and
        # mul3 already includes the encoder's 0.5 output scale.
        self.layer1 = linear(encoder.mul1, encoder.bias1)
        self.act1 = activation_function(encoder.act1)
        self.layer2 = linear(encoder.mul2, encoder.bias2)
        self.act2 = activation_function(encoder.act2)
        self.to_trunk = linear(encoder.mul3)

    def forward(self, metadata: torch.Tensor) -> torch.Tensor:
        hidden = self.act1(self.layer1(metadata))
        hidden = self.act2(self.layer2(hidden))
        return self.to_trunk(hidden)


class PolicyHead(nn.Module):
    """Policy head: spatial logits and pass logits for the written policy channels."""

    def __init__(self, head: d.PolicyHead) -> None:
        super().__init__()
        self.p1_conv = conv2d(head.p1_conv)
        self.g1_conv = conv2d(head.g1_conv)
        self.g1_norm = MaskedAffine(head.g1_bn)
        self.g1_act = activation_function(head.g1_activation)
        self.gpool_to_bias = linear(head.gpool_to_bias_mul)
        self.p1_norm = MaskedAffine(head.p1_bn)
        self.p1_act = activation_function(head.p1_activation)
        self.p2_conv = conv2d(head.p2_conv)
        # Version <= 14: one matmul from the pooled features to the pass logits.
        # Version >= 15: matmul, bias, activation, second matmul.
        if head.gpool_to_pass_mul2 is None:
            self.pass_layer1 = linear(head.gpool_to_pass_mul)
            self.pass_act = None
            self.pass_layer2 = None
        else:
            self.pass_layer1 = linear(head.gpool_to_pass_mul, head.gpool_to_pass_bias)
            self.pass_act = activation_function(head.pass_activation)
            self.pass_layer2 = linear(head.gpool_to_pass_mul2)

    def forward(self, trunk: torch.Tensor, board: BoardMask) -> tuple[torch.Tensor, torch.Tensor]:
        g = self.g1_act(self.g1_norm(self.g1_conv(trunk), board))
        pooled = global_pool(g, board)
        p = self.p1_conv(trunk) + self.gpool_to_bias(pooled)[:, :, None, None]
        p = self.p1_act(self.p1_norm(p, board))
        policy = self.p2_conv(p)

        passing = self.pass_layer1(pooled)
        if self.pass_layer2 is not None:
            passing = self.pass_layer2(self.pass_act(passing))
        return policy, passing


class ValueHead(nn.Module):
    """Value head: value logits, misc values and ownership."""

    def __init__(self, head: d.ValueHead) -> None:
        super().__init__()
        self.v1_conv = conv2d(head.v1_conv)
        self.v1_norm = MaskedAffine(head.v1_bn)
        self.v1_act = activation_function(head.v1_activation)
        self.v2 = linear(head.v2_mul, head.v2_bias)
        self.v2_act = activation_function(head.v2_activation)
        self.v3 = linear(head.v3_mul, head.v3_bias)
        self.sv3 = linear(head.sv3_mul, head.sv3_bias)
        self.ownership_conv = conv2d(head.v_ownership_conv)

    def forward(self, trunk: torch.Tensor, board: BoardMask) -> dict[str, torch.Tensor]:
        v1 = self.v1_act(self.v1_norm(self.v1_conv(trunk), board))
        v2 = self.v2_act(self.v2(value_head_pool(v1, board)))
        return {
            "value": self.v3(v2),
            "miscvalue": self.sv3(v2),
            "ownership": self.ownership_conv(v1) * board.mask,
        }


def _trunk_tip_norm(trunk: d.Trunk) -> nn.Module:
    if isinstance(trunk.trunk_tip_norm, d.RMSNormLayer):
        return TrunkRMSNorm(trunk.trunk_tip_norm)
    return MaskedAffine(trunk.trunk_tip_norm)


class KataGoNet(nn.Module):
    """A KataGo network for inference, with named-layer capture.

    Attributes: ``name`` (model name in the file header), ``version`` (model
    format version), ``num_blocks`` (top-level trunk blocks),
    ``trunk_channels``, ``sha256`` (of the file, "" when built in memory),
    ``desc`` and ``path`` (None when built in memory).

    ``blocks_executed`` is the number of top-level trunk blocks that the
    latest ``capture`` or ``forward`` call ran. ``heads_executed`` lists the
    heads it ran ("policy", "value"). Tests use both to check that capture
    stops early.
    """

    def __init__(self, model: d.ModelDesc, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        trunk = model.trunk
        self.desc = model
        self.path = Path(path) if path is not None else None
        self.name = model.name
        self.version = model.model_version
        self.num_blocks = len(trunk.blocks)
        self.trunk_channels = trunk.trunk_num_channels
        self.sha256 = model.sha256
        self.num_input_channels = model.num_input_channels
        self.num_global_channels = model.num_input_global_channels
        self.num_meta_channels = model.num_input_meta_channels if trunk.sgf_metadata_encoder is not None else 0
        self.catalog = LayerCatalog(model, label=f"{model.name} ({self.path or 'built in memory'})")

        self.conv_spatial = conv2d(trunk.initial_conv)
        self.linear_global = linear(trunk.initial_matmul)
        self.metadata_encoder = (
            MetadataEncoder(trunk.sgf_metadata_encoder) if trunk.sgf_metadata_encoder is not None else None
        )
        self.blocks = nn.ModuleList(
            build_block(block, prefix) for block, prefix in zip(trunk.blocks, self.catalog.prefixes)
        )
        self.norm_trunkfinal = _trunk_tip_norm(trunk)
        self.act_trunkfinal = activation_function(trunk.trunk_tip_activation)
        self.policy_head = PolicyHead(model.policy_head)
        self.value_head = ValueHead(model.value_head)
        self.has_attention = any(_has_attention(block) for block in trunk.blocks)

        self.blocks_executed = 0
        self.blocks_compiled = False
        self.heads_executed: tuple[str, ...] = ()
        # Set by load_model(channels_last=True): inputs are then converted to NHWC order too.
        self.channels_last = False
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_desc(cls, model: d.ModelDesc, path: str | os.PathLike[str] | None = None) -> "KataGoNet":
        """Build the network from a model description; ``path`` is recorded as its source."""
        return cls(model, path)

    # Layer names -----------------------------------------------------------

    def compile_blocks(self) -> "KataGoNet":
        """Pass every trunk block through ``torch.compile``; return this network.

        Measured on a 2-core CPU (docs/benchmarks.md): 1.3x the eager speed
        for b6c96 after 6-30 s of compiling, with results within 1e-5 of
        eager float32. The first batch of each new shape compiles again.
        """
        for index in range(len(self.blocks)):
            self.blocks[index] = torch.compile(self.blocks[index])
        self.blocks_compiled = True
        return self

    def layer_names(self, include_heads: bool = False) -> list[str]:
        """Return the canonical layer names in forward order, as KataGo's ExtraOutputs reports them.

        With ``include_heads`` the head outputs of :data:`HEAD_OUTPUTS` follow.
        """
        return self.catalog.names(include_heads)

    def layer_info(self, board_size: int = 19, include_heads: bool = True) -> list[LayerInfo]:
        """Return name, aliases, channels, kind, block and shape of every layer at ``board_size``."""
        return self.catalog.info(board_size, include_heads)

    def resolve_layer(self, name: str) -> str:
        """Return the canonical name for a name or alias; raise LayerNotFoundError with suggestions."""
        return self.catalog.resolve(name)

    @staticmethod
    def head_outputs() -> dict[str, str]:
        """Return the head output names with their shapes and channel meanings."""
        return dict(HEAD_OUTPUTS)

    # Inference ----------------------------------------------------------------

    def capture(
        self,
        binary_input: torch.Tensor,
        global_input: torch.Tensor,
        layers: str | Iterable[str],
        metadata_input: torch.Tensor | None = None,
        *,
        zero_off_board: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Run the network far enough to compute ``layers`` and return them by the requested names.

        ``binary_input`` is (N, 22, H, W) with plane 0 the on-board mask,
        ``global_input`` (N, 19), ``metadata_input`` (N, 192) for nets with an
        SGF-metadata encoder. Names may be canonical names, aliases or head
        names, and the returned keys are the names as given. Blocks after the
        last one needed are not run, nor are heads that were not requested.
        With ``zero_off_board`` every spatial output is multiplied by the mask.
        The results are inference tensors (made under ``torch.inference_mode``).
        """
        names = [layers] if isinstance(layers, str) else list(layers)
        canonical = {name: self.resolve_layer(name) for name in names}
        outputs, board_mask = self._run(binary_input, global_input, metadata_input, frozenset(canonical.values()))

        result = {}
        for name, target in canonical.items():
            tensor = outputs[target]
            if zero_off_board and self.catalog.entry(target).spatial:
                tensor = tensor * board_mask
            result[name] = tensor
        return result

    def forward(
        self,
        binary_input: torch.Tensor,
        global_input: torch.Tensor,
        metadata_input: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Return the head outputs ``policy``, ``pass``, ``value``, ``miscvalue``, ``ownership``."""
        outputs, _ = self._run(binary_input, global_input, metadata_input, frozenset(HEAD_OUTPUTS))
        return {name: outputs[name] for name in HEAD_OUTPUTS}

    def _run(
        self,
        binary_input: torch.Tensor,
        global_input: torch.Tensor,
        metadata_input: torch.Tensor | None,
        requested: frozenset[str],
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Return the recorded tensors of the canonical names in ``requested``, and the on-board mask."""
        binary, global_, metadata = self._prepare_inputs(binary_input, global_input, metadata_input)
        stop = max(self.catalog.stage(name) for name in requested) if requested else 0
        heads = tuple(
            head
            for head, outputs in (("policy", _POLICY_OUTPUTS), ("value", _VALUE_OUTPUTS))
            if requested & outputs
        )
        needs_tip = "trunkfinal" in requested or bool(heads)

        with torch.inference_mode():
            board = BoardMask.from_input(binary, with_attention=self.has_attention)
            recorder = Recorder(requested)
            trunk = self._run_trunk(binary, global_, metadata, board, recorder, stop)
            if needs_tip:
                trunk = self.act_trunkfinal(self.norm_trunkfinal(trunk, board))
                recorder.record("trunkfinal", trunk)
            if "policy" in heads:
                policy, passing = self.policy_head(trunk, board)
                recorder.record("policy", policy)
                recorder.record("pass", passing)
            if "value" in heads:
                for name, tensor in self.value_head(trunk, board).items():
                    recorder.record(name, tensor)

        self.heads_executed = heads
        return recorder.outputs, board.mask

    def _run_trunk(
        self,
        binary: torch.Tensor,
        global_: torch.Tensor,
        metadata: torch.Tensor | None,
        board: BoardMask,
        recorder: Recorder,
        stop: int,
    ) -> torch.Tensor:
        # In-place adds on the fresh conv output avoid one trunk-sized temporary.
        trunk = self.conv_spatial(binary)
        trunk += self.linear_global(global_)[:, :, None, None]
        if self.metadata_encoder is not None:
            trunk += self.metadata_encoder(metadata)[:, :, None, None]
        recorder.record("trunk_after_embedding", trunk)

        self.blocks_executed = 0
        for index in range(stop):
            trunk = trunk + self.blocks[index](trunk, board, recorder)
            recorder.record(f"trunk_after_block{index}", trunk)
            self.blocks_executed += 1
        return trunk

    # Input checks -------------------------------------------------------------

    def _as_input(self, value: torch.Tensor) -> torch.Tensor:
        reference = self.conv_spatial.weight
        tensor = torch.as_tensor(value).to(device=reference.device, dtype=reference.dtype)
        if self.channels_last and tensor.dim() == 4:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor

    def _prepare_inputs(
        self,
        binary_input: torch.Tensor,
        global_input: torch.Tensor,
        metadata_input: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        binary = self._as_input(binary_input)
        global_ = self._as_input(global_input)
        if binary.dim() != 4 or binary.shape[1] != self.num_input_channels:
            raise InputShapeError(
                f"binary_input has shape {tuple(binary.shape)}, expected (N, {self.num_input_channels}, H, W) "
                f"for network {self.name}; unpack the planes to NCHW floats"
            )
        batch = binary.shape[0]
        if tuple(global_.shape) != (batch, self.num_global_channels):
            raise InputShapeError(
                f"global_input has shape {tuple(global_.shape)}, expected ({batch}, {self.num_global_channels}) "
                f"to match binary_input of shape {tuple(binary.shape)}"
            )
        metadata = self._prepare_metadata(metadata_input, batch)
        _check_on_board(binary)
        return binary, global_, metadata

    def _prepare_metadata(self, metadata_input: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        if self.metadata_encoder is None:
            if metadata_input is not None:
                raise InputShapeError(
                    f"metadata_input was given, but network {self.name} has no SGF-metadata encoder; "
                    "pass metadata_input=None"
                )
            return None
        if metadata_input is None:
            raise InputShapeError(
                f"network {self.name} has an SGF-metadata encoder and needs metadata_input of shape "
                f"({batch}, {self.num_meta_channels}); KataGo's engine requires it too"
            )
        metadata = self._as_input(metadata_input)
        if tuple(metadata.shape) != (batch, self.num_meta_channels):
            raise InputShapeError(
                f"metadata_input has shape {tuple(metadata.shape)}, expected ({batch}, {self.num_meta_channels})"
            )
        return metadata


def _has_attention(block: d.Block) -> bool:
    if isinstance(block, d.TransformerAttentionBlock):
        return True
    if isinstance(block, d.NestedBottleneckBlock):
        return any(_has_attention(inner) for inner in block.blocks)
    return False


def _check_on_board(binary: torch.Tensor) -> None:
    """Raise when a position has no on-board point, which would divide by zero in pooling."""
    empty = (binary[:, 0].flatten(1).sum(dim=1) == 0).nonzero().flatten()
    if empty.numel():
        rows = empty[:10].tolist()
        raise InputShapeError(
            f"binary_input plane 0 (on-board mask) is all zero for rows {rows}"
            f"{' and more' if empty.numel() > 10 else ''}; every position needs at least one on-board point"
        )


def _check_device(device: str | torch.device) -> torch.device:
    """Return ``device`` as a torch.device; raise DeviceUnavailableError when it is absent here."""
    try:
        target = torch.device(device)
    except RuntimeError as exc:
        raise DeviceUnavailableError(f"invalid torch device {device!r}: {exc}; use e.g. 'cpu' or 'cuda:0'") from exc
    if target.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(f"device {device!r} requested, but CUDA is not available; use device='cpu'")
    if target.type == "cuda" and target.index is not None and target.index >= torch.cuda.device_count():
        raise DeviceUnavailableError(
            f"device {device!r} requested, but only {torch.cuda.device_count()} CUDA devices exist"
        )
    if target.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceUnavailableError(f"device {device!r} requested, but MPS is not available; use device='cpu'")
    return target


def load_model(
    path: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    *,
    channels_last: bool = False,
) -> KataGoNet:
    """Read a KataGo model file and return the network in eval mode on ``device``.

    ``channels_last`` stores conv weights and inputs in NHWC memory order.
    The results are the same. On a 2-core CPU with torch 2.13 it changed
    throughput by less than the run-to-run noise (about 5%), for 7x7 and 19x19
    inputs and both convolution and transformer nets. GPUs were not measured.
    """
    target = _check_device(device)
    model = read_model(path)
    net = KataGoNet.from_desc(model, path)
    net = net.to(device=target, dtype=dtype)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        net.channels_last = True
    logger.info(
        "loaded %s (version %d, %d blocks, %d trunk channels) from %s on %s",
        net.name, net.version, net.num_blocks, net.trunk_channels, path, device,
    )
    return net
