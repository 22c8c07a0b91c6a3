"""conv2d / conv_transpose2d against scipy.signal and a numpy scatter-add, for every strategy.

The forward reference is ``numpy.pad`` (border) + ``scipy.signal.correlate2d``
(or ``convolve2d`` with ``flip``) on the zero-dilated kernel + ``[::s, ::s]``;
the transposed reference is a literal scatter-add loop (``reference.py``).
Every test runs for each registered strategy and for ``method='auto'``.
"""

from __future__ import annotations

import numpy as np
import pytest
from reference import (
    Case,
    assert_matches,
    border_grid,
    channel_grid,
    numpy_conv_transpose2d,
    random_forward_cases,
    random_transpose_cases,
    scipy_conv2d,
    transpose_grid,
)
from scipy import signal

from convcli import ShapeError, conv2d, conv_transpose2d, upsample_nearest_conv2d
from convcli.engines import FORWARD_ENGINES, TRANSPOSE_ENGINES

FORWARD_METHODS = [*sorted(FORWARD_ENGINES), "auto"]
TRANSPOSE_METHODS = [*sorted(TRANSPOSE_ENGINES), "auto"]


def check_forward(case: Case, method: str) -> None:
    image, bank = case.arrays()
    expected = scipy_conv2d(image, bank, **case.kwargs)
    if expected is None:
        with pytest.raises(ShapeError):
            conv2d(image, bank, method=method, **case.kwargs)
        return
    actual = conv2d(image, bank, method=method, **case.kwargs)
    assert_matches(actual, expected, case.dtype, str(case))


def check_transpose(case: Case, method: str) -> None:
    image, bank = case.arrays()
    expected = numpy_conv_transpose2d(image, bank, **case.kwargs)
    if expected is None:
        with pytest.raises(ShapeError):
            conv_transpose2d(image, bank, method=method, **case.kwargs)
        return
    actual = conv_transpose2d(image, bank, method=method, **case.kwargs)
    assert_matches(actual, expected, case.dtype, str(case))


def _ids(cases: list[Case]) -> list[str]:
    return [str(case) for case in cases]


# ------------------------------------------------------------------ forward grids
BORDER_GRID = border_grid()


@pytest.mark.parametrize("method", FORWARD_METHODS)
@pytest.mark.parametrize("case", BORDER_GRID, ids=_ids(BORDER_GRID))
def test_borders_paddings_strides_dilations(case: Case, method: str) -> None:
    """Six borders × every padding form (pads up to 10 > image) × stride/dilation pairs."""
    check_forward(case, method)


CHANNEL_GRID = channel_grid()


@pytest.mark.parametrize("method", FORWARD_METHODS)
@pytest.mark.parametrize("case", CHANNEL_GRID, ids=_ids(CHANNEL_GRID))
def test_channels_kernels_banks_flip(case: Case, method: str) -> None:
    """depthwise/sum/gray × odd, even and non-square kernels × bank rank 2/3/4 × flip."""
    check_forward(case, method)


@pytest.mark.parametrize("method", FORWARD_METHODS)
@pytest.mark.parametrize("padding", ["valid", "full"])
@pytest.mark.parametrize("kernel", [(3, 3), (2, 4), (1, 5)])
def test_flip_equals_scipy_convolve2d_directly(kernel: tuple[int, int], padding: str,
                                               method: str) -> None:
    """SPEC: with flip, ``valid`` and ``full`` equal scipy.signal.convolve2d itself."""
    rng = np.random.default_rng(3)
    image, weights = rng.normal(size=(7, 9)), rng.normal(size=kernel)
    expected = signal.convolve2d(image, weights, mode=padding)[:, :, None]
    actual = conv2d(image, weights, padding=padding, flip=True, method=method)
    assert_matches(actual, expected, np.float64)


@pytest.mark.parametrize("method", FORWARD_METHODS)
@pytest.mark.parametrize("kernel", [(3, 3), (2, 2), (4, 3), (1, 5)])
def test_same_equals_scipy_correlate2d_same(kernel: tuple[int, int], method: str) -> None:
    """SPEC: at stride 1, ``same`` equals scipy.signal.correlate2d(mode='same')."""
    rng = np.random.default_rng(4)
    image, weights = rng.normal(size=(8, 11)), rng.normal(size=kernel)
    expected = signal.correlate2d(image, weights, mode="same")[:, :, None]
    assert_matches(conv2d(image, weights, padding="same", method=method), expected, np.float64)


