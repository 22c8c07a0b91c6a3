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

Measured (typer 0.29, 2-core machine, median of 8): ``convcli shape 224 -k 3``
takes 150 ms with these coercers and 270 ms without; the difference is
``import pydantic`` plus building the first ``TypeAdapter``. Typer 0.29 has no
public way around it: ``parser=`` also builds a ``TypeAdapter`` and there is
no ``click_type``; lazy imports in convcli cannot help, since typer imports
pydantic while converting the first value. So the slot stays, with
``tests/test_help.py::test_plain_coercion_matches_typer`` comparing both paths
and ``test_shape_imports_no_…pydantic`` noticing when the slot goes.

The same command classes carry two more CLI-wide rules, so that no command
(and no option added later) can miss them:

* **Empty paths** (:func:`check_empty_paths`): a parameter whose metavar names a
  path (a word of :data:`PATH_WORDS`: ``FILE``, ``DIR``, ``PATH``, ``IMAGE``,
  ``INPUT``) refuses ``""`` with ``-o is empty (an unset shell variable?)``
  (an :class:`~convcli.errors.OptionError`, exit 1), right after parsing,
  before the command reads or writes anything.
* **Help** (:meth:`PlainCoercionMixin.format_options`): plain text for 80
  columns, each option with its metavar (never a Python type name) and its
  default; the usage line names the arguments by their metavars.
"""

from __future__ import annotations

import enum
import re
import types
import typing
from collections.abc import Iterable
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

__all__ = [
    "PATH_WORDS",
    "PlainCoercionMixin",
    "PlainCommand",
    "PlainGroup",
    "PlainValue",
    "check_empty_paths",
    "is_path_param",
    "use_plain_coercion",
]

#: Metavar words that mark a parameter as a path (``FILE|-``, ``DIR/``, ``INPUT...``, ``H|IMAGE``).
PATH_WORDS = frozenset({"FILE", "DIR", "PATH", "IMAGE", "INPUT"})


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


def is_path_param(param: Any) -> bool:
    """True when the parameter takes a path: its metavar has a word of :data:`PATH_WORDS`."""
    metavar = getattr(param, "metavar", None) or ""
    return bool(PATH_WORDS & set(re.split(r"[^A-Za-z]+", metavar)))


def param_label(param: Any) -> str:
    """How a message names a parameter: its first option (``-o``) or its metavar (``INPUT``)."""
    opts = list(getattr(param, "opts", ()))
    if getattr(param, "param_type_name", "") == "option" and opts:
        return opts[0]
    metavar = (getattr(param, "metavar", None) or param.name.upper()).strip("[]{}")
    return metavar.removesuffix("...")


def check_empty_paths(params: Iterable[Any], values: dict[str, Any]) -> None:
    """Refuse an empty string given to a path parameter.

    Raises
    ------
    OptionError
        ``<label> is empty (an unset shell variable?)`` for the first path
        parameter whose value is ``""`` or a list holding ``""``.
    """
    from convcli.errors import OptionError

    for param in params:
        if not is_path_param(param):
            continue
        value = values.get(param.name)
        items = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(item, str) and item == "" for item in items):
            raise OptionError(f"{param_label(param)} is empty (an unset shell variable?)")


def _choices(param: Any) -> list[str] | None:
    """The string values of an Enum-typed parameter, else None."""
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = members[0] if len(members) == 1 else None
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return [str(member.value) for member in annotation]
    return None


def param_metavar(param: Any) -> str:
    """The value placeholder shown in help: the declared metavar, choices ``a|b``, ``N`` or ``TEXT``."""
    if param.metavar:
        return str(param.metavar)
    choices = _choices(param)
    if choices:
        return "|".join(choices)
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if annotation in (int, int | None):
        return "N"
    if annotation in (float, float | None):
        return "X"
    return param.name.upper()


def _default_text(param: Any) -> str | None:
    """The default as shown in help, or None when there is none to show."""
    default = param.default
    if default is None or callable(default) or getattr(param, "is_flag", False):
        return None
    if isinstance(default, enum.Enum):
        return str(default.value)
    if isinstance(default, (list, tuple)):
        return ",".join(str(item.value if isinstance(item, enum.Enum) else item) for item in default) or None
    return str(default)


def help_record(param: Any) -> tuple[str, str] | None:
    """``(name column, help column)`` of one parameter for the plain help page."""
    if getattr(param, "hidden", False):
        return None
    metavar = param_metavar(param)
    if param.param_type_name == "argument":
        name = metavar
    else:
        opts = sorted(param.opts, key=lambda opt: opt.startswith("--"))  # -k before --kernel
        name = ", ".join([*opts, *param.secondary_opts])
        if not getattr(param, "is_flag", False) and not getattr(param, "count", False):
            name += f" {metavar}"
    extra = []
    default = _default_text(param)
    if default is not None and getattr(param, "show_default", True) is not False:
        extra.append(f"default: {default}")
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if low is not None and high is not None:
        extra.append(f"{low}-{high}")
    elif low is not None or high is not None:
        extra.append(f"at least {low}" if low is not None else f"at most {high}")
    if param.required and param.param_type_name == "option":
        extra.append("required")
    text = getattr(param, "help", None) or ""
    if extra:
        text = f"{text}  [{'; '.join(extra)}]" if text else f"[{'; '.join(extra)}]"
    return name, text


class PlainCoercionMixin:
    """Mix into a TyperCommand / TyperGroup: plain parameters skip pydantic.

    Also refuses empty path values (:func:`check_empty_paths`) and writes the
    plain, 80-column help (metavars and defaults, no Python type names).
    """

    params: list[Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        use_plain_coercion(self.params)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        use_plain_coercion([option])
        return option

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        use_plain_coercion(self.params)  # typer appends --install-completion after __init__
        rest = super().parse_args(ctx, args)  # type: ignore[misc]
        if not ctx.resilient_parsing:
            check_empty_paths(self.params, ctx.params)
        return rest  # type: ignore[no-any-return]

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if getattr(self, "options_metavar", None) else []  # type: ignore[attr-defined]
        for param in self.get_params(ctx):  # type: ignore[attr-defined]
            if param.param_type_name == "argument":
                metavar = param_metavar(param)
                pieces.append(metavar if param.required else f"[{metavar}]")
        if hasattr(self, "subcommand_metavar"):
            pieces.append(self.subcommand_metavar)
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        args, opts = [], []
        for param in self.get_params(ctx):  # type: ignore[attr-defined]
            record = help_record(param)
            if record is not None:
                (args if param.param_type_name == "argument" else opts).append(record)
        if args:
            with formatter.section("Arguments"):
                formatter.write_dl(args)
        if opts:
            with formatter.section("Options"):
                formatter.write_dl(opts)
        if hasattr(self, "format_commands"):
            self.format_commands(ctx, formatter)


class PlainCommand(PlainCoercionMixin, TyperCommand):
    """A typer command whose plain, Enum and ranged-int options skip pydantic."""


class PlainGroup(PlainCoercionMixin, TyperGroup):
    """A typer group (``convcli kernels``) whose own options skip pydantic too."""
