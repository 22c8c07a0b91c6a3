"""``convcli shape``: output sizes, pads, formulas and receptive fields, no pixels.

Every number comes from :mod:`convcli.geometry` (one copy of each formula);
this module only parses the options and writes the answer. It is the fast
path of the CLI: it imports nothing heavier than the standard library at
run time. rich is imported only to print a ``--layer`` chain's table, and
numpy or Pillow only when the size has to be read from a file.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from typer.core import TyperCommand

from convcli.cli._plain import PlainCoercionMixin
from convcli.errors import ImageError, OptionError, ShapeError
from convcli.geometry import (
    AxisGeometry,
    ChainStep,
    LayerField,
    PaddingSolution,
    axis_geometry,
    chain_geometry,
    formula_text,
    output_size,
    parse_int_list,
    parse_int_pair,
    parse_layer_spec,
    parse_padding_text,
    receptive_field,
    solve_output_padding,
    solve_padding,
    transposed_output_range,
)

__all__ = ["ShapeCommand", "shape"]

#: The padding when -p is not given: the same as ``convcli apply`` and ``convcli explain``.
DEFAULT_PADDING = "same"

SHAPE_HELP = """Output size, pads, formula and receptive field of a convolution.

\b
Examples:
  convcli shape 224 -k 3 -s 2 -p same       # 112 × 112, pads 0 top, 1 bottom
  convcli shape 6 5 -k 3 -s 2 -p valid      # H=6, W=5; notes dropped rows
  convcli shape photo.png -k 5 -d 2         # size from the file header
  convcli shape 3 -k 3 -s 2 -p 1 --transpose --output-padding 1
  convcli shape 224 -k 3 -s 2 --target 112  # which padding gives 112?
  convcli shape 224 -k 3 --channels-in 3 --channels-out 64
  convcli shape 224 --layer conv:k=7,s=2,p=3 --layer pool:k=3,s=2,p=1

\b
Output size, with k_eff = d·(k − 1) + 1:
  forward     H' = floor((H + pad_top + pad_bottom − k_eff) / s) + 1
  transposed  H' = (H − 1)·s − pad_top − pad_bottom + k_eff + op
`same` (the default, as in apply and explain) is TensorFlow's SAME:
H' = ceil(H / s), the odd pad at the bottom/right (transposed: H' = H·s).
--layer specs keep PyTorch's layer default p=0. Sizes are H×W.

\b
Chains: --layer KIND:key=value,... (repeat it, first layer first)
  KIND  conv, pool or tconv (transposed convolution)
  k=    kernel size: 3, 3x5 or 3,5 (required)
  s=    stride (default 1; pool: the kernel size, as in PyTorch)
  p=    padding: valid, same, full, N, PH,PW or T,B,L,R (default 0)
  d=    dilation (default 1)
  op=   output_padding (tconv only)
  e.g.  conv:k=7,s=2,p=3  pool:k=3,s=2,p=1  conv:k=3,p=same,d=2
        tconv:k=4,s=2,p=1,op=1

\b
The table gives each layer's output size, receptive field r, jump S and
start P: output j sees input rows j·S − P … j·S − P + r − 1. After a
tconv they can be fractions (a stride-2 tconv halves S). A layer whose
output is below 1 is flagged and the command exits with status 1.

