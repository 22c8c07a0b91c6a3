"""Band-by-band rendering equals the whole-image result, for every geometry and band height.

The reference is the whole-image core call (:func:`convcli.conv2d` /
:func:`convcli.conv_transpose2d`, itself proven against scipy.signal and
torch in test_reference_*.py), and for a few geometries scipy.signal
directly. Bands are bit-identical for the strategies whose arithmetic does
not depend on the number of rows (direct, separable) and within float32
rounding otherwise (gemm, fft, polyphase).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convcli import conv2d, conv_transpose2d
from convcli.borders import parse_border
from convcli.engines import TRANSPOSE_ENGINES
from convcli.errors import ShapeError
from convcli.maps import reduce_maps
from convcli.pipeline.bands import Rows, band_height, forward_rows, row_map, split_rows, transpose_rows
from convcli.pipeline.render import plan_render, read_window, render_rows

BORDERS = ["zero", "constant:3", "reflect", "symmetric", "replicate", "wrap"]


class RowsOf:
    """A minimal in-memory source that records which rows were read."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array if array.ndim == 3 else array[:, :, None]
        self.shape = self.array.shape
        self.dtype = self.array.dtype
        self.reads: list[tuple[int, int]] = []

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        assert 0 <= start < stop <= self.shape[0], (start, stop)
        self.reads.append((start, stop))
        view = self.array[start:stop]
        view.flags.writeable = False
        return view


def _streamed(plan, source, band: int, align: int = 1) -> np.ndarray:
    return np.concatenate([render_rows(plan, source, rows)
                           for rows in split_rows(plan.out_shape[0], band, align)])


# ---------------------------------------------------------------------------
# arithmetic


def test_forward_rows_formula():
    # STREAMING.md: r_first = s·i0 − pad_top, count = (i1 − i0 − 1)·s + d·(k − 1) + 1
    window = forward_rows(Rows(3, 7), kernel=5, stride=2, dilation=3, pad_before=4)
    assert window == Rows(2, 2 + (7 - 3 - 1) * 2 + 3 * 4 + 1)


def test_transpose_rows_formula_and_empty():
    assert transpose_rows(Rows(0, 4), size=3, kernel=3, stride=2, dilation=1, crop_before=1) == Rows(0, 3)
    # rows past the scatter extent (output_padding): no input row reaches them
    assert transpose_rows(Rows(7, 8), size=3, kernel=3, stride=2, dilation=1, crop_before=0) is None


@pytest.mark.parametrize("border", BORDERS)
def test_row_map_follows_numpy_pad(border):
    parsed = parse_border(border)
    size = 4
    index = np.arange(size)
    for start, stop in [(-9, 2), (-3, 7), (1, 3), (2, 13), (-11, 15)]:
        before, after = max(0, -start), max(0, stop - size)
        if parsed.numpy_mode == "constant":
            padded = np.pad(index, (before, after), constant_values=-1)
        else:
            padded = np.pad(index, (before, after), mode=parsed.numpy_mode)
        expected = padded[start + before: stop + before]
        np.testing.assert_array_equal(row_map(Rows(start, stop), size, parsed), expected)


def test_split_rows_cover_and_align():
    bands = split_rows(10, 4, align=3)
    assert [(b.start, b.stop) for b in bands] == [(0, 3), (3, 6), (6, 9), (9, 10)]
    with pytest.raises(ShapeError):
        Rows(3, 3)


def test_band_height_respects_budget():
    height = band_height(10_000, in_row_bytes=4000 * 3 * 4, out_row_bytes=4000 * 6 * 4, stride=1,
                         reach=2, budget=8 << 20)
    assert 1 <= height < 10_000
    rows_in = height - 1 + 2 + 1
    assert rows_in * 4000 * 3 * 4 + height * 4000 * 6 * 4 <= 8 << 20
    assert band_height(5, in_row_bytes=1, out_row_bytes=1, stride=1, reach=0) == 5
    assert band_height(5, in_row_bytes=1 << 30, out_row_bytes=1 << 30, stride=1, reach=0) == 1


def test_read_window_reads_each_run_once_and_wrap_reads_the_other_end():
    image = np.arange(10 * 2 * 1, dtype=np.uint8).reshape(10, 2, 1)
    source = RowsOf(image)
    band = read_window(source, Rows(-2, 3), parse_border("wrap"))
    np.testing.assert_array_equal(band[:, 0, 0], image[[8, 9, 0, 1, 2], 0, 0])
    assert sorted(source.reads) == [(0, 3), (8, 10)]  # never the whole image


# ---------------------------------------------------------------------------
# exactness against the whole-image result


