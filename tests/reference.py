"""Reference implementations that convcli is checked against.

Nothing here imports convcli: every number comes from a peer library and the
formulas of ``shared/SPEC.md`` written out again, independently.

* :func:`scipy_conv2d` — ``numpy.pad`` for the border, one
  ``scipy.signal.correlate2d`` (or ``convolve2d`` for ``flip``) per kernel and
  channel on the zero-dilated kernel, then ``[::s_y, ::s_x]`` for the stride.
* :func:`numpy_conv_transpose2d` — the scatter-add of the SPEC written as a
  loop over input pixels, then the crop.
* :func:`torch_conv2d` / :func:`torch_conv_transpose2d` — PyTorch
  ``torch.nn.functional`` (only when torch imports).
* :func:`reference_png_decode` — a PNG decoder written from the PNG spec
  (section 9), for the PNG encoder and the 16-bit colour files Pillow cannot read.

All references compute in float64 and return ``(H', W', N)`` arrays, or
``None`` when the geometry has no output (an error is expected).
"""

from __future__ import annotations

import itertools
import random
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from scipy import signal

LUMA = (0.299, 0.587, 0.114)

#: border name → (numpy.pad mode, torch.nn.functional.pad mode)
BORDER_MODES = {
    "zero": ("constant", "constant"),
    "constant": ("constant", "constant"),
    "reflect": ("reflect", "reflect"),
    "symmetric": ("symmetric", None),
    "replicate": ("edge", "replicate"),
    "wrap": ("wrap", "circular"),
}

BORDERS = ("zero", "constant:2.5", "reflect", "symmetric", "replicate", "wrap")


# --------------------------------------------------------------------- geometry
def as_pair(value: Any) -> tuple[int, int]:
    """An int or a (rows, cols) pair → (rows, cols)."""
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def k_eff(k: int, d: int) -> int:
    return d * (k - 1) + 1


