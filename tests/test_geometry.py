"""convcli.geometry: shape vectors, receptive fields, solvers, layer specs, formula text.

Answers come from SPEC.md / issue 4 (``shape_cases``), from brute-force index
bookkeeping written here independently of the formulas, or from evaluating
the printed formula text; never from geometry's own numbers.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from shape_cases import FORWARD_VECTORS, RF_STACKS, SAME_VECTORS, TRANSPOSED_VECTORS

from convcli.errors import ShapeError
from convcli.geometry import (
    axis_geometry,
    chain_geometry,
    formula_text,
    output_size,
    parse_layer_spec,
    raw_output_size,
    receptive_field,
    resolve_padding,
    solve_output_padding,
    solve_padding,
    transposed_output_range,
)


# ---------------------------------------------------------------- SPEC vectors
@pytest.mark.parametrize(("n", "k", "s", "p", "d", "expected"), FORWARD_VECTORS)
def test_forward_vectors(n, k, s, p, d, expected):
    if expected is None:
        with pytest.raises(ShapeError, match="larger than the padded input"):
            output_size(n, k, stride=s, padding=p, dilation=d)
    else:
        assert output_size(n, k, stride=s, padding=p, dilation=d) == expected


@pytest.mark.parametrize(("n", "k", "s", "d", "expected", "pads"), SAME_VECTORS)
def test_same_vectors(n, k, s, d, expected, pads):
    assert resolve_padding(n, k, stride=s, padding="same", dilation=d) == pads
    assert output_size(n, k, stride=s, padding="same", dilation=d) == expected


@pytest.mark.parametrize(("n", "k", "s", "p", "d", "op", "expected"), TRANSPOSED_VECTORS)
def test_transposed_vectors(n, k, s, p, d, op, expected):
    kwargs = dict(stride=s, padding=p, dilation=d, transposed=True, output_padding=op)
    if expected is None:
        with pytest.raises(ShapeError, match="output_padding"):
            output_size(n, k, **kwargs)
    else:
        assert output_size(n, k, **kwargs) == expected


# ------------------------------------------------------------- receptive field
@pytest.mark.parametrize(("name", "specs", "layers", "r", "jump", "start"), RF_STACKS,
                         ids=[case[0] for case in RF_STACKS])
def test_receptive_field_stacks(name, specs, layers, r, jump, start):
    last = receptive_field(layers)[-1]
    assert (last.size, last.jump) == (r, jump)
    if start is not None:
        assert last.start == start


@pytest.mark.parametrize(("name", "specs", "layers", "r", "jump", "start"), RF_STACKS,
                         ids=[case[0] for case in RF_STACKS])
def test_chain_of_layer_specs_matches_the_stacks(name, specs, layers, r, jump, start):
    steps = chain_geometry((224, 224), [parse_layer_spec(text) for text in specs])
    assert all(step.problem is None for step in steps)
    for axis in (0, 1):
        assert (steps[-1].field[axis].size, steps[-1].field[axis].jump) == (r, jump)


def _seen_rows(layers, j):
    """Input rows that output ``j`` of a chain reads, by following indices (no formula).

    ``layers`` holds ``(kind, k, s, pad_before, d)``; indices may leave the
    image (they then fall in the padding), which is what a receptive field counts.
    Forward: output ``o`` reads ``s·o + d·m − pad`` for ``m < k``.
    Transposed: output ``o`` (``o + pad`` in the full scatter result) gets
    input ``i`` when ``s·i + d·m == o + pad`` for some ``m < k``.
    """
    rows = {j}
    for kind, k, s, pad, d in reversed(layers):
        seen = set()
        for o in rows:
            for m in range(k):
                if kind == "tconv":
                    if (o + pad - d * m) % s == 0:
                        seen.add((o + pad - d * m) // s)
                else:
                    seen.add(s * o + d * m - pad)
        rows = seen
    return rows


LAYER = st.tuples(
    st.sampled_from(["conv", "conv", "tconv"]), st.integers(1, 5), st.integers(1, 3),
    st.integers(0, 3), st.integers(1, 3),
)


@given(st.lists(LAYER.map(lambda t: ("conv", *t[1:])), min_size=1, max_size=5))
def test_forward_receptive_field_equals_brute_force(layers):
    fields = receptive_field([(d * (k - 1) + 1, s, pad) for _, k, s, pad, d in layers])
    last = fields[-1]
    for j in range(4):
        seen = _seen_rows(layers, j)
        assert min(seen) == j * last.jump - last.start
        assert max(seen) == j * last.jump - last.start + last.size - 1


@given(st.lists(LAYER, min_size=1, max_size=4))
def test_receptive_field_through_transposed_layers_bounds_every_output(layers):
    fields = receptive_field([(d * (k - 1) + 1, s, pad, kind == "tconv") for kind, k, s, pad, d in layers])
    last = fields[-1]
    jump, start, size = Fraction(last.jump), Fraction(last.start), Fraction(last.size)
    for j in range(12):
        seen = _seen_rows(layers, j)
        if not seen:
            continue
        low = j * jump - start
        assert low <= min(seen) and max(seen) <= low + size - 1


def test_single_tconv_field_is_exact_at_its_phases():
    # tconv k=4, s=2, crop 1: output o gets inputs i with 2i <= o+1 <= 2i+3.
    (field,) = receptive_field([(4, 2, 1, True)])
    assert (field.size, field.jump, field.start) == (Fraction(5, 2), Fraction(1, 2), 1)
    layers = [("tconv", 4, 2, 1, 1)]
    assert _seen_rows(layers, 0) == {-1, 0}  # low = 0/2 − 1 is attained
    assert _seen_rows(layers, 1) == {0, 1}  # high = 1/2 − 1 + 5/2 − 1 = 1 is attained


def test_receptive_field_values_are_ints_without_tconv():
    field = receptive_field([(3, 2, 1), (3, 2, 1)])[-1]
    assert all(type(v) is int for v in (field.size, field.jump, field.start))


def test_receptive_field_rejects_bad_layers():
    with pytest.raises(ShapeError):
        receptive_field([(0, 1, 0)])
    with pytest.raises(ShapeError):
        receptive_field([(3, 0, 0)])


# --------------------------------------------------------------------- solvers
GEOMETRY = st.tuples(st.integers(1, 60), st.integers(1, 7), st.integers(1, 4), st.integers(1, 3))


@given(GEOMETRY, st.integers(1, 40))
def test_solve_padding_by_recomputing(geometry, target):
    n, k, s, d = geometry
    k_eff = d * (k - 1) + 1
    totals = range(0, 3 * (target * s + k_eff))
    reachable = {total: (n + total - k_eff) // s + 1 for total in totals if n + total >= k_eff}
    if target not in reachable.values():
        with pytest.raises(ShapeError, match="no padding"):
            solve_padding(n, k, target, stride=s, dilation=d)
        return
    solution = solve_padding(n, k, target, stride=s, dilation=d)
    totals = sorted(total for total, out in reachable.items() if out == target)
    assert (solution.total_min, solution.total_max) == (totals[0], totals[-1])
    assert solution.before + solution.after == totals[0]
    assert 0 <= solution.after - solution.before <= 1
    assert output_size(n, k, stride=s, padding=(solution.before, solution.after), dilation=d) == target
    evens = [t for t in totals if t % 2 == 0]
    assert solution.symmetric == (evens[0] // 2 if evens else None)
    if solution.symmetric is not None:
        assert output_size(n, k, stride=s, padding=solution.symmetric, dilation=d) == target


@given(GEOMETRY, st.integers(0, 3), st.integers(1, 80))
def test_solve_output_padding_by_recomputing(geometry, p, target):
    n, k, s, d = geometry
    k_eff = d * (k - 1) + 1
    reachable = {op: (n - 1) * s - 2 * p + k_eff + op for op in range(max(s, d))}
    wanted = [op for op, out in reachable.items() if out == target]
    if not wanted:
        with pytest.raises(ShapeError, match="no output_padding"):
            solve_output_padding(n, k, target, stride=s, padding=p, dilation=d)
        return
    op = solve_output_padding(n, k, target, stride=s, padding=p, dilation=d)
    assert op == wanted[0]
    assert output_size(n, k, stride=s, padding=p, dilation=d, transposed=True, output_padding=op) == target


def test_solve_output_padding_suggests_a_padding_that_works():
    with pytest.raises(ShapeError, match=r"reaches 5…6 only; padding 0 with output_padding 0 gives 7"):
        solve_output_padding(3, 3, 7, stride=2, padding=1)


def test_solvers_reject_non_positive_targets():
    with pytest.raises(ShapeError, match="target"):
        solve_padding(10, 3, 0)
    with pytest.raises(ShapeError, match="target"):
        solve_output_padding(10, 3, -1, stride=2)


@pytest.mark.parametrize(("n", "k", "s", "p", "d", "expected"), [
    (3, 3, 2, 1, 1, (5, 6)),
    (3, 3, 1, 0, 1, (5, 5)),
    (3, 3, 2, 1, 3, (9, 11)),
    (4, 3, 2, "same", 1, (8, 8)),
])
def test_transposed_output_range(n, k, s, p, d, expected):
    # Transposed vectors of SPEC.md: op = 0, 1 at s = 2 gives 5, 6; d = 3 allows op 0..2.
    assert transposed_output_range(n, k, stride=s, padding=p, dilation=d) == expected


def test_raw_output_size_goes_below_one():
    assert raw_output_size(4, 5) == 0
    assert raw_output_size(3, 9, stride=2) == -2


# ----------------------------------------------------------------- formula text
def _evaluate(formula: str) -> tuple[int, int]:
    """Evaluate ``… = N`` from :func:`formula_text` as Python arithmetic."""
    text = formula.split("; ")[-1]
    left, right = text.rsplit(" = ", 1)
    python = left.replace("−", "-").replace("·", "*").replace("floor(", "math.floor(")
    return eval(python, {"math": math}), int(right)  # our own formula text


@given(GEOMETRY, st.integers(0, 4), st.booleans(), st.integers(0, 3))
def test_formula_text_evaluates_to_the_size(geometry, p, transposed, op):
    n, k, s, d = geometry
    op = op % max(s, d) if transposed else 0
    try:
        axis = axis_geometry(n, k, stride=s, padding=p, dilation=d, transposed=transposed, output_padding=op)
    except ShapeError:
        return
    value, shown = _evaluate(formula_text(axis))
    assert value == shown == axis.size_out
    assert str(n) in formula_text(axis)


def test_formula_text_examples():
    assert formula_text(axis_geometry(224, 3, stride=2, padding="same")) == (
        "floor((224 + 0 + 1 − 3) / 2) + 1 = 112"
    )
    assert formula_text(axis_geometry(10, 3, stride=2, padding="same", dilation=2)) == (
        "k_eff = 2·(3 − 1) + 1 = 5; floor((10 + 1 + 2 − 5) / 2) + 1 = 5"
    )
    assert formula_text(axis_geometry(3, 3, stride=2, padding=1, transposed=True, output_padding=1)) == (
        "(3 − 1)·2 − 1 − 1 + 3 + 1 = 6"
    )


# ------------------------------------------------------------------ layer specs
@pytest.mark.parametrize(("text", "expected"), [
    ("conv:k=7,s=2,p=3", dict(kind="conv", kernel=(7, 7), stride=(2, 2), padding=(3, 3, 3, 3))),
    ("pool:k=3,s=2,p=1", dict(kind="pool", kernel=(3, 3), stride=(2, 2), padding=(1, 1, 1, 1))),
    ("pool:k=2", dict(kind="pool", kernel=(2, 2), stride=(2, 2), padding="valid")),
    ("conv:k=3,p=same,d=2", dict(kind="conv", kernel=(3, 3), stride=(1, 1), padding="same", dilation=(2, 2))),
    ("tconv:k=4,s=2,p=1,op=1", dict(kind="tconv", kernel=(4, 4), output_padding=(1, 1))),
    ("conv:k=1,5,p=0,2", dict(kernel=(1, 5), padding=(0, 0, 2, 2))),
    ("conv:k=3x5,s=1x2,p=1,1,2,2", dict(kernel=(3, 5), stride=(1, 2), padding=(1, 1, 2, 2))),
    (" CONV : k = 3 ", dict(kind="conv", kernel=(3, 3), padding="valid")),
])
def test_parse_layer_spec(text, expected):
    spec = parse_layer_spec(text)
    for name, value in expected.items():
        assert getattr(spec, name) == value, name


@pytest.mark.parametrize(("text", "message"), [
    ("dense:k=3", "kind must be one of"),
    ("conv", "k= is required"),
    ("conv:s=2", "k= is required"),
    ("conv:k=3,q=1", "unknown key 'q'"),
    ("conv:k=3,k=5", "given twice"),
    ("conv:k=3,op=1", "only applies to tconv"),
    ("conv:k=0", "kernel"),
    ("conv:k=3,s=0", "stride"),
    ("conv:k=3,p=-1", "padding"),
    ("conv:k=3,p=1,2,3", "padding"),
    ("conv:k=3,p=middle", "padding"),
    ("conv:3", "expected key=value"),
])
def test_parse_layer_spec_errors_name_the_layer(text, message):
    with pytest.raises(ShapeError, match=message) as info:
        parse_layer_spec(text)
    assert "layer" in str(info.value)


def test_chain_sizes_follow_output_size_and_same_is_resolved_per_layer():
    layers = [parse_layer_spec(t) for t in ("conv:k=3,s=2,p=same", "conv:k=4,p=same", "tconv:k=4,s=2,p=1")]
    steps = chain_geometry((15, 9), layers)
    assert [step.size_out for step in steps] == [(8, 5), (8, 5), (16, 10)]
    assert steps[0].pads == (1, 1, 1, 1)  # 15 → 8: total 2·7 + 3 − 15 = 2
    assert steps[1].pads == (1, 2, 1, 2)  # k = 4 at stride 1: total 3, odd pixel after


def test_chain_flags_the_layer_whose_output_is_below_one_and_stops():
    layers = [parse_layer_spec(t) for t in ("conv:k=3", "conv:k=5", "conv:k=1")]
    steps = chain_geometry((5, 9), layers)
    assert len(steps) == 2
    assert steps[0].problem is None
    assert steps[1].size_out == (-1, 3)
    assert "layer 2" in steps[1].problem and "output < 1" in steps[1].problem


def test_chain_raises_for_an_impossible_output_padding():
    with pytest.raises(ShapeError, match="output_padding"):
        chain_geometry((5, 5), [parse_layer_spec("tconv:k=3,s=2,op=2")])
