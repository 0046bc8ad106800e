"""Layer names of a KataGo network: canonical names, aliases and lookup.

Canonical names are the names KataGo's own PyTorch training model
(``python/katago/train/model_pytorch.py``, v1.17.2) reports through its
``ExtraOutputs`` for the same architecture, in forward order:

- ``trunk_after_embedding``: input conv plus global (and metadata) bias, the
  trunk before block 0. Not masked: off-board points hold garbage.
- per top-level block i (0-based) with KataGo name prefix ``P``:

  - ordinary or gpool block: ``P.normactconv1.out`` (first conv; for a gpool
    block the regular channels plus the pooled bias), ``P.normactconv2.out``,
    ``P.out``;
  - nested bottleneck: ``P.normactconvp.out`` (1x1 down), then each inner block
    ``P.blockstack.{j}`` with its own names as above, ``P.normactconvq.out``
    (1x1 up), ``P.out``;
  - attention or FFN: ``P.out``;

  ``P.out`` is the block's residual branch, what it adds to the trunk; then
  ``trunk_after_block{i}`` is the trunk after adding it.
- ``trunkfinal``: trunk-final norm and activation, masked; the heads' input.

KataGo takes ``P`` from the training config, which a model file does not
store, so :func:`block_prefixes` rebuilds it the way KataGo's configs name
blocks. Convolution blocks are ``rconv{n}``, transformer blocks ``attn{n}``
and ``ffn{n}``, and nested bottlenecks of transformer blocks ``block{n}``
(their inner blocks are ``P.blockstack.attn{m}`` and ``P.blockstack.ffn{m}``).
``n`` counts blocks from 1, and an FFN shares the number of the attention
block before it.

The head outputs are not reported by KataGo's training code, so kgzarr adds
them under the names of :data:`HEAD_OUTPUTS`. Attention blocks also provide
``P.attn_weights``, the post-softmax weights (N, heads, H*W, H*W) with 0 for
off-board keys. KataGo reports these only on request, so they are capturable
but not listed by ``names()`` or ``info()``. :data:`ALIAS_RULES` lists the
other names accepted for a layer.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Sequence

from kgzarr.errors import LayerNotFoundError
from kgzarr.model import desc as d

__all__ = [
    "HEAD_OUTPUTS",
    "ALIAS_RULES",
    "LayerInfo",
    "LayerCatalog",
    "block_prefixes",
    "inner_block_prefixes",
]

# Head output name -> shape and channel meaning (N positions, board H x W,
# P written policy channels). All values are raw network outputs before any
# softmax, tanh or softplus.
HEAD_OUTPUTS: dict[str, str] = {
    "policy": (
        "(N, P, H, W) policy logits per point. Channel 0: next-move policy. Channel 1 (version >= 12): "
        "short-term-optimistic policy. Channels 2, 3 (version 16, and 17 nets with q values): "
        "q-value win-loss (pre-tanh) and q-value score. Off-board points are 0, not -inf."
    ),
    "pass": "(N, P) pass logits, same channels as policy.",
    "value": "(N, 3) win, loss and no-result logits for the player to move.",
    "miscvalue": (
        "(N, 4 or 6) score mean / 20, score stdev before softplus, lead / 20, variance-time before "
        "softplus; version >= 9 adds short-term value error and short-term score error before their "
        "activation."
    ),
    "ownership": "(N, 1, H, W) ownership before tanh, positive for the player to move; off-board 0.",
}

# Alias rules: (alias form, canonical form, why it exists). Every alias
# resolves to exactly one canonical name of the same net.
ALIAS_RULES: tuple[tuple[str, str, str], ...] = (
    (
        "trunk_block_{k}_output",
        "trunk_after_block{k}",
        "layer-selection files of older tools: the trunk state after block k, counted from 0",
    ),
    (
        "model.blocks.{i}, model.blocks.{i}.blockstack.{j}",
        "P.out",
        "block names written in files exported by KataGo's PyTorch code. A block name maps to the block's "
        "residual branch output, because that is the last tensor the named layers compute; the trunk "
        "after the block is trunk_after_block{i}",
    ),
    (
        "rconv14 (block names in older files), P",
        "P.out",
        "block names of older TensorFlow-era files, and bare KataGo block prefixes: the residual branch, "
        "as for model.blocks.{i}",
    ),
    (
        "model.norm_trunkfinal, model.act_trunkfinal",
        "trunkfinal",
        "trunk-final norm and activation layer names in the file",
    ),
)

@dataclass(frozen=True)
class LayerInfo:
    """One capturable layer: its canonical name, aliases and output shape.

    ``kind`` is "trunk" (trunk states), "residual" (a top-level block's residual
    branch), "inner_residual" (residual of a block inside a nested bottleneck),
    "conv" (a norm-activation-conv output inside a block) or "head".
    ``block`` is the top-level block (0-based) that computes the layer, -1 for
    the embedding and None for trunkfinal and the heads.
    """

    name: str
    aliases: tuple[str, ...]
    channels: int
    kind: str
    block: int | None
    shape: tuple[int, ...]


def _is_transformer(block: d.Block) -> bool:
    return isinstance(block, (d.TransformerAttentionBlock, d.TransformerFFNBlock))


def _numbered_prefixes(blocks: Sequence[d.Block], conv_prefix: str, nested_prefix: str) -> list[str]:
    prefixes = []
    number = 0
    previous: d.Block | None = None
    for block in blocks:
        follows_attention = isinstance(previous, d.TransformerAttentionBlock)
        if not (isinstance(block, d.TransformerFFNBlock) and follows_attention):
            number += 1
        if isinstance(block, d.TransformerAttentionBlock):
            prefixes.append(f"attn{number}")
        elif isinstance(block, d.TransformerFFNBlock):
            prefixes.append(f"ffn{number}")
        elif isinstance(block, d.NestedBottleneckBlock) and any(_is_transformer(b) for b in block.blocks):
            prefixes.append(f"{nested_prefix}{number}")
        else:
            prefixes.append(f"{conv_prefix}{number}")
        previous = block
    return prefixes


def block_prefixes(blocks: Sequence[d.Block]) -> list[str]:
    """Return the KataGo name prefix of each top-level block, e.g. ``rconv1``, ``attn3``."""
    return _numbered_prefixes(blocks, conv_prefix="rconv", nested_prefix="block")


def inner_block_prefixes(prefix: str, blocks: Sequence[d.Block]) -> list[str]:
    """Return the name prefixes of the blocks inside the nested bottleneck ``prefix``."""
    if any(_is_transformer(b) for b in blocks):
        return [f"{prefix}.blockstack.{p}" for p in _numbered_prefixes(blocks, "rconv", "block")]
    return [f"{prefix}.blockstack.{j}" for j in range(len(blocks))]


def _block_layers(block: d.Block, prefix: str) -> list[tuple[str, int, str]]:
    """Return (name, channels, kind) of what a block reports, in forward order."""
    if isinstance(block, (d.OrdinaryBlock, d.GlobalPoolingBlock)):
        return [
            (prefix + ".normactconv1.out", block.regular_conv.out_channels, "conv"),
            (prefix + ".normactconv2.out", block.final_conv.out_channels, "conv"),
            (prefix + ".out", block.final_conv.out_channels, "residual"),
        ]
    if isinstance(block, d.NestedBottleneckBlock):
        layers = [(prefix + ".normactconvp.out", block.pre_conv.out_channels, "conv")]
        for inner, inner_prefix in zip(block.blocks, inner_block_prefixes(prefix, block.blocks)):
            for name, channels, kind in _block_layers(inner, inner_prefix):
                layers.append((name, channels, "inner_residual" if kind == "residual" else kind))
        layers.append((prefix + ".normactconvq.out", block.post_conv.out_channels, "conv"))
        layers.append((prefix + ".out", block.post_conv.out_channels, "residual"))
        return layers
    if isinstance(block, d.TransformerAttentionBlock):
        return [
            (prefix + ".attn_weights", block.num_heads, "attention_weights"),
            (prefix + ".out", block.out_proj.out_channels, "residual"),
        ]
    if isinstance(block, d.TransformerFFNBlock):
        return [(prefix + ".out", block.linear2.out_channels, "residual")]
    raise TypeError(f"unsupported block type {type(block).__name__}")


def _block_file_aliases(block: d.Block, prefix: str) -> dict[str, str]:
    """Map the file's block names (and nested ones) and the bare prefix to ``prefix.out``."""
    aliases = {block.name: prefix + ".out", prefix: prefix + ".out"}
    if isinstance(block, d.NestedBottleneckBlock):
        for inner, inner_prefix in zip(block.blocks, inner_block_prefixes(prefix, block.blocks)):
            aliases.update(_block_file_aliases(inner, inner_prefix))
    return aliases


