"""Float feature maps → 8- or 16-bit pixels for viewing (pure numpy).

A convolution result is float and may be negative (edge detectors) or exceed
the input range (sharpening). ``to_pixels`` maps it to integers in
``[0, M]`` with ``M = 255`` (8-bit) or ``M = 65535`` (16-bit) by one of these
scales, always rounding to the nearest integer and clipping at the end:

==============  ==============================================================
``clip``        ``x``
``abs``         ``|x|``
``minmax``      ``(x − min) / (max − min) · M`` (a constant map gives 0)
``offset:V``    ``x + V`` (V in the output's own units: 128 is mid-gray at
                8 bits, 32768 at 16 bits)
``auto``        the rule below
==============  ==============================================================

Float inputs whose values lie in ``[0, 1]`` are ``[0, 1]`` images
(``float_unit=True``, :attr:`convcli.imageio.LoadedImage.float_unit`): ``x``
above is first multiplied by ``M`` (×255 or ×65535), so every rule sees the
map in the output's units.

``auto``, in order (``kind`` is the kernel's kind, see
:func:`convcli.alpha.is_image_kernel`: ``"image"`` when its weights sum to 1,
``"feature"`` otherwise; a ``--reduce`` result is a feature map):

1. a display hint from the kernel preset wins (e.g. emboss ``"offset:128"``);
   a hint is written in 8-bit units and an offset is multiplied by 257 for
   16-bit output (``255 · 257 = 65535``);
2. a bias was given (``bias=True``) → ``clip``: the bias is a request to
   offset, not to fold (``[-1 1]`` on ``[200, 0]`` with bias 128: −72 → 0);
3. an image kernel (blur, sharpen, identity) → ``clip``: a blur keeps its
   values, a sharpen's undershoot is black and its overshoot white;
4. a feature map → ``|x|`` (a non-negative map is ``x`` itself); if ``q``,
   the 99th percentile of ``|x|`` (linear interpolation, finite values of
   the sampled rows, :func:`sample_rows`), exceeds ``M``, the whole map is
   scaled by ``(M − ½) / q`` — negative responses are never clipped to
   black, their strength shows as brightness, and only values above ``q``
   (at most about 1 %) round to white instead of a few outliers dimming the
   rest (a sobel map of a photo has most of its energy far below its
   maximum; Kirsch ``--reduce max`` overshoots the same way). Only the
   sample decides, so a streamed feature map needs no pass over all of
   its values for its statistics (:func:`needs_range`).

With ``kind=None`` (not known: the rule before kernel kinds, kept for
callers that do not say) steps 3–4 are: in range → ``clip``; some value
negative → step 4 with the factor ``M / q``; overshoot only → ``clip``.

The statistics (min, max) are taken over the whole array given, so channels
passed together keep their relative brightness; pass maps one at a time to
scale them separately. NaN becomes 0; ±inf saturate (and are ignored when
computing min/max).

Three steps, so that a streamed map gives the whole-map pixels:
:func:`map_stats` (or the same :class:`MapStats` gathered band by band) →
:func:`plan_display` (pure) → :func:`apply_mapping` (element-wise, any band).
:func:`needs_stats` says whether the first step is needed at all.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from convcli.engines._bands import by_row_blocks
from convcli.errors import OptionError

__all__ = [
    "KINDS",
    "SCALES",
    "DisplayMapping",
    "MapStats",
    "alpha_mapping",
    "apply_mapping",
    "compiled_stats",
    "map_stats",
    "needs_range",
    "needs_stats",
    "parse_scale",
    "peak_of_sample",
    "plan_display",
    "row_sample",
    "sample_rows",
    "to_pixels",
]

SCALES = ("auto", "clip", "abs", "minmax", "offset:V")
"""The scale names accepted by :func:`parse_scale` (``V`` a number)."""

KINDS = ("image", "feature")
"""Kernel kinds that :func:`plan_display` takes (or None: not known)."""

_MAX_VALUE = {8: 255, 16: 65535}
_HINT_UNIT = 257  # an 8-bit hint value times 257 is the same gray at 16 bits


def parse_scale(text: str) -> str:
    """Validate a scale name and return it normalised (lower case, no spaces).

    Accepts ``auto``, ``clip``, ``abs``, ``minmax`` and ``offset:V`` with V a
    finite number; anything else raises :class:`OptionError`.
    """
    normalised = str(text).strip().lower().replace(" ", "")
    if normalised in ("auto", "clip", "abs", "minmax"):
        return normalised
    if normalised.startswith("offset:"):
        value_text = normalised.partition(":")[2]
        try:
            value = float(value_text)
        except ValueError:
            value = float("nan")
        if np.isfinite(value):
            return f"offset:{value_text}"
    raise OptionError(
        f"`scale` must be auto, clip, abs, minmax or offset:V (V a number), got {text!r}"
    )


def _finite_range(maps: np.ndarray) -> tuple[float, float] | None:
    """(min, max) over the finite values, or None if there are none."""
    low, high = float(np.min(maps)), float(np.max(maps))
    if np.isfinite(low) and np.isfinite(high):
        return low, high
    finite = maps[np.isfinite(maps)]
    if finite.size == 0:
        return None
    return float(finite.min()), float(finite.max())


def _auto_rule(value_range: tuple[float, float] | None, max_value: int, kind: str | None,
               bias: bool) -> tuple[str, bool]:
    """(scale, whether the 99th percentile ``q`` decides a factor) that ``auto`` picks without a
    hint, for the finite (min, max) ``value_range`` in output units (module notes, steps 2–5)."""
    if bias or kind == "image":
        return "clip", False
    if kind == "feature":
        # |x| of a non-negative map is x, and q ≤ max |x|: the factor applies exactly when q > M,
        # whatever the range, so a feature map needs only the sample's percentile
        return "abs", True
    if value_range is None:
        return "clip", False
    low, high = value_range
    if low < 0:
        return "abs", max(-low, high) > max_value
    if high <= max_value or kind is None:
        return "clip", False  # in range (a blur), or (kind not known) overshoot only
    return "clip", True


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in KINDS:
        raise OptionError(f"`kind` must be 'image', 'feature' or None, got {kind!r}")


def _resolve(scale: str, bit_depth: int, hint: str | None) -> str:
    """``scale``, or for ``auto`` the preset's ``hint`` (an offset ×257 at 16 bits)."""
    scale = parse_scale(scale)
    if scale == "auto" and hint is not None:
        scale = parse_scale(hint)
        if scale.startswith("offset:") and bit_depth == 16:
            scale = f"offset:{float(scale.partition(':')[2]) * _HINT_UNIT}"
    return scale


