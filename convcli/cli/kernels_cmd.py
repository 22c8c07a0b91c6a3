"""``convcli kernels list|show``: browse the kernel library.

numpy and the kernel modules are imported inside the commands, so that
importing this module (on every ``convcli`` start) stays cheap.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from convcli.cli import write_json
from convcli.cli._plain import PlainCommand, PlainGroup

__all__ = ["kernels_app"]

kernels_app = typer.Typer(
    cls=PlainGroup,
    help=(
        "List the kernel presets and show their weights.\n\n"
        "\b\nExamples:\n"
        "  convcli kernels list\n"
        "  convcli kernels show sobel\n"
        "  convcli kernels show gaussian:sigma=2,size=5\n"
        "  convcli kernels show '1,2,1;2,4,2;1,2,1'"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _number(value: float) -> str:
    """An integer as such, else 4 significant digits (``-0`` shown as ``0``)."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.4g}"


def _vector(values: Any) -> str:
    return "[" + " ".join(_number(v) for v in values) + "]"


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def weight_texts(plane: Any) -> tuple[list[list[str]], str]:
    """The cells of a weight grid as text, and a shared factor (``""`` or ``"×10⁻³"``).

    Never wrong when read alone: integers are printed whole; weights whose
    smallest nonzero magnitude is below 1/1000 of the largest are printed in
    exponent notation (``2.345e-07``); others with one shared ×10ⁿ factor
    (when the largest is below 0.01 or at least 10 000) and fixed decimals
    giving the largest 4 significant digits.
    """
    import math

    values = [[float(v) for v in row] for row in plane]
    flat = [v for row in values for v in row]
    if all(v.is_integer() for v in flat):
        return [[str(int(v)) for v in row] for row in values], ""
    largest = max(abs(v) for v in flat)
    smallest = min(abs(v) for v in flat if v != 0)
    if smallest < largest / 1000:
        return [["0" if v == 0 else f"{v:.3e}" for v in row] for row in values], ""
    exponent = math.floor(math.log10(largest))
    factor = exponent if (exponent < -2 or exponent >= 4) else 0
    decimals = max(0, 3 - (exponent - factor))

    def text(v: float) -> str:
        cell = f"{v / 10.0**factor:.{decimals}f}"
        return cell[1:] if cell.startswith("-") and float(cell) == 0 else cell

    return [[text(v) for v in row] for row in values], (f"×10{str(factor).translate(_SUPERSCRIPT)}"
                                                          if factor else "")


def grid_lines(cells: list[list[str]], width: int | None) -> list[str]:
    """Right-aligned columns; wider than ``width``: blocks of columns labelled ``columns a–b:``.

    Each row is indented by one space and its cells separated by two; a
    column is as wide as its widest cell.
    """
    widths = [max(len(row[col]) for row in cells) for col in range(len(cells[0]))]
    blocks: list[tuple[int, int]] = []
    start = 0
    while start < len(widths):
        stop, used = start + 1, 1 + widths[start]
        while stop < len(widths) and (width is None or used + 2 + widths[stop] <= width):
            used += 2 + widths[stop]
            stop += 1
        blocks.append((start, stop))
        start = stop
    lines = []
    for start, stop in blocks:
        if len(blocks) > 1:
            lines.append(f"columns {start}–{stop - 1}:")
        lines += [" " + "  ".join(row[col].rjust(widths[col]) for col in range(start, stop)) for row in cells]
    return lines


def _size_value(size: str) -> list[int] | list[list[int]]:
    """``"7×7"`` → ``[7, 7]``; ``"2×2, 3×3"`` → ``[[2, 2], [3, 3]]``."""
    pairs = [[int(n) for n in part.strip().split("×")] for part in size.split(",")]
    return pairs[0] if len(pairs) == 1 else pairs


def _params_value(params: str) -> dict[str, Any]:
    """``"sigma=1, size=auto"`` → ``{"sigma": 1, "size": "auto"}`` (numbers as numbers)."""
    result: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in params.split(","))):
        key, _, text = item.partition("=")
        try:
            number = float(text)
            result[key.strip()] = int(number) if number.is_integer() and "." not in text else number
        except ValueError:
            result[key.strip()] = text.strip()
    return result


def _preset_json(info: Any) -> dict[str, Any]:
    return {"name": info.name, "size": _size_value(info.size), "count": info.count,
            "description": info.description, "params": _params_value(info.params)}


