"""One band of feature maps from a source: the function every executor calls.

:func:`plan_render` resolves a job's geometry for one source shape (pads,
output size, the strategy ``auto`` picks for the *whole* image, so that
every band runs the same arithmetic); :func:`render_rows` then computes
output rows ``rows`` of the maps:

* forward: the input window ``s·i0 − pad_top .. s·(i1 − 1) + d·(k − 1) − pad_top``
  (:func:`convcli.pipeline.bands.forward_rows`) is read from the source, rows
  outside the image taken from the border mode (``wrap`` reads the other
  end, ``zero``/``constant`` read nothing), and convolved with ``valid``
  rows and the job's own column pads, so the band equals rows ``i0 .. i1−1``
  of the whole-image result;
* transposed: the input rows whose scatter reaches the band
  (:func:`convcli.pipeline.bands.transpose_rows`) are scattered with no
  crop, and the band's rows and columns are cut from that local result
  (positions past its extent are zeros), then the bias is added.

The reduce step (:func:`convcli.maps.reduce_maps`) is pointwise, so it runs
per band too. Pure: arrays in, arrays out (the source does the reading).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from convcli import engines
from convcli.borders import Border, parse_border
from convcli.conv import _add_bias, _as_bank, conv2d, conv_transpose2d
from convcli.errors import ShapeError
from convcli.geometry import effective_kernel_size, normalize_padding, output_size, pair, resolve_padding2d
from convcli.maps import reduce_maps
from convcli.pipeline.bands import Rows, forward_rows, row_map, transpose_rows

__all__ = ["RenderPlan", "RowSource", "plan_render", "read_window", "render_row_list", "render_rows"]


class RowSource(Protocol):
    """What :func:`render_rows` needs of a source (:class:`convcli.pipeline.sources.Source`)."""

    shape: tuple[int, int, int]
    dtype: np.dtype

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start .. stop−1`` as ``(stop − start, W, C)`` native values."""
        ...


@dataclass(frozen=True)
class RenderPlan:
    """A job's geometry resolved for one input shape (picklable, holds no file).

    Attributes
    ----------
    in_shape : (H, W, C)
        The source's shape.
    channels_used : int
        Leading source channels that are filtered (``C − 1`` when alpha is dropped).
    weights : ndarray, (F, kh, kw) or (F, kh, kw, C)
        The bank as given to the core.
    conv_options : dict
        Keyword arguments of :func:`convcli.conv2d` / :func:`convcli.conv_transpose2d`
        shared by every band (stride, dilation, channels, flip, method, dtype; the
        border for forward).
    transpose : bool
    pads : (top, bottom, left, right)
        Forward: resolved pads. Transposed: resolved crops (may be negative: more
        output than the scatter covers).
    raw_shape : (H', W', N)
        The maps before the reduce step.
    out_shape : (H', W', N_r)
        The maps :func:`render_rows` returns (after the reduce step).
    bias : float or list
    n_filters : int
    reduce : str
    method : str
        The strategy every band uses (``auto`` resolved on the whole image).
    """

    in_shape: tuple[int, int, int]
    channels_used: int
    weights: np.ndarray
    conv_options: dict
    transpose: bool
    pads: tuple[int, int, int, int]
    raw_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    bias: Any
    n_filters: int
    reduce: str
    method: str

    @property
    def border(self) -> Border:
        """The forward border (zero for transposed plans)."""
        return parse_border(self.conv_options.get("border", "zero"))

    @property
    def itemsize(self) -> int:
        """Bytes per computed value (4 for float32, 8 for float64)."""
        return np.dtype(self.conv_options.get("dtype") or np.float32).itemsize


def _n_outputs(weights: np.ndarray, channels: str, n_channels: int) -> int:
    n_filters = weights.shape[0] if weights.ndim >= 3 else 1
    if channels == "depthwise":
        return n_filters * n_channels
    return n_filters


