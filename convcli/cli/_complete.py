"""Shell-completion helpers for ``typer.Option(autocompletion=...)``.

Shells ask through the ``_CONVCLI_COMPLETE`` variable (typer's mechanism; see
``convcli --show-completion``). Each function here takes the partial word and
returns the candidates that start with it; a path parameter gets none, so the
shell's own file completion runs (the bash script uses ``complete -o default``).
"""

from __future__ import annotations

from collections.abc import Callable

import typer

__all__ = ["BORDERS", "SCALES", "choices", "complete_border", "complete_kernel", "complete_scale"]

#: --border values (``constant:`` takes a value after the colon).
BORDERS = ("zero", "reflect", "symmetric", "replicate", "wrap", "constant:")
#: --scale values (``offset:`` takes a value after the colon).
SCALES = ("auto", "clip", "abs", "minmax", "raw", "offset:")


def choices(*values: str) -> Callable[[typer.Context, list[str], str], list[str]]:
    """A completion function offering ``values``."""

    def complete(ctx: typer.Context, args: list[str], incomplete: str) -> list[str]:
        return [value for value in values if value.startswith(incomplete)]

    return complete


complete_border = choices(*BORDERS)
complete_scale = choices(*SCALES)


def complete_kernel(ctx: typer.Context, args: list[str], incomplete: str) -> list[str]:
    """Preset and bank names for ``-k`` (files are left to the shell)."""
    try:
        from convcli.presets import list_presets

        names = [info.name for info in list_presets()]
    except Exception:  # completion must never print a traceback into the shell
        return []
    return [name for name in names if name.startswith(incomplete)]