def _kernel_json(kernel: Any) -> dict[str, Any]:
    from convcli.kernels import separable_factors

    factors = separable_factors(kernel.weights)
    return {
        "name": kernel.name,
        "shape": list(kernel.weights.shape),
        "weights": kernel.weights.tolist(),
        "sum": float(kernel.weights.sum()),
        "separable": factors is not None,
        "factors": None if factors is None
        else {"column": factors[0].tolist(), "row": factors[1].tolist()},
        "description": kernel.description,
        "display": kernel.display,
    }


@kernels_app.command("list", cls=PlainCommand)
def list_kernels(
    as_json: bool = typer.Option(False, "--json", help="Print one line of JSON (an array) instead."),
) -> None:
    """List every preset, bank and parametric kernel.

    Parametric kernels take parameters after a colon, e.g. `-k gaussian:sigma=2`;
    the params show their defaults ("auto" is computed from the others). When
    stdout is not a terminal, each kernel is one tab-separated line: name,
    size (H×W), params, description.

    \b
    Examples:
      convcli kernels list
      convcli kernels list --json
      convcli kernels list | grep gabor
    """
    from convcli.presets import list_presets

    infos = list_presets()
    if as_json:
        write_json([_preset_json(info) for info in infos])
        return
    if not sys.stdout.isatty():  # one plain line per kernel, for grep/cut/awk
        sys.stdout.write("".join(
            f"{info.name}\t{info.size}\t{info.params}\t{info.description}\n" for info in infos
        ))
        sys.stdout.flush()
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="convcli kernels", title_justify="left")
    table.add_column("name", style="bold")
    table.add_column("size")
    table.add_column("count", justify="right")
    table.add_column("description / params")
    for info in infos:
        text = info.description + (f"\n[dim]params: {info.params}[/dim]" if info.params else "")
        table.add_row(info.name, info.size, str(info.count), text)
    Console().print(table)


@kernels_app.command("show", cls=PlainCommand)
def show(
    spec: str = typer.Argument(
        ..., metavar="NAME[:PARAMS]",
        help="A preset or bank name (with params: gaussian:sigma=2), inline weights, or a file.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one line of JSON (weights, sum, factors)."),
) -> None:
    """Show a kernel's weights (rows top to bottom), their sum, and whether it is separable.

    A separable kernel equals column ⊗ row (an outer product); convcli can then
    filter with two 1-D passes. Weights are correlation weights, as applied.

    \b
    Examples:
      convcli kernels show sobel
      convcli kernels show gabor:theta=45,lambda=8
      convcli kernels show "3x3: 0,1,0,1,-4,1,0,1,0"
      convcli kernels show weights.npy --json
    """
    from convcli.presets import resolve_kernel

    bank = resolve_kernel(spec)
    if as_json:
        payload = {
            "spec": spec,
            "name": bank.name,
            "count": len(bank.kernels),
            "display": bank.display,
            "kernels": [_kernel_json(kernel) for kernel in bank.kernels],
        }
        write_json(payload)
        return
    import shutil

    # a terminal: grids wider than it are split into column blocks; piped: whole rows
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    lines: list[str] = []
    for index, kernel in enumerate(bank.kernels):
        if index:
            lines.append("")
        lines += _kernel_lines(kernel, width)
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def _kernel_lines(kernel: Any, width: int | None) -> list[str]:
    """The text of one kernel: title, weight grid(s) (H rows × W columns), sum, separability."""
    from convcli.kernels import separable_factors

    weights = kernel.weights
    title = f"{kernel.name}  {kernel.size_text}"
    if kernel.description:
        title += f"  {kernel.description}"
    lines = [title]
    planes = [weights] if weights.ndim == 2 else [weights[:, :, c] for c in range(weights.shape[2])]
    for channel, plane in enumerate(planes):
        cells, factor = weight_texts(plane)
        label = f"channel {channel}:" if weights.ndim == 3 else ""
        if factor:
            label = f"{label} {factor}".strip() if label else f"weights {factor}:"
        if label:
            lines.append(label)
        lines += grid_lines(cells, width)
    lines.append(f"sum: {_number(float(weights.sum()))}")
    factors = separable_factors(weights)
    if factors is None:
        lines.append("separable: no")
    else:
        column, row = factors
        lines.append(f"separable: yes, column {_vector(column)} ⊗ row {_vector(row)}")
    if kernel.display:
        lines.append(f"display hint: {kernel.display}")
    return lines
