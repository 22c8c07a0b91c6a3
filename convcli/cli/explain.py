"""``convcli explain``: show one convolution step by step on a tiny input.

Prints (rich) the padded input with its padding cells marked, the kernel, the
window under the chosen output cell, the element-wise products and their sum,
and the whole output grid; ``--json`` prints the same record for machines and
``--gif`` animates the window sliding. Every number comes from
:mod:`convcli.explain`, i.e. from the core's own ``conv2d`` /
``conv_transpose2d``. numpy and Pillow are imported inside the command only.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from convcli.cli import err, write_json
from convcli.cli._complete import complete_border, complete_kernel
from convcli.errors import OptionError, ShapeError

__all__ = ["explain"]

#: Largest input side printed as tables (use --crop for a bigger image).
MAX_PRINT_SIDE = 16
#: Largest padded grid or output side printed as tables.
MAX_PRINT_GRID = 32
#: Largest input side for --json / --gif only.
MAX_MACHINE_SIDE = 64
DEFAULT_KERNEL = "sobel-x"
#: The border of forward convolution when --border is not given (as ``convcli apply``).
DEFAULT_BORDER = "reflect"
#: How explain computes: the core's direct float64 sum (every product is shown).
METHOD = "direct"

EXPLAIN_HELP = f"""Show one convolution step by step: window, products, sum.

\b
Examples:
  convcli explain --input "1,2,3;4,5,6;7,8,9" -k "1,2;3,4"
  convcli explain --input "[[1,2,3],[4,5,6],[7,8,9]]" -p valid
  convcli explain --input "0,1,2,3;4,5,6,7;8,9,10,11" -s 2 -p 1 --at 1,0
  convcli explain --input "1 2;3 4" -k box:size=3 --transpose -s 2 -p 1
  convcli explain --image photo.png --crop 40,60,8,8 -k gaussian:sigma=1
  convcli explain --image photo.png --crop 40,60,8,8 --gif slide.gif
  convcli explain --input "1,2,3;4,5,6;7,8,9" -p 1 --border zero --json

