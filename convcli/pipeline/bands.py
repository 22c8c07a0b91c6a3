"""Row arithmetic of band-by-band filtering (pure: integers and index arrays).

Forward convolution (per axis; rows shown). With the padded input
``P[r] = I[r − pad_top]`` (border outside ``0 .. H−1``) and
``O[i] = Σ_m P[s·i + d·m]·K[m]``, output rows ``i0 .. i1−1`` need padded rows
``s·i0 .. s·(i1 − 1) + d·(k − 1)``, i.e. input rows::

    r_first = s·i0 − pad_top
    r_last  = s·(i1 − 1) + d·(k − 1) − pad_top          (inclusive)
    count   = (i1 − i0 − 1)·s + d·(k − 1) + 1

Transposed convolution (PyTorch ``conv_transpose2d``):
``full[s·i + d·m] += I[i]·K[m]`` and ``O[o] = full[o + crop_top]``, so output
rows ``o0 .. o1−1`` receive contributions from input rows::

    i_first = max(0, ceil((o0 + crop_top − d·(k − 1)) / s))
    i_last  = min(H − 1, floor((o1 − 1 + crop_top) / s))

Source: ``../shared/STREAMING.md`` (checked there against ``torch.conv1d`` /
``conv_transpose1d`` on 300 random cases); the tests here check it against
whole-image results.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convcli.borders import Border
from convcli.errors import ShapeError

__all__ = [
    "DEFAULT_BAND_BYTES",
    "Rows",
    "band_height",
    "forward_rows",
    "row_map",
    "split_rows",
    "transpose_rows",
]

DEFAULT_BAND_BYTES = 48 << 20
"""Memory budget of one band's float buffers (input window plus maps), bytes."""


@dataclass(frozen=True, order=True)
class Rows:
    """A half-open window of rows ``start .. stop−1`` (``start < stop``)."""

    start: int
    stop: int

    def __post_init__(self) -> None:
        if self.stop <= self.start:
            raise ShapeError(f"empty row window [{self.start}, {self.stop})")

    def __len__(self) -> int:
        return self.stop - self.start


def forward_rows(out: Rows, kernel: int, stride: int, dilation: int, pad_before: int) -> Rows:
    """Input rows (may lie outside ``0 .. H−1``) that forward output rows ``out`` need.

    ``Rows(s·i0 − pad_before, s·(i1 − 1) + d·(k − 1) − pad_before + 1)``; rows
    outside the image come from the border (:func:`row_map`).
    """
    first = stride * out.start - pad_before
    last = stride * (out.stop - 1) + dilation * (kernel - 1) - pad_before
    return Rows(first, last + 1)


def transpose_rows(out: Rows, size: int, kernel: int, stride: int, dilation: int,
                   crop_before: int) -> Rows | None:
    """Input rows ``0 .. size−1`` whose scatter reaches transposed output rows ``out``.

    ``None`` when no input row reaches the window (rows of ``output_padding``
    past the scatter extent: zeros plus bias).
    """
    reach = dilation * (kernel - 1)
    first = max(0, -(-(out.start + crop_before - reach) // stride))
    last = min(size - 1, (out.stop - 1 + crop_before) // stride)
    if last < first:
        return None
    return Rows(first, last + 1)


def row_map(window: Rows, size: int, border: Border) -> np.ndarray:
    """Source row of every row of ``window`` (``-1``: the constant fill).

    Follows ``numpy.pad`` for every border, for windows reaching any distance
    past the image (repeated reflection, wrapping), so a band built from it
    equals the same rows of the whole padded image.
    """
    before = max(0, -window.start)
    after = max(0, window.stop - size)
    index = np.arange(size, dtype=np.intp)
    if border.numpy_mode == "constant":
        padded = np.pad(index, (before, after), mode="constant", constant_values=-1)
    else:
        padded = np.pad(index, (before, after), mode=border.numpy_mode)
    offset = window.start + before
    return padded[offset:offset + len(window)]


def split_rows(n_rows: int, band: int, align: int = 1) -> list[Rows]:
    """Cover ``0 .. n_rows−1`` with bands of ``band`` rows (the last may be shorter).

    ``band`` is rounded down to a multiple of ``align`` (at least ``align``):
    transposed bands start on a multiple of the stride so every band has the
    same phase pattern.
    """
    if n_rows < 1:
        raise ShapeError(f"nothing to split: {n_rows} rows")
    align = max(1, align)
    band = max(align, (max(1, band) // align) * align)
    return [Rows(start, min(start + band, n_rows)) for start in range(0, n_rows, band)]


def band_height(out_rows: int, *, in_row_bytes: int, out_row_bytes: int, stride: int,
                reach: int, budget: int = DEFAULT_BAND_BYTES, transposed: bool = False) -> int:
    """Output rows per band so that one band's buffers fit ``budget`` bytes.

    A forward band of ``b`` output rows reads ``(b − 1)·s + reach + 1`` input
    rows (``reach = d·(k − 1)``); a transposed band reads about ``b / s`` plus
    ``reach / s + 1``. Each input row costs ``in_row_bytes`` (float, ``W·C``
    values), each output row ``out_row_bytes`` (``W'·N`` values). At least 1.
    """
    in_per_out = (1.0 / stride) if transposed else float(stride)
    fixed = (reach // stride + 1 if transposed else reach + 1) * in_row_bytes
    per_row = in_per_out * in_row_bytes + out_row_bytes
    rows = int((budget - fixed) // max(per_row, 1.0))
    return int(max(1, min(out_rows, rows)))