def needs_stats(scale: str = "auto", hint: str | None = None, *, kind: str | None = None,
                bias: bool = False) -> bool:
    """Whether :func:`plan_display` reads the map's statistics (else any :class:`MapStats` will do).

    ``minmax`` does, and ``auto`` does unless the hint names a fixed scale,
    the kernel is an image kernel or a bias was given (those clip).
    """
    _check_kind(kind)
    resolved = _resolve(scale, 8, hint)
    if resolved == "minmax":
        return True
    return resolved == "auto" and not bias and kind != "image"


def needs_range(scale: str = "auto", hint: str | None = None, *, kind: str | None = None,
                bias: bool = False) -> bool:
    """Whether :func:`plan_display` reads :attr:`MapStats.low`/``high`` (not only the percentile sample).

    ``minmax`` does, and ``auto`` for a map of unknown ``kind`` (its rule
    tells a negative map from an overshooting one by the range). ``auto``
    on a ``feature`` map needs only the sample (:attr:`MapStats.peak`), so
    a streamed job may compute the sampled rows alone
    (:func:`sample_rows`) for its statistics.
    """
    if not needs_stats(scale, hint, kind=kind, bias=bias):
        return False
    return _resolve(scale, 8, hint) == "minmax" or kind is None


_PEAK_PERCENTILE = 99.0
_PEAK_SAMPLE = 1 << 20  # larger maps: the percentile of every r-th row (about this many values)


@dataclass(frozen=True)
class MapStats:
    """What the display rules need to know about a whole map (one output file).

    Attributes
    ----------
    low, high : float
        Smallest and largest finite value (``None`` when no value is finite).
    has_nan : bool
        Whether any value is NaN (written as 0).
    sample : ndarray
        ``|x|`` (NaN as 0) of the sampled rows of the map (:func:`sample_rows`:
        every row up to 2**20 values, else every r-th row), in C order.
    """

    low: float | None
    high: float | None
    has_nan: bool = False
    sample: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32), repr=False)

    @functools.cached_property
    def peak(self) -> float:
        """The 99th percentile (linear interpolation) of the finite sampled values (computed once)."""
        return peak_of_sample(self.sample)


