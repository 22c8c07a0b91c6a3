"""Every command's ``--help`` teaches at 80 columns (issue 14, point 2).

The commands are found from the click objects (``typer.main.get_command``),
so a new command or option is checked without editing this file. For each
``--help`` page rendered at ``COLUMNS=80``:

* no Python type names (``<list[str]>``, ``<bool>``, ``<str>``) and no typer
  braces in the usage line (``{INPUT...}...``);
* every option that takes a value shows its default (``[default: …]``) or says
  it is required;
* no line is wider than 80 columns, so examples never wrap mid-command;
* each line of an ``Examples:`` block is a complete command that the click
  command parses (quotes balanced, options known, values given), and example
  lines are not separated by blank lines.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from convcli.cli import app
from convcli.cli._plain import help_record

RUNNER = CliRunner()
ROOT = typer.main.get_command(app)
TYPE_NAMES = re.compile(r"<(?:list\[\w+\]|bool|str|int|float|Path|tuple[^>]*|dict[^>]*|text)>", re.I)


def _is_group(command) -> bool:
    """A group (typer vendors click, so test by interface, not by class)."""
    return hasattr(command, "list_commands")


def _commands(command, path: tuple[str, ...] = ()) -> list:
    found = [(path, command)]
    if _is_group(command):
        ctx = typer.Context(command)
        for name in command.list_commands(ctx):
            found += _commands(command.get_command(ctx, name), (*path, name))  # type: ignore[arg-type]
    return found


COMMANDS = _commands(ROOT)
IDS = [" ".join(path) or "convcli" for path, _ in COMMANDS]


def _help(path: tuple[str, ...]) -> str:
    result = RUNNER.invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.stdout


def _params(command) -> list:
    ctx = typer.Context(command)
    return command.get_params(ctx)


@pytest.mark.parametrize(("path", "command"),
                         COMMANDS, ids=IDS)
def test_help_has_no_type_names_and_fits_80_columns(path, command):
    text = _help(path)
    assert not TYPE_NAMES.search(text), TYPE_NAMES.search(text)
    usage = text.splitlines()[0]
    assert usage.startswith("Usage: convcli") and "{" not in usage, usage
    wide = [line for line in text.splitlines() if len(line) > 80]
    assert not wide, wide


@pytest.mark.parametrize(("path", "command"),
                         COMMANDS, ids=IDS)
def test_every_option_shows_its_default(path, command):
    text = "".join(_help(path).split())  # compared without whitespace: wrapping may split a word
    for param in _params(command):
        record = help_record(param)
        if record is None:
            continue
        name, help_text = record
        assert "".join(name.split()) in text, name
        if getattr(param, "is_flag", False) or (param.param_type_name == "argument" and param.required):
            continue
        assert re.search(r"\bdefault\b|\[required\]", help_text, re.I), f"{name}: no default in {help_text!r}"
        assert "".join(help_text.split()) in text, help_text


def _example_lines(text: str) -> list[tuple[str, str | None]]:
    """Each example line and the line after its block (None at the end)."""
    lines = text.splitlines()
    found = []
    for index, line in enumerate(lines):
        if line.strip() != "Examples:":
            continue
        end = index + 1
        while end < len(lines) and lines[end].strip():
            end += 1
        after = next((lines[k] for k in range(end, len(lines)) if lines[k].strip()), None)
        found += [(lines[k].strip(), after) for k in range(index + 1, end)]
    return found


@pytest.mark.parametrize(("path", "command"),
                         COMMANDS, ids=IDS)
def test_examples_are_complete_commands(path, command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # parsing must not write anything; nothing runs
    examples = _example_lines(_help(path))
    if path and not _is_group(command):
        assert examples, "a command's help has examples"
    for line, after in examples:
        assert after is None or not after.strip().startswith("convcli "), \
            f"a blank line between example lines before {after!r}"
        code = line.split(" #", 1)[0].strip()
        assert not code.endswith("\\"), line
        words = shlex.split(code)  # balanced quotes
        segments = " ".join(shlex.quote(w) if w != "|" else "|" for w in words).split(" | ")
        assert shlex.split(segments[0])[0] == "convcli", line
        for segment in segments:
            args = shlex.split(segment)
            if args[0] != "convcli":  # a pipe into another tool: `convcli kernels list | grep x`
                continue
            # parse (not run) the example with the click objects: unknown options or
            # missing values fail here
            target, rest = ROOT, args[1:]
            while _is_group(target) and rest and rest[0] in target.list_commands(
                    typer.Context(target)):
                target, rest = target.get_command(typer.Context(target), rest[0]), rest[1:]
            assert not _is_group(target), line
            target.make_context(target.name, list(rest))
    assert list(tmp_path.iterdir()) == []


def test_root_help_lists_completion_options():
    text = _help(())
    assert "--install-completion" in text and "--show-completion" in text


def test_plain_coercion_matches_typer():
    """The stdlib coercers of _plain give what typer's own (pydantic) path gives."""
    from convcli.cli._plain import PlainValue

    for command in (c for _, c in COMMANDS):
        for param in _params(command):
            runtime = getattr(param, "_runtime_param", None)
            if not isinstance(runtime, PlainValue):
                continue
            ctx = typer.Context(command)
            samples = {str: ["abc", ""], int: ["3", "0"], bool: ["true", "0"]}.get(runtime.item, [])
            if isinstance(runtime.item, type) and issubclass(runtime.item, __import__("enum").Enum):
                samples = [member.value for member in runtime.item]
            for sample in samples:
                value = [sample] if (param.multiple or param.nargs == -1) else sample
                from typer._coercion import build_runtime_param  # typer's own path, for the comparison

                outcomes = []
                for coercer in (runtime, build_runtime_param(param.type_descriptor)):
                    try:
                        outcomes.append(coercer.coerce(value, param, ctx))
                    except Exception as exc:  # both must refuse, with the same kind of error
                        outcomes.append(type(exc).__name__)
                assert outcomes[0] == outcomes[1], (command.name, param.name, sample, outcomes)


def test_method_help_names_every_strategy():
    """--method's help is static text (help imports no numpy): it must not drift from the registries."""
    from convcli import engines

    result = subprocess.run([sys.executable, "-m", "convcli", "apply", "--help"], capture_output=True,
                            text=True, env={**os.environ, "COLUMNS": "200"}, timeout=60)
    text = re.sub(r"\s+", " ", result.stdout)
    method = text[text.index("--method"):]
    method = method[:method.index("--dtype")]
    for name in [*engines.FORWARD_ENGINES, *engines.TRANSPOSE_ENGINES]:
        assert re.search(rf"\b{re.escape(name)}\b", method), name
