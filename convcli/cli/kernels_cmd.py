"""``convcli kernels list|show``: browse the kernel library.

numpy and the kernel modules are imported inside the commands, so that
importing this module (on every ``convcli`` start) stays cheap.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from convcli.cli._plain import PlainCommand, PlainGroup

__all__ = ["kernels_app"]

kernels_app = typer.Typer(
    cls=PlainGroup,
    help=(
        "List the kernel presets and show their weights.\n\n"
        "Examples:\n\n"
        "  convcli kernels list\n\n"
        "  convcli kernels show sobel\n\n"
        "  convcli kernels show gaussian:sigma=2,size=5\n\n"
        "  convcli kernels show '1,2,1;2,4,2;1,2,1'"
    ),
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _number(value: float) -> str:
    """An integer as such, else 4 significant digits (``-0`` shown as ``0``)."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.4g}"


def _vector(values: Any) -> str:
    return "[" + " ".join(_number(v) for v in values) + "]"


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
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array instead of a table."),
) -> None:
    """List every preset, bank and parametric kernel.

    Parametric kernels take parameters after a colon, e.g. `-k gaussian:sigma=2`;
    the PARAMS column shows their defaults ("auto" is computed from the others).

    Examples:

      convcli kernels list

      convcli kernels list --json
    """
    from dataclasses import asdict

    from convcli.presets import list_presets

    infos = list_presets()
    if as_json:
        typer.echo(json.dumps([asdict(info) for info in infos], indent=2, ensure_ascii=False))
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
    as_json: bool = typer.Option(False, "--json", help="Print JSON (weights, sum, factors)."),
    montage: str | None = typer.Option(
        None, "--montage", metavar="PNG",
        help="Also draw the filters as tiles (0 = mid-grey; C=3 as RGB, else a tile per channel).",
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --montage file."),
) -> None:
    """Show a kernel's weights (rows top to bottom), their sum, and whether it is separable.

    A separable kernel equals column ⊗ row (an outer product); convcli can then
    filter with two 1-D passes. Weights are correlation weights, as applied.

    A model file (.safetensors, .npz, .pt/.pth, .onnx) lists its conv layers;
    FILE:NAME shows one layer's filters (PyTorch layout (F, C/G, kh, kw) in
    the file, shown per channel).

    Examples:

      convcli kernels show sobel

      convcli kernels show gabor:theta=45,lambda=8

      convcli kernels show "3x3: 0,1,0,1,-4,1,0,1,0"

      convcli kernels show weights.npy --json

      convcli kernels show resnet18.safetensors

      convcli kernels show resnet18.safetensors:conv1.weight --montage filters.png
    """
    from convcli.presets import resolve_kernel

    if _is_model_file_alone(spec):
        if montage:
            from convcli.errors import OptionError

            raise OptionError(f"--montage draws one layer: name it as {spec}:NAME")
        _show_model_file(spec, as_json)
        return
    bank = resolve_kernel(spec)
    if montage:
        _write_filter_montage(bank, montage, force)
    if as_json:
        payload = {
            "spec": spec,
            "name": bank.name,
            "count": len(bank.kernels),
            "display": bank.display,
            "kernels": [_kernel_json(kernel) for kernel in bank.kernels],
        }
        if bank.layer is not None:
            payload["layer"] = _layer_json(bank)
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    from rich.console import Console

    # piped output: long lines stay whole instead of wrapping at 80 columns
    console = Console(soft_wrap=not sys.stdout.isatty())
    if bank.layer is not None:
        _print_layer_header(console, bank)
    for index, kernel in enumerate(bank.kernels):
        if index:
            console.print()
        _print_kernel(console, kernel)


