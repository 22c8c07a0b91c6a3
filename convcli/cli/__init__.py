"""The ``convcli`` command line: a thin layer over the core.

This package is the only place that imports typer and rich. Each command
lives in its own module and imports numpy, scipy and Pillow lazily, inside the
command, so ``convcli --help`` and ``convcli shape`` stay fast.

Errors are translated once, here (:class:`ConvcliGroup`): any
:class:`convcli.errors.ConvcliError` becomes one line
``convcli: error: …`` on stderr and exit code 1; usage errors (an unknown
option, a missing argument, a choice not in the list) are one such line too,
naming the command's ``--help``, and exit 2 as Click's do;
Ctrl-C exits 130; a closed stdout (``| head``) exits quietly; anything else
(a bug) is one ``convcli: internal error: …`` line and exit 1, with the
traceback only when ``CONVCLI_DEBUG`` is set.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

from convcli.cli._plain import PlainCoercionMixin, PlainCommand
from convcli.errors import ConvcliError

__all__ = ["app", "err", "main", "write_json"]

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def err(message: str) -> None:
    """Write one line to stderr (no rich markup, safe for pipes).

    Control characters inside the message (a newline in a file name or a
    kernel spec) are written as escapes (``\\n``), so it stays one line.
    """
    text = message.rstrip("\n")
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                       for ch in text)
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def write_json(record: object) -> None:
    """Write ``record`` as one compact line of JSON on stdout and flush it.

    The one JSON style of every command: ``separators=(",", ":")``, UTF-8 text
    (``ensure_ascii=False``), numbers as numbers, one object per line. The
    flush makes a closed reader raise here, inside the command, where the
    error handling turns it into a quiet exit 1.
    """
    import json

    sys.stdout.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _quiet_broken_pipe() -> None:
    """stdout was closed by the reader: point it at devnull so exit does not fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _is_click_error(exc: BaseException) -> bool:
    """A Click usage/parameter error (typer vendors Click, so match by its interface)."""
    return hasattr(exc, "format_message") and isinstance(getattr(exc, "exit_code", None), int)


def _usage_line(exc: Exception) -> str:
    """One line for a Click usage error: the message and where help is."""
    message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
    message = message.replace("Value error, ", "")  # pydantic's prefix on enum choices
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        message += f" (see '{ctx.command_path} --help')"
    return f"convcli: error: {message}"


def _normalize_completion_instruction(prog_name: str, complete_var: str | None) -> None:
    """Accept Click 8's ``bash_source``/``bash_complete`` as well as typer's ``source_bash``.

    Typer reads the completion variable (``_CONVCLI_COMPLETE``) as
    ``ACTION_SHELL``; shells and the Click documentation write ``SHELL_ACTION``.
    Both orders are understood: the Click order is rewritten for typer.
    """
    var = complete_var or f"_{prog_name}_COMPLETE".replace("-", "_").upper()
    value = os.environ.get(var, "")
    first, _, second = value.partition("_")
    if first in ("bash", "zsh", "fish", "powershell", "pwsh") and second in ("source", "complete"):
        os.environ[var] = f"{second}_{first}"


class ConvcliGroup(PlainCoercionMixin, TyperGroup):
    """Click group that turns library errors into one line and an exit code."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the CLI; usage errors become one plain line (not a rich box) and exit 2."""
        _normalize_completion_instruction(prog_name or self.name or "convcli", complete_var)
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            err("convcli: aborted")
            sys.exit(EXIT_ERROR)
        except Exception as exc:
            if not _is_click_error(exc):
                raise
            if type(exc).__name__ == "NoArgsIsHelpError":  # bare `convcli`/`convcli kernels`: help
                exc.show()  # type: ignore[attr-defined]
            else:
                err(_usage_line(exc))
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: typer.Context) -> object:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except ConvcliError as exc:
            err(f"convcli: error: {exc}")
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err("convcli: interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except BrokenPipeError:
            _quiet_broken_pipe()
            raise typer.Exit(EXIT_ERROR) from None
        except MemoryError:
            err("convcli: error: not enough memory (try a smaller image, fewer kernels or a stride)")
            raise typer.Exit(EXIT_ERROR) from None
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # Click's own exits and usage errors (exit code 2)
        except Exception as exc:  # a bug: one line for the user, the traceback on request
            if os.environ.get("CONVCLI_DEBUG"):
                raise
            err(f"convcli: internal error: {type(exc).__name__}: {exc} "
                "(a bug; please report it; CONVCLI_DEBUG=1 shows the traceback)")
            raise typer.Exit(EXIT_ERROR) from None


app = typer.Typer(
    name="convcli",
    cls=ConvcliGroup,
    help=(
        "CNN-style 2-D convolution for images: exact PyTorch/scipy semantics "
        "(stride, padding, border, dilation, channels, transposed), fast numpy core."
    ),
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from convcli import __version__
        from convcli.engines._native import status

        typer.echo(f"convcli {__version__}\n{status()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """CNN-style 2-D convolution for images."""


# --- command registration: one line per command module -----------------------
from convcli.cli import apply as _apply  # noqa: E402

app.command("apply", cls=PlainCommand)(_apply.apply)
from convcli.cli import shape as _shape  # noqa: E402

app.command("shape", cls=_shape.ShapeCommand)(_shape.shape)
from convcli.cli.kernels_cmd import kernels_app  # noqa: E402

app.add_typer(kernels_app, name="kernels")
from convcli.cli import explain as _explain  # noqa: E402

app.command("explain", cls=PlainCommand)(_explain.explain)
# ---------------------------------------------------------------------------


def main() -> None:
    """Console-script entry point.

    The cyclic garbage collector runs far less often in a CLI run: the
    objects of start-up are frozen out of its scans and its first
    generation collects after 20 000 allocations instead of 700 (a run makes
    few cycles; the default thresholds cost 20–40 ms of a photo's 0.7 s in
    scans of the import-time objects).

    OpenBLAS gets one thread (``OPENBLAS_NUM_THREADS``, unless the user set
    it) before numpy is imported: the strategies run BLAS on their own pool,
    one BLAS thread per worker, so OpenBLAS's threads would only spin after
    a small call (the cost model's SVDs), measured at 10 % of a photo job's
    CPU on 2 cores. Worker processes inherit the setting.
    """
    import gc
    import os

    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    try:
        app(prog_name="convcli")
    except KeyboardInterrupt:
        err("convcli: interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        _quiet_broken_pipe()
        sys.exit(EXIT_ERROR)
