"""Every command in README.md runs, and shown output matches.

Rules for README code blocks:

* ```` ```sh ```` blocks: every command (backslash continuations joined) runs
  with bash in one scratch directory shared by the whole README, holding
  ``sample_images/``, ``photo.png`` (a sample photo) and the gallery's
  ``stride-2.png``; each must exit 0. Install steps (``python3 -m venv …``,
  ``. .venv/bin/activate``, ``pip install …``) are skipped — the test runs
  inside the installed package — and so are the commands that *are* the test
  run or CI (``python -m pytest``, ``bash .ci/run``) and the benchmark, whose
  quick mode ``tests/test_benchmarks.py`` runs.
* ```` ```console ```` blocks: ``$ command`` lines run the same way; the lines
  shown after a command must appear in its stdout, in order (``…`` stands
  for lines left out).
* ```` ```pycon ```` blocks run as doctests.
"""

from __future__ import annotations

import doctest
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SKIPPED_PREFIXES = ("python3 -m venv", ". .venv/bin/activate", "pip install", "python -m pytest",
                    "bash .ci/run", "python benchmarks/run.py")


def _blocks(kind: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    return re.findall(rf"^```{kind}\n(.*?)^```", text, flags=re.S | re.M)


def _commands(block: str) -> list[str]:
    joined = block.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.startswith("#")]


def _runnable(command: str) -> str | None:
    """The part of a command line the test runs, or None when all of it is skipped."""
    parts = [p.strip() for p in command.split("&&")]
    kept = [p for p in parts if not p.startswith(SKIPPED_PREFIXES)]
    return " && ".join(kept) if kept else None


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "sample_images", root / "sample_images")
    shutil.copy(ROOT / "sample_images" / "chelsea.png", root / "photo.png")
    # the gallery's transposed-convolution example upsamples the stride-2 picture
    shutil.copy(ROOT / "docs" / "gallery" / "stride-2.png", root / "stride-2.png")
    # the gallery's stand-in first layer (scripts/make_gallery.py) for the model-file examples
    shutil.copy(ROOT / "docs" / "gallery" / "first-layer.safetensors", root / "first-layer.safetensors")
    return root


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def _sh_commands() -> list[str]:
    commands = []
    for block in _blocks("sh"):
        for command in _commands(block):
            runnable = _runnable(command)
            if runnable:
                commands.append(runnable)
    return commands


def _console_examples() -> list[tuple[str, list[str]]]:
    examples: list[tuple[str, list[str]]] = []
    for block in _blocks("console"):
        lines = block.replace("\\\n", " ").splitlines()
        for line in lines:
            if line.startswith("$ "):
                examples.append((line[2:].strip(), []))
            elif examples:
                examples[-1][1].append(line.rstrip())
    return examples


def test_readme_has_the_quick_start_first() -> None:
    first_block = _blocks("sh")[0]
    commands = _commands(first_block)
    assert len(commands) == 2
    assert "convcli apply" in commands[0] and "sample_images/" in commands[0]
    assert "pytest" in commands[1]


def test_readme_sh_commands_run(workdir: Path) -> None:
    commands = _sh_commands()
    assert len(commands) >= 8
    for command in commands:
        result = _run(command, workdir)
        assert result.returncode == 0, f"{command}\n{result.stderr[-2000:]}"
        assert "Traceback" not in result.stderr, command


@pytest.mark.parametrize(("command", "expected"), _console_examples(), ids=lambda v: str(v)[:60])
def test_readme_console_output(command: str, expected: list[str], workdir: Path) -> None:
    result = _run(command, workdir)
    assert result.returncode == 0, f"{command}\n{result.stderr[-2000:]}"
    produced = [line.rstrip() for line in result.stdout.splitlines()]
    position = 0
    for line in expected:
        if line.strip() in ("…", "..."):
            continue
        while position < len(produced) and produced[position] != line:
            position += 1
        assert position < len(produced), f"{command}: line not found in order: {line!r}\n{result.stdout}"
        position += 1


def test_readme_python_examples() -> None:
    blocks = _blocks("pycon")
    assert blocks
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for number, block in enumerate(blocks):
        test = parser.get_doctest(block, {}, f"README pycon block {number}", str(README), 0)
        runner.run(test)
    assert runner.failures == 0


def test_ci_runs_the_readme_test_command() -> None:
    readme_test = _commands(_blocks("sh")[0])[1].split("&&")[-1].strip()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert readme_test in ci_lines
