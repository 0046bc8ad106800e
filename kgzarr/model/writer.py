"""Write a :class:`~kgzarr.model.desc.ModelDesc` as a KataGo model file.

The output follows the layout that KataGo's exporter
(``python/export_model_pytorch.py``, v1.17) writes for the description's
``model_version``: one token per line, each weight tensor as ``@BIN@`` plus
little-endian float32 bytes and a newline (or, with ``binary=False``, as
space-separated decimals on one line). Header numbers are formatted with
Python's ``str`` (``20.0``, ``1e-20``), as the exporter formats them, so
reading an exported file and writing it back gives the same uncompressed
bytes. Files whose headers spell numbers differently (``20`` for ``20.0``)
come back with the same values but not the same bytes.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import re
import tempfile
import time
from typing import BinaryIO, TypeVar

import numpy as np

from kgzarr.errors import ModelFormatError, OutputWriteError, UnsupportedModelVersion
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
    RMSNormLayer,
    SGFMetadataEncoder,
    TransformerAttentionBlock,
    TransformerFFNBlock,
    TransformerRMSNorm,
    Trunk,
    ValueHead,
)
from kgzarr.model.reader import MAX_MODEL_VERSION, MIN_MODEL_VERSION

__all__ = ["write_model"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

# A token must survive whitespace tokenising and KataGo's name checks.
_TOKEN = re.compile(r"[!-~]{1,1024}")


def write_model(
    desc: ModelDesc,
    path: str | os.PathLike[str],
    *,
    binary: bool = True,
    compresslevel: int = 6,
) -> None:
    """Write ``desc`` to ``path`` in KataGo's binary (or, with ``binary=False``, text) format.

    A path ending in ``.gz`` is gzip-compressed at ``compresslevel`` with a
    zero timestamp, so equal descriptions give equal files. The file is
    written to a temporary name in the same folder and renamed into place, so
    readers never see a partial file. Raises :class:`ModelFormatError` when a
    name cannot be written, :class:`UnsupportedModelVersion` for versions
    outside 8..17 and :class:`OutputWriteError` when writing fails.
    """
    if not MIN_MODEL_VERSION <= desc.model_version <= MAX_MODEL_VERSION:
        raise UnsupportedModelVersion(
            f"model version {desc.model_version} of {desc.name!r} is not supported, kgzarr writes versions "
            f"{MIN_MODEL_VERSION} to {MAX_MODEL_VERSION}; set model_version to a supported version"
        )
    path_text = os.fspath(path)
    started = time.perf_counter()
    folder = os.path.dirname(os.path.abspath(path_text))
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=".kgzarr-", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputWriteError(f"creating a temporary file in {folder} for {path_text} failed: {exc}") from exc
    try:
        with os.fdopen(descriptor, "wb") as raw:
            _write_stream(desc, raw, gzipped=path_text.lower().endswith(".gz"), binary=binary, level=compresslevel)
        os.replace(temporary, path_text)
    except OSError as exc:
        _remove_quietly(temporary)
        raise OutputWriteError(f"writing model file {path_text} failed: {exc}; check free space and permissions") from exc
    except BaseException:
        _remove_quietly(temporary)
        raise
    logger.info(
        "wrote model %s (version %d, %s floats) to %s in %.2f s",
        desc.name,
        desc.model_version,
        "binary" if binary else "text",
        path_text,
        time.perf_counter() - started,
    )


def _write_stream(desc: ModelDesc, raw: BinaryIO, *, gzipped: bool, binary: bool, level: int) -> None:
    if not gzipped:
        _Emitter(raw, desc.model_version, binary).model(desc)
        return
    # filename="" keeps the temporary file's name out of the gzip header.
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=level, mtime=0) as stream:
        _Emitter(stream, desc.model_version, binary).model(desc)  # type: ignore[arg-type]


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class _Emitter:
    """Writes the tokens and tensors of one model, layer by layer."""

    def __init__(self, stream: BinaryIO, version: int, binary: bool) -> None:
        self.stream = stream
        self.version = version
        self.binary = binary

    # -- tokens and tensors ------------------------------------------------

    def line(self, value: int | str) -> None:
        self.stream.write(f"{value}\n".encode("ascii"))

    def name(self, name: str) -> None:
        if not _TOKEN.fullmatch(name):
            raise ModelFormatError(
                f"invalid layer name {name!r}: a name must be 1 to 1024 printable ASCII characters "
                "without spaces; rename the layer"
            )
        self.line(name)

    def number(self, value: float) -> None:
        self.line(repr(float(value)))

    def flag(self, value: bool) -> None:
        self.line(1 if value else 0)

    def zeros(self, count: int) -> None:
        for _ in range(count):
            self.line(0)

    def floats(self, values: np.ndarray) -> None:
        flat = np.ascontiguousarray(values, dtype="<f4").reshape(-1)
        if self.binary:
            self.stream.write(b"@BIN@")
            self.stream.write(memoryview(flat).cast("B"))
            self.stream.write(b"\n")
            return
        # 9 significant digits identify every float32 exactly.
        self.line(" ".join("%.9g" % value for value in flat.tolist()))

    # -- layers ------------------------------------------------------------

    def conv(self, layer: ConvLayer) -> None:
        self.name(layer.name)
        for value in (layer.conv_y, layer.conv_x, layer.in_channels, layer.out_channels):
            self.line(value)
        self.line(layer.dilation_y)
        self.line(layer.dilation_x)
        # Torch layout (out, in, y, x) back to the file's (y, x, in, out).
        self.floats(layer.weight.transpose(2, 3, 1, 0))

    def batch_norm(self, layer: BatchNormLayer) -> None:
        self.name(layer.name)
        self.line(layer.num_channels)
        self.number(layer.epsilon)
        self.flag(layer.has_scale)
        self.flag(layer.has_bias)
        self.floats(layer.mean)
        self.floats(layer.variance)
        if layer.has_scale:
            self.floats(_required(layer.scale, layer.name, "scale"))
        if layer.has_bias:
            self.floats(_required(layer.bias, layer.name, "bias"))

    def activation(self, layer: ActivationLayer) -> None:
        self.name(layer.name)
        if self.version < 11:
            # Old files store no activation kind, so readers assume ReLU.
            if layer.activation != "ACTIVATION_RELU":
                raise ModelFormatError(
                    f"{layer.name}: version {self.version} files can only hold ReLU activations, "
                    f"found {layer.activation}; write the model as version 11 or later"
                )
            return
        if layer.activation not in ACTIVATIONS:
            raise ModelFormatError(
                f"{layer.name}: unknown activation {layer.activation!r}; use one of {', '.join(ACTIVATIONS)}"
            )
        self.line(layer.activation)

    def matmul(self, layer: MatMulLayer) -> None:
        self.name(layer.name)
        self.line(layer.in_channels)
        self.line(layer.out_channels)
        self.floats(layer.weight)

    def matbias(self, layer: MatBiasLayer) -> None:
        self.name(layer.name)
        self.line(layer.num_channels)
        self.floats(layer.weight)

    def rms_norm(self, layer: RMSNormLayer) -> None:
        self.name(layer.name)
        self.line(layer.num_channels)
        self.number(layer.epsilon)
        self.flag(layer.spatial)
        self.line(layer.cgroup_size)
        self.floats(layer.gamma)
        self.floats(layer.beta)

    def transformer_norm(self, layer: TransformerRMSNorm) -> None:
        self.name(layer.name)
        self.line(layer.num_channels)
        self.number(layer.epsilon)
        self.floats(layer.weight)

    # -- blocks ------------------------------------------------------------

    def block(self, block: Block) -> None:
        self.line(block.kind)
        if isinstance(block, OrdinaryBlock):
            self.ordinary_block(block)
        elif isinstance(block, GlobalPoolingBlock):
            self.gpool_block(block)
        elif isinstance(block, NestedBottleneckBlock):
            self.nested_block(block)
        elif isinstance(block, TransformerAttentionBlock):
            self.attention_block(block)
        elif isinstance(block, TransformerFFNBlock):
            self.ffn_block(block)
        else:
            raise ModelFormatError(
                f"unknown block type {type(block).__name__}; use a block class from kgzarr.model.desc"
            )

    def ordinary_block(self, block: OrdinaryBlock) -> None:
        self.name(block.name)
        self.batch_norm(block.pre_bn)
        self.activation(block.pre_activation)
        self.conv(block.regular_conv)
        self.batch_norm(block.mid_bn)
        self.activation(block.mid_activation)
        self.conv(block.final_conv)

    def gpool_block(self, block: GlobalPoolingBlock) -> None:
        self.name(block.name)
        self.batch_norm(block.pre_bn)
        self.activation(block.pre_activation)
        self.conv(block.regular_conv)
        self.conv(block.gpool_conv)
        self.batch_norm(block.gpool_bn)
        self.activation(block.gpool_activation)
        self.matmul(block.gpool_to_bias_mul)
        self.batch_norm(block.mid_bn)
        self.activation(block.mid_activation)
        self.conv(block.final_conv)

    def nested_block(self, block: NestedBottleneckBlock) -> None:
        self.name(block.name)
        self.line(len(block.blocks))
        self.batch_norm(block.pre_bn)
        self.activation(block.pre_activation)
        self.conv(block.pre_conv)
        for inner in block.blocks:
            self.block(inner)
        self.batch_norm(block.post_bn)
        self.activation(block.post_activation)
        self.conv(block.post_conv)

    def attention_block(self, block: TransformerAttentionBlock) -> None:
        self.name(block.name)
        for value in (block.num_heads, block.num_kv_heads, block.q_head_dim, block.v_head_dim):
            self.line(value)
        self.flag(block.use_rope)
        self.flag(block.learnable_rope)
        self.transformer_norm(block.pre_ln)
        self.matmul(block.q_proj)
        self.matmul(block.k_proj)
        self.matmul(block.v_proj)
        self.matmul(block.out_proj)
        if block.use_rope and block.learnable_rope:
            freqs = _required(block.rope_freqs, block.name, "rope_freqs")
            self.name(block.name + ".rope_freqs")
            for size in freqs.shape:
                self.line(size)
            self.floats(freqs)
        elif block.use_rope:
            self.name(block.name + ".rope_theta")
            self.number(_required(block.rope_theta, block.name, "rope_theta"))

    def ffn_block(self, block: TransformerFFNBlock) -> None:
        self.name(block.name)
        self.line(block.num_channels)
        self.line(block.ffn_channels)
        self.flag(block.use_swiglu)
        self.transformer_norm(block.pre_ln)
        self.matmul(block.linear1)
        if block.use_swiglu:
            self.matmul(_required(block.linear_gate, block.name, "linear_gate"))
        self.matmul(block.linear2)

    # -- trunk, heads, model -----------------------------------------------

    def meta_encoder(self, encoder: SGFMetadataEncoder) -> None:
        self.name(encoder.name)
        self.line(encoder.num_input_meta_channels)
        self.matmul(encoder.mul1)
        self.matbias(encoder.bias1)
        self.activation(encoder.act1)
        self.matmul(encoder.mul2)
        self.matbias(encoder.bias2)
        self.activation(encoder.act2)
        self.matmul(encoder.mul3)

    def trunk(self, trunk: Trunk) -> None:
        self.name(trunk.name)
        self.line(len(trunk.blocks))
        self.line(trunk.trunk_num_channels)
        self.line(trunk.mid_num_channels)
        self.line(trunk.regular_num_channels)
        dilated = trunk.gpool_num_channels if trunk.dilated_num_channels is None else trunk.dilated_num_channels
        self.line(dilated)
        self.line(trunk.gpool_num_channels)
        if self.version >= 15:
            self.line(trunk.trunk_norm_kind)
            self.zeros(5)
        self.conv(trunk.initial_conv)
        self.matmul(trunk.initial_matmul)
        if trunk.sgf_metadata_encoder is not None:
            self.meta_encoder(trunk.sgf_metadata_encoder)
        for block in trunk.blocks:
            self.block(block)
        if isinstance(trunk.trunk_tip_norm, RMSNormLayer):
            self.rms_norm(trunk.trunk_tip_norm)
        else:
            self.batch_norm(trunk.trunk_tip_norm)
        self.activation(trunk.trunk_tip_activation)

    def policy_head(self, head: PolicyHead) -> None:
        self.name(head.name)
        if self.version >= 17:
            self.line(head.policy_out_channels)
            self.zeros(3)
        self.conv(head.p1_conv)
        self.conv(head.g1_conv)
        self.batch_norm(head.g1_bn)
        self.activation(head.g1_activation)
        self.matmul(head.gpool_to_bias_mul)
        self.batch_norm(head.p1_bn)
        self.activation(head.p1_activation)
        self.conv(head.p2_conv)
        self.matmul(head.gpool_to_pass_mul)
        if self.version >= 15:
            self.matbias(_required(head.gpool_to_pass_bias, head.name, "gpool_to_pass_bias"))
            self.activation(_required(head.pass_activation, head.name, "pass_activation"))
            self.matmul(_required(head.gpool_to_pass_mul2, head.name, "gpool_to_pass_mul2"))

    def value_head(self, head: ValueHead) -> None:
        self.name(head.name)
        if self.version >= 17:
            self.zeros(3)
        self.conv(head.v1_conv)
        self.batch_norm(head.v1_bn)
        self.activation(head.v1_activation)
        self.matmul(head.v2_mul)
        self.matbias(head.v2_bias)
        self.activation(head.v2_activation)
        self.matmul(head.v3_mul)
        self.matbias(head.v3_bias)
        self.matmul(head.sv3_mul)
        self.matbias(head.sv3_bias)
        self.conv(head.v_ownership_conv)

    def model(self, desc: ModelDesc) -> None:
        self.name(desc.name)
        self.line(desc.model_version)
        self.line(desc.num_input_channels)
        self.line(desc.num_input_global_channels)
        if self.version >= 13:
            post = desc.post_process
            for value in (
                post.td_score_multiplier,
                post.score_mean_multiplier,
                post.score_stdev_multiplier,
                post.lead_multiplier,
                post.variance_time_multiplier,
                post.shortterm_value_error_multiplier,
                post.shortterm_score_error_multiplier,
            ):
                self.number(value)
        if self.version >= 15:
            self.line(desc.meta_encoder_version)
            self.flag(desc.prefer_pass_alive_under_suicide_rules)
            self.zeros(6)
        self.trunk(desc.trunk)
        self.policy_head(desc.policy_head)
        self.value_head(desc.value_head)


def _required(value: _T | None, owner: str, field: str) -> _T:
    if value is None:
        raise ModelFormatError(f"{owner}: {field} is None but this layer kind and version need it; set {field}")
    return value
