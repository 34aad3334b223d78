from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SHARED_FACES = ROOT.parent / "shared" / "data" / "utkface"

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("sparkface-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def face_jpeg(
    seed: int = 0, size: tuple[int, int] = (48, 48), mode: str = "RGB", fmt: str = "JPEG", **save
) -> bytes:
    """A small synthetic image (noise on a gradient) encoded as `fmt`."""
    rng = np.random.default_rng(seed)
    width, height = size
    gradient = np.linspace(0, 255, width * height * 3).reshape(height, width, 3)
    pixels = np.clip(gradient + rng.normal(0, 30, gradient.shape), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    if mode != "RGB":
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def write_faces(folder: Path, names: list[str], size: tuple[int, int] = (48, 48)) -> list[Path]:
    """Write a synthetic JPEG under each name in `folder` (subfolders allowed)."""
    paths = []
    for index, name in enumerate(names):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(face_jpeg(index, size))
        paths.append(path)
    return paths


def utk_names(count: int, seed: int = 0) -> list[str]:
    """UTKFace-style names with labels drawn at random, unique date fields."""
    rng = np.random.default_rng(seed)
    return [
        f"{rng.integers(1, 90)}_{rng.integers(0, 2)}_{rng.integers(0, 5)}_"
        f"2017011{index % 10}{index:09d}.jpg.chip.jpg"
        for index in range(count)
    ]