@pytest.mark.parametrize("method", FORWARD_METHODS)
@pytest.mark.parametrize("n_filters", range(1, 9))
@pytest.mark.parametrize("bias", ["scalar", "per-F", "per-N"])
@pytest.mark.parametrize("channels", ["depthwise", "sum"])
def test_filter_counts_and_bias(n_filters: int, bias: str, channels: str, method: str) -> None:
    n_channels = 3
    n_out = n_filters * n_channels if channels == "depthwise" else n_filters
    values = {"scalar": -1.25, "per-F": np.arange(n_filters) * 0.5,
              "per-N": np.linspace(-1, 1, n_out)}[bias]
    case = Case(rows=7, cols=9, n_channels=n_channels, bank_shape=(n_filters, 3, 3),
                kwargs={"channels": channels, "bias": values, "stride": 2, "padding": 1},
                seed=n_filters)
    check_forward(case, method)


@pytest.mark.parametrize("method", FORWARD_METHODS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_is_kept_and_requested(dtype: str, method: str) -> None:
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, size=(7, 9, 3), dtype=np.uint8)
    bank = rng.normal(size=(2, 3, 3))
    expected = scipy_conv2d(image, bank, padding="same", border="symmetric")
    actual = conv2d(image, bank, padding="same", border="symmetric", dtype=dtype, method=method)
    assert_matches(actual, expected, dtype)
    default = conv2d(image, bank, padding="same", border="symmetric", method=method)
    assert_matches(default, expected, np.float32)  # integers compute in float32
    as_float64 = conv2d(image.astype(np.float64), bank, method=method)
    assert as_float64.dtype == np.float64


RANDOM_FORWARD = random_forward_cases(150, seed=20240)


@pytest.mark.parametrize("method", FORWARD_METHODS)
@pytest.mark.parametrize("case", RANDOM_FORWARD, ids=_ids(RANDOM_FORWARD))
def test_random_forward_cases(case: Case, method: str) -> None:
    """Random draws over every parameter at once (reproducible, see reference.py)."""
    check_forward(case, method)


# ------------------------------------------------------------------ transposed
TRANSPOSE_GRID = transpose_grid()


@pytest.mark.parametrize("method", TRANSPOSE_METHODS)
@pytest.mark.parametrize("case", TRANSPOSE_GRID, ids=_ids(TRANSPOSE_GRID))
def test_transpose_grid(case: Case, method: str) -> None:
    check_transpose(case, method)


RANDOM_TRANSPOSE = random_transpose_cases(100, seed=777)


@pytest.mark.parametrize("method", TRANSPOSE_METHODS)
@pytest.mark.parametrize("case", RANDOM_TRANSPOSE, ids=_ids(RANDOM_TRANSPOSE))
def test_random_transpose_cases(case: Case, method: str) -> None:
    check_transpose(case, method)


@pytest.mark.parametrize("method", TRANSPOSE_METHODS)
@pytest.mark.parametrize("stride", [1, 2, 3, (2, 3)])
@pytest.mark.parametrize("kernel", [(1, 1), (2, 2), (3, 3), (4, 5), (3, 1)])
def test_transpose_same_multiplies_size_by_stride(stride, kernel, method: str) -> None:
    """SPEC: transposed ``same`` gives H' = H·s (also with a kernel shorter than the stride)."""
    rng = np.random.default_rng(6)
    image, bank = rng.normal(size=(4, 5, 2)), rng.normal(size=kernel)
    out = conv_transpose2d(image, bank, stride=stride, padding="same", method=method)
    sr, sc = (stride, stride) if isinstance(stride, int) else stride
    assert out.shape == (4 * sr, 5 * sc, 2)
    expected = numpy_conv_transpose2d(image, bank, stride=stride, padding="same")
    assert_matches(out, expected, np.float64)


@pytest.mark.parametrize("method", TRANSPOSE_METHODS)
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_transpose_valid_is_padding_zero(stride: int, method: str) -> None:
    rng = np.random.default_rng(7)
    image, bank = rng.normal(size=(4, 5, 2)), rng.normal(size=(2, 3, 2))
    valid = conv_transpose2d(image, bank, stride=stride, padding="valid", method=method)
    zero = conv_transpose2d(image, bank, stride=stride, padding=0, method=method)
    np.testing.assert_array_equal(valid, zero)
    expected = numpy_conv_transpose2d(image, bank, stride=stride, padding=0)
    assert_matches(valid, expected, np.float64)