\b
--json prints one line: input, output, padding, pads (the first
layer's), kernel, stride, dilation, transposed, layers [{output,
receptive_field, jump, start}] and notes; with --channels-in and
--channels-out also tensor and parameters.
"""

AXIS_WORDS = (
    {"axis": "rows", "row": "row", "rows": "rows", "before": "top", "after": "bottom",
     "earlier": "higher"},
    {"axis": "columns", "row": "column", "rows": "columns", "before": "left", "after": "right",
     "earlier": "further left"},
)


def _plural(count: int, words: dict[str, str]) -> str:
    return f"{count} {words['row'] if count == 1 else words['rows']}"


def _input_size(size: str, width: int | None) -> tuple[int, int]:
    """``H [W]``, ``HxW`` or an image path → ``(H, W)``."""
    text = size.strip()
    if text and all(ch.isdigit() or ch in "x,X " for ch in text) and any(ch.isdigit() for ch in text):
        values = parse_int_list(text, "size")
        if len(values) > 2 or (len(values) == 2 and width is not None):
            raise ShapeError(f"size takes H, H W or HxW, got {size!r}" + (f" {width}" if width else ""))
        rows = values[0]
        cols = values[1] if len(values) == 2 else (width if width is not None else rows)
        if rows < 1 or cols < 1:
            raise ShapeError(f"size must be positive, got {rows} × {cols}")
        return rows, cols
    if width is not None:
        raise ShapeError(f"give a size (H [W]) or one image, not {size!r} {width}")
    return _size_from_file(text)


def _size_from_file(path: str) -> tuple[int, int]:
    """``(H, W)`` from an image or ``.npy`` header (:func:`convcli.imageio.read_size`)."""
    if path != "-" and not os.path.exists(path):
        raise ImageError(f"{path!r} is neither a size (H, H W or HxW) nor an existing file")
    try:
        from convcli.pipeline.sources import read_shape as read_size
    except ImportError as exc:
        raise ImageError(f"cannot read the size of {path!r}: no image reader ({exc})") from None
    rows, cols = read_size(path)
    return int(rows), int(cols)


def _number(value: Any) -> Any:
    """A receptive-field value for JSON: int, or float for a Fraction."""
    return value if isinstance(value, int) else float(value)


def _both(values: tuple[Any, Any]) -> str:
    """``7`` when both axes agree, else ``7×5``."""
    return str(values[0]) if values[0] == values[1] else f"{values[0]}×{values[1]}"


def _forward_inverts(axis: AxisGeometry, low: int, high: int) -> bool:
    """True when the matching forward conv maps every size in ``low…high`` to ``axis.size_in``."""
    pads = (axis.pad_before, axis.pad_after)
    try:
        return all(
            output_size(n, axis.kernel, stride=axis.stride, padding=pads, dilation=axis.dilation)
            == axis.size_in
            for n in range(low, high + 1)
        )
    except ShapeError:
        return False


def _axis_notes(axis: AxisGeometry, padding: object, words: dict[str, str]) -> list[str]:
    """Notes on one axis: dropped rows, asymmetric `same`, output_padding range."""
    notes = []
    k_eff = axis.kernel_effective
    if axis.transposed:
        if padding == "same":
            notes.append(
                f"`same` keeps H·s = {axis.size_out} {words['rows']} whatever output_padding is; "
                f"output_padding only moves the split of the crop"
            )
        else:
            low, high = transposed_output_range(
                axis.size_in, axis.kernel, stride=axis.stride, padding=(axis.pad_before, axis.pad_after),
                dilation=axis.dilation,
            )
            top = max(axis.stride, axis.dilation) - 1
            if top == 0:
                notes.append(
                    f"output_padding must be 0 here (max(stride, dilation) = 1): {low} {words['rows']}"
                )
            else:
                text = (
                    f"output_padding 0…{top} reaches {low}…{high} {words['rows']} "
                    f"(added at the {words['after']})"
                )
                if _forward_inverts(axis, low, high):
                    text += (
                        f"; the forward conv with this k, s, d and pads maps each of those sizes "
                        f"back to {axis.size_in}"
                    )
                notes.append(text)
        return notes
    if axis.dropped:
        span = axis.size_in + axis.pad_before + axis.pad_after - k_eff
        lost_image = max(axis.dropped - axis.pad_after, 0)
        notes.append(
            f"{axis.size_in} + {axis.pad_before} + {axis.pad_after} − {k_eff} = {span} is not a multiple "
            f"of the stride {axis.stride}: the last {_plural(axis.dropped, words)} of the padded input "
            f"{'is' if axis.dropped == 1 else 'are'} never read ({_plural(lost_image, words)} of the image, "
            f"{_plural(axis.dropped - lost_image, words)} of padding)"
        )
    if max(axis.pad_before, axis.pad_after) > k_eff - 1:
        notes.append(
            f"a pad above k_eff − 1 = {k_eff - 1} ({axis.pad_before} {words['before']}, {axis.pad_after} "
            f"{words['after']}): some outputs read padding only"
        )
    if padding == "same" and axis.pad_before != axis.pad_after:
        torch_pad = k_eff // 2
        torch_out = (axis.size_in + 2 * torch_pad - k_eff) // axis.stride + 1
        shift = torch_pad - axis.pad_before
        if torch_out == axis.size_out:
            differs = (
                f"gives {torch_out} {words['rows']} too, but every window starts "
                f"{_plural(shift, words)} {words['earlier']}"
            )
        else:
            differs = f"gives {torch_out} {words['rows']}, not {axis.size_out}"
        text = (
            f"`same` pads asymmetrically: {axis.pad_before} {words['before']}, {axis.pad_after} "
            f"{words['after']} (TensorFlow SAME); PyTorch padding={torch_pad} (k_eff//2) pads "
            f"{torch_pad} on both sides and {differs}"
        )
        if axis.stride == 1:
            text += "; PyTorch padding='same' (stride 1 only) matches convcli"
        notes.append(text)
    return notes


def _notes_for(axes: tuple[AxisGeometry, AxisGeometry], paddings: tuple[object, object]) -> list[str]:
    """Per-axis notes, merged into one when both axes are alike."""
    rows = _axis_notes(axes[0], paddings[0], AXIS_WORDS[0])
    if axes[0] == axes[1] and paddings[0] == paddings[1]:
        return [f"rows and columns alike: {note}" for note in rows]
    cols = _axis_notes(axes[1], paddings[1], AXIS_WORDS[1])
    return [f"rows: {note}" for note in rows] + [f"columns: {note}" for note in cols]


def _target_note(solution: PaddingSolution, words: dict[str, str]) -> str:
    totals = (
        f"only a total padding of {solution.total_min} works"
        if solution.total_min == solution.total_max
        else f"any total padding {solution.total_min}…{solution.total_max} works"
    )
    text = (
        f"target {solution.target}: {totals}; used {solution.before} {words['before']}, {solution.after} "
        f"{words['after']} (the smallest, split like `same`)"
    )
    if solution.symmetric is None:
        return text + "; no symmetric padding works (PyTorch would need an explicit F.pad)"
    return text + f"; symmetric padding {solution.symmetric} (PyTorch padding={solution.symmetric}) works too"


def _field_dict(fields: tuple[LayerField, LayerField], output: tuple[int, int]) -> dict[str, Any]:
    return {
        "output": list(output),
        "receptive_field": [_number(fields[0].size), _number(fields[1].size)],
        "jump": [_number(fields[0].jump), _number(fields[1].jump)],
        "start": [_number(fields[0].start), _number(fields[1].start)],
    }


def _write_json(report: dict[str, Any]) -> None:
    from convcli.cli import write_json

    write_json(report)


def _padding_name(padding: str | None, target: str | None, transpose: bool) -> str:
    """How the padding was chosen: the -p text, ``same`` by default, or the --target that solved it."""
    if target is not None and not transpose:
        return f"for target {target.strip()}"
    return padding.strip() if padding is not None else DEFAULT_PADDING


def _single_layer(
    size: tuple[int, int], kernel: str, stride: str, padding: str | None, dilation: str,
    transpose: bool, output_padding: str | None, target: str | None,
) -> tuple[tuple[AxisGeometry, AxisGeometry], tuple[object, object], list[str]]:
    """Resolve one layer's geometry per axis (solving --target first)."""
    kernels = parse_int_pair(kernel, "kernel")
    strides = parse_int_pair(stride, "stride")
    dilations = parse_int_pair(dilation, "dilation")
    out_pads = parse_int_pair(output_padding, "output_padding", minimum=0) if output_padding else (0, 0)
    if output_padding and not transpose:
        raise OptionError("--output-padding only applies with --transpose")
    notes: list[str] = []
    if target is not None and not transpose and padding is not None:
        raise OptionError("--target solves for the padding: drop -p/--padding")
    if target is not None and transpose and output_padding is not None:
        raise OptionError("--target with --transpose solves for --output-padding: drop it")
    parsed = parse_padding_text(padding if padding is not None else DEFAULT_PADDING)
    paddings: list[object] = (
        [parsed, parsed] if isinstance(parsed, str) else [parsed[:2], parsed[2:]]
    )
    if target is not None:
        targets = parse_int_pair(target, "target")
        solutions: list[PaddingSolution] = []
        for axis in (0, 1):
            if transpose:
                op = solve_output_padding(
                    size[axis], kernels[axis], targets[axis], stride=strides[axis],
                    padding=paddings[axis], dilation=dilations[axis],
                )
                out_pads = (op, out_pads[1]) if axis == 0 else (out_pads[0], op)
            else:
                solution = solve_padding(
                    size[axis], kernels[axis], targets[axis], stride=strides[axis], dilation=dilations[axis],
                )
                paddings[axis] = (solution.before, solution.after)
                solutions.append(solution)
        if transpose:
            notes.append(
                f"target {targets[0]} × {targets[1]}: output_padding {out_pads[0]} (rows), "
                f"{out_pads[1]} (columns)"
            )
        elif solutions[0] == solutions[1]:
            notes.append("rows and columns alike: " + _target_note(solutions[0], AXIS_WORDS[0]))
        else:
            notes += [
                f"{words['axis']}: " + _target_note(solution, words)
                for solution, words in zip(solutions, AXIS_WORDS)
            ]
    axes = tuple(
        axis_geometry(
            size[axis], kernels[axis], stride=strides[axis], padding=paddings[axis],
            dilation=dilations[axis], transposed=transpose, output_padding=out_pads[axis],
        )
        for axis in (0, 1)
    )
    return axes, (paddings[0], paddings[1]), notes  # type: ignore[return-value]