@dataclass(frozen=True)
class _Entry:
    name: str
    channels: int
    kind: str
    block: int | None
    # True for outputs of shape (N, C, H, W).
    spatial: bool


class LayerCatalog:
    """Every capturable layer of one network, with aliases and name resolution."""

    def __init__(self, model: d.ModelDesc, label: str = "") -> None:
        self.label = label or model.name
        self.num_blocks = len(model.trunk.blocks)
        self.prefixes = block_prefixes(model.trunk.blocks)
        self._entries = self._trunk_entries(model) + self._head_entries(model)
        self._by_name = {entry.name: entry for entry in self._entries}
        self._aliases = self._build_aliases(model)

    def _trunk_entries(self, model: d.ModelDesc) -> list[_Entry]:
        channels = model.trunk.trunk_num_channels
        entries = [_Entry("trunk_after_embedding", channels, "trunk", -1, True)]
        for index, (block, prefix) in enumerate(zip(model.trunk.blocks, self.prefixes)):
            for name, layer_channels, kind in _block_layers(block, prefix):
                entries.append(_Entry(name, layer_channels, kind, index, kind != "attention_weights"))
            entries.append(_Entry(f"trunk_after_block{index}", channels, "trunk", index, True))
        entries.append(_Entry("trunkfinal", channels, "trunk", None, True))
        return entries

    @staticmethod
    def _head_entries(model: d.ModelDesc) -> list[_Entry]:
        policy = model.policy_head
        pass_layer = policy.gpool_to_pass_mul2 if policy.gpool_to_pass_mul2 is not None else policy.gpool_to_pass_mul
        value = model.value_head
        return [
            _Entry("policy", policy.p2_conv.out_channels, "head", None, True),
            _Entry("pass", pass_layer.out_channels, "head", None, False),
            _Entry("value", value.v3_mul.out_channels, "head", None, False),
            _Entry("miscvalue", value.sv3_mul.out_channels, "head", None, False),
            _Entry("ownership", value.v_ownership_conv.out_channels, "head", None, True),
        ]

    def _build_aliases(self, model: d.ModelDesc) -> dict[str, str]:
        aliases: dict[str, str] = {}
        for index, (block, prefix) in enumerate(zip(model.trunk.blocks, self.prefixes)):
            aliases[f"trunk_block_{index}_output"] = f"trunk_after_block{index}"
            aliases[f"model.blocks.{index}"] = prefix + ".out"
            aliases.update(_block_file_aliases(block, prefix))
        aliases["model.norm_trunkfinal"] = "trunkfinal"
        aliases["model.act_trunkfinal"] = "trunkfinal"
        # A canonical name is never shadowed by an alias.
        return {alias: target for alias, target in aliases.items() if alias not in self._by_name}

    def _listed(self, include_heads: bool) -> list[_Entry]:
        return [
            entry
            for entry in self._entries
            if entry.kind != "attention_weights" and (include_heads or entry.kind != "head")
        ]

    def names(self, include_heads: bool = False) -> list[str]:
        """Return canonical names in forward order, heads last when requested."""
        return [entry.name for entry in self._listed(include_heads)]

    def aliases_of(self, name: str) -> tuple[str, ...]:
        return tuple(alias for alias, target in self._aliases.items() if target == name)

    def resolve(self, name: str) -> str:
        """Return the canonical name for a canonical name or alias.

        Raises LayerNotFoundError listing the nearest valid names.
        """
        if name in self._by_name:
            return name
        if name in self._aliases:
            return self._aliases[name]
        candidates = list(self._by_name) + list(self._aliases)
        nearest = difflib.get_close_matches(name, candidates, n=5, cutoff=0.5)
        if not nearest:
            nearest = self.names()[:3] + ["trunkfinal", "policy", "value"]
        raise LayerNotFoundError(
            f"layer {name!r} not found in network {self.label}; nearest valid names: "
            f"{', '.join(nearest)}; run 'kgzarr layers --model FILE' (or KataGoNet.layer_names()) to list them all"
        )

    def entry(self, name: str) -> _Entry:
        return self._by_name[self.resolve(name)]

    def stage(self, name: str) -> int:
        """Return how many top-level blocks must run before ``name`` is computed.

        ``num_blocks`` for trunkfinal and the heads.
        """
        entry = self.entry(name)
        if entry.block is None:
            return self.num_blocks
        return entry.block + 1

    def info(self, board_size: int = 19, include_heads: bool = True) -> list[LayerInfo]:
        """Return a :class:`LayerInfo` per layer, shapes for a board_size x board_size tensor."""
        infos = []
        for entry in self._listed(include_heads):
            shape = (entry.channels, board_size, board_size) if entry.spatial else (entry.channels,)
            infos.append(
                LayerInfo(entry.name, self.aliases_of(entry.name), entry.channels, entry.kind, entry.block, shape)
            )
        return infos

