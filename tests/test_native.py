"""The compiled kernels (convcli.engines._cnative) against numpy and scipy.

* the raw correlation kernel on padded bands vs the formula in float64, every
  mode, stride, dilation, channel count, uniform and per-channel weights;
* the ``native`` / ``native-separable`` strategies through :func:`convcli.conv2d`
  vs scipy.signal (tests/reference.py) and vs the numpy ``reference`` strategy;
* channel sums (bit-identical to ``np.sum``) and the map reductions vs numpy;
* misuse raises, and without the extension the package falls back to numpy.

Skipped when the extension is not built, unless ``CONVCLI_REQUIRE_NATIVE=1``
(CI sets it), which turns its absence into a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from reference import assert_matches, scipy_conv2d

from convcli import conv2d
from convcli.borders import pad_image, parse_border
from convcli.engines import FORWARD_ENGINES, _native
from convcli.engines._bands import axis_map
from convcli.maps import reduce_maps

if os.environ.get("CONVCLI_REQUIRE_NATIVE") == "1" and not _native.AVAILABLE:
    raise RuntimeError(f"CONVCLI_REQUIRE_NATIVE=1 but the compiled kernels do not import: {_native.ERROR}")

pytestmark = pytest.mark.skipif(not _native.AVAILABLE, reason="compiled kernels not built")

NATIVE = ["native", "native-separable"]


def formula(band: np.ndarray, weights: np.ndarray, out_shape: tuple[int, int], stride: tuple[int, int],
            dilation: tuple[int, int], depthwise: bool) -> np.ndarray:
    """The correlation written out tap by tap in float64."""
    n_filters, kh, kw, channels = weights.shape
    rows, cols = out_shape
    (sr, sc), (dr, dc) = stride, dilation
    out = np.zeros((rows, cols, n_filters, channels))
    for m in range(kh):
        for n in range(kw):
            window = band[dr * m : dr * m + sr * (rows - 1) + 1 : sr,
                          dc * n : dc * n + sc * (cols - 1) + 1 : sc]
            out += window[:, :, None, :].astype(np.float64) * weights[:, m, n, :].astype(np.float64)
    return out.reshape(rows, cols, -1) if depthwise else out.sum(axis=3)


@st.composite
def band_problems(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    channels = draw(st.integers(1, 5))
    n_filters = draw(st.integers(1, 6))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    rows, cols = draw(st.integers(1, 6)), draw(st.integers(1, 40))
    extra_rows, extra_cols = draw(st.integers(0, 2)), draw(st.integers(0, 3))
    depthwise = draw(st.booleans())
    uniform = draw(st.booleans())
    sparse = draw(st.booleans())
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    band_rows = stride[0] * (rows - 1) + dilation[0] * (kh - 1) + 1 + extra_rows
    band_cols = stride[1] * (cols - 1) + dilation[1] * (kw - 1) + 1 + extra_cols
    band = rng.standard_normal((band_rows, band_cols, channels)).astype(dtype)
    weights = rng.standard_normal((n_filters, kh, kw, 1 if uniform else channels))
    weights = np.broadcast_to(weights, (n_filters, kh, kw, channels)).astype(dtype)
    if sparse:  # zero taps are skipped; ±1 taps are common (Sobel)
        weights = weights * rng.integers(0, 2, (n_filters, kh, kw, 1))
        weights[..., :1, :] = np.sign(weights[..., :1, :])
    return band, np.ascontiguousarray(weights, dtype=dtype), (rows, cols), stride, dilation, depthwise


@given(band_problems())
def test_correlate_kernel_equals_the_formula(case) -> None:
    band, weights, out_shape, stride, dilation, depthwise = case
    n_out = weights.shape[0] * (weights.shape[3] if depthwise else 1)
    out = np.full((*out_shape, n_out), np.nan, dtype=band.dtype)
    _native.correlate(band, weights, out, stride, dilation, depthwise)
    assert_matches(out, formula(band, weights, out_shape, stride, dilation, depthwise), band.dtype)


@st.composite
def unpadded_problems(draw):
    """An image, pads (up to 7, beyond a tiny image's size), a border and a kernel geometry."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    channels = draw(st.integers(1, 4))
    height, width = draw(st.integers(1, 7)), draw(st.integers(1, 30))
    pads = tuple(draw(st.integers(0, 7)) for _ in range(4))
    border = parse_border(draw(st.sampled_from(["zero", "reflect", "symmetric", "replicate", "wrap",
                                                "constant:2.5"])))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    image = rng.standard_normal((height, width, channels)).astype(dtype)
    padded = pad_image(image, pads, border)
    keff = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    out_shape = tuple((padded.shape[a] - keff[a]) // stride[a] + 1 for a in range(2))
    assume(min(out_shape) > 0)
    return image, pads, border, padded, (kh, kw), stride, dilation, out_shape, rng


@given(unpadded_problems(), st.integers(1, 4), st.booleans(), st.booleans(),
       st.sampled_from([None, "magnitude", "max"]))
def test_correlate_image_reads_the_image_in_place_and_equals_the_padded_formula(
        case, n_filters, depthwise, uniform, reduce) -> None:
    """correlate_image (interior columns read in place, border columns from a strip) = the formula
    on the padded image, for every border mode, pads beyond tiny images, stride and dilation."""
    image, pads, border, padded, (kh, kw), stride, dilation, out_shape, rng = case
    channels = image.shape[2]
    weights = rng.standard_normal((n_filters, kh, kw, 1 if uniform else channels))
    weights = np.ascontiguousarray(np.broadcast_to(weights, (n_filters, kh, kw, channels)), image.dtype)
    if reduce is not None:
        depthwise = True
    n_out = channels if reduce else n_filters * channels if depthwise else n_filters
    out = np.full((*out_shape, n_out), np.nan, image.dtype)
    top, bottom, left, right = pads
    rows = axis_map(image.shape[0], top, bottom, border)
    cols = axis_map(image.shape[1], left, right, border)
    _native.correlate_image(image, rows, cols, left, border.value, weights, out, stride, dilation, depthwise,
                            reduce)
    expected = formula(padded, weights, out_shape, stride, dilation, depthwise)
    if reduce is not None:
        expected = NUMPY_REDUCE[reduce](expected.reshape(*out_shape, n_filters, channels))
    assert_matches(out, expected, image.dtype, f"correlate_image {pads} {border}")


@given(unpadded_problems(), st.integers(1, 3))
def test_separable_image_equals_the_formula_of_the_summed_components(case, rank) -> None:
    image, pads, border, padded, (kh, kw), (sr, _), dilation, out_shape, rng = case
    out_shape = (out_shape[0], padded.shape[1] - dilation[1] * (kw - 1))
    channels = image.shape[2]
    u = rng.standard_normal((rank, kh, channels)).astype(image.dtype)
    v = rng.standard_normal((rank, kw, channels)).astype(image.dtype)
    weights = np.einsum("kmc,knc->mnc", u.astype(np.float64), v.astype(np.float64))[None]
    out = np.full((*out_shape, channels), np.nan, image.dtype)
    top, bottom, left, right = pads
    _native.separable_image(image, axis_map(image.shape[0], top, bottom, border),
                            axis_map(image.shape[1], left, right, border), left, border.value, u, v, out, sr,
                            dilation)
    expected = formula(padded, weights, out_shape, (sr, 1), dilation, True)
    assert_matches(out, expected, image.dtype, f"separable_image {pads} {border}")


@given(st.integers(1, 40), st.one_of(st.integers(1, 70), st.sampled_from([64, 128])), st.integers(1, 4),
       st.integers(1, 31), st.integers(1, 9), st.sampled_from(["float32", "float64"]),
       st.sampled_from(["zero", "reflect", "wrap"]), st.integers(0, 2**31))
def test_separable_grouped_vertical_pass_equals_the_formula_and_any_row_split(
        rows, cols, channels, kh, kw, dtype, border_text, seed) -> None:
    """Uniform non-zero vertical taps at stride 1 take the grouped pass (8 output rows per load of
    an input row): the formula, and the same bits whether computed whole or in 1..8-row pieces.
    64 and 128 columns make rows a multiple of 512 bytes, and more than 20 taps, read through
    the ring of rows; other widths read the image rows in place."""
    rng = np.random.default_rng(seed)
    image = rng.uniform(-2, 2, (rows, cols, channels)).astype(dtype)
    u_taps = rng.uniform(0.1, 1.0, kh) * rng.choice([-1, 1], kh)
    u = np.ascontiguousarray(np.broadcast_to(u_taps[None, :, None], (1, kh, channels))).astype(dtype)
    v = rng.standard_normal((1, kw, channels)).astype(dtype)
    border = parse_border(border_text)
    top, bottom, left, right = kh // 2, kh - 1 - kh // 2, kw // 2, kw - 1 - kw // 2
    row_map = axis_map(rows, top, bottom, border)
    col_map = axis_map(cols, left, right, border)
    out = np.full((rows, cols, channels), np.nan, dtype)
    _native.separable_image(image, row_map, col_map, left, border.value, u, v, out, 1, (1, 1))
    padded = pad_image(image, (top, bottom, left, right), border)
    weights = np.einsum("kmc,knc->mnc", u.astype(np.float64), v.astype(np.float64))[None]
    assert_matches(out, formula(padded, weights, (rows, cols), (1, 1), (1, 1), True), image.dtype,
                   f"grouped vertical pass kh={kh} {border_text}")
    step = int(rng.integers(1, 9))
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        piece = np.empty((stop - start, cols, channels), dtype)
        _native.separable_image(image, row_map[start:stop + kh - 1], col_map, left, border.value, u, v, piece,
                                1, (1, 1))
        assert np.array_equal(piece, out[start:stop]), (start, stop)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cols", [1, 2, 15, 16, 17, 31, 32, 33, 49, 70])
def test_stride_two_rgb_planes_split_by_vector_shuffles_equal_scipy(cols, dtype) -> None:
    """3 channels at column stride 2 (the planar kernel's shuffled split of pixel pairs, 8 at a time,
    then a scalar tail) for widths around multiples of 16 pixels."""
    rng = np.random.default_rng(cols)
    image = rng.uniform(-2, 2, (7, cols, 3)).astype(dtype)
    bank = rng.standard_normal((5, 3, 3, 3))
    for padding in (1, (0, 1, 2, 0)):
        kwargs = {"stride": (1, 2), "padding": padding, "channels": "sum"}
        expected = scipy_conv2d(image, bank, **kwargs)
        assert_matches(conv2d(image, bank, method="native", **kwargs), expected, image.dtype,
                       f"stride-2 RGB planes, {cols} columns")


def test_empty_reuses_a_freed_block_and_never_shares_a_live_one() -> None:
    nbytes = _native.BLOCK_MIN_BYTES * 2
    first = _native.empty((nbytes // 4,), np.float32)
    assert first.flags.c_contiguous and first.flags.writeable and first.ctypes.data % 64 == 0
    first[:] = 1.0
    second = _native.empty((nbytes // 4,), np.float32)
    assert not np.shares_memory(first, second)
    address = first.ctypes.data
    view = first[10:20]
    del first
    third = _native.empty((nbytes // 4,), np.float32)
    assert not np.shares_memory(third, view)  # a view keeps its block alive
    assert view.tolist() == [1.0] * 10
    del view
    fourth = _native.empty((nbytes // 4 - 100, 1), np.float32)
    assert fourth.ctypes.data == address  # the freed block, pages already mapped
    assert _native.empty((3, 4), np.float64).shape == (3, 4)  # small arrays: numpy's own
    cached, limit, _ = _native.block_cache()
    assert limit > 0 and cached >= 0
    try:
        assert _native.block_cache(0)[0] == 0
        del second, third, fourth
        assert _native.block_cache()[0] == 0  # nothing kept once the limit is 0
    finally:
        _native.block_cache(limit)


@st.composite
def conv_problems(draw):
    dtype = draw(st.sampled_from(["float32", "float64"]))
    channels_mode = draw(st.sampled_from(["depthwise", "sum"]))
    n_channels = draw(st.integers(1, 4))
    rows, cols = draw(st.integers(1, 14)), draw(st.integers(1, 20))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    n_filters = draw(st.integers(1, 5))
    bank_kind = draw(st.sampled_from(["2d", "3d", "4d", "rank1"]))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.sampled_from(["valid", "same", "full", 1, (0, 2, 1, 0)]))
    border = draw(st.sampled_from(["zero", "reflect", "replicate", "wrap", "constant:2.5"]))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    image = rng.uniform(-2, 2, (rows, cols, n_channels)).astype(dtype)
    if bank_kind == "2d":
        bank = rng.standard_normal((kh, kw))
    elif bank_kind == "3d":
        bank = rng.standard_normal((n_filters, kh, kw))
    elif bank_kind == "4d":
        bank = rng.standard_normal((n_filters, kh, kw, n_channels))
    else:
        columns, rows_ = rng.standard_normal((n_filters, kh)), rng.standard_normal((n_filters, kw))
        bank = np.einsum("fi,fj->fij", columns, rows_)
    if padding == "same" and (stride != (1, 1)):
        padding = 1
    kwargs = {"stride": stride, "dilation": dilation, "padding": padding, "border": border,
              "channels": channels_mode}
    return image, bank, kwargs


@pytest.mark.parametrize("method", NATIVE)
@given(conv_problems())
def test_native_strategies_equal_scipy_and_the_numpy_reference(method, case) -> None:
    image, bank, kwargs = case
    expected = scipy_conv2d(image, bank, **kwargs)
    if expected is None:
        return  # the kernel does not fit: conv2d raises, tested elsewhere
    actual = conv2d(image, bank, method=method, **kwargs)
    assert_matches(actual, expected, image.dtype, f"{method} vs scipy {kwargs}")
    numpy_result = conv2d(image, bank, method="reference", **kwargs)
    assert_matches(actual, numpy_result.astype(np.float64), image.dtype, f"{method} vs reference {kwargs}")


@pytest.mark.parametrize("method", NATIVE)
@pytest.mark.parametrize("pixel_type", [np.uint8, np.uint16])
def test_native_strategies_read_integer_pixels(method, pixel_type) -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 200, (23, 31, 3)).astype(pixel_type)
    for bank, kwargs in [
        (np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]), {"padding": "same", "channels": "sum"}),
        (rng.standard_normal((4, 3, 3, 3)), {"padding": 1, "channels": "sum", "stride": 2}),
        (rng.standard_normal((2, 5, 5)), {"padding": "same", "border": "reflect"}),
    ]:
        expected = conv2d(image.astype(np.float32), bank, method="reference", **kwargs)
        assert_matches(conv2d(image, bank, method=method, **kwargs), expected.astype(np.float64), "float32")


def test_native_strategies_are_registered_and_chosen_for_small_kernels() -> None:
    assert set(NATIVE) <= set(FORWARD_ENGINES)
    assert {"direct", "gemm", "separable", "fft", "reference"} <= set(FORWARD_ENGINES)


@pytest.mark.parametrize("method", NATIVE)
def test_a_large_image_in_many_tiles_on_the_pool(method) -> None:
    """Enough rows for several tiles on both workers; compared with scipy."""
    rng = np.random.default_rng(2)
    image = rng.uniform(0, 1, (300, 257, 3)).astype(np.float32)
    g = np.exp(-((np.arange(7) - 3) ** 2) / 4.0)
    for bank, kwargs in [(np.outer(g, g), {"padding": "same", "border": "reflect"}),
                         (rng.standard_normal((8, 3, 3, 3)), {"padding": "same", "channels": "sum",
                                                              "stride": 2})]:
        assert_matches(conv2d(image, bank, method=method, **kwargs), scipy_conv2d(image, bank, **kwargs),
                       "float32")


# ---------------------------------------------------------------- channel sums, reductions
@pytest.mark.parametrize("in_type", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("out_type", [np.float32, np.float64])
@pytest.mark.parametrize("channels", [1, 2, 3, 4, 7])
def test_channel_sum_is_numpys_sum_bit_for_bit(in_type, out_type, channels) -> None:
    rng = np.random.default_rng(channels)
    image = (rng.standard_normal((17, 23, channels)) * 300).astype(in_type)
    out = np.empty((17, 23, 1), dtype=out_type)
    _native.channel_sum(image, out)
    np.testing.assert_array_equal(out, np.sum(image, axis=2, keepdims=True, dtype=out_type))


def test_weighted_channel_sum_is_the_luminance_formula() -> None:
    rng = np.random.default_rng(3)
    image = rng.uniform(0, 255, (9, 11, 4)).astype(np.float32)
    out = np.empty((9, 11), np.float32)
    _native.channel_sum(image, out, (0.299, 0.587, 0.114))
    expected = 0.299 * image[..., 0].astype(np.float64) + 0.587 * image[..., 1] + 0.114 * image[..., 2]
    np.testing.assert_allclose(out, expected, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels", [3, 4])
def test_weighted_channel_sum_is_numpys_luminance_bit_for_bit(dtype, channels) -> None:
    """The fused luminance equals conv.luminance's numpy formula exactly (no fused multiply-add)."""
    from convcli.conv import LUMA_WEIGHTS
    from convcli.engines.reduce import weighted_channel_sum

    rng = np.random.default_rng(channels)
    image = rng.uniform(-10, 300, (1100, 1000, channels)).astype(dtype)  # > 1 Mi values: on the pool
    image[0, :4, 0] = [np.nan, np.inf, -np.inf, -0.0]
    r, g, b = (image[:, :, i] for i in range(3))
    with np.errstate(invalid="ignore"):
        expected = (LUMA_WEIGHTS[0] * r + LUMA_WEIGHTS[1] * g + LUMA_WEIGHTS[2] * b)[:, :, None]
    actual = weighted_channel_sum(image, LUMA_WEIGHTS)
    assert actual.dtype == dtype and actual.shape == (1100, 1000, 1)
    np.testing.assert_array_equal(actual, expected)
    np.testing.assert_array_equal(weighted_channel_sum(image[::3, ::2], LUMA_WEIGHTS), expected[::3, ::2])


def test_uniform_sum_bank_uses_the_channel_sum_and_equals_scipy() -> None:
    """A 2-D kernel with channels='sum' (the issue's slow path) on uint8 pixels and floats."""
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (40, 50, 3)).astype(np.uint8)
    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    for method in ("auto", "native", "direct", "gemm"):
        actual = conv2d(image, sobel, channels="sum", padding=1, stride=2, method=method)
        assert_matches(actual, scipy_conv2d(image.astype(np.float32), sobel, channels="sum", padding=1,
                                            stride=2), "float32", method)


@st.composite
def map_stacks(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = tuple(draw(st.integers(1, top)) for top in (9, 9, 5, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    stack = rng.standard_normal(shape).astype(dtype)
    if draw(st.booleans()):
        stack.flat[draw(st.integers(0, stack.size - 1))] = np.nan
    if draw(st.booleans()):
        stack.flat[draw(st.integers(0, stack.size - 1))] = -np.inf
    return stack


NUMPY_REDUCE = {
    "magnitude": lambda s: np.sqrt(np.einsum("ijfc,ijfc->ijc", s, s)),
    "max": lambda s: s.max(axis=2),
    "min": lambda s: s.min(axis=2),
    "sum": lambda s: s.sum(axis=2),
}


@pytest.mark.parametrize("reduce", sorted(NUMPY_REDUCE))
@given(map_stacks())
def test_reduce_kernel_equals_numpy(reduce, stack) -> None:
    out = np.empty((stack.shape[0], stack.shape[1], stack.shape[3]), stack.dtype)
    _native.reduce_maps(stack, out, reduce)
    with np.errstate(invalid="ignore"):
        expected = NUMPY_REDUCE[reduce](stack)
    if reduce in ("max", "min"):  # comparisons: exact (numpy's sum over a contiguous F axis is pairwise)
        np.testing.assert_array_equal(out, expected)
    else:
        np.testing.assert_allclose(out, expected, rtol=1e-6 if stack.dtype == np.float32 else 1e-13)
    rows, cols, n_filters, channels = stack.shape
    maps = stack.reshape(rows, cols, n_filters * channels)
    np.testing.assert_allclose(reduce_maps(maps, n_filters, reduce), expected,
                               rtol=1e-6 if stack.dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("reduce", sorted(NUMPY_REDUCE))
@given(band_problems(), st.booleans())
def test_fused_reduce_kernel_equals_the_formula_reduced(reduce, case, with_nan) -> None:
    """correlate(..., reduce) = numpy's reduction of the depthwise maps: of the formula's, and with a
    NaN in the band (where zero taps are skipped, as the unfused kernel does) of the unfused kernel's."""
    band, weights, out_shape, stride, dilation, _ = case
    band = band.copy()
    if with_nan:
        band.flat[band.size // 2] = np.nan
    n_filters, channels = weights.shape[0], weights.shape[3]
    out = np.full((*out_shape, channels), -7.0, dtype=band.dtype)
    _native.correlate(band, weights, out, stride, dilation, True, reduce)
    if with_nan:
        maps = np.empty((*out_shape, n_filters * channels), band.dtype)
        _native.correlate(band, weights, maps, stride, dilation, True)
    else:
        maps = formula(band, weights, out_shape, stride, dilation, True)
    with np.errstate(invalid="ignore"):
        expected = NUMPY_REDUCE[reduce](maps.reshape(*out_shape, n_filters, channels))
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    finite = ~np.isnan(expected)
    scale = max(1.0, float(np.abs(maps[np.isfinite(maps)]).max(initial=0)))
    atol = (1e-4 if band.dtype == np.float32 else 1e-11) * scale * weights.shape[1] * weights.shape[2]
    np.testing.assert_allclose(out[finite], expected[finite], rtol=1e-5, atol=atol)


@pytest.mark.parametrize("reduce", sorted(NUMPY_REDUCE))
@given(conv_problems())
def test_conv2d_reduce_fused_on_native_equals_scipy_reduced(reduce, case) -> None:
    image, bank, kwargs = case
    expected = scipy_conv2d(image, bank, **kwargs)
    if expected is None:
        return
    n_filters = 1 if np.ndim(bank) == 2 else np.shape(bank)[0]
    rows, cols, n_out = expected.shape
    with np.errstate(invalid="ignore"):
        reduced = NUMPY_REDUCE[reduce](expected.reshape(rows, cols, n_filters, n_out // n_filters))
    actual = conv2d(image, bank, method="native", reduce=reduce, **kwargs)
    assert actual.shape == reduced.shape
    assert_matches(actual, reduced, image.dtype, f"native reduce={reduce} vs scipy {kwargs}")


def test_conv2d_reduce_with_a_bias_adds_it_before_reducing() -> None:
    rng = np.random.default_rng(3)
    image = rng.uniform(-1, 1, (9, 11, 3)).astype(np.float32)
    bank = rng.standard_normal((2, 3, 3)).astype(np.float32)
    maps = scipy_conv2d(image, bank, padding="same", channels="depthwise") + np.repeat([0.5, -2.0], 3)
    expected = np.sqrt((maps.reshape(9, 11, 2, 3) ** 2).sum(axis=2))
    actual = conv2d(image, bank, padding="same", bias=[0.5, -2.0], method="native", reduce="magnitude")
    assert_matches(actual, expected, np.float32, "bias then magnitude")


@given(st.integers(1, 8), st.integers(1, 12), st.integers(1, 9), st.booleans(), st.integers(0, 2**31),
       st.sampled_from(["random", "smooth", "flat"]))
def test_png_filter_is_the_numpy_filter_byte_for_byte(bpp, n_pixels, n_rows, paeth, seed, content) -> None:
    from convcli.png import _filter_rows_numpy

    rng = np.random.default_rng(seed)
    row_bytes = bpp * n_pixels
    if content == "random":
        raw = rng.integers(0, 256, (n_rows + 1, row_bytes), dtype=np.uint8)
    elif content == "smooth":  # small differences: ties and near-ties between the filters
        raw = np.cumsum(rng.integers(-2, 3, (n_rows + 1, row_bytes)), axis=1).astype(np.uint8)
    else:
        raw = np.full((n_rows + 1, row_bytes), rng.integers(0, 256), np.uint8)
    rows, previous = np.ascontiguousarray(raw[1:]), np.ascontiguousarray(raw[0])
    level = 4 if paeth else 1
    expected = _filter_rows_numpy(rows, previous, bpp, level=level,
                                  out=np.empty((n_rows, row_bytes + 1), np.uint8))
    actual = _native.png_filter(rows, previous, np.empty((n_rows, row_bytes + 1), np.uint8), bpp, paeth)
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("n_filters", "channels"), [(1, 1), (2, 1), (2, 3), (3, 2), (4, 4), (5, 3), (8, 1),
                                                     (2, 5)])
def test_reduce_vector_path_and_its_tail_with_nan_everywhere(dtype, n_filters, channels) -> None:
    """Long rows (the 4-lane path) and every short length (the scalar tail); NaN at every position
    of a pixel and ±inf; max/min bit-identical to numpy (NaN propagates), sum and magnitude within
    rounding (numpy adds a contiguous F axis pairwise; the kernel in order f = 0, 1, …)."""
    rng = np.random.default_rng(n_filters * 10 + channels)
    for cols in (1, 2, 3, 5, 37):
        stack = rng.standard_normal((3, cols, n_filters, channels)).astype(dtype)
        flat = stack.reshape(-1)
        flat[rng.integers(0, flat.size, max(1, flat.size // 7))] = np.nan
        flat[rng.integers(0, flat.size, max(1, flat.size // 11))] = np.inf
        flat[rng.integers(0, flat.size, max(1, flat.size // 11))] = -np.inf
        for reduce, reference in NUMPY_REDUCE.items():
            out = np.empty((3, cols, channels), dtype)
            _native.reduce_maps(stack, out, reduce)
            with np.errstate(invalid="ignore", over="ignore"):
                expected = reference(stack)
            if reduce in ("magnitude", "sum"):
                np.testing.assert_allclose(out, expected, rtol=1e-6)
            else:
                np.testing.assert_array_equal(out, expected, err_msg=f"{reduce} {stack.shape}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("n_filters", "channels"), [(2, 1), (2, 3), (3, 4), (2, 6)])
def test_reduce_gives_the_same_bits_whole_or_in_pieces(dtype, n_filters, channels) -> None:
    """Every pixel reduced alone (the scalar tail) equals it reduced inside a long row (the vector
    loop): a map streamed in bands of any height is the whole map's, bit for bit."""
    rng = np.random.default_rng(7)
    stack = (rng.standard_normal((2, 45, n_filters, channels)) * 1e3).astype(dtype)
    for reduce in NUMPY_REDUCE:
        whole = np.empty((2, 45, channels), dtype)
        _native.reduce_maps(stack, whole, reduce)
        for row in range(2):
            for col in range(0, 45, 11):
                piece = np.empty((1, 1, channels), dtype)
                _native.reduce_maps(np.ascontiguousarray(stack[row:row + 1, col:col + 1]), piece, reduce)
                np.testing.assert_array_equal(piece[0, 0], whole[row, col], err_msg=reduce)


# ---------------------------------------------------------------- misuse and fallback
def test_misuse_raises_instead_of_touching_memory() -> None:
    band = np.zeros((5, 6, 3), np.float32)
    weights = np.zeros((1, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match="too small"):
        _native.correlate(band, weights, np.zeros((4, 4, 3), np.float32), (1, 1), (1, 1), True)
    with pytest.raises(TypeError):
        _native.correlate(band, weights.astype(np.float64), np.zeros((3, 4, 3), np.float32), (1, 1), (1, 1),
                          True)
    with pytest.raises(ValueError, match="contiguous"):
        _native.correlate(band[:, ::2], weights, np.zeros((1, 1, 3), np.float32), (1, 1), (1, 1), True)
    with pytest.raises(ValueError):
        _native.correlate(band, weights, np.zeros((3, 4, 1), np.float32), (1, 1), (1, 1), True)
    with pytest.raises(ValueError):
        _native.reduce_maps(np.zeros((2, 2, 2, 3), np.float32), np.zeros((2, 2, 2), np.float32), "max")
    image, rows, cols = np.zeros((4, 5, 3), np.float32), np.array([-1, 0, 1, 2, 3, -1]), np.arange(7) - 1
    cols[-1] = -1
    out = np.zeros((4, 5, 3), np.float32)
    with pytest.raises(TypeError):
        _native.correlate_image(image, rows.astype(np.int32), cols, 1, 0.0, weights, out, (1, 1), (1, 1),
                                True)
    with pytest.raises(ValueError, match="column index is out of range"):
        _native.correlate_image(image, rows, cols + 5, 1, 0.0, weights, out, (1, 1), (1, 1), True)
    with pytest.raises(ValueError, match="image's columns"):
        _native.correlate_image(image, rows, cols, 2, 0.0, weights, out, (1, 1), (1, 1), True)
    with pytest.raises(ValueError, match="too short"):
        _native.correlate_image(image, rows[:4], cols, 1, 0.0, weights, out, (1, 1), (1, 1), True)
    u = np.zeros((1, 3, 3), np.float32)
    with pytest.raises(ValueError, match="too short"):
        _native.separable_image(image, rows, cols[:6], 1, 0.0, u, u, out, 1, (1, 1))


def test_without_the_extension_the_numpy_strategies_serve() -> None:
    """Block the compiled module's import: no native strategies, conv2d and --version still work."""
    code = (
        "import sys; sys.modules['convcli.engines._cnative'] = None\n"
        "import numpy as np, convcli\n"
        "from convcli.engines import FORWARD_ENGINES, _native\n"
        "assert not _native.AVAILABLE and 'native' not in FORWARD_ENGINES, FORWARD_ENGINES\n"
        "out = convcli.conv2d(np.ones((30, 30, 3)), np.ones((8, 3, 3, 3)), channels='sum', method='auto')\n"
        "assert out.shape == (28, 28, 8) and np.allclose(out, 27)\n"
        "from convcli.maps import reduce_maps\n"
        "assert reduce_maps(np.ones((4, 4, 6)), 2, 'max').shape == (4, 4, 3)\n"
        "from convcli import display\n"
        "assert display.to_pixels(np.array([[1.5, -2.0, np.nan]]), scale='clip').tolist() == [[2, 0, 0]]\n"
        "assert display.map_stats(np.array([np.nan, 3.0])).low == 0.0\n"
        "from convcli.engines.reduce import weighted_channel_sum\n"
        "assert weighted_channel_sum(np.ones((2, 2, 3), np.float32), (0.299, 0.587, 0.114)) is None\n"
        "print(_native.status())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert "not available" in result.stdout


def test_version_says_whether_the_compiled_kernels_are_active() -> None:
    result = subprocess.run([sys.executable, "-m", "convcli", "--version"], check=True, capture_output=True,
                            text=True)
    assert "compiled kernels: active" in result.stdout
