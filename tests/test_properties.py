"""Hypothesis properties of conv2d / conv_transpose2d, for every registered strategy.

Linearity (image and weights), the identity kernel, stride = stride 1 then
``[::s, ::s]``, transposed = adjoint of forward, output shape =
``output_size()`` (errors included) and flip = correlation with the rotated
kernel. Arrays come from a drawn seed (float64), so each example is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from convcli import ShapeError, conv2d, conv_transpose2d, output_size, resolve_padding2d
from convcli.engines import FORWARD_ENGINES, TRANSPOSE_ENGINES

FORWARD_METHODS = [*sorted(FORWARD_ENGINES), "auto"]
TRANSPOSE_METHODS = [*sorted(TRANSPOSE_ENGINES), "auto"]
LINEAR_BORDERS = ("zero", "reflect", "symmetric", "replicate", "wrap")
ALL_BORDERS = (*LINEAR_BORDERS, "constant:-1.5")
EXAMPLES = 40


def assert_close(actual: np.ndarray, expected: np.ndarray) -> None:
    """float64: max abs error ≤ 1e-9·max(1, max|expected|)."""
    assert actual.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max()))
    assert float(np.abs(actual - expected).max()) <= 1e-9 * scale


@dataclass
class Problem:
    """A forward problem whose geometry always fits (checked when drawn)."""

    image: np.ndarray
    bank: np.ndarray
    kwargs: dict

    @property
    def n_channels(self) -> int:
        return self.image.shape[2]

    @property
    def kernel_shape(self) -> tuple[int, int]:
        return self.bank.shape[1:3] if self.bank.ndim == 4 else self.bank.shape[-2:]


pairs = st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3)))
explicit_pads = st.one_of(
    st.integers(0, 3),
    st.tuples(st.integers(0, 3), st.integers(0, 3)),
    st.tuples(*[st.integers(0, 3)] * 4),
)


def _as_pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _four(padding: Any) -> tuple[int, int, int, int]:
    if isinstance(padding, int):
        return (padding,) * 4
    if len(padding) == 2:
        return (padding[0], padding[0], padding[1], padding[1])
    return tuple(padding)


@st.composite
def problems(draw, *, paddings=explicit_pads, borders=ALL_BORDERS,
             channels=("depthwise", "sum", "gray")) -> Problem:
    """Random image (H, W ≤ 9, C ≤ 3), bank (F ≤ 3, k ≤ 4, rank 2–4) and geometry that fits."""
    mode = draw(st.sampled_from(channels))
    rows, cols, n_channels = draw(st.integers(3, 9)), draw(st.integers(3, 9)), draw(st.integers(1, 3))
    kh, kw, n_filters = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    stride, dilation, padding = draw(pairs), draw(pairs), draw(paddings)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    image = rng.normal(size=(rows, cols, n_channels))
    rank = draw(st.sampled_from((2, 3, 4)))
    bank_channels = 1 if mode == "gray" else n_channels
    shape = {2: (kh, kw), 3: (n_filters, kh, kw), 4: (n_filters, kh, kw, bank_channels)}[rank]
    bank = rng.normal(size=shape)
    kwargs = {"stride": stride, "dilation": dilation, "padding": padding, "channels": mode,
              "border": draw(st.sampled_from(borders))}
    pads = resolve_padding2d((rows, cols), (kh, kw), stride=stride, padding=padding,
                             dilation=dilation)
    (dr, dc) = _as_pair(dilation)
    fits = (rows + pads[0] + pads[1] >= dr * (kh - 1) + 1
            and cols + pads[2] + pads[3] >= dc * (kw - 1) + 1)
    assume(fits)
    return Problem(image=image, bank=bank, kwargs=kwargs)


# ------------------------------------------------------------------ linearity
@pytest.mark.parametrize("method", FORWARD_METHODS)
@settings(max_examples=EXAMPLES)
@given(problem=problems(borders=LINEAR_BORDERS), a=st.floats(-3, 3), b=st.floats(-3, 3))
def test_linear_in_the_image(problem: Problem, a: float, b: float, method: str) -> None:
    """conv(a·x + b·y) = a·conv(x) + b·conv(y) for every linear border."""
    other = np.random.default_rng(1).normal(size=problem.image.shape)
    combined = conv2d(a * problem.image + b * other, problem.bank, method=method, **problem.kwargs)
    parts = (a * conv2d(problem.image, problem.bank, method=method, **problem.kwargs)
             + b * conv2d(other, problem.bank, method=method, **problem.kwargs))
    assert_close(combined, parts)


@pytest.mark.parametrize("method", FORWARD_METHODS)
@settings(max_examples=EXAMPLES)
@given(problem=problems(), a=st.floats(-3, 3), b=st.floats(-3, 3))
def test_linear_in_the_weights(problem: Problem, a: float, b: float, method: str) -> None:
    """conv(x, a·K + b·L) = a·conv(x, K) + b·conv(x, L) for every border (constant:V too)."""
    other = np.random.default_rng(2).normal(size=problem.bank.shape)
    combined = conv2d(problem.image, a * problem.bank + b * other, method=method, **problem.kwargs)
    parts = (a * conv2d(problem.image, problem.bank, method=method, **problem.kwargs)
             + b * conv2d(problem.image, other, method=method, **problem.kwargs))
    assert_close(combined, parts)


# ------------------------------------------------------------------ identity kernel
@pytest.mark.parametrize("method", FORWARD_METHODS)
@settings(max_examples=EXAMPLES)
@given(
    rows=st.integers(1, 9), cols=st.integers(1, 9), n_channels=st.integers(1, 3),
    half=st.tuples(st.integers(0, 2), st.integers(0, 2)), dilation=pairs,
    border=st.sampled_from(ALL_BORDERS), padding=st.sampled_from(("same", "valid")),
)
def test_identity_kernel_returns_the_image(rows, cols, n_channels, half, dilation, border,
                                           padding, method: str) -> None:
    """A centred delta (odd kernel): ``same`` gives the image, ``valid`` its interior."""
    kh, kw = 2 * half[0] + 1, 2 * half[1] + 1
    dr, dc = _as_pair(dilation)
    image = np.random.default_rng(rows * 10 + cols).normal(size=(rows, cols, n_channels))
    delta = np.zeros((kh, kw))
    delta[half] = 1.0
    if padding == "same":
        expected = image
    else:
        out_rows, out_cols = rows - dr * (kh - 1), cols - dc * (kw - 1)
        if out_rows < 1 or out_cols < 1:
            with pytest.raises(ShapeError):
                conv2d(image, delta, padding=padding, dilation=dilation, method=method)
            return
        expected = image[dr * half[0] : dr * half[0] + out_rows, dc * half[1] : dc * half[1] + out_cols]
    out = conv2d(image, delta, padding=padding, border=border, dilation=dilation, method=method)
    assert_close(out, expected)


# ------------------------------------------------------------------ stride
@pytest.mark.parametrize("method", FORWARD_METHODS)
@settings(max_examples=EXAMPLES)
@given(problem=problems(paddings=st.one_of(explicit_pads, st.sampled_from(("valid", "full", "same")))))
def test_stride_is_stride_one_then_slicing(problem: Problem, method: str) -> None:
    """conv(stride=s, pads) = conv(stride=1, same pads)[::s_y, ::s_x] (``same`` made explicit)."""
    kwargs = dict(problem.kwargs)
    sr, sc = _as_pair(kwargs["stride"])
    pads = resolve_padding2d(problem.image.shape[:2], problem.kernel_shape,
                             stride=kwargs["stride"], padding=kwargs["padding"],
                             dilation=kwargs["dilation"])
    strided = conv2d(problem.image, problem.bank, method=method, **kwargs)
    kwargs.update(stride=1, padding=pads)
    dense = conv2d(problem.image, problem.bank, method=method, **kwargs)
    assert_close(strided, dense[::sr, ::sc])


# ------------------------------------------------------------------ adjoint
# every forward strategy against the auto transposed one and vice versa (linear in the counts)
ADJOINT_PAIRS = sorted({*((f, "auto") for f in FORWARD_METHODS),
                        *(("auto", t) for t in TRANSPOSE_METHODS)})


@pytest.mark.parametrize("method", ADJOINT_PAIRS, ids=["+".join(p) for p in ADJOINT_PAIRS])
@settings(max_examples=EXAMPLES)
@given(problem=problems(borders=("zero",), channels=("sum", "depthwise")))
def test_transposed_is_the_adjoint(problem: Problem, method: tuple[str, str]) -> None:
    """⟨conv2d(x, K), y⟩ = ⟨x, conv_transpose2d(y, K)⟩ (output_padding chosen so shapes match).

    sum: the transposed bank is ``K.transpose(3, 1, 2, 0)`` (C ← F); depthwise:
    ``x_c`` receives ``Σ_f convT(y[f·C + c], K[f, :, :, c])``.
    """
    forward_method, transpose_method = method
    x, kwargs = problem.image, dict(problem.kwargs)
    n_channels = problem.n_channels
    bank = problem.bank
    if bank.ndim == 2:
        bank = bank[None]
    if bank.ndim == 3:
        bank = np.repeat(bank[..., None], n_channels, axis=3)
    kh, kw = bank.shape[1:3]
    pads = resolve_padding2d(x.shape[:2], (kh, kw), stride=kwargs["stride"],
                             padding=kwargs["padding"], dilation=kwargs["dilation"])
    forward = conv2d(x, bank, method=forward_method, **kwargs)
    y = np.random.default_rng(3).normal(size=forward.shape)
    (sr, sc), (dr, dc) = _as_pair(kwargs["stride"]), _as_pair(kwargs["dilation"])
    output_padding = ((x.shape[0] + pads[0] + pads[1] - dr * (kh - 1) - 1) % sr,
                      (x.shape[1] + pads[2] + pads[3] - dc * (kw - 1) - 1) % sc)
    t_kwargs = {"stride": kwargs["stride"], "dilation": kwargs["dilation"], "padding": pads,
                "output_padding": output_padding, "method": transpose_method}
    if kwargs["channels"] == "sum":
        back = conv_transpose2d(y, bank.transpose(3, 1, 2, 0), channels="sum", **t_kwargs)
    else:
        n_filters = bank.shape[0]
        back = sum(
            conv_transpose2d(y[:, :, f * n_channels : (f + 1) * n_channels], bank[f : f + 1],
                             channels="depthwise", **t_kwargs)
            for f in range(n_filters)
        )
    assert back.shape == x.shape
    left, right = float(np.vdot(forward, y)), float(np.vdot(x, back))
    assert abs(left - right) <= 1e-9 * max(1.0, abs(left), float(np.abs(forward).sum()))


# ------------------------------------------------------------------ output shape
paddings_any = st.one_of(
    st.sampled_from(("valid", "same", "full")), st.integers(0, 4),
    st.tuples(st.integers(0, 4), st.integers(0, 4)), st.tuples(*[st.integers(0, 4)] * 4),
)


def _axis_padding(padding: Any, axis: int) -> Any:
    if isinstance(padding, str):
        return padding
    four = _four(padding)
    return four[2 * axis : 2 * axis + 2]


@pytest.mark.parametrize("method", FORWARD_METHODS)
@settings(max_examples=EXAMPLES)
@given(rows=st.integers(1, 12), cols=st.integers(1, 12), kh=st.integers(1, 7),
       kw=st.integers(1, 7), stride=pairs, dilation=pairs, padding=paddings_any,
       channels=st.sampled_from(("depthwise", "sum")), n_filters=st.integers(1, 3))
def test_forward_shape_is_output_size(rows, cols, kh, kw, stride, dilation, padding, channels,
                                      n_filters, method: str) -> None:
    """(H', W') per axis from output_size; where output_size raises, conv2d raises too."""
    image, bank = np.ones((rows, cols, 2)), np.ones((n_filters, kh, kw))
    sizes = []
    for axis, (n, k) in enumerate(((rows, kh), (cols, kw))):
        try:
            sizes.append(output_size(n, k, stride=_as_pair(stride)[axis],
                                     padding=_axis_padding(padding, axis),
                                     dilation=_as_pair(dilation)[axis]))
        except ShapeError:
            with pytest.raises(ShapeError):
                conv2d(image, bank, stride=stride, padding=padding, dilation=dilation,
                       channels=channels, method=method)
            return
    out = conv2d(image, bank, stride=stride, padding=padding, dilation=dilation,
                 channels=channels, method=method)
    n_out = n_filters * 2 if channels == "depthwise" else n_filters
    assert out.shape == (*sizes, n_out)


@pytest.mark.parametrize("method", TRANSPOSE_METHODS)
@settings(max_examples=EXAMPLES)
@given(rows=st.integers(1, 6), cols=st.integers(1, 6), kh=st.integers(1, 5),
       kw=st.integers(1, 5), stride=pairs, dilation=pairs,
       padding=st.one_of(st.sampled_from(("valid", "same")), st.integers(0, 4),
                         st.tuples(st.integers(0, 4), st.integers(0, 4)),
                         st.tuples(*[st.integers(0, 4)] * 4)),
       output_padding=st.tuples(st.integers(0, 3), st.integers(0, 3)))
def test_transposed_shape_is_output_size(rows, cols, kh, kw, stride, dilation, padding,
                                         output_padding, method: str) -> None:
    image, bank = np.ones((rows, cols, 2)), np.ones((kh, kw))
    kwargs = {"stride": stride, "padding": padding, "dilation": dilation,
              "output_padding": output_padding, "method": method}
    sizes = []
    for axis, (n, k) in enumerate(((rows, kh), (cols, kw))):
        try:
            sizes.append(output_size(n, k, stride=_as_pair(stride)[axis],
                                     padding=_axis_padding(padding, axis),
                                     dilation=_as_pair(dilation)[axis], transposed=True,
                                     output_padding=output_padding[axis]))
        except ShapeError:
            with pytest.raises(ShapeError):
                conv_transpose2d(image, bank, **kwargs)
            return
    assert conv_transpose2d(image, bank, **kwargs).shape == (*sizes, 2)


# ------------------------------------------------------------------ flip
@pytest.mark.parametrize("method", FORWARD_METHODS)
@settings(max_examples=EXAMPLES)
@given(problem=problems(paddings=st.one_of(explicit_pads, st.sampled_from(("valid", "same", "full")))))
def test_flip_is_correlation_with_the_rotated_kernel(problem: Problem, method: str) -> None:
    rotated = np.flip(problem.bank, axis=(-2, -1) if problem.bank.ndim < 4 else (1, 2))
    flipped = conv2d(problem.image, problem.bank, flip=True, method=method, **problem.kwargs)
    assert_close(flipped, conv2d(problem.image, rotated, method=method, **problem.kwargs))


@pytest.mark.parametrize("method", TRANSPOSE_METHODS)
@settings(max_examples=EXAMPLES)
@given(problem=problems(borders=("zero",), channels=("sum", "depthwise", "gray")))
def test_transposed_flip_is_the_rotated_kernel(problem: Problem, method: str) -> None:
    rotated = np.flip(problem.bank, axis=(-2, -1) if problem.bank.ndim < 4 else (1, 2))
    kwargs = {"stride": problem.kwargs["stride"], "dilation": problem.kwargs["dilation"],
              "channels": problem.kwargs["channels"], "method": method}
    flipped = conv_transpose2d(problem.image, problem.bank, flip=True, **kwargs)
    assert_close(flipped, conv_transpose2d(problem.image, rotated, **kwargs))
