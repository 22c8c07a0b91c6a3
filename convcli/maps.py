"""Feature maps after the convolution: reductions over a bank and grouping into outputs.

A result of :func:`convcli.conv2d` is ``(H', W', N)`` with ``N = F·C_k``
channels, kernel-major: channel ``f·C_k + c`` is kernel ``f`` on image
channel ``c`` (``C_k = C`` in depthwise mode, 1 in ``sum``/``gray``).
This module is pure: arrays in, arrays out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from convcli.errors import OptionError, ShapeError

__all__ = ["REDUCTIONS", "MapGroup", "group_maps", "reduce_maps"]

REDUCTIONS = ("none", "magnitude", "max", "min", "sum")


def reduce_maps(maps: np.ndarray, n_filters: int, reduce: str) -> np.ndarray:
    """Combine the F kernels' maps into one, channel by channel.

    With ``maps`` viewed as ``(H', W', F, C_k)``:

    * ``magnitude``: ``sqrt(Σ_f maps[..., f, c]²)`` (gradient magnitude of a
      sobel/scharr/prewitt pair)
    * ``max`` / ``min``: the largest / smallest response (compass banks)
    * ``sum``: ``Σ_f maps[..., f, c]``
    * ``none``: unchanged

    Returns
    -------
    ndarray, shape (H', W', C_k) (or the input for ``none``)
    """
    if reduce not in REDUCTIONS:
        raise OptionError(f"`reduce` must be one of {', '.join(REDUCTIONS)}, got {reduce!r}")
    if reduce == "none":
        return maps
    rows, cols, n_out = maps.shape
    if n_filters < 1 or n_out % n_filters:
        raise ShapeError(f"cannot split N={n_out} maps into F={n_filters} kernels")
    stacked = maps.reshape(rows, cols, n_filters, n_out // n_filters)
    from convcli.engines.reduce import reduce_stack

    fast = reduce_stack(stacked, reduce)  # compiled kernels, when built
    if fast is not None:
        return fast
    if reduce == "magnitude":
        return np.sqrt(np.einsum("ijfc,ijfc->ijc", stacked, stacked))
    if reduce == "max":
        return stacked.max(axis=2)
    if reduce == "min":
        return stacked.min(axis=2)
    return stacked.sum(axis=2)


@dataclass(frozen=True)
class MapGroup:
    """Channels of the result that belong in one image file.

    Attributes
    ----------
    label : str
        Kernel label, used in file names (``<stem>.<label>.png``).
    channels : tuple of int
        Indices into the result's last axis.
    channel_names : tuple of str
        Names of those channels (``R``, ``G``, ``B``; ``L``; ``c0`` …).
    """

    label: str
    channels: tuple[int, ...]
    channel_names: tuple[str, ...]


def group_maps(
    labels: Sequence[str], n_out: int, channel_names: Sequence[str]
) -> list[MapGroup]:
    """Split ``n_out`` kernel-major channels into one group per kernel.

    Each kernel's ``C_k = n_out / len(labels)`` channels form one image when
    ``C_k`` is 1, 3 or 4 (gray, RGB, RGBA); 2 channels (LA) likewise. With any
    other ``C_k`` every channel becomes its own group ``<label>-<channel>``.
    """
    n_filters = len(labels)
    if n_filters < 1 or n_out % n_filters:
        raise ShapeError(f"cannot split N={n_out} maps into F={n_filters} kernels")
    per_kernel = n_out // n_filters
    names = tuple(channel_names) if len(channel_names) == per_kernel else tuple(
        ("L",) if per_kernel == 1 else (f"c{i}" for i in range(per_kernel))
    )
    groups = []
    for f, label in enumerate(labels):
        first = f * per_kernel
        if per_kernel in (1, 2, 3, 4):
            groups.append(MapGroup(label, tuple(range(first, first + per_kernel)), names))
        else:
            groups.extend(
                MapGroup(f"{label}-{names[c]}", (first + c,), (names[c],)) for c in range(per_kernel)
            )
    return groups