\b
The input is --input text (rows separated by ';', values by ',' or spaces,
or a nested list [[1,2],[3,4]]) or --image (an image or .npy; --crop
Y,X,H,W picks a part, --channel one channel; default: luminance). Defaults
match `convcli apply`: kernel {DEFAULT_KERNEL}, padding same, border reflect
(transposed convolution has no border: its padding crops the output).
With --transpose the scatter terms are listed and the window shows the
same value as a stride-1 correlation of the zero-inserted input with the
kernel rotated 180 degrees. Piped output marks padding cells with '·',
inserted zeros with '*' and the window with [ ]. Sizes are H×W; inputs
above {MAX_PRINT_SIDE}×{MAX_PRINT_SIDE} are refused (crop them), with --json
above {MAX_MACHINE_SIDE}×{MAX_MACHINE_SIDE}.
"""


def parse_matrix(text: str) -> Any:
    """``"1,2,3;4,5,6"`` (rows by ``;`` or newlines, values by ``,`` or spaces) → 2-D float64.

    Raises
    ------
    OptionError
        For an empty text, a value that is not a finite number, or rows of
        different lengths; the message quotes the bad part.
    """
    import numpy as np

    if text.strip().startswith("["):
        return _parse_nested(text)
    rows = [row for row in text.replace("\n", ";").split(";") if row.strip()]
    if not rows:
        raise OptionError(f"`--input` is empty, got {text!r}; write rows like '1,2,3;4,5,6'")
    values: list[list[float]] = []
    for number, row in enumerate(rows, start=1):
        tokens = [t for t in row.replace(",", " ").split() if t]
        try:
            parsed = [float(t) for t in tokens]
        except ValueError:
            bad = next(t for t in tokens if not _is_number(t))
            raise OptionError(f"`--input` row {number} has {bad!r}, which is not a number") from None
        if not all(np.isfinite(parsed)):
            raise OptionError(f"`--input` row {number} has a value that is not finite: {row.strip()!r}")
        if values and len(parsed) != len(values[0]):
            raise OptionError(
                f"`--input` row {number} has {len(parsed)} values but row 1 has {len(values[0])}"
            )
        values.append(parsed)
    return np.array(values, dtype=np.float64)


def _parse_nested(text: str) -> Any:
    """numpy/PyTorch style ``[[1, 2], [3, 4]]`` (or one row ``[1, 2]``) → 2-D float64."""
    import ast

    import numpy as np

    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        raise OptionError(f"`--input` {text.strip()!r} is not a nested list like [[1,2],[3,4]]") from None
    rows = value if value and all(isinstance(row, (list, tuple)) for row in value) else [value]
    if not rows or not all(isinstance(row, (list, tuple)) and row for row in rows):
        raise OptionError(f"`--input` {text.strip()!r} has an empty row; write [[1,2],[3,4]]")
    for number, row in enumerate(rows, start=1):
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row):
            raise OptionError(f"`--input` row {number} has a value that is not a number: {list(row)!r}")
        if len(row) != len(rows[0]):
            raise OptionError(f"`--input` row {number} has {len(row)} values but row 1 has {len(rows[0])}")
    array = np.array(rows, dtype=np.float64)
    if not np.isfinite(array).all():
        raise OptionError("`--input` has a value that is not finite")
    return array


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _crop(array: Any, text: str) -> Any:
    from convcli.geometry import parse_int_list

    values = parse_int_list(text, "crop")
    if len(values) != 4 or values[2] < 1 or values[3] < 1 or min(values) < 0:
        raise OptionError(f"`--crop` takes Y,X,H,W (non-negative, H and W at least 1), got {text!r}")
    top, left, height, width = values
    rows, cols = array.shape[:2]
    if top + height > rows or left + width > cols:
        raise OptionError(
            f"`--crop` {top},{left},{height},{width} reaches past the {rows}×{cols} input "
            f"(rows {top}–{top + height - 1}, columns {left}–{left + width - 1})"
        )
    return array[top : top + height, left : left + width]


def _pick_channel(array: Any, channel_names: tuple[str, ...], choice: str) -> tuple[Any, str]:
    """One ``(H, W)`` plane of an ``(H, W, C)`` array: ``gray``, an index or a channel name."""
    from convcli.conv import luminance

    count = array.shape[2]
    names = channel_names if len(channel_names) == count else tuple(f"c{i}" for i in range(count))
    wanted = choice.strip()
    if wanted.lower() == "gray":
        if count == 1:
            return array[:, :, 0], names[0]
        return luminance(array)[:, :, 0], "gray"
    if wanted.isdigit() and int(wanted) < count:
        return array[:, :, int(wanted)], names[int(wanted)]
    upper = [name.upper() for name in names]
    if wanted.upper() in upper:
        index = upper.index(wanted.upper())
        return array[:, :, index], names[index]
    raise OptionError(
        f"`--channel` must be gray, 0–{count - 1} or one of {', '.join(names)}, got {choice!r}"
    )


def _load_input(input_text: str | None, image: str | None, crop: str | None,
                channel: str) -> tuple[Any, str]:
    """The 2-D float64 input and a description of where it came from."""
    import numpy as np

    if (input_text is None) == (image is None):
        raise OptionError("give exactly one of --input TEXT or --image PATH")
    if input_text is not None:
        array = parse_matrix(input_text)[:, :, None]
        names: tuple[str, ...] = ("input",)
        source = "--input"
    else:
        from convcli.imageio import read_image

        loaded = read_image(image)  # type: ignore[arg-type]
        array = loaded.array
        names = tuple(loaded.channel_names)
        source = image  # type: ignore[assignment]
    if crop:
        array = _crop(array, crop)
        source += f" [crop {crop}]"
    plane, name = _pick_channel(array, names, channel)
    if name not in ("input",):
        source += f" [{name}]"
    return np.asarray(plane, dtype=np.float64), source


def _pick_kernel(spec: str, feature: int) -> tuple[Any, str, str | None]:
    """The ``(kh, kw)`` weights of member ``feature`` of the bank ``spec``, its name and a note.

    The note (None for a one-kernel bank) says which feature of the bank is
    explained and how to pick another.
    """
    from convcli.errors import KernelError
    from convcli.presets import resolve_kernel

    bank = resolve_kernel(spec)
    if not 0 <= feature < len(bank.kernels):
        raise OptionError(
            f"`--feature` must be 0–{len(bank.kernels) - 1} for {bank.name!r} "
            f"({', '.join(bank.labels)}), got {feature}"
        )
    chosen = bank.kernels[feature]
    weights = chosen.weights
    if weights.ndim == 3:
        if weights.shape[2] != 1:
            raise KernelError(
                f"kernel {chosen.name!r} has C={weights.shape[2]} channels; explain shows one "
                "channel, so give a 2-D kernel"
            )
        weights = weights[:, :, 0]
    note = None
    if len(bank.kernels) > 1:
        others = ", ".join(f"{index} {label}" for index, label in enumerate(bank.labels))
        note = (f"feature {feature} of the {len(bank.kernels)}-kernel bank {bank.name!r} "
                f"({others}); --feature N explains another")
    return weights, chosen.name, note


def _check_size(plane: Any, machine_only: bool) -> None:
    limit = MAX_MACHINE_SIDE if machine_only else MAX_PRINT_SIDE
    rows, cols = plane.shape
    if max(rows, cols) > limit:
        what = "for --json/--gif" if machine_only else "to print"
        raise ShapeError(
            f"input is {rows}×{cols}: too large {what} (at most {limit}×{limit}); "
            "choose a part with --crop Y,X,H,W"
        )


def _fmt(value: float) -> str:
    """Integers without decimals, others with 4 significant digits."""
    if value == int(value) and abs(value) < 1e9:
        return str(int(value))
    return f"{value:.4g}"


def _factor(value: float) -> str:
    """A right-hand factor: negative numbers in parentheses, ``3·(-1)``."""
    text = _fmt(value)
    return f"({text})" if value < 0 else text


def _grid_table(values: Any, styles: Any = None, marks: Any = None) -> Any:
    """A rich table of a 2-D array with row/column indices, per-cell styles and text marks.

    ``marks[row][col]`` is a format such as ``"[{}·]"`` (used when stdout is
    not a terminal, where colours are lost).
    """
    from rich.table import Table
    from rich.text import Text

    table = Table(show_header=True, header_style="dim", box=None, padding=(0, 1))
    table.add_column("", style="dim", justify="right")
    for col in range(values.shape[1]):
        table.add_column(str(col), justify="right")
    for row in range(values.shape[0]):
        cells = []
        for col in range(values.shape[1]):
            text = _fmt(float(values[row, col]))
            if marks is not None:
                text = marks[row][col].format(text)
            cells.append(Text(text, style=styles[row][col] if styles is not None else ""))
        table.add_row(str(row), *cells)
    return table


def _padded_marks(record: Any) -> list[list[str]]:
    """Text marks of the padded grid: ``·`` after padding, ``*`` after inserted zeros, ``[ ]`` window."""
    from convcli.explain import INSERTED_CELL, PADDING_CELL

    window = {(r, c) for r in record.window_rows for c in record.window_cols}
    suffix = {PADDING_CELL: "·", INSERTED_CELL: "*"}
    marks = []
    for row in range(record.padded.shape[0]):
        line = []
        for col in range(record.padded.shape[1]):
            cell = "{}" + suffix.get(int(record.cell_kind[row, col]), "")
            line.append(f"[{cell}]" if (row, col) in window else f" {cell} ")
        marks.append(line)
    return marks


def _section(console: Any, title: str, body: Any = None) -> None:
    """A blank line, a bold title (no markup parsing) and an optional renderable."""
    from rich.text import Text

    console.print()
    console.print(Text(title, style="bold"))
    if body is not None:
        console.print(body)


def _padded_styles(record: Any) -> list[list[str]]:
    """Cell styles of the padded grid: padding blue, inserted zeros magenta, window on yellow."""
    from convcli.explain import INSERTED_CELL, PADDING_CELL

    window = {(r, c) for r in record.window_rows for c in record.window_cols}
    colors = {PADDING_CELL: "blue", INSERTED_CELL: "magenta"}
    styles = []
    for row in range(record.padded.shape[0]):
        line = []
        for col in range(record.padded.shape[1]):
            color = colors.get(int(record.cell_kind[row, col]), "")
            if (row, col) in window:
                line.append(f"bold {color or 'black'} on yellow")
            else:
                line.append(color)
        styles.append(line)
    return styles


def _header(record: Any, kernel_name: str, source: str, padding_name: str,
            feature_note: str | None) -> list[str]:
    """Plain lines: what was computed, with which geometry, and the formula."""
    (sr, sc), (dr, dc) = record.stride, record.dilation
    rows, cols = record.image.shape
    kh, kw = record.kernel.shape
    out_rows, out_cols = record.output.shape
    pads = ", ".join(map(str, record.pads))
    transposed = record.operation == "conv_transpose2d"
    lines = [
        f"{record.operation}: input {rows}×{cols} ({source}), kernel {kernel_name} {kh}×{kw}"
        f"  →  output {out_rows}×{out_cols} (H×W)",
        f"padding {padding_name} (top, bottom, left, right: {pads}) · border "
        + ("none (transposed: the pads crop)" if transposed else record.border)
        + f" · stride {sr},{sc} · dilation {dr},{dc}"
        + (f" · output padding {record.output_padding[0]},{record.output_padding[1]}" if transposed else "")
        + f" · method {METHOD}",
    ]
    if feature_note:
        lines.append(feature_note)
    if record.operation == "conv_transpose2d":
        lines += [
            f"full[{sr}·a + {dr}·m, {sc}·b + {dc}·n] += I[a, b]·K[m, n], then the pads are cropped.",
            f"The same as a stride-1 correlation of P ({sr - 1} zero row(s) and {sc - 1} zero "
            "column(s) inserted between pixels, then padded) with K rotated 180°.",
        ]
    else:
        lines.append(f"out[i, j] = Σ_m Σ_n P[{sr}·i + {dr}·m, {sc}·j + {dc}·n] · K[m, n]")
    return lines


def _print_record(record: Any, kernel_name: str, source: str, flipped: bool, padding_name: str,
                  feature_note: str | None) -> None:
    from rich.console import Console
    from rich.text import Text

    terminal = sys.stdout.isatty()
    # piped output: long lines stay whole instead of wrapping at 80 columns, and
    # padding and window are marked with characters since colours are lost
    console = Console(highlight=False, soft_wrap=not terminal, no_color=not terminal)
    i, j = record.at
    transposed = record.operation == "conv_transpose2d"
    for line in _header(record, kernel_name, source, padding_name, feature_note):
        console.print(Text(line))
    title = "P: zero-inserted, padded input" if transposed else "P: padded input"
    marks = None if terminal else _padded_marks(record)
    _section(console, title, _grid_table(record.padded, _padded_styles(record), marks))
    if terminal:
        legend = Text.assemble(("padding", "blue"), "  ", (f"window of out[{i}, {j}]", "black on yellow"))
        if transposed:
            legend.append_text(Text.assemble("  ", ("inserted zero", "magenta")))
    else:
        legend = Text(f"x· padding  [x] window of out[{i}, {j}]"
                      + ("  x* inserted zero" if transposed else ""))
    console.print(legend)
    _section(console, "K: kernel" + (" (rotated 180° by --flip)" if flipped else ""),
             _grid_table(record.kernel))
    if transposed:
        _section(console, "K rotated 180°: the weights under the window",
                 _grid_table(record.window_kernel))
    _print_products(console, record)
    out_rows, out_cols = record.output.shape
    styles = [["bold black on yellow" if (r, c) == (i, j) else "" for c in range(out_cols)]
              for r in range(out_rows)]
    out_marks = None if terminal else [["[{}]" if (r, c) == (i, j) else " {} " for c in range(out_cols)]
                                       for r in range(out_rows)]
    _section(console, f"{record.operation} output", _grid_table(record.output, styles, out_marks))


def _print_products(console: Any, record: Any) -> None:
    from rich.table import Table
    from rich.text import Text

    i, j = record.at
    table = Table(box=None, padding=(0, 2), show_header=False)
    for _ in record.window_cols:
        table.add_column(justify="right")
    for m in range(record.window.shape[0]):
        table.add_row(*(
            Text.assemble(
                f"{_fmt(float(record.window[m, n]))}·{_factor(float(record.window_kernel[m, n]))} = ",
                (_fmt(float(record.products[m, n])), "bold"),
            )
            for n in range(record.window.shape[1])
        ))
    rows, cols = ", ".join(map(str, record.window_rows)), ", ".join(map(str, record.window_cols))
    _section(console, f"out[{i}, {j}]: window P[rows {rows}; columns {cols}] · weights", table)
    console.print(Text.assemble(
        "sum of products = ", (_fmt(record.total), "bold"),
        f";  {record.operation} gives out[{i}, {j}] = ", (_fmt(record.output_value), "bold"),
    ))
    if record.operation != "conv_transpose2d":
        return
    if not record.contributions:
        _section(console, f"no input cell reaches out[{i}, {j}] (it is 0 plus bias)")
        return
    terms = Table(box=None, padding=(0, 2))
    for name in ("input (a, b)", "I[a, b]", "tap (m, n)", "K[m, n]", "product"):
        terms.add_column(Text(name), justify="right")
    for term in record.contributions:
        terms.add_row(
            f"({term.input_cell[0]}, {term.input_cell[1]})", _fmt(term.value),
            f"({term.tap[0]}, {term.tap[1]})", _fmt(term.weight), _fmt(term.product),
        )
    _section(console, f"scatter terms landing on out[{i}, {j}]", terms)


def explain(
    input_text: str | None = typer.Option(
        None, "--input", metavar="ROWS",
        help="The input as text: rows separated by ';', values by ',' or spaces, or a nested list "
        "[[1,2],[3,4]]. Give --input or --image.  [default: none]",
    ),
    image: str | None = typer.Option(
        None, "--image", metavar="IMAGE",
        help="An image file or .npy array (use --crop for a small part). Give --input or --image.  "
        "[default: none]",
    ),
    crop: str | None = typer.Option(
        None, "--crop", metavar="Y,X,H,W",
        help="Part of the input: top, left, height, width.  [default: the whole input]",
    ),
    channel: str = typer.Option(
        "gray", "--channel", metavar="gray|N|NAME",
        help="Which channel: gray (luminance; the only channel of a 1-channel input), an index, "
        "or a name (R, G, B, A, L).",
    ),
    kernel: str = typer.Option(
        DEFAULT_KERNEL, "-k", "--kernel", metavar="SPEC", autocompletion=complete_kernel,
        help="A preset (sobel-x, laplacian-4, box:size=3, …) or inline weights '1,2;3,4'.",
    ),
    feature: int = typer.Option(0, "--feature", metavar="N", help="Which kernel of a bank (0-based)."),
    stride: str = typer.Option("1", "-s", "--stride", metavar="N|ROWS,COLS", help="Stride."),
    padding: str = typer.Option(
        "same", "-p", "--padding", metavar="PAD",
        help="valid | same (output = ceil(H/s)) | full | N | PH,PW | T,B,L,R.",
    ),
    border: str | None = typer.Option(
        None, "--border", metavar="BORDER", autocompletion=complete_border,
        help="What fills the padding: zero | constant:V | reflect | symmetric | replicate | wrap.  "
        "[default: reflect; none with --transpose]",
    ),
    dilation: str = typer.Option("1", "-d", "--dilation", metavar="N|ROWS,COLS", help="Dilation."),
    flip: bool = typer.Option(False, "--flip", help="Rotate the kernel 180° (true convolution)."),
    transpose: bool = typer.Option(
        False, "--transpose", help="Transposed convolution (PyTorch conv_transpose2d)."
    ),
    output_padding: str = typer.Option(
        "0", "--output-padding", metavar="N|ROWS,COLS",
        help="With --transpose: extra rows,cols at the bottom/right.",
    ),
    at: str = typer.Option("0,0", "--at", metavar="I,J", help="The output cell to explain (row, column)."),
    gif: str | None = typer.Option(
        None, "--gif", metavar="FILE.gif",
        help="Also write an animated GIF of the window sliding (one frame per output cell, at most "
        "--max-frames).  [default: no GIF]",
    ),
    max_frames: int = typer.Option(
        400, "--max-frames", min=1, metavar="N",
        help="Frame cap of --gif; beyond it cells are sampled evenly.",
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --gif file."),
    as_json: bool = typer.Option(
        False, "--json", help="Print the record as one line of JSON (padded input, mask, kernel, "
        "window, products, sum, output grid) instead of tables."
    ),
) -> None:
    from convcli.borders import parse_border
    from convcli.explain import explain_conv2d, explain_conv_transpose2d
    from convcli.geometry import parse_int_pair, parse_padding_text

    try:
        cell = parse_int_pair(at, "at", minimum=0)
    except ShapeError:
        raise OptionError(f"`--at` takes I,J (output row and column, from 0), got {at!r}") from None
    geometry: dict[str, Any] = {
        "stride": parse_int_pair(stride, "stride"),
        "padding": parse_padding_text(padding),
        "dilation": parse_int_pair(dilation, "dilation"),
        "flip": flip,
    }
    out_pads = parse_int_pair(output_padding, "output-padding", minimum=0)
    if transpose:
        if border is not None and border.strip().lower() not in ("none", "zero"):
            raise OptionError("`--border` does not apply to --transpose (its padding crops the output)")
        geometry["output_padding"] = out_pads
    else:
        if out_pads != (0, 0):
            raise OptionError("`--output-padding` only applies with --transpose")
        geometry["border"] = parse_border(border if border is not None else DEFAULT_BORDER)
    plane, source = _load_input(input_text, image, crop, channel)
    _check_size(plane, machine_only=as_json)
    weights, kernel_name, feature_note = _pick_kernel(kernel, feature)
    run = explain_conv_transpose2d if transpose else explain_conv2d
    record = run(plane, weights, at=cell, **geometry)
    if not as_json:
        grid = max(*record.padded.shape, *record.output.shape)
        if grid > MAX_PRINT_GRID:
            raise ShapeError(
                f"the padded grid or output has {grid} cells on a side: too large to print "
                f"(at most {MAX_PRINT_GRID}); crop the input or use a smaller kernel or padding"
            )
    if gif:
        _write_gif(record, gif, max_frames=max_frames, force=force, protect=[image] if image else [])
    if as_json:
        payload = record.to_json()
        payload["padding"] = padding.strip()
        if transpose:
            payload["border"] = "none"
        payload["method"] = METHOD
        payload["kernel_name"] = kernel_name
        payload["feature"] = feature
        payload["source"] = source
        payload["flip"] = flip
        write_json(payload)
        return
    _print_record(record, kernel_name, source, flip, padding.strip(), feature_note)


def _write_gif(record: Any, target: str, *, max_frames: int, force: bool, protect: list[str]) -> None:
    from convcli.animate import encode_gif, frame_cells, frame_size
    from convcli.imageio import write_output

    data = encode_gif(record, max_frames=max_frames)
    write_output(target, data, force=force, protect=protect)
    width, height = frame_size(record)
    frames = len(frame_cells(record.output.size, max_frames))
    err(f"wrote {target} ({frames} frame{'s' if frames != 1 else ''}, {height}×{width})")


explain.__doc__ = EXPLAIN_HELP