def _channel_report(
    output: tuple[int, int], kernel: tuple[int, int], channels_in: int | None, channels_out: int | None
) -> dict[str, Any] | None:
    if channels_in is None and channels_out is None:
        return None
    if channels_in is None or channels_out is None:
        raise OptionError("--channels-in and --channels-out go together (give both)")
    if channels_in < 1 or channels_out < 1:
        raise ShapeError(f"channel counts must be positive, got {channels_in} and {channels_out}")
    weights = channels_out * channels_in * kernel[0] * kernel[1]
    return {
        "tensor": [output[0], output[1], channels_out],
        "parameters": {"weights": weights, "bias": channels_out, "total": weights + channels_out},
    }


def _print_single(
    size: tuple[int, int], axes: tuple[AxisGeometry, AxisGeometry], notes: list[str],
    channels: dict[str, Any] | None, kernel: tuple[int, int], channels_in: int | None,
    padding_name: str,
) -> None:
    rows, cols = axes
    kind = "transposed" if rows.transposed else "forward"
    pad_word = " (cropped from the scatter result)" if rows.transposed else ""
    lines = [
        f"input    {size[0]} × {size[1]}",
        f"output   {rows.size_out} × {cols.size_out}   ({kind})",
        f"padding  {padding_name}: top {rows.pad_before}, bottom {rows.pad_after}, "
        f"left {cols.pad_before}, right {cols.pad_after}{pad_word}",
        f"layer    kernel {_both((rows.kernel, cols.kernel))}, stride {_both((rows.stride, cols.stride))}, "
        f"dilation {_both((rows.dilation, cols.dilation))}"
        + (f", output_padding {_both((rows.output_padding, cols.output_padding))}"
           if rows.transposed else ""),
        f"rows     {formula_text(rows)}",
        f"columns  {formula_text(cols)}",
    ]
    if channels is not None:
        c_out = channels["tensor"][2]
        params = channels["parameters"]
        lines.append(
            f"tensor   ({rows.size_out}, {cols.size_out}, {c_out}) channels-last; PyTorch NCHW "
            f"(1, {c_out}, {rows.size_out}, {cols.size_out})"
        )
        lines.append(
            f"params   {params['total']:,} with bias ({params['weights']:,} weights = "
            f"{c_out}·{channels_in}·{kernel[0]}·{kernel[1]}, + {params['bias']:,} biases); "
            f"{params['weights']:,} without"
        )
    lines += [f"note: {note}" for note in notes]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()  # here, where a closed reader becomes a quiet exit 1


