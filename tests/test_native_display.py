"""The compiled display mapping and band statistics against their numpy references.

* ``_native.display_map`` / :func:`convcli.display.apply_mapping` vs the numpy
  steps (:func:`convcli.display._apply_mapping_numpy`), bit for bit: random
  floats with NaN, ±inf, huge values, negative zero, exact halves, both modes,
  both depths, float32 and float64, strided views in and out;
* ``_native.band_stats`` and ``convcli.job._StatsAccumulator`` vs the numpy
  formulas (min/max of the finite values, NaN flag, the strided sample of |x|).

Skipped when the extension is not built, unless ``CONVCLI_REQUIRE_NATIVE=1``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from convcli import display
from convcli.display import DisplayMapping, _apply_mapping_numpy, apply_mapping
from convcli.engines import _native

if os.environ.get("CONVCLI_REQUIRE_NATIVE") == "1" and not _native.AVAILABLE:
    raise RuntimeError(f"CONVCLI_REQUIRE_NATIVE=1 but the compiled kernels do not import: {_native.ERROR}")

pytestmark = pytest.mark.skipif(not _native.AVAILABLE, reason="compiled kernels not built")

SPECIAL = [np.nan, np.inf, -np.inf, -0.0, 0.0, 0.5, 1.5, 2.5, -0.5, 254.5, 255.5, 65534.5, 65535.5, 127.5,
           1e30, -1e30, 3e38, 1e300, 5e-324, 1e-45, -1e-45, 0.49999997, 0.50000006]


@st.composite
def float_maps(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=9))
    width = 32 if dtype == np.float32 else 64
    elements = st.one_of(st.sampled_from(SPECIAL), st.floats(width=width),
                         st.floats(-70000, 70000, width=32), st.floats(-2, 300, width=32),
                         st.integers(-300, 70000).map(lambda i: i + 0.5))
    with np.errstate(over="ignore"):
        return np.array(draw(hnp.arrays(np.float64, shape, elements=elements)), dtype=dtype)


mappings = st.builds(
    DisplayMapping,
    kind=st.sampled_from(["abs", "clip"]),
    shift=st.one_of(st.just(0.0), st.sampled_from([128.0, -0.5, 0.5, 32768.0, -1e-3]),
                    st.floats(-1e6, 1e6)),
    multiplier=st.one_of(st.just(1.0), st.just(0.0), st.sampled_from([0.5, 2.0, 257.0, 1 / 3, 1e-30, 1e39]),
                         st.floats(0, 1e6)),
    max_value=st.sampled_from([255, 65535]),
)


def numpy_pixels(values: np.ndarray, mapping: DisplayMapping) -> np.ndarray:
    with np.errstate(all="ignore"):
        return _apply_mapping_numpy(values.copy(), mapping)


@given(float_maps(), mappings)
def test_display_map_is_the_numpy_steps_bit_for_bit(values, mapping) -> None:
    expected = numpy_pixels(values, mapping)
    pixels = np.empty(values.shape, expected.dtype)
    _native.display_map(values, pixels, absolute=mapping.kind == "abs", shift=mapping.shift,
                        multiplier=mapping.multiplier, max_value=mapping.max_value)
    np.testing.assert_array_equal(pixels, expected)
    np.testing.assert_array_equal(apply_mapping(values, mapping), expected)


@given(float_maps(), mappings)
def test_strided_views_in_and_out(values, mapping) -> None:
    """A channel slice of a wider map into a channel slice of wider pixels (the alpha path)."""
    with np.errstate(over="ignore"):
        wide = np.concatenate([values[..., None], values[..., None] * 3], axis=-1)
    expected = numpy_pixels(values, mapping)
    pixels = np.full((*values.shape, 3), 7, expected.dtype)
    apply_mapping(wide[..., 1], mapping, out=pixels[..., 0])
    np.testing.assert_array_equal(pixels[..., 0], numpy_pixels(np.ascontiguousarray(wide[..., 1]), mapping))
    np.testing.assert_array_equal(pixels[..., 1:], 7)
    reversed_view = values[::-1]
    np.testing.assert_array_equal(apply_mapping(reversed_view, mapping), expected[::-1])


@pytest.mark.parametrize("view", ["rows of 1000 every 2nd", "5 of 7 channels", "4-d transposed", "0-d"])
def test_strided_layouts(view) -> None:
    """Long strided rows (> 256 values), short channel runs, a 4-d transposed view, a 0-d array."""
    rng = np.random.default_rng(8)
    base = (rng.standard_normal((6, 2000, 7)) * 300).astype(np.float32)
    values = {"rows of 1000 every 2nd": base[:, ::2, 3], "5 of 7 channels": base[:, :, 1:6],
              "4-d transposed": base.reshape(6, 40, 50, 7).transpose(2, 0, 3, 1)[::-1],
              "0-d": np.float32(254.5) * np.ones((), np.float32)}[view]
    for mapping in (DisplayMapping("abs", 0.0, 0.9, 255), DisplayMapping("clip", 128.0, 1.0, 65535)):
        np.testing.assert_array_equal(apply_mapping(values, mapping), numpy_pixels(values, mapping))


def test_every_half_and_both_sides_of_it_round_as_numpy() -> None:
    """All x.5 up to 65536 and their neighbours, both dtypes and depths (half to even)."""
    halves = np.arange(-2, 65538, dtype=np.float64) + 0.5
    for dtype in (np.float32, np.float64):
        base = halves.astype(dtype)
        values = np.concatenate([base, np.nextafter(base, dtype(-np.inf)), np.nextafter(base, dtype(np.inf))])
        for max_value in (255, 65535):
            for kind in ("abs", "clip"):
                mapping = DisplayMapping(kind, 0.0, 1.0, max_value)
                np.testing.assert_array_equal(apply_mapping(values, mapping), numpy_pixels(values, mapping))


def test_large_map_on_the_pool_and_other_input_types() -> None:
    """Over 1 Mi values (row blocks on the pool); uint16 and float16 input (converted to float32)."""
    rng = np.random.default_rng(5)
    values = (rng.standard_normal((600, 700, 3)) * 300).astype(np.float32)
    values.flat[::97] = np.nan
    mapping = DisplayMapping("abs", 0.25, 0.8, 255)
    np.testing.assert_array_equal(apply_mapping(values, mapping), numpy_pixels(values, mapping))
    with np.errstate(invalid="ignore"):
        others = (values.astype(np.float16), np.abs(np.nan_to_num(values[:50])).astype(np.uint16))
    for other in others:
        np.testing.assert_array_equal(apply_mapping(other, mapping), numpy_pixels(other, mapping))


def test_numpy_scalars_in_the_mapping_keep_numpy_semantics() -> None:
    """A float64 numpy multiplier makes numpy compute in float64: the numpy steps serve."""
    values = np.array([0.1, 254.49998, 127.50001], np.float32)
    mapping = DisplayMapping("clip", np.float64(0.3), np.float64(1.0000001), 255)
    np.testing.assert_array_equal(apply_mapping(values, mapping), numpy_pixels(values, mapping))


def test_display_map_misuse_raises() -> None:
    with pytest.raises(TypeError):
        _native.display_map(np.zeros(3, np.float32), np.zeros(3, np.int32), absolute=True, shift=0,
                            multiplier=1, max_value=255)
    with pytest.raises(ValueError):
        _native.display_map(np.zeros(3, np.float32), np.zeros(4, np.uint8), absolute=True, shift=0,
                            multiplier=1, max_value=255)
    with pytest.raises(ValueError, match="fit"):
        _native.display_map(np.zeros(3, np.float32), np.zeros(3, np.uint8), absolute=True, shift=0,
                            multiplier=1, max_value=65535)


# ---------------------------------------------------------------- band statistics
def numpy_stats(values: np.ndarray, first: int, step: int) -> tuple[float, float, bool, np.ndarray]:
    flat = values.reshape(-1)
    finite = flat[np.isfinite(flat)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (np.inf, -np.inf)
    sample = np.abs(np.where(np.isnan(flat), 0, flat)[first::step])
    return low, high, bool(np.isnan(flat).any()), sample


@given(float_maps(), st.integers(0, 12), st.integers(1, 13))
def test_band_stats_equal_numpy(values, first, step) -> None:
    low, high, has_nan, sample = numpy_stats(values, first, step)
    out = np.full(sample.size, -1, values.dtype)
    assert _native.band_stats(values, out, first, step) == (low, high, has_nan)
    np.testing.assert_array_equal(out, sample)
    assert out.dtype == sample.dtype


def accumulate(maps: np.ndarray, step: int) -> display.MapStats:
    from convcli.job import _StatsAccumulator
    from convcli.pipeline.bands import Rows

    accumulator = _StatsAccumulator(maps.shape)
    accumulator.step = step  # a strided sample across band boundaries
    for start in range(0, maps.shape[0], 9):
        accumulator.add(Rows(start, min(maps.shape[0], start + 9)), maps[start:start + 9])
    return accumulator.stats()


def assert_same_stats(actual: display.MapStats, expected: display.MapStats) -> None:
    assert (actual.low, actual.high, actual.has_nan) == (expected.low, expected.high, expected.has_nan)
    assert actual.sample.dtype == expected.sample.dtype
    np.testing.assert_array_equal(actual.sample, expected.sample)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["mixed", "positive with NaN", "all NaN", "no finite", "large"])
def test_compiled_stats_equal_the_numpy_steps(dtype, case, monkeypatch) -> None:
    """_StatsAccumulator band by band and map_stats whole, compiled vs numpy steps (NaN counts as 0)."""
    rng = np.random.default_rng(6)
    shape = (1100, 1000, 1) if case == "large" else (64, 33, 3)
    maps = (rng.standard_normal(shape) * 100).astype(dtype)
    if case == "positive with NaN":
        maps = np.abs(maps) + 5
    maps.flat[[170, 2000, 2100]] = [np.nan, np.inf, -np.inf]
    if case == "all NaN":
        maps[...] = np.nan
    if case == "no finite":
        maps[...] = np.inf
    compiled = accumulate(maps, 5), display.map_stats(maps)
    monkeypatch.setattr(_native, "AVAILABLE", False)
    numpy_steps = accumulate(maps, 5), display.map_stats(maps)
    for actual, expected in zip(compiled, numpy_steps):
        assert_same_stats(actual, expected)
    assert_same_stats(compiled[1], numpy_steps[1])
    if case == "positive with NaN":
        assert compiled[1].low == 0.0
