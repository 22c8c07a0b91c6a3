"""Random geometries: convcli's sizes against PyTorch and against conv2d's real result.

Each test walks a few hundred seeded random geometries in one loop (fast:
1×1-channel tensors of at most 24×24) and reports every mismatch at once.
torch is optional: its tests are skipped when it is not installed; the
comparison with convcli's own ``conv2d`` / ``conv_transpose2d`` results
always runs.
"""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
from typer.testing import CliRunner

from convcli import conv2d, conv_transpose2d
from convcli.cli import app
from convcli.errors import ShapeError
from convcli.geometry import (
    output_size,
    resolve_padding2d,
    solve_output_padding,
    solve_padding,
)

N_GEOMETRIES = 600

# torch warns that padding='same' with an even kernel copies the input; harmless here.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")


def _forward_cases(seed: int, count: int) -> list[dict]:
    """Random forward geometries: sizes 1–24, kernels 1–6, stride/dilation 1–3, any padding form."""
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        form = rng.choice(["int", "pair", "four", "valid", "same", "full"])
        padding: object = {
            "int": lambda: rng.randint(0, 3),
            "pair": lambda: (rng.randint(0, 3), rng.randint(0, 3)),
            "four": lambda: tuple(rng.randint(0, 3) for _ in range(4)),
            "valid": lambda: "valid",
            "same": lambda: "same",
            "full": lambda: "full",
        }[form]()
        cases.append(dict(
            size=(rng.randint(1, 24), rng.randint(1, 24)),
            kernel=(rng.randint(1, 6), rng.randint(1, 6)),
            stride=(rng.randint(1, 3), rng.randint(1, 3)),
            dilation=(rng.randint(1, 3), rng.randint(1, 3)),
            padding=padding,
        ))
    return cases


def _transposed_cases(seed: int, count: int) -> list[dict]:
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        stride = (rng.randint(1, 3), rng.randint(1, 3))
        dilation = (rng.randint(1, 3), rng.randint(1, 3))
        cases.append(dict(
            size=(rng.randint(1, 12), rng.randint(1, 12)),
            kernel=(rng.randint(1, 6), rng.randint(1, 6)),
            stride=stride,
            dilation=dilation,
            padding=(rng.randint(0, 4), rng.randint(0, 4)),
            # mostly valid output_padding, sometimes one too many (an error in torch too)
            output_padding=tuple(rng.randint(0, max(s, d)) for s, d in zip(stride, dilation)),
        ))
    return cases


def _our_forward_shape(case: dict) -> tuple[int, int] | None:
    """convcli's output size per axis, None when it raises ShapeError."""
    try:
        pads = resolve_padding2d(case["size"], case["kernel"], stride=case["stride"],
                                 padding=case["padding"], dilation=case["dilation"])
        return tuple(
            output_size(case["size"][a], case["kernel"][a], stride=case["stride"][a],
                        padding=pads[2 * a: 2 * a + 2], dilation=case["dilation"][a])
            for a in (0, 1)
        )
    except ShapeError:
        return None


def _our_transposed_shape(case: dict) -> tuple[int, int] | None:
    try:
        return tuple(
            output_size(case["size"][a], case["kernel"][a], stride=case["stride"][a],
                        padding=case["padding"][a], dilation=case["dilation"][a],
                        transposed=True, output_padding=case["output_padding"][a])
            for a in (0, 1)
        )
    except ShapeError:
        return None