def forward_pads_1d(n: int, k: int, s: int, d: int, padding: Any) -> tuple[int, int]:
    """(before, after) for one axis, from the SPEC table (``padding`` already per axis)."""
    ke = k_eff(k, d)
    if padding == "valid":
        return 0, 0
    if padding == "full":
        return ke - 1, ke - 1
    if padding == "same":
        out = -(-n // s)
        total = max((out - 1) * s + ke - n, 0)
        return total // 2, total - total // 2
    return padding


def split_padding(padding: Any) -> tuple[Any, Any]:
    """A padding argument → per-axis (rows, cols) values: names, or (before, after)."""
    if isinstance(padding, str):
        return padding, padding
    if isinstance(padding, int):
        return (padding, padding), (padding, padding)
    if len(padding) == 2:
        return (padding[0], padding[0]), (padding[1], padding[1])
    return (padding[0], padding[1]), (padding[2], padding[3])


def forward_pads(shape: tuple[int, int], kernel: tuple[int, int], stride: Any, dilation: Any,
                 padding: Any) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) for a forward convolution."""
    (sr, sc), (dr, dc) = as_pair(stride), as_pair(dilation)
    rows_pad, cols_pad = split_padding(padding)
    top, bottom = forward_pads_1d(shape[0], kernel[0], sr, dr, rows_pad)
    left, right = forward_pads_1d(shape[1], kernel[1], sc, dc, cols_pad)
    return top, bottom, left, right


def transpose_pads_1d(k: int, s: int, d: int, op: int, padding: Any) -> tuple[int, int]:
    """Rows cropped (before, after) for one axis of a transposed convolution.

    ``same`` (ONNX SAME_UPPER): H' = H·s, total = k_eff − s + op, before = total // 2
    (a negative total crops nothing and appends zero rows).
    """
    if padding == "valid":
        return 0, 0
    if padding == "same":
        total = k_eff(k, d) - s + op
        before = max(total, 0) // 2
        return before, total - before
    return padding


# --------------------------------------------------------------------- inputs
def normalise_bank(bank: Any, n_channels: int) -> np.ndarray:
    """(kh, kw) / (F, kh, kw) / (F, kh, kw, C) → float64 (F, kh, kw, C)."""
    weights = np.asarray(bank, dtype=np.float64)
    if weights.ndim == 2:
        weights = weights[None]
    if weights.ndim == 3:
        weights = np.repeat(weights[..., None], n_channels, axis=3)
    elif weights.shape[3] == 1:
        weights = np.repeat(weights, n_channels, axis=3)
    return weights


def prepare_image(image: Any, channels: str) -> np.ndarray:
    """(H, W) / (H, W, C) → float64 (H, W, C); ``gray`` → luminance, one channel."""
    array = np.asarray(image, dtype=np.float64)
    if array.ndim == 2:
        array = array[:, :, None]
    if channels == "gray" and array.shape[2] >= 3:
        array = sum(w * array[:, :, i] for i, w in enumerate(LUMA))[:, :, None]
    elif channels == "gray":
        array = array[:, :, :1]
    return array


def border_parts(border: str) -> tuple[str, float]:
    name, _, value = border.partition(":")
    return name, float(value) if value else 0.0


def numpy_pad(image: np.ndarray, pads: tuple[int, int, int, int], border: str) -> np.ndarray:
    """Pad (H, W, C) by (top, bottom, left, right) with ``numpy.pad``."""
    name, value = border_parts(border)
    mode = BORDER_MODES[name][0]
    widths = ((pads[0], pads[1]), (pads[2], pads[3]), (0, 0))
    if mode == "constant":
        return np.pad(image, widths, mode="constant", constant_values=value)
    return np.pad(image, widths, mode=mode)


def dilate_kernel(kernel: np.ndarray, dilation: tuple[int, int]) -> np.ndarray:
    """Insert ``d − 1`` zeros between taps: (kh, kw) → (k_eff_h, k_eff_w)."""
    dr, dc = dilation
    kh, kw = kernel.shape
    out = np.zeros((k_eff(kh, dr), k_eff(kw, dc)))
    out[::dr, ::dc] = kernel
    return out


def add_bias(out: np.ndarray, bias: Any, n_filters: int) -> np.ndarray:
    values = np.asarray(bias, dtype=np.float64)
    if values.ndim == 0:
        return out + values
    if values.size == out.shape[2]:
        return out + values
    return out + np.repeat(values, out.shape[2] // n_filters)


# --------------------------------------------------------------------- scipy forward
def scipy_conv2d(image: Any, bank: Any, *, stride: Any = 1, padding: Any = "valid",
                 border: str = "zero", dilation: Any = 1, channels: str = "depthwise",
                 flip: bool = False, bias: Any = 0.0) -> np.ndarray | None:
    """conv2d from numpy.pad + scipy.signal.correlate2d/convolve2d + slicing.

    Returns ``None`` when the kernel does not fit the padded input.
    """
    array = prepare_image(image, channels)
    weights = normalise_bank(bank, array.shape[2])
    strides, dilations = as_pair(stride), as_pair(dilation)
    kh, kw = weights.shape[1:3]
    pads = forward_pads(array.shape[:2], (kh, kw), strides, dilations, padding)
    padded = numpy_pad(array, pads, border)
    if padded.shape[0] < k_eff(kh, dilations[0]) or padded.shape[1] < k_eff(kw, dilations[1]):
        return None
    scipy_op = signal.convolve2d if flip else signal.correlate2d
    planes = []  # (F, C) grid of (H', W') planes
    for f in range(weights.shape[0]):
        row = []
        for c in range(array.shape[2]):
            kernel = dilate_kernel(weights[f, :, :, c], dilations)
            full = scipy_op(padded[:, :, c], kernel, mode="valid")
            row.append(full[:: strides[0], :: strides[1]])
        planes.append(row)
    stack = np.array(planes)  # (F, C, H', W')
    # depthwise is kernel-major (f·C + c); sum adds the channels
    out = stack.reshape(-1, *stack.shape[2:]) if channels == "depthwise" else stack.sum(axis=1)
    return add_bias(np.moveaxis(out, 0, -1), bias, weights.shape[0])


# --------------------------------------------------------------------- numpy transposed
def numpy_conv_transpose2d(image: Any, bank: Any, *, stride: Any = 1, padding: Any = 0,
                           output_padding: Any = 0, dilation: Any = 1,
                           channels: str = "depthwise", flip: bool = False,
                           bias: Any = 0.0) -> np.ndarray | None:
    """Transposed convolution as a literal scatter-add loop over input pixels.

    ``full[s·i + d·m, s·j + d·n, f] += I[i, j, c] · K[f, m, n, c]``, then crop
    ``pad_top`` rows and keep ``H'`` rows (zeros past the scatter extent).
    Returns ``None`` when ``H' < 1``.
    """
    array = prepare_image(image, channels)
    weights = normalise_bank(bank, array.shape[2])
    if flip:
        weights = weights[:, ::-1, ::-1]
    (sr, sc), (dr, dc), (opr, opc) = as_pair(stride), as_pair(dilation), as_pair(output_padding)
    n_filters, kh, kw, n_channels = weights.shape
    rows, cols = array.shape[:2]
    rows_pad, cols_pad = split_padding(padding)
    top, bottom = transpose_pads_1d(kh, sr, dr, opr, rows_pad)
    left, right = transpose_pads_1d(kw, sc, dc, opc, cols_pad)
    out_rows = (rows - 1) * sr - top - bottom + k_eff(kh, dr) + opr
    out_cols = (cols - 1) * sc - left - right + k_eff(kw, dc) + opc
    if out_rows < 1 or out_cols < 1:
        return None
    depthwise = channels == "depthwise"
    n_out = n_filters * n_channels if depthwise else n_filters
    full = np.zeros(((rows - 1) * sr + k_eff(kh, dr) + out_rows + top,
                     (cols - 1) * sc + k_eff(kw, dc) + out_cols + left, n_out))
    for i in range(rows):
        for j in range(cols):
            for m in range(kh):
                for n in range(kw):
                    y, x = sr * i + dr * m, sc * j + dc * n
                    taps = weights[:, m, n, :] * array[i, j, :]  # (F, C)
                    full[y, x] += taps.ravel() if depthwise else taps.sum(axis=1)
    out = full[top : top + out_rows, left : left + out_cols]
    return add_bias(out, bias, n_filters)


# --------------------------------------------------------------------- torch
def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def torch_pad_possible(shape: tuple[int, int], pads: tuple[int, int, int, int],
                       border: str) -> bool:
    """Whether ``torch.nn.functional.pad`` supports these pads (it does not repeat reflections)."""
    name, _ = border_parts(border)
    torch_mode = BORDER_MODES[name][1]
    if torch_mode is None:
        return False
    if torch_mode == "reflect":
        return max(pads[:2]) < shape[0] and max(pads[2:]) < shape[1]
    if torch_mode == "circular":
        return max(pads[:2]) <= shape[0] and max(pads[2:]) <= shape[1]
    return True


def _torch_image(array: np.ndarray):
    import torch

    return torch.from_numpy(np.array(array.transpose(2, 0, 1)[None], order="C"))


def _from_torch(result, depthwise: bool, n_filters: int, n_channels: int) -> np.ndarray:
    """torch (1, N, H', W') → (H', W', N); depthwise channel-major c·F + f → kernel-major f·C + c."""
    out = result[0].numpy()
    if depthwise:
        out = out.reshape(n_channels, n_filters, *out.shape[1:]).transpose(1, 0, 2, 3)
        out = out.reshape(n_filters * n_channels, *out.shape[2:])
    return np.ascontiguousarray(out.transpose(1, 2, 0))


def torch_conv2d(image: Any, bank: Any, *, stride: Any = 1, padding: Any = "valid",
                 border: str = "zero", dilation: Any = 1, channels: str = "depthwise",
                 flip: bool = False, bias: Any = 0.0) -> np.ndarray | None:
    """conv2d via ``torch.nn.functional.pad`` + ``conv2d`` (float64).

    Borders with no torch mode (``symmetric``) or pads torch cannot make
    (reflect/circular wider than the image) are padded with ``numpy.pad``;
    the convolution is torch's in every case. ``padding='same'`` is passed to
    torch as such at stride 1 with a zero border, otherwise the SPEC pads are
    made explicit. Returns ``None`` when the kernel does not fit.
    """
    import torch
    import torch.nn.functional as tf

    array = prepare_image(image, channels)
    weights = normalise_bank(bank, array.shape[2])
    if flip:
        weights = weights[:, ::-1, ::-1]
    strides, dilations = as_pair(stride), as_pair(dilation)
    n_filters, kh, kw, n_channels = weights.shape
    pads = forward_pads(array.shape[:2], (kh, kw), strides, dilations, padding)
    if (array.shape[0] + pads[0] + pads[1] < k_eff(kh, dilations[0])
            or array.shape[1] + pads[2] + pads[3] < k_eff(kw, dilations[1])):
        return None
    depthwise = channels == "depthwise"
    if depthwise:  # groups=C, weight (C·F, 1, kh, kw), channel-major
        torch_weights = weights.transpose(3, 0, 1, 2).reshape(n_channels * n_filters, 1, kh, kw)
        groups = n_channels
    else:  # groups=1, weight (F, C, kh, kw)
        torch_weights = weights.transpose(0, 3, 1, 2)
        groups = 1
    torch_weights = torch.from_numpy(np.array(torch_weights, order="C"))
    name, value = border_parts(border)
    native_same = padding == "same" and strides == (1, 1) and name == "zero"
    x = _torch_image(array)
    conv_padding: Any = 0
    if native_same:
        conv_padding = "same"
    elif any(pads):
        if torch_pad_possible(array.shape[:2], pads, border):
            torch_mode = BORDER_MODES[name][1]
            torch_pads = (pads[2], pads[3], pads[0], pads[1])
            if torch_mode == "constant":
                x = tf.pad(x, torch_pads, mode="constant", value=value)
            else:
                x = tf.pad(x, torch_pads, mode=torch_mode)
        else:
            x = _torch_image(numpy_pad(array, pads, border))
    result = tf.conv2d(x, torch_weights, stride=strides, padding=conv_padding,
                       dilation=dilations, groups=groups)
    out = _from_torch(result, depthwise, n_filters, n_channels)
    return add_bias(out, bias, n_filters)


def torch_conv_transpose2d(image: Any, bank: Any, *, stride: Any = 1, padding: Any = 0,
                           output_padding: Any = 0, dilation: Any = 1,
                           channels: str = "depthwise", flip: bool = False,
                           bias: Any = 0.0) -> np.ndarray | None:
    """conv_transpose2d via ``torch.nn.functional.conv_transpose2d`` (float64).

    Weight ``W[c, f, m, n] = K[f, m, n, c]`` (``groups=1``) or, depthwise,
    ``groups=C`` with ``W[c, f] = K[f, :, :, c]``. Symmetric pads go to torch
    as ``padding``; asymmetric ones and ``same`` (torch has no ``same`` here)
    run torch with ``padding=0`` and crop its full result.
    """
    import torch
    import torch.nn.functional as tf

    array = prepare_image(image, channels)
    weights = normalise_bank(bank, array.shape[2])
    if flip:
        weights = weights[:, ::-1, ::-1]
    (sr, sc), (dr, dc), (opr, opc) = as_pair(stride), as_pair(dilation), as_pair(output_padding)
    n_filters, kh, kw, n_channels = weights.shape
    rows, cols = array.shape[:2]
    rows_pad, cols_pad = split_padding(padding)
    top, bottom = transpose_pads_1d(kh, sr, dr, opr, rows_pad)
    left, right = transpose_pads_1d(kw, sc, dc, opc, cols_pad)
    out_rows = (rows - 1) * sr - top - bottom + k_eff(kh, dr) + opr
    out_cols = (cols - 1) * sc - left - right + k_eff(kw, dc) + opc
    if out_rows < 1 or out_cols < 1:
        return None
    depthwise = channels == "depthwise"
    torch_weights = weights.transpose(3, 0, 1, 2)  # (C, F, kh, kw)
    groups = n_channels if depthwise else 1
    torch_weights = torch.from_numpy(np.array(torch_weights, order="C"))
    x = _torch_image(array)
    symmetric = top == bottom and left == right
    if symmetric:
        result = tf.conv_transpose2d(x, torch_weights, stride=(sr, sc), padding=(top, left),
                                     output_padding=(opr, opc), groups=groups,
                                     dilation=(dr, dc))
        out = _from_torch(result, depthwise, n_filters, n_channels)
    else:
        result = tf.conv_transpose2d(x, torch_weights, stride=(sr, sc), padding=0,
                                     groups=groups, dilation=(dr, dc))
        full = _from_torch(result, depthwise, n_filters, n_channels)
        out = np.zeros((out_rows, out_cols, full.shape[2]))
        kept = full[top : top + out_rows, left : left + out_cols]
        out[: kept.shape[0], : kept.shape[1]] = kept
    assert out.shape[:2] == (out_rows, out_cols)
    return add_bias(out, bias, n_filters)


# --------------------------------------------------------------------- comparing
def tolerance(reference: np.ndarray, dtype: Any) -> float:
    """Max abs error allowed: 1e-4·max(1, max|ref|) in float32, 1e-9·max(1, max|ref|) in float64."""
    scale = max(1.0, float(np.abs(reference).max())) if reference.size else 1.0
    return (1e-9 if np.dtype(dtype) == np.float64 else 1e-4) * scale


def assert_matches(actual: np.ndarray, reference: np.ndarray, dtype: Any, what: str = "") -> None:
    """Same shape, the expected dtype, and max abs error within :func:`tolerance`."""
    assert actual.shape == reference.shape, f"{what}: shape {actual.shape} != {reference.shape}"
    assert actual.dtype == np.dtype(dtype), f"{what}: dtype {actual.dtype} != {np.dtype(dtype)}"
    error = float(np.abs(actual.astype(np.float64) - reference).max())
    allowed = tolerance(reference, dtype)
    assert error <= allowed, f"{what}: max abs error {error:.3g} > {allowed:.3g}"


# --------------------------------------------------------------------- cases
@dataclass
class Case:
    """One convolution problem: an image, a bank and every keyword of conv2d."""

    rows: int = 7
    cols: int = 9
    n_channels: int = 2
    bank_shape: tuple[int, ...] = (2, 3, 3)
    kwargs: dict = field(default_factory=dict)
    dtype: str = "float32"
    seed: int = 0

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        image = rng.uniform(-2, 3, (self.rows, self.cols, self.n_channels)).astype(self.dtype)
        bank = rng.normal(size=self.bank_shape)
        return image, bank

    def __str__(self) -> str:
        args = ",".join(f"{k}={v}" for k, v in self.kwargs.items())
        shape = f"{self.rows}x{self.cols}x{self.n_channels}"
        bank = "x".join(map(str, self.bank_shape))
        return f"{shape}|bank{bank}|{self.dtype}|{args}"


def _bank_shape(rng: random.Random, kernel: tuple[int, int], n_filters: int,
                n_channels: int, channels: str) -> tuple[int, ...]:
    rank = rng.choice((2, 3, 4)) if n_filters == 1 else rng.choice((3, 4))
    if rank == 2:
        return kernel
    if rank == 3:
        return (n_filters, *kernel)
    bank_channels = 1 if channels == "gray" else n_channels
    if channels == "depthwise" and rng.random() < 0.2:
        bank_channels = 1
    return (n_filters, *kernel, bank_channels)


KERNELS = ((1, 1), (1, 5), (3, 2), (4, 4), (2, 2), (3, 3), (5, 3), (2, 5))
PADDINGS = ("valid", "same", "full", 0, 1, 2, 9, (1, 2), (0, 3), (0, 2, 3, 1), (4, 0, 1, 10))


def random_forward_cases(count: int, seed: int) -> list[Case]:
    """``count`` forward cases drawn over every parameter (reproducible)."""
    rng = random.Random(seed)
    cases = []
    for index in range(count):
        channels = rng.choice(("depthwise", "sum", "gray"))
        n_channels = rng.choice((1, 2, 3)) if channels != "gray" else rng.choice((1, 3, 4))
        n_filters = rng.randint(1, 8)
        kernel = rng.choice(KERNELS)
        kwargs: dict[str, Any] = {
            "stride": rng.choice((1, 2, 3, (1, 2), (3, 1), (2, 3))),
            "padding": rng.choice(PADDINGS),
            "border": rng.choice(BORDERS),
            "dilation": rng.choice((1, 1, 2, 3, (1, 2), (3, 1))),
            "channels": channels,
            "flip": rng.random() < 0.3,
        }
        bias_kind = rng.choice(("none", "scalar", "per-F", "per-N"))
        n_out = n_filters * (n_channels if channels == "depthwise" else 1)
        if bias_kind == "scalar":
            kwargs["bias"] = 1.5
        elif bias_kind == "per-F":
            kwargs["bias"] = [0.5 * f - 1 for f in range(n_filters)]
        elif bias_kind == "per-N":
            kwargs["bias"] = [0.25 * n for n in range(n_out)]
        cases.append(Case(
            rows=rng.choice((7, 8)), cols=rng.choice((9, 11)), n_channels=n_channels,
            bank_shape=_bank_shape(rng, kernel, n_filters, n_channels, channels),
            kwargs=kwargs, dtype=rng.choice(("float32", "float64")), seed=index,
        ))
    return cases


def random_transpose_cases(count: int, seed: int) -> list[Case]:
    """``count`` transposed cases (output_padding always valid: < max(s, d))."""
    rng = random.Random(seed)
    cases = []
    for index in range(count):
        channels = rng.choice(("depthwise", "sum", "gray"))
        n_channels = rng.choice((1, 2, 3)) if channels != "gray" else rng.choice((1, 3))
        n_filters = rng.randint(1, 8)
        kernel = rng.choice(KERNELS)
        stride = rng.choice((1, 2, 3, (1, 2), (3, 1), (2, 3)))
        dilation = rng.choice((1, 1, 2, 3, (1, 2), (3, 1)))
        limit = [max(s, d) for s, d in zip(as_pair(stride), as_pair(dilation))]
        output_padding = (rng.randrange(limit[0]), rng.randrange(limit[1]))
        kwargs: dict[str, Any] = {
            "stride": stride,
            "padding": rng.choice(("valid", "same", 0, 1, 2, (1, 0), (0, 2, 1, 1), (2, 0, 0, 3))),
            "output_padding": output_padding,
            "dilation": dilation,
            "channels": channels,
            "flip": rng.random() < 0.3,
        }
        if rng.random() < 0.3:
            kwargs["bias"] = rng.choice((-0.5, [0.5 * f for f in range(n_filters)]))
        cases.append(Case(
            rows=rng.choice((3, 4, 5)), cols=rng.choice((4, 6)), n_channels=n_channels,
            bank_shape=_bank_shape(rng, kernel, n_filters, n_channels, channels),
            kwargs=kwargs, dtype=rng.choice(("float32", "float64")), seed=1000 + index,
        ))
    return cases


def engine_params(table: dict) -> list[str]:
    """Every registered strategy name plus ``auto``."""
    return [*sorted(table), "auto"]


def skip_without_torch() -> None:
    pytest.importorskip("torch")


def border_grid() -> list[Case]:
    """Six borders × every padding form (pads up to 10, wider than the image) × stride/dilation."""
    geometries = ((1, 1), (2, 1), ((1, 2), 1), (3, 2), (2, (1, 3)), ((3, 2), (2, 1)))
    return [
        Case(rows=7, cols=9, n_channels=2, bank_shape=(2, 3, 2),
             kwargs={"stride": s, "dilation": d, "padding": p, "border": b})
        for b, p, (s, d) in itertools.product(BORDERS, PADDINGS, geometries)
    ]


def channel_grid() -> list[Case]:
    """depthwise/sum/gray × C ∈ {1, 3} × every kernel shape × bank rank 2/3/4 × flip."""
    cases = []
    combos = itertools.product(("depthwise", "sum", "gray"), (1, 3), KERNELS, (2, 3, 4),
                               (False, True))
    for seed, (channels, n_channels, kernel, rank, flip) in enumerate(combos):
        bank_channels = 1 if channels == "gray" else n_channels
        bank_shape = {2: kernel, 3: (3, *kernel), 4: (3, *kernel, bank_channels)}[rank]
        cases.append(Case(rows=8, cols=11, n_channels=n_channels, bank_shape=bank_shape,
                          kwargs={"channels": channels, "flip": flip, "padding": "same",
                                  "border": "reflect"}, seed=seed))
    return cases


def transpose_grid() -> list[Case]:
    """Transposed: kernels × (stride, dilation, output_padding) × paddings × depthwise/sum."""
    geometries = ((1, 1, 0), (2, 1, 1), (3, 1, 2), (1, 2, 1), (2, 3, 2),
                  ((2, 3), (1, 2), (1, 0)))
    paddings = ("valid", "same", 0, 1, (1, 2), (0, 2, 1, 0))
    return [
        Case(rows=4, cols=5, n_channels=2, bank_shape=(2, *kernel),
             kwargs={"stride": s, "dilation": d, "padding": p, "output_padding": op,
                     "channels": ch})
        for kernel, (s, d, op), p, ch in itertools.product(
            ((3, 3), (2, 4)), geometries, paddings, ("depthwise", "sum"))
    ]


def reference_png_decode(data: bytes) -> np.ndarray:
    """An independent PNG decoder (PNG spec section 9), pure Python per row.

    Checks the signature, every chunk's CRC-32, no interlace and the filter
    types (0-4); returns the pixels as ``(H, W, C)`` uint8 or uint16 (native
    byte order) for 8- or 16-bit gray, gray+alpha, RGB and RGBA.
    """
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    assert interlace == 0
    channels = {0: 1, 4: 2, 2: 3, 6: 4}[color]
    bpp = channels * depth // 8
    raw = zlib.decompress(idat)  # also checks the zlib header and Adler-32
    stride = width * bpp
    rows, previous = [], bytearray(stride)
    for row_index in range(height):
        start = row_index * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = previous[x]
            c = previous[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[x] = (line[x] + pred) & 255
            else:
                assert kind == 0
        rows.append(bytes(line))
        previous = line
    dtype = ">u2" if depth == 16 else np.uint8
    return np.frombuffer(b"".join(rows), dtype).reshape(height, width, channels).astype(
        np.uint16 if depth == 16 else np.uint8)
