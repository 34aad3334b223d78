"""The wheel carries the project's home: conf/, models/ and jobs/ are copied into the package as
sparkface/_home/ when it is built, so that an installed sparkface finds its defaults, its shipped
model and its jobs wherever it runs (sparkface.core.home). Everything else is in pyproject.toml."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HOME = ("conf", "models", "jobs")
# What scoring and training never read: the model card and its training history and evaluation
# (they stay in the repository).
LEFT_OUT = shutil.ignore_patterns(
    "__pycache__", "*.pyc", "README.md", "history.csv", "test-evaluation"
)


class BuildWithHome(build_py):
    def run(self) -> None:
        # Start from an empty package folder: setuptools reuses build/ between builds, and files
        # left there by an earlier build (a module since moved, an old home) would reach the wheel.
        target = Path(self.build_lib) / "sparkface"
        shutil.rmtree(target, ignore_errors=True)
        super().run()
        root = Path(__file__).resolve().parent
        target = target / "_home"
        for name in HOME:
            shutil.rmtree(target / name, ignore_errors=True)
            shutil.copytree(root / name, target / name, ignore=LEFT_OUT)


setup(cmdclass={"build_py": BuildWithHome})
