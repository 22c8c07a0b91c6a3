"""conv2d / conv_transpose2d against torch.nn.functional, for every strategy.

Skipped as a whole when torch is not importable. The references (see
``reference.py``) pad with ``torch.nn.functional.pad`` ('constant', 'reflect',
'replicate', 'circular'), use torch's own ``padding='same'`` at stride 1 and
the SPEC's explicit pads otherwise, ``groups=C`` for depthwise (weights and
outputs permuted from torch's channel-major to convcli's kernel-major order)
and ``W[c, f, m, n] = K[f, m, n, c]`` for the transposed weight.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reference import (  # noqa: E402
    Case,
    assert_matches,
    border_grid,
    channel_grid,
    random_forward_cases,
    random_transpose_cases,
    torch_conv2d,
    torch_conv_transpose2d,
    transpose_grid,
)

from convcli import ShapeError, conv2d, conv_transpose2d  # noqa: E402
from convcli.engines import FORWARD_ENGINES, TRANSPOSE_ENGINES  # noqa: E402

torch.set_num_threads(1)

pytestmark = pytest.mark.filterwarnings(
    "ignore:Using padding='same' with even kernel lengths:UserWarning"
)

FORWARD_METHODS = [*sorted(FORWARD_ENGINES), "auto"]
TRANSPOSE_METHODS = [*sorted(TRANSPOSE_ENGINES), "auto"]


def check_forward(case: Case, method: str) -> None:
    image, bank = case.arrays()
    expected = torch_conv2d(image, bank, **case.kwargs)
    if expected is None:
        with pytest.raises(ShapeError):
            conv2d(image, bank, method=method, **case.kwargs)
        return
    actual = conv2d(image, bank, method=method, **case.kwargs)
    assert_matches(actual, expected, case.dtype, str(case))


def check_transpose(case: Case, method: str) -> None:
    image, bank = case.arrays()
    expected = torch_conv_transpose2d(image, bank, **case.kwargs)
    if expected is None:
        with pytest.raises(ShapeError):
            conv_transpose2d(image, bank, method=method, **case.kwargs)
        return
    actual = conv_transpose2d(image, bank, method=method, **case.kwargs)
    assert_matches(actual, expected, case.dtype, str(case))


def _ids(cases: list[Case]) -> list[str]:
    return [str(case) for case in cases]


# The scipy file runs the full grids; here a deterministic part of each keeps the file fast:
# every border × padding with three of the six stride/dilation pairs, and a fixed sample
# of the channel grid.
BORDER_GRID = border_grid()[::2]
CHANNEL_GRID = random.Random(7).sample(channel_grid(), 150)
RANDOM_FORWARD = random_forward_cases(100, seed=4242)
TRANSPOSE_GRID = transpose_grid()
RANDOM_TRANSPOSE = random_transpose_cases(60, seed=99)


@pytest.mark.parametrize("method", FORWARD_METHODS)
@pytest.mark.parametrize("case", BORDER_GRID, ids=_ids(BORDER_GRID))
def test_borders_paddings_strides_dilations(case: Case, method: str) -> None:
    check_forward(case, method)


@pytest.mark.parametrize("method", FORWARD_METHODS)
@pytest.mark.parametrize("case", CHANNEL_GRID, ids=_ids(CHANNEL_GRID))
def test_channels_kernels_banks_flip(case: Case, method: str) -> None:
    check_forward(case, method)


@pytest.mark.parametrize("method", FORWARD_METHODS)
@pytest.mark.parametrize("case", RANDOM_FORWARD, ids=_ids(RANDOM_FORWARD))
def test_random_forward_cases(case: Case, method: str) -> None:
    check_forward(case, method)


@pytest.mark.parametrize("method", TRANSPOSE_METHODS)
@pytest.mark.parametrize("case", TRANSPOSE_GRID, ids=_ids(TRANSPOSE_GRID))
def test_transpose_grid(case: Case, method: str) -> None:
    check_transpose(case, method)


@pytest.mark.parametrize("method", TRANSPOSE_METHODS)
@pytest.mark.parametrize("case", RANDOM_TRANSPOSE, ids=_ids(RANDOM_TRANSPOSE))
def test_random_transpose_cases(case: Case, method: str) -> None:
    check_transpose(case, method)


# ------------------------------------------------------------------ torch's own API, literally
@pytest.mark.parametrize("method", FORWARD_METHODS)
@pytest.mark.parametrize("kernel", [(3, 3), (2, 2), (4, 3), (1, 5)])
@pytest.mark.parametrize("dilation", [1, 2])
def test_same_equals_torch_padding_same(kernel, dilation: int, method: str) -> None:
    """SPEC: at stride 1, ``same`` equals torch ``padding='same'`` (even kernels too)."""
    rng = np.random.default_rng(11)
    image, weights = rng.normal(size=(8, 11, 2)), rng.normal(size=(3, *kernel, 2))
    x = torch.from_numpy(image.transpose(2, 0, 1)[None].copy())
    w = torch.from_numpy(weights.transpose(0, 3, 1, 2).copy())
    expected = torch.nn.functional.conv2d(x, w, padding="same", dilation=dilation)
    expected = expected[0].numpy().transpose(1, 2, 0)
    actual = conv2d(image, weights, padding="same", dilation=dilation, channels="sum",
                    method=method)
    assert_matches(actual, expected, np.float64)


@pytest.mark.parametrize("method", FORWARD_METHODS)
def test_same_at_stride_2_is_not_torch_padding_1(method: str) -> None:
    """SPEC: H=224, k=3, s=2 → 112 both ways, but TF pads (0, 1) and torch (1, 1)."""
    rng = np.random.default_rng(12)
    image, weights = rng.normal(size=(224, 224)), rng.normal(size=(3, 3))
    x = torch.from_numpy(image[None, None].copy())
    w = torch.from_numpy(weights[None, None].copy())
    torch_p1 = torch.nn.functional.conv2d(x, w, stride=2, padding=1)[0, 0].numpy()
    torch_tf = torch.nn.functional.conv2d(
        torch.nn.functional.pad(x, (0, 1, 0, 1)), w, stride=2)[0, 0].numpy()
    actual = conv2d(image, weights, stride=2, padding="same", method=method)[..., 0]
    assert actual.shape == torch_p1.shape == (112, 112)
    assert_matches(actual[..., None], torch_tf[..., None], np.float64)
    assert not np.allclose(actual, torch_p1)


@pytest.mark.parametrize("method", TRANSPOSE_METHODS)
def test_worked_example_transposed_is_6x6(method: str) -> None:
    """SPEC worked example: torch conv_transpose2d gives a 6×6 result (not the seed's 4×4)."""
    image = np.array([[1, 2, 0], [0, 1, 3], [2, 0, 1]], dtype=np.float64)
    weights = np.array([[1, 2], [-1, 1]], dtype=np.float64)
    expected = torch.nn.functional.conv_transpose2d(
        torch.from_numpy(image[None, None]), torch.from_numpy(weights[None, None]), stride=2)
    actual = conv_transpose2d(image, weights, stride=2, method=method)
    assert actual.shape == (6, 6, 1)
    assert_matches(actual, expected[0].numpy().transpose(1, 2, 0), np.float64)
