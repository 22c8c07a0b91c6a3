"""Every known answer and shape vector of shared/SPEC.md, through the public API.

The numbers are copied from the SPEC (computed there with torch / scipy);
array answers run for every registered strategy and ``method='auto'``.
"""

from __future__ import annotations

import numpy as np
import pytest

from convcli import (
    ShapeError,
    conv2d,
    conv_transpose2d,
    output_size,
    receptive_field,
    resolve_padding,
    upsample_nearest_conv2d,
)
from convcli.borders import pad_image, parse_border
from convcli.engines import FORWARD_ENGINES, TRANSPOSE_ENGINES

FORWARD_METHODS = [*sorted(FORWARD_ENGINES), "auto"]
TRANSPOSE_METHODS = [*sorted(TRANSPOSE_ENGINES), "auto"]

ONE_TO_16 = np.arange(1, 17, dtype=float).reshape(4, 4)
ONE_TO_9 = np.arange(1, 10, dtype=float).reshape(3, 3)
SOBEL_X = [[1, 0, -1], [2, 0, -2], [1, 0, -1]]
TOP_LEFT_TAP = [[1, 0, 0], [0, 0, 0], [0, 0, 0]]


def plane(out: np.ndarray) -> np.ndarray:
    """The single output channel of a one-kernel, one-channel result."""
    assert out.ndim == 3 and out.shape[2] == 1
    return out[:, :, 0]


# ------------------------------------------------------------------ forward answers
FORWARD_ANSWERS = [
    pytest.param(np.arange(16.0).reshape(4, 4), SOBEL_X, {"stride": 2, "padding": 1},
                 [[-7, -6], [-36, -8]], id="sobel-s2-p1"),
    pytest.param(ONE_TO_16, ONE_TO_9, {"stride": 2, "padding": "same"},
                 [[348, 252], [274, 175]], id="1..16-1..9-s2-same"),
    pytest.param(ONE_TO_16, ONE_TO_9, {"stride": 2, "padding": 1},
                 [[111, 217], [363, 573]], id="1..16-1..9-s2-p1"),
    pytest.param(ONE_TO_9, [[1, 2], [3, 4]], {"padding": "same"},
                 [[37, 47, 21], [67, 77, 33], [23, 26, 9]], id="even-kernel-same"),
    pytest.param(np.arange(25.0).reshape(5, 5), np.ones((2, 2)), {"dilation": 2},
                 [[24, 28, 32], [44, 48, 52], [64, 68, 72]], id="dilation-2"),
    pytest.param(ONE_TO_9, TOP_LEFT_TAP, {"padding": 1, "border": "zero"},
                 [[0, 0, 0], [0, 1, 2], [0, 4, 5]], id="top-left-zero"),
    pytest.param(ONE_TO_9, TOP_LEFT_TAP, {"padding": 1, "border": "reflect"},
                 [[5, 4, 5], [2, 1, 2], [5, 4, 5]], id="top-left-reflect"),
    pytest.param(ONE_TO_9, TOP_LEFT_TAP, {"padding": 1, "border": "replicate"},
                 [[1, 1, 2], [1, 1, 2], [4, 4, 5]], id="top-left-replicate"),
    pytest.param(ONE_TO_9, TOP_LEFT_TAP, {"padding": 1, "border": "wrap"},
                 [[9, 7, 8], [3, 1, 2], [6, 4, 5]], id="top-left-wrap"),
]


@pytest.mark.parametrize("method", FORWARD_METHODS)
@pytest.mark.parametrize(("image", "kernel", "kwargs", "expected"), FORWARD_ANSWERS)
def test_forward_known_answer(image, kernel, kwargs, expected, method: str) -> None:
    out = conv2d(image, kernel, method=method, **kwargs)
    np.testing.assert_allclose(plane(out), expected, rtol=0, atol=1e-4)


def test_same_stride_2_pads_are_0_1() -> None:
    """SPEC: x = 1..16, w = 1..9, s = 2: ``same`` pads (0, 1)."""
    assert resolve_padding(4, 3, stride=2, padding="same") == (0, 1)


# ------------------------------------------------------------------ transposed answers
TRANSPOSE_ANSWERS = [
    pytest.param({"stride": 2, "padding": 1}, [[1, 3, 2], [4, 10, 6], [3, 7, 4]], id="s2-p1"),
    pytest.param({"stride": 2, "padding": 1, "output_padding": 1},
                 [[1, 3, 2, 2], [4, 10, 6, 6], [3, 7, 4, 4], [3, 7, 4, 4]], id="s2-p1-op1"),
]