@dataclass(frozen=True)
class DisplayMapping:
    """The concrete per-value mapping ``round(clip(((|x| or x) + shift) · multiplier, 0, M))``.

    ``kind`` is ``clip`` or ``abs``; ``multiplier == 0`` maps everything to 0
    (``minmax`` of a constant map).
    """

    kind: str
    shift: float
    multiplier: float
    max_value: int


def sample_rows(height: int, row_values: int) -> range:
    """The rows of a map of ``height`` rows of ``row_values`` values each that its percentile samples.

    Every row when the map has at most 2**20 values; else every r-th row,
    ``r = ceil(height / max(1, 2**20 // row_values))``, starting at row
    ``r // 2`` (so at most about 2**20 values, spread over the whole map:
    the 99th percentile of a million values is within about 0.01 % in rank
    of the whole map's).
    Whole rows, so that a streamed job can compute these rows alone.
    """
    height, row_values = int(height), max(1, int(row_values))
    if height * row_values <= _PEAK_SAMPLE:
        return range(height)
    step = -(-height // max(1, _PEAK_SAMPLE // row_values))
    return range(step // 2, height, step)


def peak_of_sample(sample: np.ndarray) -> float:
    """The 99th percentile of the finite values of ``sample`` (0 when there are none).

    NumPy's default ("linear") definition: with the ``n`` values sorted as
    ``v_0 ≤ … ≤ v_{n−1}`` and ``h = (n − 1) · 0.99``, ``v_⌊h⌋ + (h − ⌊h⌋) ·
    (v_⌊h⌋+1 − v_⌊h⌋)``, computed in float64 (equal to ``numpy.percentile``
    within a rounding). Large samples select the top values first (a
    threshold read off every 64th value, then a partition of the few
    percent above it) instead of partitioning all of them; ``sample`` is not
    changed.
    """
    if not sample.size:
        return 0.0
    if sample.dtype.kind == "f" and not np.isfinite(sample.max()):
        sample = sample[np.isfinite(sample)]
        if not sample.size:
            return 0.0
    n = sample.size
    position = (n - 1) * (_PEAK_PERCENTILE / 100.0)
    k = int(position)
    fraction = position - k
    top = _top_values(sample, n - k)
    ordered = np.partition(top, [0, 1]) if top.size > 1 else top
    low = float(ordered[0])
    high = float(ordered[1]) if top.size > 1 else low
    return low + fraction * (high - low)


def _top_values(sample: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` largest values of ``sample`` (in any order), ties resolved as a sort would."""
    n = sample.size
    flat = sample.reshape(-1)
    if n >= 1 << 16 and count <= n // 16:
        probe = np.sort(flat[::64])
        # a threshold a little below the count-th largest of the probe, so that (all but surely)
        # at least `count` values pass it; checked below, else the whole sample is partitioned
        index = max(0, probe.size - 1 - (count * probe.size) // n - 8 - probe.size // 256)
        threshold = probe[index]
        above = flat[flat > threshold]
        if above.size >= count:
            return np.partition(above, above.size - count)[above.size - count:]
        equal = np.count_nonzero(flat == threshold)
        if above.size + equal >= count:
            return np.concatenate([above, np.full(count - above.size, threshold, flat.dtype)])
    return np.partition(flat, n - count)[n - count:]


def compiled_stats(values: np.ndarray, first: int, step: int
                   ) -> tuple[float, float, bool, np.ndarray] | None:
    """(min, max of the finite values, any NaN, ``|flat[first::step]|``) with NaN as 0, in one pass.

    ``flat`` is ``values`` in C order; a NaN counts as the 0 it is written as
    (in the range too, as in the numpy steps). The compiled kernels
    (:func:`convcli.engines._native.band_stats`) in blocks on the worker pool;
    ``(inf, -inf, …)`` when no value is finite; the sample has ``values``'
    dtype. None (the caller uses numpy) without the extension or for dtypes
    other than native float32/float64.
    """
    from convcli.engines import _native

    if not (_native.AVAILABLE and values.dtype in (np.float32, np.float64) and values.dtype.isnative):
        return None
    flat = np.ascontiguousarray(values).reshape(-1)
    sample = np.empty(len(range(first, flat.size, step)), flat.dtype)

    def block(span: tuple[int, int]) -> tuple[float, float, bool]:
        local = (first - span[0]) % step  # the block's first sampled index, and its place in sample
        index = (span[0] + local - first) // step
        part = flat[span[0]:span[1]]
        return _native.band_stats(part, sample[index:index + len(range(local, part.size, step))], local, step)

    lows, highs, nans = zip(*by_row_blocks(block, flat))
    low, high, has_nan = min(lows), max(highs), any(nans)
    if has_nan:  # the numpy steps count a NaN as the 0 it is written as
        low, high = min(low, 0.0), max(high, 0.0)
    return low, high, has_nan, sample


def row_sample(rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``|rows|`` flattened in C order, NaN as 0: the sample values of sampled rows.

    Written into ``out`` (a contiguous 1-d array of ``rows.size`` values of
    ``rows``' float type) when given, so a sample gathered piece by piece
    needs no concatenation.
    """
    from convcli.engines import _native

    work = np.asarray(rows)
    if (out is not None and _native.AVAILABLE and work.dtype == out.dtype
            and work.dtype in (np.float32, np.float64) and work.dtype.isnative and out.flags.c_contiguous):
        flat = np.ascontiguousarray(work).reshape(-1)
        by_row_blocks(lambda span: _native.band_stats(flat[span[0]:span[1]], out[span[0]:span[1]], 0, 1),
                      flat)
        return out
    fast = compiled_stats(work, 0, 1)
    if fast is not None:
        values = fast[3]
    else:
        flat = np.abs(work.ravel())
        values = np.where(np.isnan(flat), 0, flat) if np.isnan(flat).any() else flat
    if out is None:
        return values
    out[...] = values
    return out


def map_stats(maps: np.ndarray) -> MapStats:
    """:class:`MapStats` of a whole map held in memory (NaN counted, not changed).

    The map's rows are its first axis (a 0-d or 1-d array is one row).
    """
    work = np.asarray(maps)
    table = work.reshape(1, -1) if work.ndim < 2 else work
    sample = row_sample(table[sample_rows(table.shape[0], table[0].size if len(table) else 1)]) \
        if table.size else np.zeros(0, work.dtype if work.dtype.kind == "f" else np.float64)
    fast = compiled_stats(work, 0, max(1, work.size)) if work.size else None
    if fast is not None:
        low, high, has_nan, _ = fast
        return MapStats(low, high, has_nan, sample) if low <= high else MapStats(None, None, has_nan, sample)
    low, high = _min_max(work)
    has_nan = bool(np.isnan(low) or np.isnan(high))
    if has_nan:
        work = np.where(np.isnan(work), 0, work)
    value_range = (low, high) if np.isfinite(low) and np.isfinite(high) else _finite_range(work)
    low_f, high_f = value_range if value_range is not None else (None, None)
    return MapStats(low_f, high_f, has_nan, sample)


def plan_display(stats: MapStats, *, scale: str = "auto", bit_depth: int = 8,
                 hint: str | None = None, kind: str | None = None, bias: bool = False,
                 float_unit: bool = False) -> DisplayMapping:
    """The :class:`DisplayMapping` that ``scale`` gives a map with ``stats`` (module notes).

    Parameters
    ----------
    stats : MapStats
        Of the whole map (read only when :func:`needs_stats` says so).
    scale : str
        ``auto``, ``clip``, ``abs``, ``minmax`` or ``offset:V``.
    bit_depth : {8, 16}
        Output depth; M = 255 or 65535.
    hint : str or None
        A preset's display scale in 8-bit units, used by ``auto`` only.
    kind : {'image', 'feature', None}
        The kernel's kind (:func:`convcli.alpha.kernel_kinds`); None: not known.
    bias : bool
        The map carries a user bias: ``auto`` clips.
    float_unit : bool
        The map is of a ``[0, 1]`` float image: its values are ×M first.

    Raises
    ------
    OptionError
        A bad ``scale``, ``hint``, ``bit_depth`` or ``kind``.
    """
    if bit_depth not in _MAX_VALUE:
        raise OptionError(f"`bit_depth` must be 8 or 16, got {bit_depth!r}")
    _check_kind(kind)
    max_value = _MAX_VALUE[bit_depth]
    unit = float(max_value) if float_unit else 1.0  # the rules see u·x, in output units
    value_range = None if stats.low is None else (stats.low * unit, stats.high * unit)
    scale = _resolve(scale, bit_depth, hint)
    multiplier = 1.0
    if scale == "auto":
        scale, uses_peak = _auto_rule(value_range, max_value, kind, bias)
        peak = stats.peak * unit if uses_peak else 0.0
        if peak > max_value:
            # a feature map: q lands on M − ½, so only values above q (≤ 1 %) round to M
            multiplier = (max_value - 0.5 if kind == "feature" else max_value) / peak
    shift = 0.0
    mode = "abs" if scale == "abs" else "clip"
    if scale == "minmax":
        low, high = value_range if value_range is not None else (0.0, 0.0)
        shift, multiplier = (-low, max_value / (high - low)) if high > low else (0.0, 0.0)
    elif scale.startswith("offset:"):
        shift = float(scale.partition(":")[2])
    # (f(u·x) + shift)·m = (f(x) + shift/u)·(u·m) for u > 0, f the identity or |·|
    return DisplayMapping(mode, shift / unit, multiplier * unit, max_value)


def alpha_mapping(bit_depth: int = 8, *, float_unit: bool = False) -> DisplayMapping:
    """The mapping of a filtered alpha channel (``--alpha keep``): ``clip``, ×M for ``float_unit``."""
    if bit_depth not in _MAX_VALUE:
        raise OptionError(f"`bit_depth` must be 8 or 16, got {bit_depth!r}")
    max_value = _MAX_VALUE[bit_depth]
    return DisplayMapping("clip", 0.0, float(max_value) if float_unit else 1.0, max_value)


def apply_mapping(values: np.ndarray, mapping: DisplayMapping, *, overwrite: bool = False,
                  out: np.ndarray | None = None) -> np.ndarray:
    """Pixels ``round(clip(((|x| or x) + shift) · multiplier, 0, M))`` of float ``values``.

    Computed in ``values``' dtype (float64) or float32 (any other dtype is
    converted first), ``shift`` and ``multiplier`` rounded to it; rounded
    half to even; NaN becomes 0, ±inf saturate. With the compiled kernels
    (:func:`convcli.engines._native.display_map`) one fused pass over any
    strides, bit-identical to the numpy steps (:func:`_apply_mapping_numpy`,
    the reference and the fallback); in row blocks on the worker pool either
    way. With ``overwrite``, the numpy steps may use ``values`` (a writable
    float array) as scratch.

    Returns
    -------
    ndarray, uint8 (M = 255) or uint16 (M = 65535), shape of ``values``; ``out`` when given
    """
    from convcli.engines import _native

    array = values if isinstance(values, np.ndarray) else np.asarray(values)
    if not (_native.AVAILABLE and array.ndim <= 4 and type(mapping.shift) in (float, int)
            and type(mapping.multiplier) in (float, int) and 0 <= mapping.max_value <= 65535):
        return _apply_mapping_numpy(values, mapping, overwrite=overwrite, out=out)
    pixels = out if out is not None else np.empty(
        array.shape, dtype=np.uint8 if mapping.max_value == 255 else np.uint16)
    if (not isinstance(pixels, np.ndarray) or pixels.shape != array.shape or not pixels.flags.writeable
            or pixels.dtype not in (np.uint8, np.uint16) or mapping.max_value > np.iinfo(pixels.dtype).max):
        return _apply_mapping_numpy(values, mapping, overwrite=overwrite, out=out)
    if array.dtype not in (np.float32, np.float64) or not array.dtype.isnative:
        array = array.astype(np.float64 if array.dtype == np.float64 else np.float32)
    options = {"absolute": mapping.kind == "abs", "shift": mapping.shift, "multiplier": mapping.multiplier,
               "max_value": mapping.max_value}
    if array.ndim == 0 or not array.size:
        _native.display_map(array, pixels, **options)
    else:
        by_row_blocks(lambda block: _native.display_map(array[block[0]:block[1]], pixels[block[0]:block[1]],
                                                        **options), array)
    return pixels


def _apply_mapping_numpy(values: np.ndarray, mapping: DisplayMapping, *, overwrite: bool = False,
                         out: np.ndarray | None = None) -> np.ndarray:
    """:func:`apply_mapping` in numpy steps (the reference of the compiled pass, and its fallback)."""
    work_dtype = np.float64 if np.asarray(values).dtype == np.float64 else np.float32
    in_place = (overwrite and isinstance(values, np.ndarray) and values.dtype == work_dtype
                and values.flags.writeable)
    work = values if in_place else np.array(values, dtype=work_dtype, copy=True)
    pixels = out if out is not None else np.empty(
        work.shape, dtype=np.uint8 if mapping.max_value == 255 else np.uint16)
    if not work.size:
        return pixels
    rows_of_work, rows_of_pixels = (work.reshape(1), pixels.reshape(1)) if work.ndim == 0 else (work, pixels)

    def finish(block: tuple[int, int]) -> None:
        """``round(clip((|x| or x) + shift) · multiplier)`` for rows ``block``, into ``pixels``."""
        part = rows_of_work[block[0]:block[1]]
        if mapping.multiplier == 0.0:  # minmax of a constant map
            part[...] = 0.0
        if mapping.kind == "abs":
            np.abs(part, out=part)
        if mapping.shift:
            part += mapping.shift
        if mapping.multiplier != 1.0:
            part *= mapping.multiplier
        np.rint(part, out=part)
        np.fmax(part, 0, out=part)  # fmax/fmin: NaN → 0 (and ±inf saturate) in the clipping pass
        np.fmin(part, mapping.max_value, out=part)
        rows_of_pixels[block[0]:block[1]] = part

    by_row_blocks(finish, rows_of_work)
    return pixels


def to_pixels(maps: np.ndarray, *, scale: str = "auto", bit_depth: int = 8,
              hint: str | None = None, overwrite: bool = False, kind: str | None = None,
              bias: bool = False, float_unit: bool = False) -> np.ndarray:
    """Map float maps to uint8 (``bit_depth=8``) or uint16 (``bit_depth=16``) pixels.

    ``apply_mapping(maps, plan_display(map_stats(maps), …))``: the streaming
    pipeline computes the same :class:`MapStats` band by band, so a streamed
    map and a whole one give identical pixels.

    Parameters
    ----------
    maps : ndarray, (H, W) or (H, W, C), float
        Feature maps in the input's native units.
    scale : str
        ``auto`` (default), ``clip``, ``abs``, ``minmax`` or ``offset:V``; see
        the module notes for the formulas and the ``auto`` rule.
    bit_depth : {8, 16}
        Output depth; M = 255 or 65535.
    hint : str or None
        A kernel preset's display hint (a scale in 8-bit units), used by
        ``auto`` only.
    overwrite : bool
        Work in ``maps`` itself (a writable float32/float64 array the caller
        no longer needs) instead of a copy: saves one pass and, for a large
        map, the page faults of a fresh buffer.
    kind : {'image', 'feature', None}
        The kernel's kind (image kernels sum to 1); None: not known.
    bias : bool
        The maps carry a user bias: ``auto`` clips.
    float_unit : bool
        ``maps`` come from a ``[0, 1]`` float image (values ×M on output).

    Returns
    -------
    ndarray, uint8 or uint16, same shape as ``maps``
    """
    if bit_depth not in _MAX_VALUE:
        raise OptionError(f"`bit_depth` must be 8 or 16, got {bit_depth!r}")
    stats = map_stats(maps) if needs_stats(scale, hint, kind=kind, bias=bias) else MapStats(0.0, 0.0)
    mapping = plan_display(stats, scale=scale, bit_depth=bit_depth, hint=hint, kind=kind, bias=bias,
                           float_unit=float_unit)
    return apply_mapping(maps, mapping, overwrite=overwrite)


def _min_max(work: np.ndarray) -> tuple[float, float]:
    """(min, max) of ``work`` (NaN if it holds any), in row blocks on both cores; (0, 0) if empty."""
    if not work.size:
        return 0.0, 0.0
    if work.ndim == 0:
        return float(work), float(work)
    parts = by_row_blocks(lambda block: (float(work[block[0]:block[1]].min()),
                                    float(work[block[0]:block[1]].max())), work)
    lows, highs = zip(*parts)
    low, high = min(lows), max(highs)
    if any(np.isnan(value) for value in (*lows, *highs)):
        return float("nan"), float("nan")
    return low, high