def plan_render(in_shape: tuple[int, int, int], weights: Any, *, stride: Any = 1, padding: Any = "valid",
                border: Any = "zero", dilation: Any = 1, channels: str = "depthwise",
                flip: bool = False, bias: Any = 0.0, method: str = "auto", dtype: Any = "float32",
                transpose: bool = False, output_padding: Any = 0, reduce: str = "none",
                drop_alpha: bool = False, max_pixels: int | None = None) -> RenderPlan:
    """Resolve the geometry of a band-by-band job on an image of shape ``in_shape``.

    Parameters
    ----------
    in_shape : (H, W, C)
        The source's shape (channels last).
    weights : array_like, (kh, kw), (F, kh, kw) or (F, kh, kw, C)
    stride, padding, border, dilation, channels, flip, bias, method, dtype
        As in :func:`convcli.conv2d` (``border`` is ignored for transposed).
    transpose, output_padding
        Transposed convolution (:func:`convcli.conv_transpose2d`).
    reduce : {'none', 'magnitude', 'max', 'min', 'sum'}
    drop_alpha : bool
        Filter the first ``C − 1`` channels only.
    max_pixels : int or None
        Refuse a geometry whose working image (padded, or upsampled when
        transposed) has more than ``max(max_pixels, 4·H·W)`` pixels.

    Returns
    -------
    RenderPlan

    Raises
    ------
    ShapeError, KernelError, OptionError
        An impossible geometry (output smaller than one pixel, bad stride,
        channels that do not match the bank), as the core raises them.
    """
    rows, cols, n_channels = (int(v) for v in in_shape)
    used = n_channels - 1 if drop_alpha else n_channels
    dtype_name = np.dtype(dtype or np.float32)
    bank = _as_bank(weights, dtype_name)
    kh, kw = bank.shape[1:3]
    strides, dilations = pair(stride, "stride"), pair(dilation, "dilation")
    image_channels = 1 if channels == "gray" else used
    if bank.ndim == 4 and bank.shape[3] != image_channels \
            and not (channels == "depthwise" and bank.shape[3] == 1):
        raise ShapeError(
            f"bank has C={bank.shape[3]} channels but the image has C={image_channels} "
            f"(channels={channels!r}); give a (F, kh, kw) bank or a matching C"
        )
    options: dict[str, Any] = {"stride": strides, "dilation": dilations, "channels": channels,
                               "flip": flip, "dtype": dtype_name}
    if transpose:
        out_pads = pair(output_padding, "output_padding", minimum=0)
        pads = resolve_padding2d((rows, cols), (kh, kw), stride=strides, padding=padding,
                                 dilation=dilations, transposed=True, output_padding=out_pads)
        norm = normalize_padding(padding)
        per_axis = (norm, norm) if isinstance(norm, str) else (norm[:2], norm[2:])
        out_hw = tuple(
            output_size(n, k, stride=s, padding=p, dilation=d, transposed=True, output_padding=op)
            for n, k, s, p, d, op in zip((rows, cols), (kh, kw), strides, per_axis, dilations, out_pads))
        extents = [(n - 1) * s + effective_kernel_size(k, d) + op
                   for n, k, s, d, op in zip((rows, cols), (kh, kw), strides, dilations, out_pads)]
        chosen = method
    else:
        parsed = parse_border(border)
        options["border"] = parsed
        pads = resolve_padding2d((rows, cols), (kh, kw), stride=strides, padding=padding,
                                 dilation=dilations)
        out_hw = (output_size(rows, kh, stride=strides[0], padding=pads[:2], dilation=dilations[0]),
                  output_size(cols, kw, stride=strides[1], padding=pads[2:], dilation=dilations[1]))
        extents = [rows + pads[0] + pads[1], cols + pads[2] + pads[3]]
        chosen = _choose_forward(method, (rows, cols, used), bank, channels, flip, pads, parsed,
                                 strides, dilations, out_hw)
    if max_pixels is not None:
        limit = max(max_pixels, 4 * rows * cols)
        if extents[0] * extents[1] > limit:
            raise ShapeError(
                f"this geometry needs a {extents[0]}×{extents[1]} working image for a {rows}×{cols} "
                f"input ({extents[0] * extents[1]} pixels > limit {limit}); check --padding, "
                "--dilation, --stride (or raise --max-pixels; 0: no limit)"
            )
    options["method"] = chosen
    gray_channels = 1 if channels == "gray" else used
    n_raw = _n_outputs(bank, channels, gray_channels)
    n_out = n_raw if reduce == "none" else n_raw // bank.shape[0]
    return RenderPlan(
        in_shape=(rows, cols, n_channels), channels_used=used, weights=np.asarray(weights),
        conv_options=options, transpose=transpose, pads=tuple(int(p) for p in pads),
        raw_shape=(out_hw[0], out_hw[1], n_raw), out_shape=(out_hw[0], out_hw[1], n_out),
        bias=bias, n_filters=bank.shape[0], reduce=reduce, method=chosen,
    )


