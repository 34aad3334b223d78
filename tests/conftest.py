from __future__ import annotations

import importlib.util
import io
import os
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SHARED_FACES = ROOT.parent / "shared" / "data" / "utkface"

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


SPARK_SUBMIT = Path(sys.executable).parent / "spark-submit"


def load_job(name: str, folder: str = "jobs") -> ModuleType:
    """A job or benchmark script imported as a module by its path (the import path untouched)."""
    path = ROOT / folder / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_sparkface_{folder}_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# python -c NO_SPARK ARGS: jobs/fit.py with pyspark unimportable, as on a machine without Spark.
NO_SPARK = (
    "import runpy, sys; sys.modules['pyspark'] = None; sys.argv = ['fit.py', *sys.argv[1:]]; "
    "runpy.run_path('jobs/fit.py', run_name='__main__')"
)


def job_environment(**extra: str) -> dict[str, str]:
    """The environment a job runs in, as the README sets it: Spark's Python on this interpreter,
    Spark's log settings from conf/spark, loopback only."""
    return {
        **os.environ,
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "SPARK_CONF_DIR": str(ROOT / "conf" / "spark"),
        "SPARK_LOCAL_IP": "127.0.0.1",
        **extra,
    }


def spark_submit(job: str, *args: str, master: str = "local[2]", conf: tuple = ()) -> list[str]:
    """The command line of `spark-submit jobs/JOB ARGS` with the UI off and `conf` settings."""
    options = [item for setting in conf for item in ("--conf", setting)]
    return [
        str(SPARK_SUBMIT),
        "--master",
        master,
        "--conf",
        "spark.ui.enabled=false",
        *options,
        str(ROOT / "jobs" / job),
        *args,
    ]


def build_wheel(folder: Path) -> Path:
    """The project's wheel, built from this checkout into `folder`."""
    import subprocess

    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(folder), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    # What the backend deprecates today stops the build of a later one (setuptools dates each).
    assert "deprecat" not in built.stderr.lower(), built.stderr[-3000:]
    (wheel,) = folder.glob("sparkface-*.whl")
    return wheel


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that starts Spark (it asks for the `spark` fixture, directly or through another
    fixture) is slow, so `-m "not slow"` runs without a JVM."""
    for item in items:
        if "spark" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


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


def _png_with_size(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height: what a decompression bomb looks like before
    it is decoded."""
    import struct
    import zlib

    data = face_jpeg(1, (8, 8), fmt="PNG")
    ihdr = data.index(b"IHDR")
    fields = struct.pack(">II", width, height) + data[ihdr + 12 : ihdr + 17]
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + fields) & 0xFFFFFFFF)
    return data[: ihdr + 4] + fields + crc + data[ihdr + 21 :]


def _exif_rotated_jpeg() -> bytes:
    image = Image.open(io.BytesIO(face_jpeg(3, (60, 30))))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when shown
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def _sixteen_bit_png() -> bytes:
    values = (np.arange(40 * 40, dtype=np.uint16).reshape(40, 40) * 40).astype(np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, format="PNG")  # uint16 -> mode I;16
    return buffer.getvalue()


def bad_and_odd_files() -> dict[str, tuple[bytes, str | None]]:
    """File name -> (bytes, expected error fragment or None when it must score)."""
    good = face_jpeg(7, (64, 64))
    return {
        "empty.jpg": (b"", "empty file"),
        "truncated.jpg": (good[: len(good) // 2], "truncated or corrupt"),
        "random.jpg": (np.random.default_rng(1).bytes(3000), "unrecognised format"),
        "error_page.jpg": (b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", "HTML"),
        "notes.png": (b"just some text, not pixels\n" * 10, "plain text"),
        "bomb.png": (_png_with_size(30000, 30000), "image too large"),
        "rgba.png": (face_jpeg(8, (50, 50), mode="RGBA", fmt="PNG"), None),
        "sixteen_bit.png": (_sixteen_bit_png(), None),
        "cmyk.jpg": (face_jpeg(9, (50, 50), mode="CMYK"), None),
        "palette.gif": (face_jpeg(10, (50, 50), mode="P", fmt="GIF"), None),
        "photo.webp": (face_jpeg(11, (50, 50), fmt="WEBP"), None),
        "photo.bmp": (face_jpeg(12, (50, 50), fmt="BMP"), None),
        "scan.tif": (face_jpeg(16, (50, 50), fmt="TIFF", compression="tiff_lzw"), None),
        "saved from a browser.jfif": (face_jpeg(17, (50, 50)), None),
        "rotated.jpg": (_exif_rotated_jpeg(), None),
        "one_pixel.png": (face_jpeg(13, (1, 1), fmt="PNG"), None),
        "very_wide.png": (face_jpeg(14, (2000, 3), fmt="PNG"), None),
        "grey.jpg": (face_jpeg(15, (40, 40), mode="L"), None),
        "good.jpg": (good, None),
        # Names as cameras and people write them: a colon (Hadoop's checksummed file system
        # cannot name a file's checksum then), spaces, escapes, letters beyond ASCII.
        "cam 1 2026-12-07T14:53:00.jpg": (good, None),
        "ünï #1 100%.jpg": (good, None),
    }


def tiny_model_package(directory: Path, image_size: int = 32) -> Path:
    """A small, untrained (but real) Keras model saved as a sparkface package."""
    from sparkface.core.config import ModelConfig, parse_age_groups
    from sparkface.core.contract import GENDERS, RACES
    from sparkface.core.package import save_package
    from sparkface.train.model import make_model

    groups = parse_age_groups(["7-12", "13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+"])
    config = ModelConfig(filters=(8, 16), dense_units=(16,), dropout=0.1, augment=False)
    model = make_model(config, image_size, len(groups.names), seed=3)
    descriptor = {
        "name": "tiny-test-model",
        "version": "test-1",
        "input_size": [image_size, image_size, 3],
        "flip_test_time": True,
        "classes": {"age_group": list(groups.names), "gender": list(GENDERS), "race": list(RACES)},
        "age_bins": list(groups.names),
    }
    return save_package(model, descriptor, directory)