@pytest.mark.parametrize("method", TRANSPOSE_METHODS)
@pytest.mark.parametrize(("kwargs", "expected"), TRANSPOSE_ANSWERS)
def test_transposed_known_answer(kwargs, expected, method: str) -> None:
    out = conv_transpose2d([[1, 2], [3, 4]], np.ones((3, 3)), method=method, **kwargs)
    np.testing.assert_allclose(plane(out), expected, rtol=0, atol=1e-4)


WORKED_IMAGE = [[1, 2, 0], [0, 1, 3], [2, 0, 1]]
WORKED_KERNEL = [[1, 2], [-1, 1]]


@pytest.mark.parametrize("method", FORWARD_METHODS)
def test_seed_upsampling_worked_example(method: str) -> None:
    out = upsample_nearest_conv2d(WORKED_IMAGE, WORKED_KERNEL, scale=2, method=method)
    expected = [[6, 6, 4, 4], [6, 6, 4, 4], [0, 0, 8, 8], [0, 0, 8, 8]]
    np.testing.assert_allclose(plane(out), expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize("method", TRANSPOSE_METHODS)
def test_worked_example_transposed_is_6x6(method: str) -> None:
    out = conv_transpose2d(WORKED_IMAGE, WORKED_KERNEL, stride=2, method=method)
    assert out.shape == (6, 6, 1)


# ------------------------------------------------------------------ borders (1-D table)
BORDER_TABLE = {
    "zero": [0, 0, 0, 1, 2, 3, 4, 5, 0, 0, 0],
    "constant:0": [0, 0, 0, 1, 2, 3, 4, 5, 0, 0, 0],
    "constant:7": [7, 7, 7, 1, 2, 3, 4, 5, 7, 7, 7],
    "replicate": [1, 1, 1, 1, 2, 3, 4, 5, 5, 5, 5],
    "symmetric": [3, 2, 1, 1, 2, 3, 4, 5, 5, 4, 3],
    "reflect": [4, 3, 2, 1, 2, 3, 4, 5, 4, 3, 2],
    "wrap": [3, 4, 5, 1, 2, 3, 4, 5, 1, 2, 3],
}


@pytest.mark.parametrize("method", FORWARD_METHODS)
@pytest.mark.parametrize(("border", "expected"), BORDER_TABLE.items())
def test_border_table(border: str, expected: list[int], method: str) -> None:
    """SPEC table: ``[1 2 3 4 5]`` padded by 3, seen through a 1×1 identity kernel."""
    row = np.arange(1.0, 6.0)[None, :]
    out = conv2d(row, [[1]], padding=(0, 0, 3, 3), border=border, method=method)
    np.testing.assert_allclose(plane(out)[0], expected, rtol=0, atol=1e-9)
    padded = pad_image(row[:, :, None], (0, 0, 3, 3), parse_border(border))
    np.testing.assert_array_equal(padded[0, :, 0], expected)


# ------------------------------------------------------------------ channel conventions
@pytest.mark.parametrize("method", FORWARD_METHODS)
def test_depthwise_output_is_kernel_major(method: str) -> None:
    """N = F·C, output ``f·C + c`` is kernel ``f`` on channel ``c``."""
    image = np.stack([np.full((2, 2), 1.0), np.full((2, 2), 10.0)], axis=2)
    out = conv2d(image, [[[1]], [[2]], [[3]]], method=method)
    np.testing.assert_allclose(out[0, 0], [1, 10, 2, 20, 3, 30], rtol=0, atol=1e-4)


@pytest.mark.parametrize("method", FORWARD_METHODS)
def test_sum_and_gray_channels(method: str) -> None:
    image = np.stack([np.full((2, 2), v) for v in (100.0, 10.0, 1.0)], axis=2)
    summed = conv2d(image, [[[1]], [[2]]], channels="sum", method=method)
    np.testing.assert_allclose(summed[0, 0], [111, 222])
    gray = conv2d(image, [[1]], channels="gray", method=method)
    np.testing.assert_allclose(gray[0, 0], [0.299 * 100 + 0.587 * 10 + 0.114 * 1], rtol=1e-6)


# ------------------------------------------------------------------ shape vectors
FORWARD_SHAPES = [  # (H, k, s, padding, d, H')
    (5, 3, 1, 0, 1, 3),
    (5, 3, 1, "full", 1, 7),
    (7, 3, 2, 1, 1, 4),
    (6, 3, 2, 1, 1, 3),
    (7, 3, 1, 0, 2, 3),
    (10, 3, 3, 0, 2, 2),
    (224, 7, 2, 3, 1, 112),
    (4, 5, 1, 0, 1, None),
]
SAME_SHAPES = [  # (H, k, s, d, H', pads)
    (5, 3, 2, 1, 3, (1, 1)),
    (6, 3, 2, 1, 3, (0, 1)),
    (13, 6, 5, 1, 3, (1, 2)),
    (10, 3, 2, 2, 5, (1, 2)),
    (3, 5, 2, 1, 2, (2, 2)),
]
TRANSPOSED_SHAPES = [  # (H, k, s, p, d, op, H')
    (3, 3, 2, 0, 1, 0, 7),
    (3, 3, 2, 1, 1, 0, 5),
    (3, 3, 2, 1, 1, 1, 6),
    (4, 4, 2, 1, 1, 0, 8),
    (3, 3, 2, 1, 2, 0, 7),
    (3, 3, 2, 1, 3, 2, 11),
    (3, 3, 2, 1, 1, 2, None),
]


def _forward_ids(vector) -> str:
    return ",".join(map(str, vector))


@pytest.mark.parametrize("method", FORWARD_METHODS)
@pytest.mark.parametrize(("n", "k", "s", "p", "d", "expected"), FORWARD_SHAPES,
                         ids=map(_forward_ids, FORWARD_SHAPES))
def test_forward_shape_vector(n, k, s, p, d, expected, method: str) -> None:
    image, kernel = np.ones((n, n)), np.ones((k, k))
    if expected is None:
        with pytest.raises(ShapeError):
            output_size(n, k, stride=s, padding=p, dilation=d)
        with pytest.raises(ShapeError):
            conv2d(image, kernel, stride=s, padding=p, dilation=d, method=method)
        return
    assert output_size(n, k, stride=s, padding=p, dilation=d) == expected
    out = conv2d(image, kernel, stride=s, padding=p, dilation=d, method=method)
    assert out.shape == (expected, expected, 1)


@pytest.mark.parametrize("method", FORWARD_METHODS)
@pytest.mark.parametrize(("n", "k", "s", "d", "expected", "pads"), SAME_SHAPES,
                         ids=map(_forward_ids, SAME_SHAPES))
def test_same_shape_vector(n, k, s, d, expected, pads, method: str) -> None:
    assert resolve_padding(n, k, stride=s, padding="same", dilation=d) == pads
    assert output_size(n, k, stride=s, padding="same", dilation=d) == expected
    out = conv2d(np.ones((n, n)), np.ones((k, k)), stride=s, padding="same", dilation=d,
                 method=method)
    assert out.shape == (expected, expected, 1)


@pytest.mark.parametrize("method", TRANSPOSE_METHODS)
@pytest.mark.parametrize(("n", "k", "s", "p", "d", "op", "expected"), TRANSPOSED_SHAPES,
                         ids=map(_forward_ids, TRANSPOSED_SHAPES))
def test_transposed_shape_vector(n, k, s, p, d, op, expected, method: str) -> None:
    kwargs = {"stride": s, "padding": p, "dilation": d, "output_padding": op}
    image, kernel = np.ones((n, n)), np.ones((k, k))
    if expected is None:
        with pytest.raises(ShapeError):
            output_size(n, k, transposed=True, **kwargs)
        with pytest.raises(ShapeError):
            conv_transpose2d(image, kernel, method=method, **kwargs)
        return
    assert output_size(n, k, transposed=True, **kwargs) == expected
    assert conv_transpose2d(image, kernel, method=method, **kwargs).shape == (expected,) * 2 + (1,)


def test_receptive_field_chain() -> None:
    """SPEC: conv7/s2/p3 then pool3/s2/p1 → r = 11, S = 4, P = 5."""
    fields = receptive_field([(7, 2, 3), (3, 2, 1)])
    assert (fields[-1].size, fields[-1].jump, fields[-1].start) == (11, 4, 5)
    assert (fields[0].size, fields[0].jump, fields[0].start) == (7, 2, 3)