def _print_kernel(console: Any, kernel: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    from convcli.kernels import separable_factors

    weights = kernel.weights
    title = f"[bold]{escape(kernel.name)}[/bold]  {kernel.size_text}"
    if kernel.description:
        title += f"  [dim]{escape(kernel.description)}[/dim]"
    console.print(title)
    planes = [weights] if weights.ndim == 2 else [weights[:, :, c] for c in range(weights.shape[2])]
    for channel, plane in enumerate(planes):
        if weights.ndim == 3:
            console.print(f"channel {channel}:")
        grid = Table(show_header=False, show_edge=True, box=None, padding=(0, 1))
        for _ in range(plane.shape[1]):
            grid.add_column(justify="right")
        for row in plane:
            grid.add_row(*(_number(value) for value in row))
        console.print(grid)
    console.print(f"sum: {_number(float(weights.sum()))}")
    factors = separable_factors(weights)
    if factors is None:
        console.print("separable: no")
    else:
        column, row = factors
        console.print(f"separable: yes, column {_vector(column)} ⊗ row {_vector(row)}")
    if kernel.display:
        console.print(f"display hint: {kernel.display}")


# --- model files (convcli.modelfiles): listing, layer header, filter montage ----------------


def _is_model_file_alone(spec: str) -> bool:
    """``spec`` is an existing model file without ``:NAME``."""
    from pathlib import Path

    from convcli.modelfiles import is_model_file

    try:
        return is_model_file(spec) and Path(spec).expanduser().is_file()
    except (OSError, ValueError):
        return False


def _shape_text(shape: Any) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ")"


def _show_model_file(spec: str, as_json: bool) -> None:
    """``kernels show FILE``: the file's 4-D tensors or Conv/ConvTranspose nodes with shapes."""
    from dataclasses import asdict

    from convcli.modelfiles import list_layers

    infos = list_layers(spec)
    if as_json:
        typer.echo(json.dumps({"file": spec, "layers": [asdict(info) for info in infos]}, indent=2,
                              ensure_ascii=False))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(soft_wrap=not sys.stdout.isatty())
    if not infos:
        console.print(f"{escape(spec)}: no 4-D tensors or Conv nodes")
        return
    table = Table(title=f"{escape(spec)}: conv layers (use -k {escape(spec)}:NAME)",
                  title_justify="left")
    table.add_column("name", style="bold")
    table.add_column("kind")
    table.add_column("shape")
    table.add_column("dtype")
    table.add_column("notes")
    for info in infos:
        table.add_row(escape(info.name), info.kind, _shape_text(info.shape), info.dtype,
                      escape(info.note))
    console.print(table)


def _layer_json(bank: Any) -> dict[str, Any]:
    layer = bank.layer
    return {
        "source": layer.source,
        "name": layer.name,
        "layout": bank.layout,
        "shape": list(layer.shape),
        "transposed": bank.transposed,
        "groups": bank.groups,
        "bias": None if bank.bias is None else bank.bias.tolist(),
        "geometry": {key: list(value) if isinstance(value, tuple) else value
                     for key, value in bank.geometry.items()},
    }


def _print_layer_header(console: Any, bank: Any) -> None:
    from rich.markup import escape

    layer = bank.layer
    layout = "(C, F/G, kh, kw)" if bank.transposed else "(F, C/G, kh, kw)"
    text = (f"[bold]{escape(layer.source)}[/bold]  {len(bank)} filters, weight "
            f"{_shape_text(layer.shape)} = {layout}")
    if bank.transposed:
        text += ", transposed"
    if bank.groups is not None:
        text += f", groups {bank.groups}"
    if bank.geometry:
        text += f"  [dim]{escape(json.dumps(_layer_json(bank)['geometry']))}[/dim]"
    console.print(text)
    if bank.bias is not None:
        console.print(f"bias: {_vector(bank.bias)}")
    console.print()


def _write_filter_montage(bank: Any, target: str, force: bool) -> None:
    """``--montage PNG``: the bank's filters as tiles (:func:`convcli.montage.make_filter_montage`)."""
    from pathlib import Path

    from convcli import imageio
    from convcli.errors import OptionError
    from convcli.montage import make_filter_montage

    if Path(target).suffix.lower() not in ("", ".png"):
        raise OptionError(f"--montage {target}: the filter sheet is a PNG; name it .png")
    sheet = make_filter_montage(bank.stack(), bank.labels)
    imageio.write_output(target, imageio.encode_png(sheet), force=force)
    rows, cols = sheet.shape[:2]
    typer.echo(f"wrote {target} ({rows}×{cols}, {len(bank)} filters)", err=True)
