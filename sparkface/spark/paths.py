"""Paths as Spark's readers and writers take them, and small files written beside its output.

A path with a scheme is a URI (`hdfs:///…`, `s3a://…`, `file:/…`) that Hadoop reads; any other is
a local path. Spark's readers take every path as a glob, so a folder named `night[1]` would be
read as `night1`, another folder, or fail as missing; and Hadoop takes a relative name holding a
colon (an hour's folder, `2026-12-07T14:00`) for a URI with a scheme, and fails.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from sparkface.core.errors import OutputError

if TYPE_CHECKING:  # jobs/fit.py takes `local_folder` without starting Spark's Python side
    from pyspark.sql import SparkSession


def is_remote(path: str | Path) -> bool:
    """A URI that Hadoop reads (`hdfs://`, `s3a://`, `file:/`) rather than a local path: a scheme
    starts with a letter (`2026-12-07T15:00/…` is a local folder's name)."""
    return re.match(r"[A-Za-z][A-Za-z0-9+.-]*:/", str(path)) is not None


def literal_path(path: str) -> str:
    """`path` with Hadoop's glob characters escaped, so that Spark reads what is so named."""
    return re.sub(r"([\\\[\]{}*?])", r"\\\1", path)


def spark_path(path: str | Path) -> str:
    """Where Spark writes `path`: a local path made absolute (a relative `2026-12-07T14:00` is not
    a URI), a URI as it is. Writers take no glob."""
    return str(path) if is_remote(path) else os.path.abspath(path)


def written_path(path: str | Path) -> str:
    """What Spark reads to read back a folder the job wrote at `path`, named as written."""
    return literal_path(spark_path(path))


def input_path(path: str | Path) -> str:
    """What Spark reads for a user's `path`: a local one names a file or folder that exists, as
    named; a URI is left as given, a pattern if its user wrote one (`s3a://cams/2026-12-*/`)."""
    return str(path) if is_remote(path) else written_path(path)


def local_folder(value: str) -> str:
    """An argparse type for the `--output` of a job that writes its files on the driver (a
    profile, an evaluation, a model package): a URI is refused, where it once became a local
    folder named `hdfs:` beside the job."""
    if is_remote(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is a URI; this job writes its files on the driver, so give a folder of "
            "its file system (a mount of that storage will do)"
        )
    return value


def join(folder: str | Path, *names: str) -> str:
    """`folder`/`names` for a local path or a URI (pathlib makes `hdfs://nn/x` `hdfs:/nn/x`)."""
    if is_remote(folder):
        return "/".join([str(folder).rstrip("/"), *names])
    return str(Path(folder, *names))


def hadoop_file(spark: SparkSession, path: str):
    """(file system, Hadoop path) of a URI, as the session's Hadoop configuration reaches it."""
    target = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(path)
    return target.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), target


def is_folder(spark: SparkSession, path: str) -> bool:
    """Whether `path`, a local path or a URI, is a folder."""
    if not is_remote(path):
        return Path(path).is_dir()
    system, target = hadoop_file(spark, path)
    return system.exists(target) and system.getFileStatus(target).isDirectory()


def write_text(spark: SparkSession, path: str | Path, text: str) -> str:
    """Write a small text file (a summary, a report) at `path`, a local path or a URI, making its
    folder; return where it went. A URI is written through Hadoop, where the tables went."""
    if not is_remote(path):
        local = Path(path)
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(text, encoding="utf-8")
        return str(local)
    system, target = hadoop_file(spark, str(path))
    stream = system.create(target, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()
    return str(path)


def remove_folder(spark: SparkSession, path: str | Path) -> bool:
    """Remove the folder `path` (a local path or a URI) and all it holds; whether it was there."""
    if not is_remote(path):
        if not os.path.isdir(path):
            return False
        shutil.rmtree(path)
        return True
    system, target = hadoop_file(spark, str(path))
    return bool(system.exists(target) and system.delete(target, True))


def writable_folder(spark: SparkSession, path: str | Path) -> None:
    """Make the output folder `path` and check that the job may write in it, before any work:
    Spark's own refusal came after the whole input was read and scored, as a Java trace (exit
    1, "a bug"). OutputError (exit 3) names the folder and why."""
    try:
        if not is_remote(path):
            os.makedirs(path, exist_ok=True)
            with tempfile.TemporaryFile(dir=path, prefix=".sparkface-"):
                pass
            return
        system, target = hadoop_file(spark, str(path))
        if not system.mkdirs(target):
            raise OSError(f"the file system would not make {path}")
    except Exception as error:  # noqa: BLE001 - whatever the storage says, the output is at fault
        raise OutputError(
            f"cannot write the output to {path}: {reason_of(error)}; let the job's user write "
            "there, or choose another output"
        ) from None


def reason_of(error: BaseException) -> str:
    """The first line of what the file system or Spark said, from Python or through py4j."""
    java = getattr(error, "java_exception", None)
    return getattr(error, "strerror", None) or str(java or error).strip().splitlines()[0]