def _positive(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """torch returns an empty tensor for a transposed output of size 0; convcli calls that an error."""
    return shape if min(shape) >= 1 else None


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _torch_forward_shape(torch, case: dict) -> tuple[int, int] | None:
    """torch's conv2d output (H', W'); explicit pads via F.pad, names as torch spells them."""
    functional = torch.nn.functional
    x = torch.zeros((1, 1, *case["size"]))
    w = torch.zeros((1, 1, *case["kernel"]))
    padding = case["padding"]
    try:
        if padding == "full":
            k_eff = [d * (k - 1) + 1 for k, d in zip(case["kernel"], case["dilation"])]
            y = functional.conv2d(x, w, stride=case["stride"], dilation=case["dilation"],
                                  padding=(k_eff[0] - 1, k_eff[1] - 1))
        elif padding == "valid":
            y = functional.conv2d(x, w, stride=case["stride"], dilation=case["dilation"], padding="valid")
        elif padding == "same":
            if case["stride"] == (1, 1):
                y = functional.conv2d(x, w, dilation=case["dilation"], padding="same")
            else:  # TF SAME: the defined size is ceil(H / s); torch has no such option
                return tuple(math.ceil(n / s) for n, s in zip(case["size"], case["stride"]))
        else:
            if isinstance(padding, int):
                padding = (padding,) * 4
            elif len(padding) == 2:
                padding = (padding[0], padding[0], padding[1], padding[1])
            top, bottom, left, right = padding
            x = functional.pad(x, (left, right, top, bottom))
            y = functional.conv2d(x, w, stride=case["stride"], dilation=case["dilation"])
    except RuntimeError:
        return None
    return _positive(tuple(y.shape[2:]))


def _torch_transposed_shape(torch, case: dict) -> tuple[int, int] | None:
    x = torch.zeros((1, 1, *case["size"]))
    w = torch.zeros((1, 1, *case["kernel"]))
    try:
        y = torch.nn.functional.conv_transpose2d(
            x, w, stride=case["stride"], padding=case["padding"],
            output_padding=case["output_padding"], dilation=case["dilation"],
        )
    except RuntimeError:
        return None
    return _positive(tuple(y.shape[2:]))


def test_forward_sizes_match_torch(torch):
    mismatches = []
    for case in _forward_cases(seed=1, count=N_GEOMETRIES):
        ours, theirs = _our_forward_shape(case), _torch_forward_shape(torch, case)
        if ours != theirs:
            mismatches.append((case, ours, theirs))
    assert not mismatches, mismatches[:5]


def test_transposed_sizes_match_torch(torch):
    cases = _transposed_cases(seed=2, count=N_GEOMETRIES)
    mismatches = [
        (case, ours, theirs) for case in cases
        if (ours := _our_transposed_shape(case)) != (theirs := _torch_transposed_shape(torch, case))
    ]
    assert not mismatches, mismatches[:5]
    assert sum(_our_transposed_shape(case) is None for case in cases) > 20  # errors were exercised


def test_forward_sizes_match_conv2d_results():
    mismatches = []
    for case in _forward_cases(seed=3, count=300):
        ours = _our_forward_shape(case)
        try:
            result = conv2d(np.zeros((*case["size"], 1)), np.zeros((1, *case["kernel"])),
                            stride=case["stride"], padding=case["padding"], dilation=case["dilation"])
            actual = tuple(result.shape[:2])
        except ShapeError:
            actual = None
        if ours != actual:
            mismatches.append((case, ours, actual))
    assert not mismatches, mismatches[:5]


def test_transposed_sizes_match_conv_transpose2d_results():
    mismatches = []
    for case in _transposed_cases(seed=4, count=300):
        ours = _our_transposed_shape(case)
        try:
            result = conv_transpose2d(
                np.zeros((*case["size"], 1)), np.zeros((1, *case["kernel"])), stride=case["stride"],
                padding=case["padding"], output_padding=case["output_padding"], dilation=case["dilation"],
            )
            actual = tuple(result.shape[:2])
        except ShapeError:
            actual = None
        if ours != actual:
            mismatches.append((case, ours, actual))
    assert not mismatches, mismatches[:5]


def test_target_paddings_give_the_target_in_torch(torch):
    functional = torch.nn.functional
    rng = random.Random(5)
    checked = 0
    for _ in range(300):
        n, k, s, d = rng.randint(1, 30), rng.randint(1, 6), rng.randint(1, 3), rng.randint(1, 3)
        target = rng.randint(1, 30)
        try:
            solution = solve_padding(n, k, target, stride=s, dilation=d)
        except ShapeError:
            # None exists: torch's output with no padding is already above the target.
            k_eff = d * (k - 1) + 1
            assert n >= k_eff and (n - k_eff) // s + 1 > target
            continue
        x = functional.pad(torch.zeros((1, 1, n, 1)), (0, 0, solution.before, solution.after))
        y = functional.conv2d(x, torch.zeros((1, 1, k, 1)), stride=(s, 1), dilation=(d, 1))
        assert y.shape[2] == target, (n, k, s, d, target, solution)
        if solution.symmetric is not None:
            y = functional.conv2d(torch.zeros((1, 1, n, 1)), torch.zeros((1, 1, k, 1)), stride=(s, 1),
                                  dilation=(d, 1), padding=(solution.symmetric, 0))
            assert y.shape[2] == target
        checked += 1
    assert checked > 100


def test_target_output_padding_gives_the_target_in_torch(torch):
    rng = random.Random(6)
    checked = 0
    for _ in range(300):
        n, k, s, d = rng.randint(1, 12), rng.randint(1, 6), rng.randint(1, 3), rng.randint(1, 3)
        p = rng.randint(0, 3)
        # around the reachable sizes, one step past them on both sides
        target = max((n - 1) * s - 2 * p + d * (k - 1) + 1 + rng.randint(-1, max(s, d)), 1)
        try:
            op = solve_output_padding(n, k, target, stride=s, padding=p, dilation=d)
        except ShapeError:
            for op in range(max(s, d)):  # torch reaches the target with no allowed output_padding
                try:
                    y = torch.nn.functional.conv_transpose2d(
                        torch.zeros((1, 1, n, 1)), torch.zeros((1, 1, k, 1)), stride=(s, 1),
                        padding=(p, 0), output_padding=(op, 0), dilation=(d, 1))
                except RuntimeError:
                    continue
                assert y.shape[2] != target
            continue
        y = torch.nn.functional.conv_transpose2d(
            torch.zeros((1, 1, n, 1)), torch.zeros((1, 1, k, 1)), stride=(s, 1), padding=(p, 0),
            output_padding=(op, 0), dilation=(d, 1))
        assert y.shape[2] == target
        checked += 1
    assert checked > 50


def test_cli_json_matches_torch(torch):
    runner = CliRunner()
    mismatches = []
    for case in _forward_cases(seed=7, count=40):
        padding = case["padding"]
        padding_text = padding if isinstance(padding, str) else (
            str(padding) if isinstance(padding, int) else ",".join(map(str, padding))
        )
        args = ["shape", *map(str, case["size"]), "-k", ",".join(map(str, case["kernel"])),
                "-s", ",".join(map(str, case["stride"])), "-d", ",".join(map(str, case["dilation"])),
                "-p", padding_text, "--json"]
        result = runner.invoke(app, args)
        theirs = _torch_forward_shape(torch, case)
        ours = tuple(json.loads(result.stdout)["output"]) if result.exit_code == 0 else None
        if ours != theirs:
            mismatches.append((args, ours, theirs, result.output))
    assert not mismatches, mismatches[:3]