# ------------------------------------------------------------------ seed's upsampling
WORKED_IMAGE = [[1, 2, 0], [0, 1, 3], [2, 0, 1]]
WORKED_KERNEL = [[1, 2], [-1, 1]]


@pytest.mark.parametrize("method", FORWARD_METHODS)
def test_upsample_nearest_worked_example(method: str) -> None:
    expected = np.array([[6, 6, 4, 4], [6, 6, 4, 4], [0, 0, 8, 8], [0, 0, 8, 8]], dtype=float)
    out = upsample_nearest_conv2d(WORKED_IMAGE, WORKED_KERNEL, scale=2, method=method)
    assert_matches(out, expected[:, :, None], np.float32)


@pytest.mark.parametrize("method", FORWARD_METHODS)
@pytest.mark.parametrize("scale", [1, 2, 3, (2, 3)])
@pytest.mark.parametrize("padding", ["valid", "same", "full"])
def test_upsample_nearest_is_correlate2d_then_repeat(scale, padding: str, method: str) -> None:
    rng = np.random.default_rng(8)
    image, weights = rng.normal(size=(6, 7)), rng.normal(size=(3, 2))
    sr, sc = (scale, scale) if isinstance(scale, int) else scale
    stride1 = signal.correlate2d(image, weights, mode=padding)
    expected = np.repeat(np.repeat(stride1, sr, axis=0), sc, axis=1)[:, :, None]
    out = upsample_nearest_conv2d(image, weights, scale=scale, padding=padding, method=method)
    assert_matches(out, expected, np.float64)


# ------------------------------------------------------------------ larger problems
LARGER = [  # (image shape, bank shape, kwargs): sizes where ``auto`` may pick another strategy
    ((48, 64, 3), (2, 11, 11), {"padding": "same", "border": "reflect"}),
    ((40, 50, 3), (15, 15), {"padding": "full", "border": "wrap", "stride": 2}),
    ((64, 64), (1, 9), {"padding": "same", "border": "replicate"}),
    ((33, 47, 2), (4, 7, 7, 2), {"channels": "sum", "padding": 3, "dilation": 2}),
    ((50, 60, 3), (3, 5, 5), {"channels": "gray", "stride": (2, 3), "border": "symmetric",
                              "padding": "same"}),
    ((37, 41, 3), (8, 3, 3), {"padding": "valid", "bias": 10.0}),
]


@pytest.mark.parametrize("method", FORWARD_METHODS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("image_shape", "bank_shape", "kwargs"), LARGER,
                         ids=[f"{i}x{b}" for i, b, _ in LARGER])
def test_larger_problems_in_pixel_range(image_shape, bank_shape, kwargs, dtype: str,
                                        method: str) -> None:
    """Pixel values 0–255 and kernels up to 15×15: float32 stays within 1e-4·max|ref|."""
    rng = np.random.default_rng(sum(image_shape) + sum(bank_shape))
    image = rng.integers(0, 256, size=image_shape).astype(dtype)
    bank = rng.normal(size=bank_shape)
    expected = scipy_conv2d(image, bank, **kwargs)
    assert_matches(conv2d(image, bank, method=method, **kwargs), expected, dtype)


LARGER_TRANSPOSED = [
    ((20, 24, 3), (2, 4, 4), {"stride": 2, "padding": 1}),
    ((16, 18, 2), (3, 5, 5, 2), {"stride": 3, "padding": "same", "channels": "sum",
                                 "output_padding": 1}),
    ((12, 15), (7, 7), {"stride": (2, 1), "dilation": 2, "padding": (3, 1)}),
]


@pytest.mark.parametrize("method", TRANSPOSE_METHODS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("image_shape", "bank_shape", "kwargs"), LARGER_TRANSPOSED,
                         ids=[f"{i}x{b}" for i, b, _ in LARGER_TRANSPOSED])
def test_larger_transposed_problems(image_shape, bank_shape, kwargs, dtype: str,
                                    method: str) -> None:
    rng = np.random.default_rng(sum(image_shape))
    image = rng.integers(0, 256, size=image_shape).astype(dtype)
    bank = rng.normal(size=bank_shape)
    expected = numpy_conv_transpose2d(image, bank, **kwargs)
    assert_matches(conv_transpose2d(image, bank, method=method, **kwargs), expected, dtype)
