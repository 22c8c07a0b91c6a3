"""convcli.kernels: types, inline parser, parameters, generators, separability.

References: scipy.signal.windows.gaussian (Gaussian taps), scipy.ndimage
gaussian_laplace (LoG taps), numpy rank (separability), and the formulas as
printed in the docstrings, written out here independently.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given
from hypothesis import strategies as st
from scipy.signal import windows

from convcli.errors import KernelError
from convcli.kernels import (
    GENERATORS,
    Kernel,
    KernelBank,
    box,
    dog,
    gabor,
    gaussian,
    log,
    make_parametric,
    motion,
    parse_inline,
    parse_params,
    separable_factors,
)

# --- Kernel / KernelBank ------------------------------------------------------------


def test_kernel_stores_read_only_float64_copy():
    source = np.array([[1, 2], [3, 4]])
    kernel = Kernel("k", source)
    assert kernel.weights.dtype == np.float64
    source[0, 0] = 99
    assert kernel.weights[0, 0] == 1
    with pytest.raises(ValueError):
        kernel.weights[0, 0] = 5


@pytest.mark.parametrize(
    ("weights", "fragment"),
    [
        ([[1.0, np.nan]], "finite"),
        ([[1.0, np.inf]], "finite"),
        ([1.0, 2.0], "(kh, kw)"),
        (np.zeros((0, 3)), "empty"),
        ([["a", "b"]], "numbers"),
    ],
)
def test_kernel_rejects_bad_weights(weights, fragment):
    with pytest.raises(KernelError, match="'bad'") as info:
        Kernel("bad", weights)
    assert fragment in str(info.value)


@pytest.mark.parametrize("name", ["", "a/b", "a:b", "-x", "a b"])
def test_kernel_rejects_names_unusable_in_file_names(name):
    with pytest.raises(KernelError, match="name"):
        Kernel(name, [[1.0]])


@pytest.mark.parametrize("display", ["offset:128", "offset:-0.5", "abs", "minmax", "clip", None])
def test_display_hints_accepted(display):
    assert Kernel("k", [[1.0]], display=display).display == display


@pytest.mark.parametrize("display", ["offset", "offset:x", "loud", 128])
def test_display_hints_rejected(display):
    with pytest.raises(KernelError, match="display"):
        Kernel("k", [[1.0]], display=display)


def test_bank_labels_display_and_len():
    bank = KernelBank("b", (Kernel("a", [[1.0]], display="abs"), Kernel("c", [[2.0]], display="abs")))
    assert bank.labels == ["a", "c"]
    assert bank.display == "abs"
    assert len(bank) == 2
    mixed = KernelBank("m", (Kernel("a", [[1.0]], display="abs"), Kernel("c", [[2.0]])))
    assert mixed.display is None


def test_bank_must_not_be_empty():
    with pytest.raises(KernelError, match="no kernels"):
        KernelBank("empty", ())


def test_stack_centres_smaller_kernels_with_zeros():
    small = np.arange(1.0, 10.0).reshape(3, 3)
    large = np.ones((5, 7))
    bank = KernelBank("b", (Kernel("small", small), Kernel("large", large))).stack()
    assert bank.shape == (2, 5, 7)
    expected = np.zeros((5, 7))
    expected[1:4, 2:5] = small
    np.testing.assert_array_equal(bank[0], expected)
    np.testing.assert_array_equal(bank[1], large)


def test_stack_odd_size_difference_names_both_kernels():
    bank = KernelBank("b", (Kernel("two", np.ones((2, 2))), Kernel("three", np.ones((3, 3)))))
    with pytest.raises(KernelError) as info:
        bank.stack()
    assert "'two'" in str(info.value) and "'three'" in str(info.value)


def test_stack_repeats_2d_kernel_over_channels():
    colour = np.arange(12.0).reshape(2, 2, 3)
    bank = KernelBank("b", (Kernel("gray", [[1.0, 2.0], [3.0, 4.0]]), Kernel("rgb", colour)))
    stacked = bank.stack()
    assert stacked.shape == (2, 2, 2, 3)
    for channel in range(3):
        np.testing.assert_array_equal(stacked[0, :, :, channel], [[1, 2], [3, 4]])
    np.testing.assert_array_equal(stacked[1], colour)


def test_stack_rejects_mixed_channel_counts():
    bank = KernelBank("b", (Kernel("c3", np.ones((1, 1, 3))), Kernel("c4", np.ones((1, 1, 4)))))
    with pytest.raises(KernelError, match="C="):
        bank.stack()


# --- inline text ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,0,-1;2,0,-2;1,0,-1", [[1, 0, -1], [2, 0, -2], [1, 0, -1]]),
        ("  1 0 -1 ; 2, 0, -2 ;1,0,-1  ", [[1, 0, -1], [2, 0, -2], [1, 0, -1]]),
        ("1,0,-1;2,0,-2;1,0,-1;", [[1, 0, -1], [2, 0, -2], [1, 0, -1]]),
        ("1 2 3 2 1", [[1, 2, 3, 2, 1]]),
        ("1;2;3;2;1", [[1], [2], [3], [2], [1]]),
        ("1,2;3,4;5,6", [[1, 2], [3, 4], [5, 6]]),
        ("1/16, 2/16; .5e1, -0", [[0.0625, 0.125], [5, 0]]),
        ("3x3: 1,0,-1,2,0,-2,1,0,-1", [[1, 0, -1], [2, 0, -2], [1, 0, -1]]),
        ("3X3:1 0 -1 2 0 -2 1 0 -1", [[1, 0, -1], [2, 0, -2], [1, 0, -1]]),
        ("2x3: 1,2, 3,4, 5,6", [[1, 2], [3, 4], [5, 6]]),  # ImageMagick: W x H
        ("3: 0,1,0,1,-4,1,0,1,0", [[0, 1, 0], [1, -4, 1], [0, 1, 0]]),
        ("3x3: 1,0,-1; 2,0,-2; 1,0,-1", [[1, 0, -1], [2, 0, -2], [1, 0, -1]]),
    ],
)
def test_parse_inline_single(text, expected):
    bank = parse_inline(text)
    assert bank.name == "inline"
    assert bank.labels == ["k0"]
    np.testing.assert_array_equal(bank.kernels[0].weights, np.array(expected, dtype=float))


def test_parse_inline_imagemagick_list_is_a_bank():
    bank = parse_inline("1x3: 1,2,1; 3x1: -1,0,1")
    assert bank.labels == ["k0", "k1"]
    np.testing.assert_array_equal(bank.kernels[0].weights, [[1], [2], [1]])
    np.testing.assert_array_equal(bank.kernels[1].weights, [[-1, 0, 1]])


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("1,0,-1;2,0;1,0,-1", "row 2 has 2 values"),
        ("1,2,3;4,5,6;7,8", "row 3 has 2 values"),
        ("1,0,x", "'x' is not a number"),
        ("1,nan", "finite"),
        ("1;inf", "finite"),
        ("1,1/0", "not a number"),
        ("1;;2", "row 2 is empty"),
        ("", "empty"),
        ("   ", "empty"),
        (";", "row 1 is empty"),
        ("3x3: 1,2,3", "needs 9 values, got 3"),
        ("0x3: ", "at least 1"),
        ("1,,2", "empty value between commas"),
        ("1, ,2;3,4,5", "row 1: empty value"),
        ("1,2,;3,4,5", "row 1: empty value"),
        ("3x3: 1,0,-1,,2,0,-2,1,0,-1", "empty value"),
        ("1_0,2", "'1_0' is not a number"),
    ],
)
def test_parse_inline_errors(text, fragment):
    with pytest.raises(KernelError) as info:
        parse_inline(text)
    assert fragment in str(info.value)


# --- parameters ---------------------------------------------------------------------


def test_parse_params():
    assert parse_params("sigma=2,size=9") == {"sigma": 2.0, "size": 9.0}
    assert parse_params(" sigma = 1.5 , theta=-45 ") == {"sigma": 1.5, "theta": -45.0}
    assert parse_params("a=1/4") == {"a": 0.25}
    assert parse_params("") == {}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("sigma=abc", "sigma='abc' is not a number"),
        ("sigma", "name=value"),
        ("=2", "name=value"),
        ("sigma=2,sigma=3", "given twice"),
        ("sigma=nan", "finite"),
        ("sigma=inf", "finite"),
        ("2sigma=1", "name=value"),
        ("sigma=2,", "name=value"),
    ],
)
def test_parse_params_errors(text, fragment):
    with pytest.raises(KernelError) as info:
        parse_params(text)
    assert fragment in str(info.value)


# --- generators ---------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [0.3, 0.5, 1.0, 1.4, 2.0, 3.7])
def test_gaussian_default_size_sum_and_taps_match_scipy(sigma):
    weights = gaussian(sigma)
    size = 2 * math.ceil(3 * sigma) + 1
    assert weights.shape == (size, size)
    assert weights.sum() == pytest.approx(1.0, abs=1e-12)
    window = windows.gaussian(size, std=sigma)
    reference = np.outer(window, window)
    np.testing.assert_allclose(weights, reference / reference.sum(), rtol=1e-12)


@pytest.mark.parametrize("size", [1, 2, 4, 9])
def test_gaussian_explicit_size(size):
    weights = gaussian(2.0, size)
    window = windows.gaussian(size, std=2.0)
    reference = np.outer(window, window)
    np.testing.assert_allclose(weights, reference / reference.sum(), rtol=1e-12)


def test_box():
    np.testing.assert_array_equal(box(), np.full((3, 3), 1 / 9))
    np.testing.assert_array_equal(box(5), np.full((5, 5), 1 / 25))
    np.testing.assert_array_equal(box((1, 4)), np.full((1, 4), 1 / 4))


@pytest.mark.parametrize("sigma", [0.8, 1.4, 2.5])
def test_log_matches_scipy_gaussian_laplace_minus_mean(sigma):
    weights = log(sigma)
    radius = math.ceil(3 * sigma)
    impulse = np.zeros((2 * radius + 1, 2 * radius + 1))
    impulse[radius, radius] = 1.0
    reference = ndi.gaussian_laplace(impulse, sigma, mode="constant", radius=radius)
    np.testing.assert_allclose(weights, reference - reference.mean(), atol=1e-14)
    assert abs(weights.sum()) < 1e-12
    assert weights[radius, radius] < 0  # negative centre, like laplacian-4


@pytest.mark.parametrize(("sigma1", "sigma2"), [(1.0, 1.6), (2.0, 1.0)])
def test_dog_is_difference_of_scipy_gaussians(sigma1, sigma2):
    weights = dog(sigma1, sigma2)
    size = 2 * math.ceil(3 * max(sigma1, sigma2)) + 1
    assert weights.shape == (size, size)

    def reference(sigma):
        window = windows.gaussian(size, std=sigma)
        outer = np.outer(window, window)
        return outer / outer.sum()

    np.testing.assert_allclose(weights, reference(sigma1) - reference(sigma2), atol=1e-15)
    assert abs(weights.sum()) < 1e-12


def _gabor_formula(row, col, rows, cols, theta, lam, sigma, gamma, psi):
    """The docstring formula at one tap, written independently (y up)."""
    x = col - (cols - 1) / 2
    y = (rows - 1) / 2 - row
    t, p = math.radians(theta), math.radians(psi)
    xr = x * math.cos(t) + y * math.sin(t)
    yr = -x * math.sin(t) + y * math.cos(t)
    return math.exp(-(xr**2 + gamma**2 * yr**2) / (2 * sigma**2)) * math.cos(
        2 * math.pi * xr / lam + p)


@pytest.mark.parametrize(("theta", "psi"), [(0, 0), (30, 0), (45, 90), (-120, 10)])
def test_gabor_matches_formula(theta, psi):
    weights = gabor(theta=theta, lambda_=6, sigma=2.5, gamma=0.7, psi=psi, size=11)
    for row, col in [(0, 0), (5, 5), (2, 9), (10, 3), (7, 1)]:
        expected = _gabor_formula(row, col, 11, 11, theta, 6, 2.5, 0.7, psi)
        assert weights[row, col] == pytest.approx(expected, abs=1e-14)


def test_gabor_orientation_and_defaults():
    vertical = gabor(theta=0, size=15)
    horizontal = gabor(theta=90, size=15)
    # θ turns counter-clockwise as displayed: θ=90 is θ=0 turned by 90° ccw.
    np.testing.assert_allclose(horizontal, np.rot90(vertical), atol=1e-12)
    # θ = 0: the wave runs along columns; the centre row varies, the centre column is the envelope.
    assert np.ptp(np.sign(vertical[7])) > 0 and (vertical[:, 7] > 0).all()
    odd = gabor(theta=0, psi=90, size=15)
    np.testing.assert_allclose(odd, -odd[:, ::-1], atol=1e-12)
    # default sigma = 0.56 λ, default size holds ±3σ along x' and ±3σ/γ along y'
    auto = gabor(theta=0, lambda_=8, gamma=0.5)
    sigma = 0.56 * 8
    assert auto.shape == (2 * math.ceil(3 * sigma / 0.5) + 1, 2 * math.ceil(3 * sigma) + 1)


@pytest.mark.parametrize(
    ("length", "angle", "expected"),
    [
        (9, 0, np.full((1, 9), 1 / 9)),
        (5, 90, np.full((5, 1), 1 / 5)),
        (5, 180, np.full((1, 5), 1 / 5)),
        (5, 45, np.fliplr(np.eye(5)) / 5),
        (5, -45, np.eye(5) / 5),
        (1, 30, np.ones((1, 1))),
    ],
)
def test_motion(length, angle, expected):
    np.testing.assert_allclose(motion(length, angle), expected, atol=1e-15)


@given(st.integers(1, 25), st.floats(-360, 360, allow_nan=False))
def test_motion_has_length_equal_taps(length, angle):
    weights = motion(length, angle)
    assert np.count_nonzero(weights) == length
    assert weights.sum() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: gaussian(-1), "`sigma` must be a positive number, got -1"),
        (lambda: gaussian(0), "`sigma`"),
        (lambda: gaussian(1, 0), "`size` must be a positive integer, got 0"),
        (lambda: gaussian(1, 2.5), "`size` must be a positive integer, got 2.5"),
        (lambda: gaussian(1000), "too large"),
        (lambda: box(0), "`size` must be a positive integer, got 0"),
        (lambda: box(5000), "at most"),
        (lambda: box((1, 2, 3)), "pair"),
        (lambda: log(-2), "`sigma`"),
        (lambda: dog(1, 1), "must differ"),
        (lambda: dog(1, -1), "`sigma2`"),
        (lambda: gabor(lambda_=0), "`lambda`"),
        (lambda: gabor(gamma=-1), "`gamma`"),
        (lambda: gabor(theta=float("inf")), "`theta`"),
        (lambda: motion(0), "`length`"),
    ],
)
def test_generator_errors(call, fragment):
    with pytest.raises(KernelError) as info:
        call()
    assert fragment in str(info.value)


def test_make_parametric_labels_and_errors():
    assert make_parametric("gaussian", {"sigma": 2}).labels == ["gaussian-s2"]
    assert make_parametric("gaussian", {}).labels == ["gaussian"]
    assert make_parametric("gaussian", {"sigma": 1.5, "size": 9}).labels == ["gaussian-s1p5-n9"]
    assert make_parametric("box", {"size": 5}).labels == ["box-5"]
    assert make_parametric("gabor", {"theta": -45, "lambda": 8}).labels == ["gabor-t-45-l8"]
    np.testing.assert_array_equal(make_parametric("box", {"size": 5}).kernels[0].weights, box(5))
    with pytest.raises(KernelError, match="no parameter 'sigm'; it takes sigma, size"):
        make_parametric("gaussian", {"sigm": 2})
    with pytest.raises(KernelError, match="positive integer"):
        make_parametric("box", {"size": 2.5})


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_every_generator_default_is_finite(name):
    weights = make_parametric(name, {}).kernels[0].weights
    assert np.isfinite(weights).all() and weights.ndim == 2


# --- separability ---------------------------------------------------------------------

SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=float)


def test_sobel_factors_are_integers():
    column, row = separable_factors(SOBEL_X)
    np.testing.assert_array_equal(column, [1, 2, 1])
    np.testing.assert_array_equal(row, [-1, 0, 1])


@pytest.mark.parametrize(
    "weights",
    [SOBEL_X, SOBEL_X.T, gaussian(1.3), gaussian(2.0, 4), box(4), box((1, 5)), np.ones((3, 1)),
     np.zeros((3, 3)), np.array([[7.0]]), np.outer([1e-8, 3, -2], [5, 1e3, 0.25])],
)
def test_separable_factors_reconstruct(weights):
    factors = separable_factors(weights)
    assert factors is not None
    column, row = factors
    assert column.shape == (weights.shape[0],) and row.shape == (weights.shape[1],)
    np.testing.assert_allclose(np.outer(column, row), weights, rtol=0,
                               atol=1e-10 * max(np.abs(weights).max(), 1e-300))


@pytest.mark.parametrize(
    "weights",
    [
        np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], float),
        np.array([[5, 5, 5], [-3, 0, -3], [-3, -3, -3]], float),
        np.array([[1, 0], [0, -1]], float),
        gabor(theta=45, size=9),
        log(1.0),
        dog(),
    ],
)
def test_not_separable(weights):
    assert np.linalg.matrix_rank(weights) > 1
    assert separable_factors(weights) is None


def test_separable_factors_only_for_2d():
    assert separable_factors(np.ones((3, 3, 2))) is None


@given(
    st.lists(st.floats(-100, 100, allow_nan=False), min_size=1, max_size=7),
    st.lists(st.floats(-100, 100, allow_nan=False), min_size=1, max_size=7),
)
def test_separable_factors_of_outer_products(column, row):
    weights = np.outer(column, row)
    factors = separable_factors(weights)
    assert factors is not None
    np.testing.assert_allclose(np.outer(*factors), weights, rtol=0,
                               atol=1e-10 * np.abs(weights).max() + 1e-300)
