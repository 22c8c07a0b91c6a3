"""The NaN/inf check of input images, eager (numpy) and fused into the compiled kernels.

The fused check tests each image row as the tile that first reads it loads
it (:func:`convcli.engines.native.row_checks` shares the rows out). Its
verdict and message must be exactly those of the eager check
(:func:`convcli.engines._finite.require_finite` on the whole image) for
every geometry: rows read by several tiles, rows no output reads (stride
past the kernel, ``valid`` crops), border rows, channel-summed banks.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcli import conv2d
from convcli.engines import FORWARD_ENGINES, _native
from convcli.engines._finite import require_finite
from convcli.engines.native import row_checks
from convcli.errors import ShapeError

NATIVE = [m for m in ("native", "native-separable") if m in FORWARD_ENGINES]
BAD_VALUES = [np.nan, np.inf, -np.inf]


def expected_message(image: np.ndarray) -> str:
    with pytest.raises(ShapeError) as caught:
        require_finite(image)
    return str(caught.value)


@settings(max_examples=60, deadline=None)
@given(
    tiles=st.lists(st.tuples(st.integers(1, 5), st.integers(1, 9)), min_size=1, max_size=8),
    top=st.integers(0, 4), height=st.integers(1, 60), first=st.integers(0, 6),
)
def test_row_checks_give_each_image_row_to_exactly_one_reader_or_to_missed(tiles, top, height, first):
    """Every image row is tested once: by the first tile whose band holds it, or in ``missed``."""
    bands, start = [], first
    for gap, length in tiles:  # increasing starts, bands may overlap or leave gaps
        bands.append((start, start + length))
        start += gap
    checks, missed = row_checks(bands, top, height)
    assert len(checks) == len(bands)
    tested = np.zeros(height, dtype=int)
    for (start, stop), (lo, hi) in zip(bands, checks):
        assert 0 <= lo <= hi <= stop - start
        for band_row in range(start + lo, start + hi):
            tested[band_row - top] += 1
    read = np.zeros(height, dtype=bool)
    for start, stop in bands:
        read[max(start - top, 0):max(min(stop - top, height), 0)] = True
    for i0, i1 in missed:
        assert 0 <= i0 < i1 <= height
        assert not read[i0:i1].any(), "a row some tile reads was left to the caller"
        tested[i0:i1] += 1
    assert (tested == 1).all(), tested


@pytest.mark.skipif(not NATIVE, reason="compiled kernels not built")
@settings(max_examples=150, deadline=None)
@given(
    rows=st.integers(1, 90), cols=st.integers(1, 40), channels=st.sampled_from([1, 3]),
    kernel=st.integers(1, 5), stride=st.integers(1, 4), dilation=st.integers(1, 2),
    padding=st.sampled_from(["valid", "same", "full", 0, 2]),
    border=st.sampled_from(["zero", "reflect", "wrap", "replicate", "constant:3"]),
    mode=st.sampled_from(["depthwise", "sum"]), method=st.sampled_from(NATIVE),
    where=st.tuples(st.floats(0, 1, exclude_max=True), st.floats(0, 1, exclude_max=True)),
    bad=st.sampled_from(BAD_VALUES), dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_a_non_finite_value_anywhere_is_refused_with_the_eager_message(
    rows, cols, channels, kernel, stride, dilation, padding, border, mode, method, where, bad, dtype, seed,
):
    rng = np.random.default_rng(seed)
    image = rng.standard_normal((rows, cols, channels)).astype(dtype)
    row, col = int(where[0] * rows), int(where[1] * cols)
    image[row, col, rng.integers(channels)] = bad
    column = rng.standard_normal(kernel)
    bank = np.outer(column, rng.standard_normal(kernel)) if method == "native-separable" else \
        rng.standard_normal((kernel, kernel))
    message = expected_message(image)
    with pytest.raises(ShapeError) as caught:
        conv2d(image, bank, stride=stride, padding=padding, border=border, dilation=dilation,
               channels=mode, method=method)
    text = str(caught.value)
    if "larger than the padded input" in text:  # an impossible geometry is refused first
        return
    assert text == message


@pytest.mark.skipif(not NATIVE, reason="compiled kernels not built")
@pytest.mark.parametrize("method", NATIVE)
@pytest.mark.parametrize("bad", BAD_VALUES)
def test_a_bad_value_in_a_row_no_output_reads_is_still_refused(method, bad):
    """Stride 4 with a 1×1 kernel reads rows 0, 4, 8…: a NaN in row 2 is found by the missed-rows test."""
    image = np.ones((40, 30, 3), dtype=np.float32)
    image[2, 5, 1] = bad
    with pytest.raises(ShapeError, match=re.escape("(row, column, channel) (2, 5, 1)")):
        conv2d(image, [[1.0]], stride=4, method=method)


@pytest.mark.skipif(not NATIVE, reason="compiled kernels not built")
@pytest.mark.parametrize("method", NATIVE)
def test_a_large_image_checked_by_many_tiles_finds_each_bad_row(method):
    """Many tiles (a tall image): a NaN on the first, a middle, a tile-boundary and the last row."""
    image = np.random.default_rng(1).standard_normal((1500, 64, 3)).astype(np.float32)
    for row in (0, 187, 750, 1499):
        broken = image.copy()
        broken[row, 63, 2] = np.nan
        with pytest.raises(ShapeError, match=re.escape(f"(row, column, channel) ({row}, 63, 2)")):
            conv2d(broken, np.outer([1.0, 2.0, 1.0], [1.0, 0.0, -1.0]), padding="same", method=method)


@pytest.mark.skipif(not NATIVE, reason="compiled kernels not built")
def test_a_uniform_bank_whose_channel_sum_overflows_is_no_error_as_with_the_eager_check():
    """float32 values near the top of the range: their channel sum overflows to inf, they are finite."""
    image = np.full((20, 20, 3), 3e38, dtype=np.float32)
    out = conv2d(image, [[1.0]], channels="sum", method="native")
    assert np.isinf(out).all()


@pytest.mark.skipif(not _native.AVAILABLE, reason="compiled kernels not built")
def test_the_kernel_reports_a_bad_row_only_inside_its_check_range():
    image = np.ones((10, 8, 1), dtype=np.float32)
    image[6, 3, 0] = np.inf
    rows = np.arange(10, dtype=np.int64)
    cols = np.arange(8, dtype=np.int64)
    weights = np.ones((1, 1, 1, 1), dtype=np.float32)
    out = np.empty((10, 8, 1), dtype=np.float32)
    assert _native.correlate_image(image, rows, cols, 0, 0.0, weights, out, (1, 1), (1, 1), True,
                                   check_rows=(0, 10)) is False
    assert _native.correlate_image(image, rows, cols, 0, 0.0, weights, out, (1, 1), (1, 1), True,
                                   check_rows=(0, 6)) is True
    assert _native.correlate_image(image, rows, cols, 0, 0.0, weights, out, (1, 1), (1, 1), True) is True
    u = np.ones((1, 1, 1), dtype=np.float32)
    for check_rows, verdict in (((5, 7), False), ((7, 10), True)):
        assert _native.separable_image(image, rows, cols, 0, 0.0, u, u, out, 1, (1, 1),
                                       check_rows=check_rows) is verdict
    with pytest.raises(ValueError, match="rows to check"):
        _native.correlate_image(image, rows, cols, 0, 0.0, weights, out, (1, 1), (1, 1), True,
                                check_rows=(0, 11))


@pytest.mark.skipif(not _native.AVAILABLE, reason="compiled kernels not built")
@pytest.mark.parametrize("kernel", ["correlate_image", "separable_image"])
@pytest.mark.parametrize("stride", [4, 7])
def test_every_row_in_the_check_range_is_tested_even_rows_no_output_reads(kernel, stride):
    """A call reads its rows in chunks (of 32 output rows here, 8 for the separable kernel); with
    the row stride past the 3-row kernel, rows between two chunks are read by no output and must
    still be tested (found by a review: rows 127, 379, … of a 2000×500 image at stride 4)."""
    rows, cols = 40 * stride * 4, 500
    image = np.zeros((rows, cols, 1), dtype=np.float32)
    row_map, col_map = np.arange(rows, dtype=np.int64), np.arange(cols, dtype=np.int64)
    out_rows = (rows - 3) // stride + 1
    out = np.empty((out_rows, cols - 2, 1), dtype=np.float32)
    weights = np.ones((1, 3, 3, 1), dtype=np.float32)
    u = np.ones((1, 3, 1), dtype=np.float32)
    for row in range(rows):
        image[row, 321, 0] = np.nan
        if kernel == "correlate_image":
            verdict = _native.correlate_image(image, row_map, col_map, 0, 0.0, weights, out, (stride, 1),
                                              (1, 1), True, check_rows=(0, rows))
        else:
            verdict = _native.separable_image(image, row_map, col_map, 0, 0.0, u, u, out, stride, (1, 1),
                                              check_rows=(0, rows))
        assert verdict is False, f"a NaN in row {row} went untested"
        image[row, 321, 0] = 0.0


@pytest.mark.skipif(not NATIVE, reason="compiled kernels not built")
@pytest.mark.parametrize("method", ["native", "auto"])
def test_the_reviewers_case_a_nan_between_two_chunks_at_stride_4(method):
    image = np.random.default_rng(0).random((2000, 500), np.float32)
    sobel = np.array([[[1, 0, -1], [2, 0, -2], [1, 0, -1]], [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]], np.float32)
    for row in (127, 379, 631, 0, 1999):
        broken = image.copy()
        broken[row, 7] = np.nan
        with pytest.raises(ShapeError, match=re.escape(f"(row, column, channel) ({row}, 7, 0)")):
            conv2d(broken, sobel, stride=4, method=method)
