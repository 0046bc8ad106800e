"""Coordinates of the ``channel`` dim: what each pooled column holds.

Every column gets three labels besides its index ``channel``:
``layer_channel`` (the channel of the layer tensor), ``pooled_by`` (``mean``,
``max`` or a grid region such as ``r0c2``) and ``sign`` (``+`` for the value
or its positive part, ``-`` for the negated negative part that the ``split``
transform adds as columns C'..2C'-1).
"""

from __future__ import annotations

import numpy as np

from kgzarr.extraction.pooling import Pooling

__all__ = ["channel_coords"]


def channel_coords(pooling: Pooling, channels: int, split: bool = False) -> dict[str, tuple[str, np.ndarray]]:
    """Return xarray coords along ``channel`` for a layer with ``channels`` channels."""
    layer_channel = np.tile(np.arange(channels, dtype=np.int64), pooling.parts)
    pooled_by = np.repeat(np.array(pooling.part_labels()), channels)
    sign = np.full(layer_channel.shape, "+")

    if split:
        layer_channel = np.concatenate([layer_channel, layer_channel])
        pooled_by = np.concatenate([pooled_by, pooled_by])
        sign = np.concatenate([sign, np.full(sign.shape, "-")])

    return {
        "channel": ("channel", np.arange(layer_channel.size, dtype=np.int64)),
        "layer_channel": ("channel", layer_channel),
        "pooled_by": ("channel", pooled_by),
        "sign": ("channel", sign),
    }