def _print_chain(size: tuple[int, int], steps: list[ChainStep]) -> None:
    """The chain as a rich table on stdout (rich is imported only here)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(
        box=box.SIMPLE_HEAD, show_edge=False, caption_justify="left",
        caption="output j sees input rows j·S − P … j·S − P + r − 1",
    )
    for header in ("#", "layer", "output", "pads t,b,l,r", "field r", "jump S", "start P"):
        table.add_column(header, justify="left" if header == "layer" else "right")
    table.add_row("", "input", f"{size[0]}×{size[1]}", "", "1", "1", "0")
    for index, step in enumerate(steps, start=1):
        output = f"{step.size_out[0]}×{step.size_out[1]}"
        if step.problem:
            output = f"[bold red]✗ {output}[/]"
        table.add_row(
            str(index), step.layer.text, output, ",".join(map(str, step.pads)),
            _both((step.field[0].size, step.field[1].size)),
            _both((step.field[0].jump, step.field[1].jump)),
            _both((step.field[0].start, step.field[1].start)),
        )
    Console(highlight=False).print(table)


def _chain_notes(steps: list[ChainStep]) -> list[str]:
    notes = []
    for index, step in enumerate(steps, start=1):
        if step.axes is None:
            continue
        for note in _notes_for(step.axes, (step.layer.axis_padding(0), step.layer.axis_padding(1))):
            notes.append(f"layer {index} ({step.layer.text}): {note}")
    from fractions import Fraction

    fractional = [
        value for step in steps for field in step.field for value in (field.jump, field.size, field.start)
        if isinstance(value, Fraction)
    ]
    if fractional:
        notes.append(
            "after a tconv the jump is a fraction (stride 1/s): output j sees the input rows inside the "
            "real interval [j·S − P, j·S − P + r − 1]"
        )
    return notes


class ShapeCommand(PlainCoercionMixin, TyperCommand):
    """The ``shape`` command: plain option values skip typer's pydantic import (see ``_plain``)."""


