"""Skip typer's pydantic import on the run path of simple commands.

Typer (0.2x) turns every parameter value into its annotated type with a
pydantic ``TypeAdapter``, built lazily per parameter the first time a value
is processed; the first one imports pydantic, ~100 ms here, more than all of
``convcli shape``. For parameters annotated plain ``str``, ``int``, ``bool``
or ``list[str]`` the standard library gives the same result, so
:class:`PlainCoercionMixin` fills typer's lazily built slot
(``_runtime_param``) with :class:`PlainValue` for those, and for ``X | None``
of them, ``str`` Enums (choices, with typer's "is not one of" message) and
ints with ``min``/``max`` (checked here, as Click's ``IntRange`` words it).
Parameters of any other type keep typer's own path. If a typer release drops that slot,
nothing is filled and typer's (slower, equivalent) path runs.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Iterable
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

__all__ = ["PlainCoercionMixin", "PlainCommand", "PlainGroup", "PlainValue", "use_plain_coercion"]


class PlainValue:
    """Coerce a ``str``, ``int``, ``bool``, Enum or ``list[str]``/``list[int]`` value with the stdlib."""

    def __init__(self, item: type, low: Any = None, high: Any = None) -> None:
        self.item = item
        self.low, self.high = low, high

    def _one(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(self.item, type) and issubclass(self.item, enum.Enum):
            if isinstance(value, self.item):
                return value
            try:
                return self.item(str(value))
            except ValueError:
                choices = ", ".join(repr(member.value) for member in self.item)
                raise typer.BadParameter(f"{str(value)!r} is not one of {choices}.", ctx=ctx,
                                         param=param) from None
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
            number = value
        else:
            try:
                number = int(str(value).strip())
            except ValueError:
                raise typer.BadParameter(f"{value!r} is not a valid integer.", ctx=ctx,
                                         param=param) from None
        if (self.low is not None and number < self.low) or (self.high is not None and number > self.high):
            bounds = (f"{self.low}<=x<={self.high}" if self.low is not None and self.high is not None
                      else f"x>={self.low}" if self.low is not None else f"x<={self.high}")
            raise typer.BadParameter(f"{number} is not in the range {bounds}.", ctx=ctx, param=param)
        return number

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        """Typer's ``RuntimeParam.coerce`` contract: None stays None (or ``()`` for lists)."""
        if value is None:
            return () if (param.multiple or param.nargs == -1) else None
        if isinstance(value, (list, tuple)):
            return [self._one(item, param, ctx) for item in value]
        return self._one(value, param, ctx)


_PLAIN = {str: str, int: int, bool: bool, list[str]: str, list[int]: int}


def _plain_item(annotation: Any) -> type | None:
    """The stdlib-coercible item type of an annotation, or None."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) != 1 or len(typing.get_args(annotation)) != 2:
            return None
        annotation = members[0]
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum) \
            and all(isinstance(member.value, str) for member in annotation):
        return annotation
    try:
        return _PLAIN.get(annotation)
    except TypeError:  # an unhashable annotation
        return None


def use_plain_coercion(params: Iterable[Any]) -> None:
    """Give each plain-typed typer parameter a :class:`PlainValue` coercer."""
    for param in params:
        if param is None:
            continue
        descriptor = getattr(param, "type_descriptor", None)
        item = _plain_item(getattr(descriptor, "annotation", None))
        if item is None or getattr(param, "_runtime_param", False) is not None:
            continue
        info = getattr(descriptor, "parameter_info", None)
        low, high = getattr(info, "min", None), getattr(info, "max", None)
        if (low is not None or high is not None) and item is not int:
            continue  # a ranged float or the like: typer's own path
        if getattr(info, "clamp", False):
            continue
        param._runtime_param = PlainValue(item, low, high)


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


class PlainCommand(PlainCoercionMixin, TyperCommand):
    """A typer command whose plain, Enum and ranged-int options skip pydantic."""


class PlainGroup(PlainCoercionMixin, TyperGroup):
    """A typer group (``convcli kernels``) whose own options skip pydantic too."""
