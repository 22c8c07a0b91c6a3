"""Build of the optional C extension and the preset data (everything else is in pyproject.toml).

* ``convcli.engines._cnative`` is ``optional``: without a working C compiler
  the install still succeeds (with a warning) and convcli runs on its numpy
  strategies (``convcli --version`` says which are active). Portable flags
  only: ``-O3`` for the vectorised loops; the kernels choose AVX2/FMA at load
  time themselves (``target_clones`` in ``_cnative.c``), so a wheel built
  here runs on any x86-64.
* The top-level ``kernels/`` folder (preset files) is copied into the wheel
  as ``convcli/_kernels`` (:func:`convcli.presets.kernels_dir`); an editable
  install reads the folder in place.
"""

import shutil
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# -fno-math-errno: sqrt never sets errno, so its loops vectorise (the kernels do not read errno)
COMPILE_ARGS = [] if sys.platform == "win32" else [
    "-O3", "-std=c11", "-ffp-contract=fast", "-fno-math-errno", "-Wall"]


class BuildPyWithKernels(build_py):
    """build_py, plus ``kernels/*`` → ``<build>/convcli/_kernels/`` (not in editable mode)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "convcli" / "_kernels"
        target.mkdir(parents=True, exist_ok=True)
        for source in sorted((HERE / "kernels").iterdir()):
            if source.is_file():
                shutil.copy2(source, target / source.name)


setup(
    cmdclass={"build_py": BuildPyWithKernels},
    ext_modules=[
        Extension(
            "convcli.engines._cnative",
            sources=["convcli/engines/_cnative.c"],
            extra_compile_args=COMPILE_ARGS,
            optional=True,
        )
    ],
)