def shape(
    size: str = typer.Argument(..., metavar="H|IMAGE", help="Input height, HxW, or an image file."),
    width: int | None = typer.Argument(None, metavar="W", help="Input width.  [default: H]"),
    kernel: str | None = typer.Option(
        None, "-k", "--kernel", metavar="K|KH,KW", help="Kernel size.  "
        "[default: none; required unless --layer is given]"
    ),
    stride: str = typer.Option("1", "-s", "--stride", metavar="S|SH,SW", help="Stride."),
    padding: str | None = typer.Option(
        None, "-p", "--padding", metavar="PAD",
        help="valid, same, full, N, PH,PW or T,B,L,R (transposed: rows cropped).  [default: same]",
    ),
    dilation: str = typer.Option("1", "-d", "--dilation", metavar="D|DH,DW", help="Dilation."),
    transpose: bool = typer.Option(False, "--transpose", help="Transposed convolution (PyTorch semantics)."),
    output_padding: str | None = typer.Option(
        None, "--output-padding", metavar="OP|OPH,OPW",
        help="Extra rows/columns at the bottom/right of a transposed output (< max(stride, dilation)).  "
        "[default: 0]",
    ),
    layer: list[str] | None = typer.Option(
        None, "--layer", "-l", metavar="SPEC",
        help="A chain layer KIND:k=..,s=..,p=..,d=..[,op=..] (repeat; see above).  [default: none, "
        "one layer from -k/-s/-p/-d]",
    ),
    target: str | None = typer.Option(
        None, "--target", metavar="N|N,M",
        help="Wanted output size: solve for the padding (with --transpose: the output_padding).  "
        "[default: none]",
    ),
    channels_in: int | None = typer.Option(
        None, "--channels-in", metavar="N", help="Input channels (for the parameter count).  [default: none]"
    ),
    channels_out: int | None = typer.Option(
        None, "--channels-out", metavar="N",
        help="Output channels (tensor shape and parameter count).  [default: none]",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one line of JSON instead of text."),
) -> None:
    input_size = _input_size(size, width)
    if layer:
        given = [name for name, value in (
            ("-k/--kernel", kernel), ("-s/--stride", stride != "1" or None), ("-p/--padding", padding),
            ("-d/--dilation", dilation != "1" or None), ("--transpose", transpose or None),
            ("--output-padding", output_padding), ("--target", target),
            ("--channels-in", channels_in), ("--channels-out", channels_out),
        ) if value is not None]
        if given:
            raise OptionError(f"--layer describes every layer; {', '.join(given)} cannot be combined with it")
        _chain(input_size, layer, as_json)
        return
    if kernel is None:
        raise OptionError("give the kernel size with -k/--kernel (or a chain with --layer)")
    axes, paddings, notes = _single_layer(
        input_size, kernel, stride, padding, dilation, transpose, output_padding, target,
    )
    notes += _notes_for(axes, paddings)
    output = (axes[0].size_out, axes[1].size_out)
    kernels = (axes[0].kernel, axes[1].kernel)
    padding_name = _padding_name(padding, target, transpose)
    channels = _channel_report(output, kernels, channels_in, channels_out)
    if not as_json:
        _print_single(input_size, axes, notes, channels, kernels, channels_in, padding_name)
        return
    fields = tuple(
        receptive_field([(a.kernel_effective, a.stride, a.pad_before, a.transposed)])[0] for a in axes
    )
    report: dict[str, Any] = {
        "input": list(input_size),
        "output": list(output),
        "padding": padding_name,
        "pads": {"top": axes[0].pad_before, "bottom": axes[0].pad_after,
                 "left": axes[1].pad_before, "right": axes[1].pad_after},
        "kernel": list(kernels),
        "stride": [axes[0].stride, axes[1].stride],
        "dilation": [axes[0].dilation, axes[1].dilation],
        "transposed": transpose,
        "layers": [_field_dict(fields, output)],  # type: ignore[arg-type]
        "notes": notes,
    }
    if channels is not None:
        report.update(channels)
    _write_json(report)


shape.__doc__ = SHAPE_HELP


def _chain(input_size: tuple[int, int], specs: list[str], as_json: bool) -> None:
    """``--layer`` mode: the table (or JSON), then an error if a layer leaves < 1 row."""
    steps = chain_geometry(input_size, [parse_layer_spec(text) for text in specs])
    notes = _chain_notes(steps)
    problem = steps[-1].problem
    if problem:
        notes.append(problem)
    if as_json:
        first = steps[0].pads
        _write_json({
            "input": list(input_size),
            "output": list(steps[-1].size_out),
            "pads": {"top": first[0], "bottom": first[1], "left": first[2], "right": first[3]},
            "layers": [_field_dict(step.field, step.size_out) for step in steps],
            "notes": notes,
        })
    else:
        _print_chain(input_size, steps)
        lines = [f"note: {note}" for note in notes if note != problem]
        if lines:
            sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()
    if problem:
        raise ShapeError(problem)