def _choose_forward(method: str, shape: tuple[int, int, int], bank: np.ndarray, channels: str, flip: bool,
                    pads: tuple[int, int, int, int], border: Border, strides: tuple[int, int],
                    dilations: tuple[int, int], out_hw: tuple[int, int]) -> str:
    """The strategy ``auto`` picks for the whole image (bands then all run it)."""
    if method != "auto":
        return method
    n_channels = 1 if channels == "gray" else shape[2]
    weights = bank[:, ::-1, ::-1] if flip else bank
    if weights.ndim == 3:
        weights = weights[..., None]
    weights = np.broadcast_to(weights, (*weights.shape[:3], n_channels))
    dummy = np.broadcast_to(np.zeros((1, 1, 1), weights.dtype), (shape[0], shape[1], n_channels))
    problem = engines.ForwardProblem(
        image=dummy, weights=weights, mode="depthwise" if channels == "depthwise" else "sum",
        pads=pads, border=border, stride=strides, dilation=dilations, out_shape=out_hw,
    )
    return engines.choose_forward(problem)


def read_window(source: RowSource, window: Rows, border: Border, n_channels: int | None = None,
                dtype: Any = np.float32) -> np.ndarray:
    """Rows ``window`` of the padded image: ``(len(window), W, C')`` values.

    Rows inside ``0 .. H−1`` are read from ``source``; rows outside follow
    ``numpy.pad`` with the border's mode (:func:`convcli.pipeline.bands.row_map`),
    and each run of consecutive source rows is read once. With constant
    rows the band is ``dtype`` (float) filled with the border's value;
    otherwise it keeps the source's dtype. ``n_channels`` keeps the first
    channels only.
    """
    height = source.shape[0]
    index = row_map(window, height, border)
    valid = index >= 0
    keep = slice(None) if n_channels is None or n_channels == source.shape[2] else slice(0, n_channels)
    if valid.all() and index[-1] - index[0] == len(index) - 1 and np.all(np.diff(index) == 1):
        return source.read_rows(int(index[0]), int(index[-1]) + 1)[..., keep]
    # sorted distinct rows (np.unique would import numpy.ma on first use: 12 ms of a CLI run)
    wanted = np.array(sorted(set(index[valid].tolist())), dtype=index.dtype)
    width, n_all = source.shape[1], source.shape[2]
    n_keep = n_all if n_channels is None else n_channels
    constant = not valid.all()
    out = np.empty((len(index), width, n_keep), dtype=np.dtype(dtype) if constant else source.dtype)
    if constant:
        out[~valid] = border.value
    if wanted.size:
        breaks = np.flatnonzero(np.diff(wanted) > 1) + 1
        for run in np.split(wanted, breaks):
            first, last = int(run[0]), int(run[-1])
            rows = source.read_rows(first, last + 1)[..., keep]
            targets = np.flatnonzero(valid & (index >= first) & (index <= last))
            out[targets] = rows[index[targets] - first]
    return out


def _in_image_rows(band: np.ndarray, image_rows: Any, call: Any) -> np.ndarray:
    """``call()``; its refusal of a NaN or ±inf in ``band`` names the value's row in the image.

    ``image_rows()`` gives the image row of each band row (``-1``: border
    fill); it is computed only then. The count of bad values is the band's
    alone, so it is left out.
    """
    try:
        return call()
    except ShapeError as exc:
        if not str(exc).startswith("image values must be finite"):
            raise
        bad = np.argwhere(~np.isfinite(band))
        if not bad.size:  # a float32 cast overflow: its message has no position
            raise
        # the first in the image's order: border rows (reflected, wrapped) come before row 0
        rows_in_image = image_rows()[bad[:, 0]]
        row, col, channel = (int(i) for i in bad[np.lexsort((bad[:, 2], bad[:, 1], rows_in_image))[0]])
        raise ShapeError(f"image values must be finite, got {band[row, col, channel]} at (row, column, "
                         f"channel) ({int(image_rows()[row])}, {col}, {channel})") from None


