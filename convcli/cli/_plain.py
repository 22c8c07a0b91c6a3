"""Skip typer's pydantic import on the run path of simple commands.

Typer (0.2x) turns every parameter value into its annotated type with a
pydantic ``TypeAdapter``, built lazily per parameter the first time a value
is processed; the first one imports pydantic, ~100 ms here, more than all of
``convcli shape``. For parameters annotated plain ``str``, ``int``, ``bool``
or ``list[str]`` the standard library gives the same result, so
:class:`PlainCoercionMixin` fills typer's lazily built slot
(``_runtime_param``) with :class:`PlainValue` for those. Parameters of any
other type keep typer's own path. If a typer release drops that slot,
nothing is filled and typer's (slower, equivalent) path runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import typer

__all__ = ["PlainCoercionMixin", "PlainValue", "use_plain_coercion"]


class PlainValue:
    """Coerce a ``str``, ``int``, ``bool`` or ``list[str]``/``list[int]`` value with the stdlib."""

    def __init__(self, item: type) -> None:
        self.item = item

    def _one(self, value: Any, param: Any, ctx: Any) -> Any:
        if self.item is str:
            return value if isinstance(value, str) else str(value)
        if self.item is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "t", "yes", "y", "on"):
                return True
            if text in ("0", "false", "f", "no", "n", "off"):
                return False
            raise typer.BadParameter(f"{value!r} is not a valid boolean.", ctx=ctx, param=param)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            raise typer.BadParameter(f"{value!r} is not a valid integer.", ctx=ctx, param=param) from None

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        """Typer's ``RuntimeParam.coerce`` contract: None stays None (or ``()`` for lists)."""
        if value is None:
            return () if (param.multiple or param.nargs == -1) else None
        if isinstance(value, (list, tuple)):
            return [self._one(item, param, ctx) for item in value]
        return self._one(value, param, ctx)


_PLAIN = {str: str, int: int, bool: bool, list[str]: str, list[int]: int}


def use_plain_coercion(params: Iterable[Any]) -> None:
    """Give each plain-typed typer parameter a :class:`PlainValue` coercer."""
    for param in params:
        if param is None:
            continue
        annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
        try:
            item = _PLAIN.get(annotation)
        except TypeError:  # an unhashable annotation
            item = None
        if item is not None and getattr(param, "_runtime_param", False) is None:
            param._runtime_param = PlainValue(item)


class PlainCoercionMixin:
    """Mix into a TyperCommand / TyperGroup: plain parameters skip pydantic."""

    params: list[Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        use_plain_coercion(self.params)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        use_plain_coercion([option])
        return option
