"""Read KataGo model files into a :class:`~kgzarr.model.desc.ModelDesc`.

A KataGo model file is a stream of whitespace-separated tokens (names, counts,
flags) with the weights of each layer after its header. The binary encoding
(``.bin.gz``, ``.bin``) stores each weight tensor as ``@BIN@`` followed by
little-endian float32 values and a newline. The older text encoding
(``.txt.gz``, ``.txt``) stores the weights as decimal tokens. The reader
recognises gzip by its magic bytes and the float encoding by the first tensor,
so a misnamed file still reads.

The layout per model version (8 to 17) and the consistency checks follow the
loader of KataGo's C++ engine (``cpp/neuralnet/desc.cpp``, v1.17). Every
problem raises :class:`~kgzarr.errors.ModelFormatError` naming the file, the
position, the layer and the fix.

Performance: the file is decompressed once into memory and each tensor is
decoded with a single ``numpy.frombuffer``, so peak memory is about twice the
uncompressed size (the decompressed bytes plus the arrays).
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import re
import time
import zlib

import numpy as np

from kgzarr.errors import ModelFileNotFoundError, ModelFormatError, UnsupportedModelVersion
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

__all__ = ["read_model", "MIN_MODEL_VERSION", "MAX_MODEL_VERSION"]

logger = logging.getLogger(__name__)

MIN_MODEL_VERSION = 8
MAX_MODEL_VERSION = 17

# Model versions 8..17 all take input features version 7.
_NUM_SPATIAL_FEATURES = 22
_NUM_GLOBAL_FEATURES = 19
# Metadata input channels per SGF-metadata encoder version.
_META_INPUT_CHANNELS = {0: 0, 1: 192}
# KataGo embeds the model name in cache file names, so it limits the name.
_NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,96}")

_GZIP_MAGIC = b"\x1f\x8b"
_BIN_MARKER = b"@BIN@"
_WHITESPACE = b" \t\n\r\f\v"
_MAX_TOKEN_BYTES = 1024
_TOKEN = re.compile(rb"[ \t\n\r\f\v]*([^ \t\n\r\f\v]{0,%d})" % _MAX_TOKEN_BYTES)
_SPACE = re.compile(rb"[ \t\n\r\f\v]*")
_INTEGER = re.compile(rb"[+-]?[0-9]{1,18}")
_REAL = re.compile(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?")

# Upper bounds far above any real network, so corrupt headers give clear errors.
# The guard against huge allocations is the remaining-bytes check in floats().
_MAX_CHANNELS = 1 << 20
_MAX_KERNEL = 255
_MAX_BLOCKS = 1 << 16
# Nested bottleneck blocks recurse, and real nets nest only one level deep.
_MAX_NESTING = 8

_FIX_CORRUPT = "the file is corrupt or not a KataGo model file; download or export it again"
_FIX_TRUNCATED = "the file is truncated, download it again"


def read_model(path: str | os.PathLike[str]) -> ModelDesc:
    """Parse the KataGo model file at ``path`` into a :class:`ModelDesc`.

    ``ModelDesc.sha256`` is set to the SHA-256 of the file as stored on disk.
    Raises :class:`ModelFileNotFoundError` when the file is missing,
    :class:`UnsupportedModelVersion` for versions outside 8..17 and
    :class:`ModelFormatError` for anything else that is wrong with the file.
    """
    path_text = os.fspath(path)
    started = time.perf_counter()
    raw = _read_bytes(path_text)
    sha256 = hashlib.sha256(raw).hexdigest()
    content, compressed = _decompress(raw, path_text)
    # Drop the compressed bytes before the arrays are allocated, to lower peak memory.
    del raw
    cursor = _Cursor(content, path_text, compressed)
    desc = _read_desc(cursor)
    desc.sha256 = sha256
    logger.info(
        "read model %s (version %d, %d blocks, %d trunk channels) from %s in %.2f s",
        desc.name,
        desc.model_version,
        desc.trunk.num_blocks,
        desc.trunk.trunk_num_channels,
        path_text,
        time.perf_counter() - started,
    )
    return desc


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except FileNotFoundError as exc:
        raise ModelFileNotFoundError(
            f"model file {path} not found; check the path, or download the network from katagotraining.org"
        ) from exc
    except IsADirectoryError as exc:
        raise ModelFileNotFoundError(
            f"model path {path} is a directory; pass the .bin.gz file inside it"
        ) from exc
    except OSError as exc:
        raise ModelFormatError(f"reading model file {path} failed: {exc.strerror or exc}; check its permissions") from exc


def _decompress(raw: bytes, path: str) -> tuple[bytes, bool]:
    if not raw:
        raise ModelFormatError(f"model file {path} is empty; download or export it again")
    if not raw.startswith(_GZIP_MAGIC):
        return raw, False
    try:
        return gzip.decompress(raw), True
    except (OSError, EOFError, zlib.error) as exc:
        # gzip.BadGzipFile is an OSError, and a cut-off stream raises EOFError.
        raise ModelFormatError(
            f"model file {path} starts like gzip but cannot be decompressed ({exc}); "
            "the file is truncated or corrupt, download it again"
        ) from exc


class _Cursor:
    """Position in the uncompressed model bytes, with typed token readers."""

    def __init__(self, data: bytes, path: str, compressed: bool) -> None:
        self.data = data
        self.path = path
        self.compressed = compressed
        self.pos = 0
        # None until the first tensor shows whether floats are binary or text.
        self.binary: bool | None = None
        self.version = 0
        self.nesting = 0
        self.last_name = "the start of the file"

    # -- error reporting ---------------------------------------------------

    def location(self, pos: int | None = None) -> str:
        pos = self.pos if pos is None else pos
        byte = f"{'uncompressed ' if self.compressed else ''}byte {pos}"
        if self.binary:
            return f"{byte} of {self.path}"
        line = self.data.count(b"\n", 0, pos) + 1
        return f"line {line} ({byte}) of {self.path}"

    def error(
        self,
        layer: str,
        problem: str,
        fix: str = _FIX_CORRUPT,
        *,
        pos: int | None = None,
        error_type: type[ModelFormatError] = ModelFormatError,
    ) -> ModelFormatError:
        return error_type(f"{layer}: {problem} at {self.location(pos)}; {fix}")

    # -- tokens ------------------------------------------------------------

    def token(self, layer: str, what: str) -> tuple[bytes, int]:
        match = _TOKEN.match(self.data, self.pos)
        assert match is not None  # the pattern matches the empty string
        token, start, end = match.group(1), match.start(1), match.end(1)
        if not token:
            raise self.error(layer, f"expected {what}, found end of file", _FIX_TRUNCATED, pos=start)
        if end < len(self.data) and self.data[end] not in _WHITESPACE:
            raise self.error(layer, f"expected {what}, found a token longer than {_MAX_TOKEN_BYTES} bytes", pos=start)
        self.pos = end
        return token, start

    def text(self, layer: str, what: str) -> str:
        token, start = self.token(layer, what)
        try:
            return token.decode("ascii")
        except UnicodeDecodeError as exc:
            raise self.error(layer, f"expected {what}, found non-ASCII bytes {_show(token)}", pos=start) from exc

    def name(self, what: str) -> str:
        name = self.text(f"{what} after {self.last_name}", f"the {what}")
        self.last_name = name
        return name

    def integer(self, layer: str, what: str, minimum: int, maximum: int) -> int:
        token, start = self.token(layer, what)
        if not _INTEGER.fullmatch(token):
            raise self.error(layer, f"expected {what} (an integer), found {_show(token)}", pos=start)
        value = int(token)
        if not minimum <= value <= maximum:
            raise self.error(layer, f"{what} is {value}, expected {_range_text(minimum, maximum)}", pos=start)
        return value

    def flag(self, layer: str, what: str) -> bool:
        return bool(self.integer(layer, what, 0, 1))

    def zeros(self, layer: str, what: str, count: int) -> None:
        for index in range(count):
            self.integer(layer, f"{what} {index + 1} of {count} (reserved)", 0, 0)

    def real(self, layer: str, what: str, *, maximum: float = float("inf")) -> float:
        """Read a positive, finite decimal number no larger than ``maximum``."""
        token, start = self.token(layer, what)
        if not _REAL.fullmatch(token):
            raise self.error(layer, f"expected {what} (a number), found {_show(token)}", pos=start)
        value = float(token)
        if not (0.0 < value <= maximum) or not np.isfinite(value):
            raise self.error(layer, f"{what} is {value!r}, expected {_range_text(0, maximum, open_low=True)}", pos=start)
        return value

    # -- weights -----------------------------------------------------------

    def floats(self, layer: str, count: int) -> np.ndarray:
        """Read ``count`` float32 weights; binary ones are a read-only view of the data."""
        start = _SPACE.match(self.data, self.pos).end()  # type: ignore[union-attr]
        if self.binary is None:
            self.binary = self.data.startswith(b"@", start)
        values = self._binary_floats(layer, count) if self.binary else self._text_floats(layer, count)
        finite = np.isfinite(values)
        if not finite.all():
            index = int(np.flatnonzero(~finite)[0])
            raise self.error(
                layer, f"weight {index} of {count} is {values[index]}, expected a finite float32", pos=start
            )
        return values

    def _binary_floats(self, layer: str, count: int) -> np.ndarray:
        start = _SPACE.match(self.data, self.pos).end()  # type: ignore[union-attr]
        if start >= len(self.data):
            raise self.error(layer, f"expected {count} float32 weights, found end of file", _FIX_TRUNCATED, pos=start)
        if not self.data.startswith(_BIN_MARKER, start):
            found = _show(self.data[start : start + 16])
            raise self.error(
                layer,
                f"expected '@BIN@' and {count} float32 weights, found {found}",
                _FIX_CORRUPT + " (a text model must not mix in binary weights)",
                pos=start,
            )
        begin = start + len(_BIN_MARKER)
        available = (len(self.data) - begin) // 4
        if count > available:
            raise self.error(
                layer,
                f"expected {count} float32 weights, found end of file after {available}",
                _FIX_TRUNCATED,
                pos=len(self.data),
            )
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=begin)
        self.pos = begin + 4 * count
        return values

    def _text_floats(self, layer: str, count: int) -> np.ndarray:
        # Each value needs at least one digit and one separator; checking this
        # first keeps a corrupt count from allocating a huge list.
        if 2 * count - 1 > len(self.data) - self.pos:
            raise self.error(
                layer, f"expected {count} decimal weights, found end of file", _FIX_TRUNCATED, pos=len(self.data)
            )
        start = _SPACE.match(self.data, self.pos).end()  # type: ignore[union-attr]
        tokens = self._take_tokens(layer, count)
        try:
            # Out-of-range values become inf here and fail the finite check.
            with np.errstate(over="ignore", invalid="ignore"):
                return np.array(tokens, dtype=np.bytes_).astype(np.float32)
        except ValueError as exc:
            bad = next((token for token in tokens if not _REAL.fullmatch(token)), tokens[0])
            raise self.error(layer, f"expected {count} decimal weights, found {_show(bad)}", pos=start) from exc

    def _take_tokens(self, layer: str, count: int) -> list[bytes]:
        """Split the next ``count`` whitespace-separated tokens off the data."""
        width = 24 * count + 64
        while True:
            window = self.data[self.pos : self.pos + width]
            parts = window.split(None, count)
            if len(parts) > count:
                self.pos += len(window) - len(parts[count])
                return parts[:count]
            if self.pos + width >= len(self.data):
                if len(parts) < count:
                    raise self.error(
                        layer,
                        f"expected {count} decimal weights, found end of file after {len(parts)}",
                        _FIX_TRUNCATED,
                        pos=len(self.data),
                    )
                self.pos = len(self.data)
                return parts
            # The window may end inside the last token; widen it and retry.
            width *= 2

    def vector(self, layer: str, count: int) -> np.ndarray:
        return np.array(self.floats(layer, count), dtype=np.float32)


def _show(token: bytes) -> str:
    text = token[:40].decode("ascii", errors="backslashreplace")
    return repr(text + ("..." if len(token) > 40 else ""))


def _range_text(minimum: float, maximum: float, *, open_low: bool = False) -> str:
    if minimum == maximum:
        return f"{minimum}"
    low = f"greater than {minimum}" if open_low else f"at least {minimum}"
    return low if maximum == float("inf") else f"{low} and at most {maximum}"


def _check_equal(cursor: _Cursor, layer: str, first: str, first_value: int, second: str, second_value: int) -> None:
    if first_value != second_value:
        raise cursor.error(layer, f"{first} is {first_value} but {second} is {second_value}; they must be equal")


# -- layers -------------------------------------------------------------------


def _read_conv(cursor: _Cursor) -> ConvLayer:
    name = cursor.name("conv layer name")
    conv_y = cursor.integer(name, "conv_y (kernel height)", 1, _MAX_KERNEL)
    conv_x = cursor.integer(name, "conv_x (kernel width)", 1, _MAX_KERNEL)
    in_channels = cursor.integer(name, "in_channels", 1, _MAX_CHANNELS)
    out_channels = cursor.integer(name, "out_channels", 1, _MAX_CHANNELS)
    dilation_y = cursor.integer(name, "dilation_y", 1, _MAX_KERNEL)
    dilation_x = cursor.integer(name, "dilation_x", 1, _MAX_KERNEL)
    if conv_y % 2 == 0 or conv_x % 2 == 0:
        raise cursor.error(name, f"kernel size {conv_y}x{conv_x} is even, expected odd sizes")

    flat = cursor.floats(name, conv_y * conv_x * in_channels * out_channels)
    # The file stores (y, x, in, out); torch wants (out, in, y, x).
    stored = flat.reshape(conv_y, conv_x, in_channels, out_channels)
    weight = np.array(stored.transpose(3, 2, 0, 1), dtype=np.float32, order="C")
    return ConvLayer(name, conv_y, conv_x, in_channels, out_channels, dilation_y, dilation_x, weight)


def _read_batch_norm(cursor: _Cursor) -> BatchNormLayer:
    name = cursor.name("batch-norm layer name")
    num_channels = cursor.integer(name, "num_channels", 1, _MAX_CHANNELS)
    epsilon = cursor.real(name, "epsilon")
    has_scale = cursor.flag(name, "has_scale")
    has_bias = cursor.flag(name, "has_bias")
    mean = cursor.vector(name + " (mean)", num_channels)
    variance = cursor.vector(name + " (variance)", num_channels)
    scale = cursor.vector(name + " (scale)", num_channels) if has_scale else None
    bias = cursor.vector(name + " (bias)", num_channels) if has_bias else None
    return BatchNormLayer(name, num_channels, epsilon, has_scale, has_bias, mean, variance, scale, bias)


def _read_activation(cursor: _Cursor) -> ActivationLayer:
    name = cursor.name("activation layer name")
    if cursor.version < 11:
        # Files before version 11 store only the name; their activations are ReLU.
        return ActivationLayer(name, "ACTIVATION_RELU")
    kind, start = cursor.token(name, "activation kind")
    activation = kind.decode("ascii", errors="backslashreplace")
    if activation not in ACTIVATIONS:
        raise cursor.error(name, f"unknown activation {_show(kind)}, expected one of {', '.join(ACTIVATIONS)}", pos=start)
    return ActivationLayer(name, activation)


def _read_matmul(cursor: _Cursor) -> MatMulLayer:
    name = cursor.name("matmul layer name")
    in_channels = cursor.integer(name, "in_channels", 1, _MAX_CHANNELS)
    out_channels = cursor.integer(name, "out_channels", 1, _MAX_CHANNELS)
    weight = cursor.vector(name, in_channels * out_channels).reshape(in_channels, out_channels)
    return MatMulLayer(name, in_channels, out_channels, weight)


def _read_matbias(cursor: _Cursor) -> MatBiasLayer:
    name = cursor.name("matbias layer name")
    num_channels = cursor.integer(name, "num_channels", 1, _MAX_CHANNELS)
    return MatBiasLayer(name, num_channels, cursor.vector(name, num_channels))


def _read_rms_norm(cursor: _Cursor) -> RMSNormLayer:
    name = cursor.name("RMS-norm layer name")
    num_channels = cursor.integer(name, "num_channels", 1, _MAX_CHANNELS)
    epsilon = cursor.real(name, "epsilon", maximum=1.0)
    spatial = cursor.flag(name, "spatial")
    cgroup_size = cursor.integer(name, "cgroup_size", 0, _MAX_CHANNELS)
    if cgroup_size != 0:
        raise cursor.error(
            name,
            f"cgroup_size is {cgroup_size}, expected 0",
            "grouped spatial RMS norm is not supported by KataGo or kgzarr; export the net without channel groups",
        )
    gamma = cursor.vector(name + " (gamma)", num_channels)
    beta = cursor.vector(name + " (beta)", num_channels)
    return RMSNormLayer(name, num_channels, epsilon, spatial, cgroup_size, gamma, beta)


def _read_transformer_norm(cursor: _Cursor) -> TransformerRMSNorm:
    name = cursor.name("transformer RMS-norm name")
    num_channels = cursor.integer(name, "num_channels", 1, _MAX_CHANNELS)
    epsilon = cursor.real(name, "epsilon", maximum=1.0)
    return TransformerRMSNorm(name, num_channels, epsilon, cursor.vector(name, num_channels))


# -- residual blocks ----------------------------------------------------------


def _read_ordinary_block(cursor: _Cursor) -> OrdinaryBlock:
    name = cursor.name("ordinary block name")
    block = OrdinaryBlock(
        name,
        pre_bn=_read_batch_norm(cursor),
        pre_activation=_read_activation(cursor),
        regular_conv=_read_conv(cursor),
        mid_bn=_read_batch_norm(cursor),
        mid_activation=_read_activation(cursor),
        final_conv=_read_conv(cursor),
    )
    _check_equal(cursor, name, "pre_bn.num_channels", block.pre_bn.num_channels,
                 "regular_conv.in_channels", block.regular_conv.in_channels)
    _check_equal(cursor, name, "mid_bn.num_channels", block.mid_bn.num_channels,
                 "regular_conv.out_channels", block.regular_conv.out_channels)
    _check_equal(cursor, name, "mid_bn.num_channels", block.mid_bn.num_channels,
                 "final_conv.in_channels", block.final_conv.in_channels)
    return block


def _read_gpool_block(cursor: _Cursor) -> GlobalPoolingBlock:
    name = cursor.name("gpool block name")
    block = GlobalPoolingBlock(
        name,
        pre_bn=_read_batch_norm(cursor),
        pre_activation=_read_activation(cursor),
        regular_conv=_read_conv(cursor),
        gpool_conv=_read_conv(cursor),
        gpool_bn=_read_batch_norm(cursor),
        gpool_activation=_read_activation(cursor),
        gpool_to_bias_mul=_read_matmul(cursor),
        mid_bn=_read_batch_norm(cursor),
        mid_activation=_read_activation(cursor),
        final_conv=_read_conv(cursor),
    )
    pre, gpool, mid = block.pre_bn.num_channels, block.gpool_bn.num_channels, block.mid_bn.num_channels
    _check_equal(cursor, name, "pre_bn.num_channels", pre, "regular_conv.in_channels", block.regular_conv.in_channels)
    _check_equal(cursor, name, "pre_bn.num_channels", pre, "gpool_conv.in_channels", block.gpool_conv.in_channels)
    _check_equal(cursor, name, "gpool_bn.num_channels", gpool, "gpool_conv.out_channels", block.gpool_conv.out_channels)
    _check_equal(cursor, name, "3 * gpool_bn.num_channels", 3 * gpool,
                 "gpool_to_bias_mul.in_channels", block.gpool_to_bias_mul.in_channels)
    _check_equal(cursor, name, "mid_bn.num_channels", mid, "regular_conv.out_channels", block.regular_conv.out_channels)
    _check_equal(cursor, name, "mid_bn.num_channels", mid,
                 "gpool_to_bias_mul.out_channels", block.gpool_to_bias_mul.out_channels)
    _check_equal(cursor, name, "mid_bn.num_channels", mid, "final_conv.in_channels", block.final_conv.in_channels)
    return block


def _read_nested_block(cursor: _Cursor) -> NestedBottleneckBlock:
    name = cursor.name("nested bottleneck block name")
    num_blocks = cursor.integer(name, "number of inner blocks", 1, _MAX_BLOCKS)
    pre_bn = _read_batch_norm(cursor)
    pre_activation = _read_activation(cursor)
    pre_conv = _read_conv(cursor)
    if cursor.nesting >= _MAX_NESTING:
        raise cursor.error(name, f"nested bottleneck blocks are nested more than {_MAX_NESTING} levels deep")
    cursor.nesting += 1
    inner = _read_block_stack(cursor, name, num_blocks, pre_conv.out_channels)
    cursor.nesting -= 1
    block = NestedBottleneckBlock(
        name,
        num_blocks,
        pre_bn,
        pre_activation,
        pre_conv,
        inner,
        post_bn=_read_batch_norm(cursor),
        post_activation=_read_activation(cursor),
        post_conv=_read_conv(cursor),
    )
    _check_equal(cursor, name, "pre_bn.num_channels", pre_bn.num_channels, "pre_conv.in_channels", pre_conv.in_channels)
    _check_equal(cursor, name, "post_bn.num_channels", block.post_bn.num_channels,
                 "pre_conv.out_channels", pre_conv.out_channels)
    _check_equal(cursor, name, "post_bn.num_channels", block.post_bn.num_channels,
                 "post_conv.in_channels", block.post_conv.in_channels)
    return block


def _read_attention_block(cursor: _Cursor) -> TransformerAttentionBlock:
    name = cursor.name("transformer attention block name")
    num_heads = cursor.integer(name, "num_heads", 1, _MAX_CHANNELS)
    num_kv_heads = cursor.integer(name, "num_kv_heads", 1, _MAX_CHANNELS)
    q_head_dim = cursor.integer(name, "q_head_dim", 1, _MAX_CHANNELS)
    v_head_dim = cursor.integer(name, "v_head_dim", 1, _MAX_CHANNELS)
    use_rope = cursor.flag(name, "use_rope")
    learnable_rope = cursor.flag(name, "learnable_rope")
    if num_heads % num_kv_heads != 0:
        raise cursor.error(name, f"num_heads {num_heads} is not a multiple of num_kv_heads {num_kv_heads}")
    if use_rope and q_head_dim % 2 != 0:
        raise cursor.error(name, f"q_head_dim {q_head_dim} is odd, expected an even size when RoPE is used")

    block = TransformerAttentionBlock(
        name,
        num_heads,
        num_kv_heads,
        q_head_dim,
        v_head_dim,
        use_rope,
        learnable_rope,
        pre_ln=_read_transformer_norm(cursor),
        q_proj=_read_matmul(cursor),
        k_proj=_read_matmul(cursor),
        v_proj=_read_matmul(cursor),
        out_proj=_read_matmul(cursor),
    )
    _check_equal(cursor, name, "q_proj.out_channels", block.q_proj.out_channels,
                 "num_heads * q_head_dim", num_heads * q_head_dim)
    _check_equal(cursor, name, "k_proj.out_channels", block.k_proj.out_channels,
                 "num_kv_heads * q_head_dim", num_kv_heads * q_head_dim)
    _check_equal(cursor, name, "v_proj.out_channels", block.v_proj.out_channels,
                 "num_kv_heads * v_head_dim", num_kv_heads * v_head_dim)
    _check_equal(cursor, name, "out_proj.in_channels", block.out_proj.in_channels,
                 "num_heads * v_head_dim", num_heads * v_head_dim)

    if use_rope and learnable_rope:
        _read_learnable_rope(cursor, block)
    elif use_rope:
        cursor.name("RoPE theta name")
        block.rope_theta = cursor.real(name, "rope_theta")
    return block


def _read_learnable_rope(cursor: _Cursor, block: TransformerAttentionBlock) -> None:
    name = cursor.name("RoPE frequencies name")
    block.rope_num_kv_heads = cursor.integer(name, "rope_num_kv_heads", 1, _MAX_CHANNELS)
    block.rope_num_pairs = cursor.integer(name, "rope_num_pairs", 1, _MAX_CHANNELS)
    cursor.integer(name, "last dimension of the frequencies", 2, 2)
    _check_equal(cursor, name, "rope_num_kv_heads", block.rope_num_kv_heads, "num_kv_heads", block.num_kv_heads)
    _check_equal(cursor, name, "rope_num_pairs", block.rope_num_pairs, "q_head_dim / 2", block.q_head_dim // 2)
    shape = (block.rope_num_kv_heads, block.rope_num_pairs, 2)
    block.rope_freqs = cursor.vector(name, shape[0] * shape[1] * 2).reshape(shape)


def _read_ffn_block(cursor: _Cursor) -> TransformerFFNBlock:
    name = cursor.name("transformer FFN block name")
    num_channels = cursor.integer(name, "num_channels", 1, _MAX_CHANNELS)
    ffn_channels = cursor.integer(name, "ffn_channels", 1, _MAX_CHANNELS)
    use_swiglu = cursor.flag(name, "use_swiglu")
    pre_ln = _read_transformer_norm(cursor)
    linear1 = _read_matmul(cursor)
    linear_gate = _read_matmul(cursor) if use_swiglu else None
    linear2 = _read_matmul(cursor)

    _check_equal(cursor, name, "linear1.in_channels", linear1.in_channels, "num_channels", num_channels)
    _check_equal(cursor, name, "linear1.out_channels", linear1.out_channels, "ffn_channels", ffn_channels)
    if linear_gate is not None:
        _check_equal(cursor, name, "linear_gate.in_channels", linear_gate.in_channels, "num_channels", num_channels)
        _check_equal(cursor, name, "linear_gate.out_channels", linear_gate.out_channels, "ffn_channels", ffn_channels)
    _check_equal(cursor, name, "linear2.in_channels", linear2.in_channels, "ffn_channels", ffn_channels)
    _check_equal(cursor, name, "linear2.out_channels", linear2.out_channels, "num_channels", num_channels)
    return TransformerFFNBlock(name, num_channels, ffn_channels, use_swiglu, pre_ln, linear1, linear_gate, linear2)


_BLOCK_READERS = {
    "ordinary_block": _read_ordinary_block,
    "gpool_block": _read_gpool_block,
    "nested_bottleneck_block": _read_nested_block,
    "transformer_attention_block": _read_attention_block,
    "transformer_ffn_block": _read_ffn_block,
}


def _read_block_stack(cursor: _Cursor, owner: str, count: int, channels: int) -> list[Block]:
    """Read ``count`` blocks that each take and return ``channels`` channels."""
    blocks: list[Block] = []
    for index in range(count):
        kind_token, start = cursor.token(f"{owner} block {index}", "a block kind")
        kind = kind_token.decode("ascii", errors="backslashreplace")
        reader = _BLOCK_READERS.get(kind)
        if reader is None:
            raise cursor.error(
                f"{owner} block {index}",
                f"unknown block kind {_show(kind_token)}, expected one of {', '.join(_BLOCK_READERS)}",
                pos=start,
            )
        block = reader(cursor)
        in_channels, out_channels = _block_channels(block)
        _check_equal(cursor, block.name, "block input channels", in_channels, f"{owner} channels", channels)
        _check_equal(cursor, block.name, "block output channels", out_channels, f"{owner} channels", channels)
        blocks.append(block)
    return blocks


def _block_channels(block: Block) -> tuple[int, int]:
    if isinstance(block, (OrdinaryBlock, GlobalPoolingBlock)):
        return block.pre_bn.num_channels, block.final_conv.out_channels
    if isinstance(block, NestedBottleneckBlock):
        return block.pre_bn.num_channels, block.post_conv.out_channels
    if isinstance(block, TransformerAttentionBlock):
        return block.q_proj.in_channels, block.out_proj.out_channels
    return block.num_channels, block.num_channels


# -- trunk and heads ----------------------------------------------------------


def _read_meta_encoder(cursor: _Cursor, meta_encoder_version: int, trunk_channels: int) -> SGFMetadataEncoder:
    name = cursor.name("SGF-metadata encoder name")
    expected = _META_INPUT_CHANNELS[meta_encoder_version]
    num_input = cursor.integer(name, "number of metadata input channels", expected, expected)
    encoder = SGFMetadataEncoder(
        name,
        meta_encoder_version,
        num_input,
        mul1=_read_matmul(cursor),
        bias1=_read_matbias(cursor),
        act1=_read_activation(cursor),
        mul2=_read_matmul(cursor),
        bias2=_read_matbias(cursor),
        act2=_read_activation(cursor),
        mul3=_read_matmul(cursor),
    )
    _check_equal(cursor, name, "mul1.in_channels", encoder.mul1.in_channels, "metadata input channels", num_input)
    _check_equal(cursor, name, "mul1.out_channels", encoder.mul1.out_channels, "bias1.num_channels", encoder.bias1.num_channels)
    _check_equal(cursor, name, "mul2.in_channels", encoder.mul2.in_channels, "mul1.out_channels", encoder.mul1.out_channels)
    _check_equal(cursor, name, "mul2.out_channels", encoder.mul2.out_channels, "bias2.num_channels", encoder.bias2.num_channels)
    _check_equal(cursor, name, "mul3.in_channels", encoder.mul3.in_channels, "mul2.out_channels", encoder.mul2.out_channels)
    _check_equal(cursor, name, "mul3.out_channels", encoder.mul3.out_channels, "trunk channels", trunk_channels)
    return encoder


def _read_trunk(cursor: _Cursor, meta_encoder_version: int) -> Trunk:
    name = cursor.name("trunk name")
    num_blocks = cursor.integer(name, "num_blocks", 1, _MAX_BLOCKS)
    trunk_channels = cursor.integer(name, "trunk_num_channels", 1, _MAX_CHANNELS)
    mid_channels = cursor.integer(name, "mid_num_channels", 1, _MAX_CHANNELS)
    # KataGo's loader wants every count positive, but exporters write
    # mid - gpool here, which is 0 for nets like b1c6nbt (mid 4, gpool 4).
    regular_channels = cursor.integer(name, "regular_num_channels", 0, _MAX_CHANNELS)
    dilated_channels = cursor.integer(name, "dilated_num_channels", 0, _MAX_CHANNELS)
    gpool_channels = cursor.integer(name, "gpool_num_channels", 1, _MAX_CHANNELS)
    trunk_norm_kind = 0
    if cursor.version >= 15:
        trunk_norm_kind = cursor.integer(name, "trunk_norm_kind", 0, 1)
        cursor.zeros(name, "trunk option", 5)

    initial_conv = _read_conv(cursor)
    _check_equal(cursor, initial_conv.name, "out_channels", initial_conv.out_channels, "trunk channels", trunk_channels)
    initial_matmul = _read_matmul(cursor)
    _check_equal(cursor, initial_matmul.name, "out_channels", initial_matmul.out_channels, "trunk channels", trunk_channels)
    encoder = None
    if meta_encoder_version > 0:
        encoder = _read_meta_encoder(cursor, meta_encoder_version, trunk_channels)

    blocks = _read_block_stack(cursor, name, num_blocks, trunk_channels)
    tip_norm: BatchNormLayer | RMSNormLayer
    tip_norm = _read_batch_norm(cursor) if trunk_norm_kind == 0 else _read_rms_norm(cursor)
    _check_equal(cursor, tip_norm.name, "num_channels", tip_norm.num_channels, "trunk channels", trunk_channels)
    tip_activation = _read_activation(cursor)
    return Trunk(
        name,
        num_blocks,
        trunk_channels,
        mid_channels,
        regular_channels,
        gpool_channels,
        trunk_norm_kind,
        initial_conv,
        initial_matmul,
        encoder,
        blocks,
        tip_norm,
        tip_activation,
        dilated_num_channels=dilated_channels,
    )


def _policy_out_channels(cursor: _Cursor, name: str) -> int:
    if cursor.version >= 17:
        token_start = cursor.pos
        count = cursor.integer(name, "policy_out_channels", 2, 4)
        if count == 3:
            raise cursor.error(name, "policy_out_channels is 3, expected 2 or 4", pos=token_start)
        cursor.zeros(name, "policy head option", 3)
        return count
    if cursor.version == 16:
        return 4
    return 2 if cursor.version >= 12 else 1


def _read_policy_head(cursor: _Cursor) -> PolicyHead:
    name = cursor.name("policy head name")
    out_channels = _policy_out_channels(cursor, name)
    head = PolicyHead(
        name,
        out_channels,
        p1_conv=_read_conv(cursor),
        g1_conv=_read_conv(cursor),
        g1_bn=_read_batch_norm(cursor),
        g1_activation=_read_activation(cursor),
        gpool_to_bias_mul=_read_matmul(cursor),
        p1_bn=_read_batch_norm(cursor),
        p1_activation=_read_activation(cursor),
        p2_conv=_read_conv(cursor),
        gpool_to_pass_mul=_read_matmul(cursor),
    )
    if cursor.version >= 15:
        head.gpool_to_pass_bias = _read_matbias(cursor)
        head.pass_activation = _read_activation(cursor)
        head.gpool_to_pass_mul2 = _read_matmul(cursor)
    _check_policy_head(cursor, head)
    return head


def _check_policy_head(cursor: _Cursor, head: PolicyHead) -> None:
    name, p1, g1 = head.name, head.p1_bn.num_channels, head.g1_bn.num_channels
    _check_equal(cursor, name, "p1_conv.out_channels", head.p1_conv.out_channels, "p1_bn.num_channels", p1)
    _check_equal(cursor, name, "g1_conv.out_channels", head.g1_conv.out_channels, "g1_bn.num_channels", g1)
    _check_equal(cursor, name, "gpool_to_bias_mul.in_channels", head.gpool_to_bias_mul.in_channels,
                 "3 * g1_bn.num_channels", 3 * g1)
    _check_equal(cursor, name, "gpool_to_bias_mul.out_channels", head.gpool_to_bias_mul.out_channels,
                 "p1_bn.num_channels", p1)
    _check_equal(cursor, name, "p2_conv.in_channels", head.p2_conv.in_channels, "p1_bn.num_channels", p1)
    _check_equal(cursor, name, "gpool_to_pass_mul.in_channels", head.gpool_to_pass_mul.in_channels,
                 "3 * g1_bn.num_channels", 3 * g1)
    out = head.policy_out_channels
    _check_equal(cursor, name, "p2_conv.out_channels", head.p2_conv.out_channels, "policy_out_channels", out)
    if head.gpool_to_pass_bias is None or head.gpool_to_pass_mul2 is None:
        _check_equal(cursor, name, "gpool_to_pass_mul.out_channels", head.gpool_to_pass_mul.out_channels,
                     "policy_out_channels", out)
        return
    pass_channels = head.gpool_to_pass_mul.out_channels
    _check_equal(cursor, name, "gpool_to_pass_mul.out_channels", pass_channels,
                 "gpool_to_pass_bias.num_channels", head.gpool_to_pass_bias.num_channels)
    _check_equal(cursor, name, "gpool_to_pass_mul.out_channels", pass_channels,
                 "gpool_to_pass_mul2.in_channels", head.gpool_to_pass_mul2.in_channels)
    _check_equal(cursor, name, "gpool_to_pass_mul.out_channels", pass_channels, "p1_conv.out_channels",
                 head.p1_conv.out_channels)
    _check_equal(cursor, name, "gpool_to_pass_mul2.out_channels", head.gpool_to_pass_mul2.out_channels,
                 "policy_out_channels", out)


def _read_value_head(cursor: _Cursor) -> ValueHead:
    name = cursor.name("value head name")
    if cursor.version >= 17:
        cursor.zeros(name, "value head option", 3)
    head = ValueHead(
        name,
        v1_conv=_read_conv(cursor),
        v1_bn=_read_batch_norm(cursor),
        v1_activation=_read_activation(cursor),
        v2_mul=_read_matmul(cursor),
        v2_bias=_read_matbias(cursor),
        v2_activation=_read_activation(cursor),
        v3_mul=_read_matmul(cursor),
        v3_bias=_read_matbias(cursor),
        sv3_mul=_read_matmul(cursor),
        sv3_bias=_read_matbias(cursor),
        v_ownership_conv=_read_conv(cursor),
    )
    _check_value_head(cursor, head)
    return head


def _check_value_head(cursor: _Cursor, head: ValueHead) -> None:
    name, v1, v2 = head.name, head.v1_bn.num_channels, head.v2_mul.out_channels
    # Version 8 heads predict 4 score values; version 9 added 2 short-term error outputs.
    score_outputs = 4 if cursor.version == 8 else 6
    _check_equal(cursor, name, "v1_conv.out_channels", head.v1_conv.out_channels, "v1_bn.num_channels", v1)
    _check_equal(cursor, name, "v2_mul.in_channels", head.v2_mul.in_channels, "3 * v1_bn.num_channels", 3 * v1)
    _check_equal(cursor, name, "v2_mul.out_channels", v2, "v2_bias.num_channels", head.v2_bias.num_channels)
    _check_equal(cursor, name, "v3_mul.in_channels", head.v3_mul.in_channels, "v2_mul.out_channels", v2)
    _check_equal(cursor, name, "v3_mul.out_channels", head.v3_mul.out_channels, "value outputs", 3)
    _check_equal(cursor, name, "v3_bias.num_channels", head.v3_bias.num_channels, "value outputs", 3)
    _check_equal(cursor, name, "sv3_mul.in_channels", head.sv3_mul.in_channels, "v2_mul.out_channels", v2)
    _check_equal(cursor, name, "sv3_mul.out_channels", head.sv3_mul.out_channels,
                 f"score outputs of version {cursor.version}", score_outputs)
    _check_equal(cursor, name, "sv3_bias.num_channels", head.sv3_bias.num_channels,
                 f"score outputs of version {cursor.version}", score_outputs)
    _check_equal(cursor, name, "v_ownership_conv.in_channels", head.v_ownership_conv.in_channels,
                 "v1_conv.out_channels", head.v1_conv.out_channels)
    _check_equal(cursor, name, "v_ownership_conv.out_channels", head.v_ownership_conv.out_channels,
                 "ownership outputs", 1)


# -- whole model --------------------------------------------------------------


def _read_version(cursor: _Cursor, name: str) -> int:
    token, start = cursor.token(name, "the model version")
    if not _INTEGER.fullmatch(token):
        raise cursor.error(name, f"expected the model version (an integer), found {_show(token)}", pos=start)
    version = int(token)
    if not MIN_MODEL_VERSION <= version <= MAX_MODEL_VERSION:
        raise cursor.error(
            name,
            f"model version is {version}, kgzarr reads versions {MIN_MODEL_VERSION} to {MAX_MODEL_VERSION}",
            "use a network trained with input features version 7 (KataGo g170 or later)"
            if version < MIN_MODEL_VERSION
            else "this network needs a newer kgzarr",
            pos=start,
            error_type=UnsupportedModelVersion,
        )
    return version


def _read_post_process(cursor: _Cursor, name: str) -> PostProcessParams:
    if cursor.version < 13:
        return PostProcessParams()
    return PostProcessParams(
        td_score_multiplier=cursor.real(name, "td_score_multiplier"),
        score_mean_multiplier=cursor.real(name, "score_mean_multiplier"),
        score_stdev_multiplier=cursor.real(name, "score_stdev_multiplier"),
        lead_multiplier=cursor.real(name, "lead_multiplier"),
        variance_time_multiplier=cursor.real(name, "variance_time_multiplier"),
        shortterm_value_error_multiplier=cursor.real(name, "shortterm_value_error_multiplier"),
        shortterm_score_error_multiplier=cursor.real(name, "shortterm_score_error_multiplier"),
    )


def _read_desc(cursor: _Cursor) -> ModelDesc:
    name = cursor.name("model name")
    if not _NAME_PATTERN.fullmatch(name):
        raise cursor.error(
            name[:100],
            "the model name must be 1 to 96 characters from A-Z, a-z, 0-9, '_' and '-'",
            _FIX_CORRUPT,
            pos=0,
        )
    cursor.version = _read_version(cursor, name)
    cursor.integer(name, "num_input_channels", _NUM_SPATIAL_FEATURES, _NUM_SPATIAL_FEATURES)
    cursor.integer(name, "num_input_global_channels", _NUM_GLOBAL_FEATURES, _NUM_GLOBAL_FEATURES)
    post_process = _read_post_process(cursor, name)
    meta_encoder_version, prefer_pass_alive = 0, False
    if cursor.version >= 15:
        meta_encoder_version = cursor.integer(name, "meta_encoder_version", 0, max(_META_INPUT_CHANNELS))
        prefer_pass_alive = cursor.flag(name, "prefer_pass_alive_under_suicide_rules")
        cursor.zeros(name, "model option", 6)

    trunk = _read_trunk(cursor, meta_encoder_version)
    policy_head = _read_policy_head(cursor)
    value_head = _read_value_head(cursor)
    desc = ModelDesc(
        name=name,
        model_version=cursor.version,
        num_input_channels=trunk.initial_conv.in_channels,
        num_input_global_channels=trunk.initial_matmul.in_channels,
        num_input_meta_channels=_META_INPUT_CHANNELS[meta_encoder_version],
        meta_encoder_version=meta_encoder_version,
        prefer_pass_alive_under_suicide_rules=prefer_pass_alive,
        post_process=post_process,
        trunk=trunk,
        policy_head=policy_head,
        value_head=value_head,
    )
    _check_model(cursor, desc)
    return desc


def _check_model(cursor: _Cursor, desc: ModelDesc) -> None:
    trunk, name = desc.trunk, desc.name
    _check_equal(cursor, trunk.initial_conv.name, "in_channels", trunk.initial_conv.in_channels,
                 "num_input_channels", _NUM_SPATIAL_FEATURES)
    _check_equal(cursor, trunk.initial_matmul.name, "in_channels", trunk.initial_matmul.in_channels,
                 "num_input_global_channels", _NUM_GLOBAL_FEATURES)
    _check_equal(cursor, name, "policy head p1_conv.in_channels", desc.policy_head.p1_conv.in_channels,
                 "trunk channels", trunk.trunk_num_channels)
    _check_equal(cursor, name, "policy head g1_conv.in_channels", desc.policy_head.g1_conv.in_channels,
                 "trunk channels", trunk.trunk_num_channels)
    _check_equal(cursor, name, "value head v1_conv.in_channels", desc.value_head.v1_conv.in_channels,
                 "trunk channels", trunk.trunk_num_channels)
    rest = _SPACE.match(cursor.data, cursor.pos).end()  # type: ignore[union-attr]
    if rest != len(cursor.data):
        # KataGo ignores trailing bytes; kgzarr logs them because they often mean a bad concatenation.
        logger.warning(
            "model file %s has %d unexpected bytes after the value head at %s",
            cursor.path,
            len(cursor.data) - rest,
            cursor.location(rest),
        )
