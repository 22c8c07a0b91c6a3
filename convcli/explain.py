"""Explain one output cell of a convolution: the window, the products, the sum.

Pure core-side logic behind ``convcli explain`` and its GIF: arrays in, a
structured :class:`Explanation` out. Every number comes from the core's own
functions (:func:`~convcli.conv.conv2d` / :func:`~convcli.conv.conv_transpose2d`
for the output grid, :func:`~convcli.geometry.resolve_padding2d` for the pads,
:func:`~convcli.borders.pad_image` for the padded input), so what is shown is
what ``convcli apply`` computes.

Forward convolution (cross-correlation, ``flip`` rotates the kernel first)::

    O[i, j] = Σ_m Σ_n  P[s_y·i + d_y·m,  s_x·j + d_x·n] · K[m, n]

with ``P`` the padded input: the window of output ``(i, j)`` starts at
``(s_y·i, s_x·j)`` in ``P`` and its taps are ``d`` apart.

Transposed convolution is a scatter-add (PyTorch ``conv_transpose2d``)::

    full[s·a + d·m, s·b + d·n] += I[a, b] · K[m, n];   O = full cropped by the pads

so output ``(i, j)`` receives one contribution per (input cell, tap) with
``s·a + d·m = i + pad_top`` and ``s·b + d·n = j + pad_left``. The same result
is also shown as an ordinary stride-1 correlation, the textbook picture:
insert ``s − 1`` zeros between input pixels, pad by ``k_eff − 1 − pad`` zeros
(negative means crop; ``output_padding`` adds to the bottom/right), and slide
the kernel rotated by 180° with the same dilation.

Only one channel and one kernel are explained: the image is ``(H, W)`` and the
weights ``(kh, kw)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convcli.borders import Border, pad_image, parse_border
from convcli.conv import conv2d, conv_transpose2d
from convcli.errors import KernelError, ShapeError
from convcli.geometry import Padding, pair, resolve_padding2d

__all__ = [
    "Contribution",
    "Explanation",
    "explain_conv2d",
    "explain_conv_transpose2d",
]

#: Mask codes of :attr:`Explanation.cell_kind`.
INPUT_CELL, PADDING_CELL, INSERTED_CELL = 0, 1, 2


@dataclass(frozen=True)
class Contribution:
    """One term ``I[a, b] · K[m, n]`` scattered into the chosen output cell."""

    input_cell: tuple[int, int]
    tap: tuple[int, int]
    value: float
    weight: float

    @property
    def product(self) -> float:
        """``value · weight``."""
        return self.value * self.weight


@dataclass(frozen=True)
class Explanation:
    """Everything about one output cell of one single-channel convolution.

    Attributes
    ----------
    operation : {'conv2d', 'conv_transpose2d'}
    image : ndarray, shape (H, W)
        The input, float64.
    kernel : ndarray, shape (kh, kw)
        The weights as applied (rotated by 180° when ``flip``).
    stride, dilation : (rows, cols)
    pads : (top, bottom, left, right)
        The core's resolved pads (for ``conv_transpose2d``: rows and columns
        cropped from the full scatter result).
    border : str
        What fills the padding (``zero`` for ``conv_transpose2d``).
    padded : ndarray, shape (Hp, Wp)
        The grid the window slides over: the padded input (forward) or the
        zero-inserted, padded input (transposed).
    cell_kind : ndarray of int8, shape (Hp, Wp)
        ``0`` an input pixel, ``1`` padding, ``2`` a zero inserted between
        input pixels (transposed only).
    window_kernel : ndarray, shape (kh, kw)
        The weights lying over the window: ``kernel`` (forward) or ``kernel``
        rotated by 180° (the transposed picture).
    step : (rows, cols)
        How far the window moves per output cell in ``padded``: the stride
        (forward) or 1 (transposed picture).
    at : (i, j)
        The explained output cell.
    window_rows, window_cols : tuple of int
        Rows and columns of ``padded`` under the taps:
        ``step·i + d·m`` for ``m = 0 .. kh − 1`` (and likewise for columns).
    window : ndarray, shape (kh, kw)
        ``padded`` at those rows and columns.
    products : ndarray, shape (kh, kw)
        ``window · window_kernel``, element-wise.
    total : float
        ``products.sum()``.
    output : ndarray, shape (H', W')
        The core's whole result (``conv2d`` or ``conv_transpose2d``, float64).
    output_padding : (rows, cols)
    contributions : tuple of Contribution
        Transposed only: the scatter terms that land on ``at``.
    """

    operation: str
    image: np.ndarray
    kernel: np.ndarray
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pads: tuple[int, int, int, int]
    border: str
    padded: np.ndarray
    cell_kind: np.ndarray
    window_kernel: np.ndarray
    step: tuple[int, int]
    at: tuple[int, int]
    window_rows: tuple[int, ...]
    window_cols: tuple[int, ...]
    window: np.ndarray
    products: np.ndarray
    total: float
    output: np.ndarray
    output_padding: tuple[int, int] = (0, 0)
    contributions: tuple[Contribution, ...] = field(default=())

    @property
    def output_value(self) -> float:
        """The core's result at ``at``."""
        return float(self.output[self.at])

    @property
    def padding_mask(self) -> np.ndarray:
        """``(Hp, Wp)`` bool: True where ``padded`` is not an input pixel."""
        return self.cell_kind != INPUT_CELL

    def window_at(self, i: int, j: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Rows and columns of ``padded`` under the taps for output ``(i, j)``."""
        return _window(self.step, self.dilation, self.window_kernel.shape, (i, j))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of plain lists and floats (exact float64 values)."""
        record: dict[str, Any] = {
            "operation": self.operation,
            "input": self.image.tolist(),
            "kernel": self.kernel.tolist(),
            "stride": list(self.stride),
            "dilation": list(self.dilation),
            "pads": list(self.pads),
            "border": self.border,
            "output_padding": list(self.output_padding),
            "padded": self.padded.tolist(),
            "mask": self.padding_mask.tolist(),
            "cell_kind": self.cell_kind.tolist(),
            "window_kernel": self.window_kernel.tolist(),
            "step": list(self.step),
            "at": list(self.at),
            "window": {
                "rows": list(self.window_rows),
                "cols": list(self.window_cols),
                "values": self.window.tolist(),
            },
            "products": self.products.tolist(),
            "sum": self.total,
            "output_value": self.output_value,
            "output": self.output.tolist(),
        }
        if self.operation == "conv_transpose2d":
            record["contributions"] = [
                {
                    "input": list(c.input_cell),
                    "tap": list(c.tap),
                    "value": c.value,
                    "weight": c.weight,
                    "product": c.product,
                }
                for c in self.contributions
            ]
        return record


def _as_plane(values: Any, what: str, error: type[Exception]) -> np.ndarray:
    """A 2-D float64 array, or ``error`` naming ``what``."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim != 2 or min(array.shape) < 1:
        raise error(f"{what} must be one 2-D plane (one channel), got shape {array.shape}")
    return array


def _check_at(at: tuple[int, int], out_shape: tuple[int, ...]) -> tuple[int, int]:
    i, j = int(at[0]), int(at[1])
    rows, cols = out_shape
    if not (0 <= i < rows and 0 <= j < cols):
        raise ShapeError(
            f"`at` ({i}, {j}) is outside the {rows}×{cols} output "
            f"(rows 0–{rows - 1}, columns 0–{cols - 1})"
        )
    return i, j


def _window(
    step: tuple[int, int], dilation: tuple[int, int], shape: tuple[int, ...], at: tuple[int, int]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Window rows ``step·i + d·m`` and columns ``step·j + d·n``."""
    rows = tuple(step[0] * at[0] + dilation[0] * m for m in range(shape[0]))
    cols = tuple(step[1] * at[1] + dilation[1] * n for n in range(shape[1]))
    return rows, cols


def _products(
    padded: np.ndarray,
    weights: np.ndarray,
    step: tuple[int, int],
    dilation: tuple[int, int],
    at: tuple[int, int],
) -> tuple[tuple[int, ...], tuple[int, ...], np.ndarray, np.ndarray]:
    rows, cols = _window(step, dilation, weights.shape, at)
    window = padded[np.ix_(rows, cols)]
    return rows, cols, window, window * weights


def explain_conv2d(
    image: Any,
    weights: Any,
    *,
    at: tuple[int, int] = (0, 0),
    stride: int | tuple[int, int] = 1,
    padding: Padding = "valid",
    border: str | Border = "zero",
    dilation: int | tuple[int, int] = 1,
    flip: bool = False,
) -> Explanation:
    """Explain output ``at`` of ``conv2d(image, weights, ...)``.

    ``O[i, j] = Σ_{m,n} P[s_y·i + d_y·m, s_x·j + d_x·n] · K[m, n]``

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, 1)
    weights : array_like, shape (kh, kw)
    at : (i, j)
        The output cell, ``0 <= i < H'``, ``0 <= j < W'``.
    stride, padding, border, dilation, flip
        As in :func:`convcli.conv.conv2d`.

    Returns
    -------
    Explanation

    Raises
    ------
    ShapeError
        For an impossible geometry or an ``at`` outside the output.
    """
    plane = _as_plane(image, "image", ShapeError)
    kernel = _as_plane(weights, "kernel", KernelError)
    output = conv2d(
        plane, kernel, stride=stride, padding=padding, border=border, dilation=dilation,
        flip=flip, dtype=np.float64,
    )[:, :, 0]
    cell = _check_at(at, output.shape)
    strides, dilations = pair(stride, "stride"), pair(dilation, "dilation")
    parsed_border = parse_border(border)
    pads = resolve_padding2d(plane.shape, kernel.shape, stride=strides, padding=padding,
                             dilation=dilations)
    padded = pad_image(plane[:, :, None], pads, parsed_border)[:, :, 0]
    kind = np.full(padded.shape, PADDING_CELL, dtype=np.int8)
    kind[pads[0] : pads[0] + plane.shape[0], pads[2] : pads[2] + plane.shape[1]] = INPUT_CELL
    used = kernel[::-1, ::-1].copy() if flip else kernel
    rows, cols, window, products = _products(padded, used, strides, dilations, cell)
    return Explanation(
        operation="conv2d", image=plane, kernel=used, stride=strides, dilation=dilations,
        pads=pads, border=str(parsed_border), padded=padded, cell_kind=kind,
        window_kernel=used, step=strides, at=cell, window_rows=rows, window_cols=cols,
        window=window, products=products, total=float(products.sum()), output=output,
    )


def _pad_or_crop(array: np.ndarray, pads: tuple[int, int, int, int], fill: int) -> np.ndarray:
    """Pad by ``(top, bottom, left, right)`` with ``fill``; a negative amount crops."""
    top, bottom, left, right = pads
    grown = np.pad(
        array, ((max(top, 0), max(bottom, 0)), (max(left, 0), max(right, 0))),
        constant_values=fill,
    )
    rows, cols = grown.shape
    return grown[max(-top, 0) : rows - max(-bottom, 0), max(-left, 0) : cols - max(-right, 0)]


def explain_conv_transpose2d(
    image: Any,
    weights: Any,
    *,
    at: tuple[int, int] = (0, 0),
    stride: int | tuple[int, int] = 1,
    padding: Padding = 0,
    output_padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    flip: bool = False,
) -> Explanation:
    """Explain output ``at`` of ``conv_transpose2d(image, weights, ...)``.

    The scatter terms ``I[a, b] · K[m, n]`` with ``s·a + d·m = i + pad_top``
    and ``s·b + d·n = j + pad_left`` are listed in
    :attr:`Explanation.contributions`; the window, products and sum describe
    the same value as a stride-1 correlation of the zero-inserted input
    (``s − 1`` zeros between pixels), padded by ``k_eff − 1 − pad_before``
    before and ``k_eff − 1 − pad_after + output_padding`` after, with the
    kernel rotated by 180°.

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, 1)
    weights : array_like, shape (kh, kw)
    at : (i, j)
    stride, padding, output_padding, dilation, flip
        As in :func:`convcli.conv.conv_transpose2d`.

    Returns
    -------
    Explanation
    """
    plane = _as_plane(image, "image", ShapeError)
    kernel = _as_plane(weights, "kernel", KernelError)
    output = conv_transpose2d(
        plane, kernel, stride=stride, padding=padding, output_padding=output_padding,
        dilation=dilation, flip=flip, dtype=np.float64,
    )[:, :, 0]
    cell = _check_at(at, output.shape)
    strides, dilations = pair(stride, "stride"), pair(dilation, "dilation")
    out_pads = pair(output_padding, "output_padding", minimum=0)
    pads = resolve_padding2d(plane.shape, kernel.shape, stride=strides, padding=padding,
                             dilation=dilations, transposed=True, output_padding=out_pads)
    used = kernel[::-1, ::-1].copy() if flip else kernel
    contributions = _scatter_terms(plane, used, strides, dilations, pads, cell)

    rows, cols = plane.shape
    inserted = np.zeros(((rows - 1) * strides[0] + 1, (cols - 1) * strides[1] + 1))
    inserted[:: strides[0], :: strides[1]] = plane
    kind = np.full(inserted.shape, INSERTED_CELL, dtype=np.int8)
    kind[:: strides[0], :: strides[1]] = INPUT_CELL
    reach = [dilations[a] * (kernel.shape[a] - 1) for a in (0, 1)]
    # rows after = k_eff − 1 − pad_bottom + output_padding, which also covers
    # rows past the scatter extent (zeros) and makes the grid H' + k_eff − 1 tall.
    grid_pads = (
        reach[0] - pads[0],
        output.shape[0] + pads[0] - inserted.shape[0],
        reach[1] - pads[2],
        output.shape[1] + pads[2] - inserted.shape[1],
    )
    padded = _pad_or_crop(inserted, grid_pads, 0)
    kind = _pad_or_crop(kind, grid_pads, PADDING_CELL)
    rotated = used[::-1, ::-1].copy()
    win_rows, win_cols, window, products = _products(padded, rotated, (1, 1), dilations, cell)
    return Explanation(
        operation="conv_transpose2d", image=plane, kernel=used, stride=strides,
        dilation=dilations, pads=pads, border="zero", padded=padded, cell_kind=kind,
        window_kernel=rotated, step=(1, 1), at=cell, window_rows=win_rows,
        window_cols=win_cols, window=window, products=products, total=float(products.sum()),
        output=output, output_padding=out_pads, contributions=contributions,
    )


def _scatter_terms(
    plane: np.ndarray,
    kernel: np.ndarray,
    stride: tuple[int, int],
    dilation: tuple[int, int],
    pads: tuple[int, int, int, int],
    at: tuple[int, int],
) -> tuple[Contribution, ...]:
    """Terms ``I[a, b] · K[m, n]`` with ``s·a + d·m = i + top``, ``s·b + d·n = j + left``."""
    target = (at[0] + pads[0], at[1] + pads[2])
    per_axis: list[list[tuple[int, int]]] = []
    for axis in (0, 1):
        hits = []
        for tap in range(kernel.shape[axis]):
            offset = target[axis] - dilation[axis] * tap
            source, rest = divmod(offset, stride[axis])
            if rest == 0 and 0 <= source < plane.shape[axis]:
                hits.append((source, tap))
        per_axis.append(hits)
    return tuple(
        Contribution(
            input_cell=(a, b), tap=(m, n), value=float(plane[a, b]), weight=float(kernel[m, n])
        )
        for a, m in per_axis[0]
        for b, n in per_axis[1]
    )