def render_rows(plan: RenderPlan, source: RowSource, rows: Rows) -> np.ndarray:
    """Output rows ``rows`` of the job's maps, ``(len(rows), W', N_r)`` float.

    Equals ``maps[rows.start:rows.stop]`` of the whole-image result (see the
    module notes); bit for bit for strategies whose arithmetic does not depend
    on the number of rows (direct, separable).
    """
    options = plan.conv_options
    with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        if plan.transpose:
            maps = _transposed_band(plan, source, rows)
        else:
            kh = plan.weights.shape[-2] if plan.weights.ndim == 2 else plan.weights.shape[1]
            window = forward_rows(rows, kh, options["stride"][0], options["dilation"][0], plan.pads[0])
            band = read_window(source, window, options["border"], plan.channels_used, options["dtype"])
            return _in_image_rows(
                band, lambda: row_map(window, source.shape[0], options["border"]),
                lambda: conv2d(band, plan.weights, padding=(0, 0, plan.pads[2], plan.pads[3]), bias=plan.bias,
                               reduce=plan.reduce, **options))
    if plan.reduce != "none":
        maps = reduce_maps(maps, plan.n_filters, plan.reduce)
    return maps


def render_row_list(plan: RenderPlan, source: RowSource, rows: Sequence[int]) -> np.ndarray:
    """Output rows ``rows`` (any list of row indices) of the job's maps, ``(len(rows), W', N_r)``.

    Forward: the ``K = d·(kh − 1) + 1`` input rows of each output row are
    stacked (``len(rows)·K`` rows, borders as in :func:`read_window`) and
    convolved once with a row stride of ``K`` and the plan's strategy, so
    output row ``j`` of the stack reads exactly the window of ``rows[j]``:
    the values equal those rows of :func:`render_rows` (bit for bit for
    strategies whose arithmetic does not depend on the number of rows).
    Transposed plans render each row as a one-row band.
    """
    rows = [int(row) for row in rows]
    if plan.transpose or not rows:
        parts = [render_rows(plan, source, Rows(row, row + 1)) for row in rows]
        empty_type = np.float64 if plan.itemsize == 8 else np.float32
        return np.concatenate(parts) if parts else np.zeros((0, *plan.out_shape[1:]), empty_type)
    options = plan.conv_options
    kh = plan.weights.shape[-2] if plan.weights.ndim == 2 else plan.weights.shape[1]
    stride_rows, dilation_rows = options["stride"][0], options["dilation"][0]
    reach = dilation_rows * (kh - 1) + 1
    spans = [forward_rows(Rows(row, row + 1), kh, stride_rows, dilation_rows, plan.pads[0]) for row in rows]
    windows = [read_window(source, span, options["border"], plan.channels_used, options["dtype"])
               for span in spans]
    stacked = np.concatenate(windows) if len(windows) > 1 else windows[0]
    stacked_options = dict(options, stride=(reach, options["stride"][1]))

    def image_rows() -> np.ndarray:
        return np.concatenate([row_map(span, source.shape[0], options["border"]) for span in spans])

    with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return _in_image_rows(stacked, image_rows, lambda: conv2d(
            stacked, plan.weights, padding=(0, 0, plan.pads[2], plan.pads[3]), bias=plan.bias,
            reduce=plan.reduce, **stacked_options))


def _transposed_band(plan: RenderPlan, source: RowSource, rows: Rows) -> np.ndarray:
    options = plan.conv_options
    stride_rows = options["stride"][0]
    kh = plan.weights.shape[-2] if plan.weights.ndim == 2 else plan.weights.shape[1]
    crop_top, crop_left = max(plan.pads[0], 0), max(plan.pads[2], 0)
    out_cols, n_raw = plan.raw_shape[1], plan.raw_shape[2]
    out = np.zeros((len(rows), out_cols, n_raw), dtype=options["dtype"])
    window = transpose_rows(rows, plan.in_shape[0], kh, stride_rows, options["dilation"][0], crop_top)
    if window is not None:
        band = source.read_rows(window.start, window.stop)[..., :plan.channels_used]
        full = _in_image_rows(band, lambda: np.arange(window.start, window.stop),
                              lambda: conv_transpose2d(band, plan.weights, padding=0, **options))
        first = rows.start + crop_top - stride_rows * window.start  # local full row of rows.start
        row_lo, row_hi = max(first, 0), min(first + len(rows), full.shape[0])
        col_hi = min(crop_left + out_cols, full.shape[1])
        if row_hi > row_lo and col_hi > crop_left:
            out[row_lo - first:row_hi - first, :col_hi - crop_left] = full[row_lo:row_hi, crop_left:col_hi]
    return _add_bias(out, plan.bias, plan.n_filters)
