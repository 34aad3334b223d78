"""What jobs/fit.py needs on a GPU machine that has Python, JAX and a GPU but neither TensorFlow
nor Spark (the `device` tool's: docs/gpu.md), and what `scripts/gpu/train.sh` brings it.

    python scripts/gpu/environment.py wheels   # the requirements `bundle` downloads, one a line
    python scripts/gpu/environment.py check    # there, after `setup`: every module the training
                                               # run imports, or exit 1 naming those missing

The machine's own packages are known from the one run there (2026-11-30, docs/gpu.md): with
Keras, namex and optree bundled, jobs/fit.py trained, evaluated and packaged, so everything else
it imported then was there. What the project has imported on that path since must travel as a
wheel: conf/'s validation (pydantic, 2026-12-03) does, and `setup` failed without it on a copy
of that machine's packages (tests/test_gpu_environment.py keeps such a copy)."""

from __future__ import annotations

import importlib
import sys

# On the machine already (distributions, as the 2026-11-30 run found them): the backend and what
# jobs/fit.py imported that day besides the three wheels bundled then.
PRESENT = (
    "jax",
    "numpy",
    "pyarrow",
    "pandas",
    "pillow",
    "pyyaml",
    "xxhash",
    "h5py",
    "absl-py",
    "rich",
    "ml-dtypes",
    "packaging",
)

# Bundled as wheels (pure Python, or built for each Python of PYTHONS), pinned as pyproject.toml
# pins them where it does, else as the development environment has them.
WHEELS = (
    "keras==3.15.1",
    "namex==0.1.0",
    "optree==0.20.0",
    "pydantic==2.14.4",
    "pydantic-core==2.50.5",
    "annotated-types==0.8.0",
    "typing-inspection==0.4.5",
    "typing-extensions==4.16.0",
)

# The Pythons the binary wheels are fetched for: the machine's was 3.12 on 2026-11-30.
PYTHONS = ("3.11", "3.12", "3.13")

# What a training run imports (import names), and what it can do without.
REQUIRED = (
    "keras",
    "numpy",
    "pyarrow.parquet",
    "pandas",
    "PIL.Image",
    "yaml",
    "xxhash",
    "h5py",
    "pydantic",
    "sparkface.train.packaging",
    "sparkface.train.fit",
)
OPTIONAL = ("matplotlib",)  # the evaluation's confusion charts (sparkface.evaluate.report)


def missing(modules: tuple[str, ...]) -> list[str]:
    """The modules of `modules` that do not import, each with the reason."""
    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as error:
            failed.append(f"{name} ({error})")
    return failed


def check() -> int:
    """0 if a training run can import what it needs here (and WebP faces decode), else 1."""
    failed = missing(REQUIRED)
    if not failed:
        from PIL import features

        if not features.check("webp"):
            failed.append("PIL.Image (no WebP support: the bundled shards cannot be unpacked)")
    for line in missing(OPTIONAL):
        print(f"optional, missing: {line}")
    if failed:
        print("missing: " + "; ".join(failed))
        return 1
    import keras

    print(f"ready: keras {keras.__version__} on {keras.backend.backend()}")
    return 0


def main(argv: list[str]) -> int:
    if argv == ["wheels"]:
        print("\n".join(WHEELS))
        return 0
    if argv == ["pythons"]:
        print(" ".join(PYTHONS))
        return 0
    if argv == ["check"]:
        return check()
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