@st.composite
def forward_cases(draw):
    rows, cols = draw(st.integers(1, 13)), draw(st.integers(1, 11))
    channels = draw(st.sampled_from([1, 2, 3]))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 2)))
    padding = draw(st.sampled_from(["valid", "same", "full", 1, (2, 0, 1, 3), (0, 4, 0, 0)]))
    border = draw(st.sampled_from(BORDERS))
    mode = draw(st.sampled_from(["depthwise", "sum", "gray"] if channels in (1, 3) else ["depthwise", "sum"]))
    n_filters = draw(st.integers(1, 3))
    reduce = draw(st.sampled_from(["none", "magnitude", "max", "min", "sum"]))
    method = draw(st.sampled_from(["auto", "direct", "separable", "gemm", "fft"]))
    integer = draw(st.booleans())
    band = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**31))
    flip = draw(st.booleans())
    return (rows, cols, channels, kh, kw, stride, dilation, padding, border, mode, n_filters, reduce,
            method, integer, band, seed, flip)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(forward_cases())
def test_forward_bands_equal_whole_image(case):
    (rows, cols, channels, kh, kw, stride, dilation, padding, border, mode, n_filters, reduce, method,
     integer, band, seed, flip) = case
    rng = np.random.default_rng(seed)
    image = (rng.integers(0, 256, (rows, cols, channels)).astype(np.uint8) if integer
             else rng.standard_normal((rows, cols, channels)).astype(np.float32))
    weights = rng.standard_normal((n_filters, kh, kw)).astype(np.float32)
    bias = float(rng.integers(-3, 4))
    options = dict(stride=stride, padding=padding, border=border, dilation=dilation, channels=mode,
                   flip=flip, bias=bias, method=method)
    try:
        whole = conv2d(image, weights, **options)
    except ShapeError:
        return  # no output for this geometry
    whole = reduce_maps(whole, n_filters, reduce)
    plan = plan_render(image.shape, weights, reduce=reduce, **options)
    streamed = _streamed(plan, RowsOf(image), band)
    assert streamed.shape == whole.shape == plan.out_shape
    if plan.method == "direct" or (plan.method == "separable" and kh * dilation[0] < 5 and kw < 9):
        np.testing.assert_array_equal(streamed, whole)  # per-tap passes: no tiling in the arithmetic
    else:
        np.testing.assert_allclose(streamed, whole, rtol=1e-4, atol=1e-3 * max(1.0, np.abs(whole).max()))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 9), st.integers(1, 8), st.sampled_from([1, 3]), st.integers(1, 4), st.integers(1, 4),
       st.integers(1, 3), st.integers(1, 3), st.integers(1, 2),
       st.sampled_from(["valid", "same", 0, 1, 2, (1, 0, 2, 1)]), st.integers(0, 2), st.integers(1, 5),
       st.sampled_from(["depthwise", "sum"]), st.sampled_from(sorted(TRANSPOSE_ENGINES)),
       st.integers(0, 2**31))
def test_transposed_bands_equal_whole_image(rows, cols, channels, kh, kw, s_rows, s_cols, dilation, padding,
                                            out_pad, band, mode, method, seed):
    rng = np.random.default_rng(seed)
    image = rng.standard_normal((rows, cols, channels)).astype(np.float32)
    weights = rng.standard_normal((2, kh, kw)).astype(np.float32)
    output_padding = (min(out_pad, max(s_rows, dilation) - 1), min(out_pad, max(s_cols, dilation) - 1))
    options = dict(stride=(s_rows, s_cols), padding=padding, dilation=dilation, channels=mode, bias=1.5,
                   output_padding=output_padding, method=method)
    try:
        whole = conv_transpose2d(image, weights, **options)
    except ShapeError:
        return
    plan = plan_render(image.shape, weights, transpose=True, **options)
    streamed = _streamed(plan, RowsOf(image), band, align=s_rows)
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("border,mode", [("zero", "fill"), ("wrap", "wrap"), ("symmetric", "symm")])
def test_bands_against_scipy_signal(border, mode):
    rng = np.random.default_rng(7)
    image = rng.standard_normal((23, 17)).astype(np.float64)
    weights = rng.standard_normal((5, 3))
    plan = plan_render((*image.shape, 1), weights, padding="same", border=border, dtype="float64")
    streamed = _streamed(plan, RowsOf(image), 4)[..., 0]
    expected = scipy.signal.correlate2d(image, weights, mode="same", boundary=mode)
    np.testing.assert_allclose(streamed, expected, rtol=1e-12, atol=1e-12)


def test_bands_read_only_their_window():
    image = np.zeros((100, 4, 1), np.float32)
    source = RowsOf(image)
    plan = plan_render(image.shape, np.ones((3, 3)), padding="same", border="reflect")
    render_rows(plan, source, Rows(40, 50))
    assert source.reads == [(39, 51)]


def test_alpha_drop_filters_colour_only():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (6, 5, 4)).astype(np.uint8)
    weights = np.ones((1, 3, 3)) / 9
    plan = plan_render(image.shape, weights, padding="same", border="reflect", drop_alpha=True)
    streamed = _streamed(plan, RowsOf(image), 2)
    np.testing.assert_array_equal(streamed, conv2d(image[..., :3], weights, padding="same", border="reflect"))
