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

``auto``, in order:

1. a display hint from the kernel preset wins (e.g. emboss ``"offset:128"``);
   a hint is written in 8-bit units and an offset is multiplied by 257 for
   16-bit output (``255 · 257 = 65535``);
2. every value already in ``[0, M]`` → ``clip`` (a blur keeps its range,
   unchanged);
3. some value negative (edge maps) → ``|x|``, and if ``q``, the 99th
   percentile of ``|x|`` (linear interpolation, finite values only),
   exceeds ``M`` the whole map is scaled by ``M / q`` — negative responses
   are never clipped to black, their strength shows as brightness, and the
   strongest 1 % saturate at white instead of a few outliers dimming the rest
   (a sobel map of a photo has most of its energy far below its maximum);
4. otherwise (values only overshoot above ``M``, e.g. sharpening) → ``clip``.

The statistics (min, max) are taken over the whole array given, so channels
passed together keep their relative brightness; pass maps one at a time to
scale them separately. NaN becomes 0; ±inf saturate (and are ignored when
computing min/max).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from convcli.engines._bands import by_row_blocks
from convcli.errors import OptionError

__all__ = [
    "SCALES",
    "DisplayMapping",
    "MapStats",
    "apply_mapping",
    "map_stats",
    "parse_scale",
    "peak_of_sample",
    "plan_display",
    "sample_step",
    "to_pixels",
]

SCALES = ("auto", "clip", "abs", "minmax", "offset:V")
"""The scale names accepted by :func:`parse_scale` (``V`` a number)."""

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


def _auto_scale(stats: MapStats, max_value: int,
                value_range: tuple[float, float] | None) -> tuple[str, float]:
    """The concrete rule ``auto`` picks for a map with ``stats`` and finite (min, max) ``value_range``."""
    if value_range is None:
        return "clip", 1.0
    low, high = value_range
    if low >= 0:
        return "clip", 1.0  # in range (a blur), or overshoot only: clip either way
    if max(-low, high) <= max_value:
        return "abs", 1.0
    strong = stats.peak
    return "abs", (max_value / strong if strong > max_value else 1.0)


_PEAK_PERCENTILE = 99.0
_PEAK_SAMPLE = 1 << 22  # larger maps: the percentile of an evenly strided sample


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
        An evenly strided sample of ``|x|`` (NaN as 0): every
        :func:`sample_step`-th value of the map in C order.
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


def sample_step(size: int) -> int:
    """Stride of the percentile sample of a map of ``size`` values (1 up to 2**22 values)."""
    return 1 if size <= _PEAK_SAMPLE else -(-size // _PEAK_SAMPLE)


def peak_of_sample(sample: np.ndarray) -> float:
    """The 99th percentile of the finite values of ``sample`` (0 when there are none)."""
    sample = sample[np.isfinite(sample)]
    return float(np.percentile(sample, _PEAK_PERCENTILE)) if sample.size else 0.0


def map_stats(maps: np.ndarray) -> MapStats:
    """:class:`MapStats` of a whole map held in memory (NaN counted, not changed)."""
    work = np.asarray(maps)
    low, high = _min_max(work)
    has_nan = bool(np.isnan(low) or np.isnan(high))
    if has_nan:
        work = np.where(np.isnan(work), 0, work)
    value_range = (low, high) if np.isfinite(low) and np.isfinite(high) else _finite_range(work)
    flat = np.abs(work.ravel()[:: sample_step(work.size)])
    low_f, high_f = value_range if value_range is not None else (None, None)
    return MapStats(low_f, high_f, has_nan, flat)


def plan_display(stats: MapStats, *, scale: str = "auto", bit_depth: int = 8,
                 hint: str | None = None) -> DisplayMapping:
    """The :class:`DisplayMapping` that ``scale`` gives a map with ``stats`` (module notes)."""
    if bit_depth not in _MAX_VALUE:
        raise OptionError(f"`bit_depth` must be 8 or 16, got {bit_depth!r}")
    max_value = _MAX_VALUE[bit_depth]
    scale = parse_scale(scale)
    value_range = None if stats.low is None else (stats.low, stats.high)
    multiplier = 1.0
    if scale == "auto":
        if hint is not None:
            scale = parse_scale(hint)
            if scale.startswith("offset:") and bit_depth == 16:
                scale = f"offset:{float(scale.partition(':')[2]) * _HINT_UNIT}"
        if scale == "auto":
            scale, multiplier = _auto_scale(stats, max_value, value_range)
    shift = 0.0
    kind = "abs" if scale == "abs" else "clip"
    if scale == "minmax":
        low, high = value_range if value_range is not None else (0.0, 0.0)
        shift, multiplier = (-low, max_value / (high - low)) if high > low else (0.0, 0.0)
    elif scale.startswith("offset:"):
        shift = float(scale.partition(":")[2])
    return DisplayMapping(kind, shift, multiplier, max_value)


def apply_mapping(values: np.ndarray, mapping: DisplayMapping, *, overwrite: bool = False,
                  out: np.ndarray | None = None) -> np.ndarray:
    """Pixels ``round(clip(((|x| or x) + shift) · multiplier, 0, M))`` of float ``values``.

    Works in row blocks on the worker pool; NaN becomes 0. With
    ``overwrite``, ``values`` (a writable float array) is used as scratch.

    Returns
    -------
    ndarray, uint8 (M = 255) or uint16 (M = 65535), shape of ``values``
    """
    work_dtype = np.float64 if np.asarray(values).dtype == np.float64 else np.float32
    in_place = (overwrite and isinstance(values, np.ndarray) and values.dtype == work_dtype
                and values.flags.writeable)
    work = values if in_place else np.array(values, dtype=work_dtype, copy=True)
    pixels = out if out is not None else np.empty(
        work.shape, dtype=np.uint8 if mapping.max_value == 255 else np.uint16)
    if not work.size:
        return pixels

    def finish(block: tuple[int, int]) -> None:
        """``round(clip((|x| or x) + shift) · multiplier)`` for rows ``block``, into ``pixels``."""
        part = work[block[0]:block[1]]
        np.nan_to_num(part, copy=False, nan=0.0, posinf=np.inf, neginf=-np.inf)
        if mapping.multiplier == 0.0:  # minmax of a constant map
            part[...] = 0.0
        if mapping.kind == "abs":
            np.abs(part, out=part)
        if mapping.shift:
            part += mapping.shift
        if mapping.multiplier != 1.0:
            part *= mapping.multiplier
        np.rint(part, out=part)
        np.clip(part, 0, mapping.max_value, out=part)
        pixels[block[0]:block[1]] = part

    if work.ndim == 0:
        finish((0, 1))
    else:
        by_row_blocks(finish, work)
    return pixels


def to_pixels(maps: np.ndarray, *, scale: str = "auto", bit_depth: int = 8,
              hint: str | None = None, overwrite: bool = False) -> np.ndarray:
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

    Returns
    -------
    ndarray, uint8 or uint16, same shape as ``maps``
    """
    if bit_depth not in _MAX_VALUE:
        raise OptionError(f"`bit_depth` must be 8 or 16, got {bit_depth!r}")
    parse_scale(scale)
    mapping = plan_display(map_stats(maps), scale=scale, bit_depth=bit_depth, hint=hint)
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
