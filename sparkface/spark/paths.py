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


def folder_key(path: str | Path) -> str:
    """A folder as compared with others, ending in "/": a local one where its links lead (a
    `file:` URI names one), another URI as written."""
    text = re.sub(r"^file:(//)?(?=/)", "", str(path))
    where = text.rstrip("/") if is_remote(text) else os.path.realpath(text).rstrip("/")
    return where + "/"


def within(inner: str | Path, outer: str | Path) -> bool:
    """Whether the folder `inner` is `outer` or inside it, links followed."""
    return folder_key(inner).startswith(folder_key(outer))


# What Spark's writers leave in a folder they write: part files and their checksums, the
# commit's markers; folders of partitions (`run_date=2026-12-07`) and of an unfinished write.
_SPARK_FILE = re.compile(r"\.?(part-.*|_SUCCESS|_committed_.*|_started_.*)(\.crc)?")
_SPARK_FOLDER = re.compile(r"[^=]+=.*|_temporary")


def foreign_files(spark: SparkSession, folder: str | Path) -> list[str]:
    """The files under `folder` (a local path or a URI) that no Spark writer names so, by their
    paths under it: replacing the folder deletes them. None where it does not exist."""

    def foreign(relative: str) -> bool:
        *folders, name = relative.split("/")
        if "_temporary" in folders:
            return False
        return not (
            all(_SPARK_FOLDER.fullmatch(part) for part in folders) and _SPARK_FILE.fullmatch(name)
        )

    found: list[str] = []
    if not is_remote(folder):
        for where, _, names in os.walk(folder):
            below = os.path.relpath(where, folder)
            found += [
                relative
                for relative in (os.path.normpath(os.path.join(below, name)) for name in names)
                if foreign(relative)
            ]
        return sorted(found)
    system, target = hadoop_file(spark, str(folder))
    if not system.exists(target):
        return []
    top = system.getFileStatus(target).getPath().toString().rstrip("/") + "/"
    listing = system.listFiles(target, True)
    while listing.hasNext():
        relative = listing.next().getPath().toString().removeprefix(top)
        if foreign(relative):
            found.append(relative)
    return sorted(found)


def writable_folder(
    spark: SparkSession,
    path: str | Path,
    replaces: tuple[str, ...] = (),
    input_dir: str | Path | None = None,
) -> None:
    """Make the output folder `path` and check that the job may write in it, before any work:
    Spark's own refusal came after the whole input was read and scored, as a Java trace (exit
    1, "a bug"). OutputError (exit 3) names the folder and why.

    `replaces` names the folders under it that the job replaces whole (`parquet`): each must
    hold only what Spark writes, and the output must be apart from the job's `input_dir`.
    Scoring into the folder it scored (`--input /p/json --output /p`) deleted the photos it had
    just read, and any other photos in `/p/parquet`."""
    if input_dir is not None and (within(input_dir, path) or within(path, input_dir)):
        inside = "the input is inside the output" if within(input_dir, path) else "vice versa"
        raise OutputError(
            f"the output {path} and the input {input_dir} overlap ({inside}): a run replaces "
            "folders of its output and would list what it wrote as input; choose an output "
            "apart from the input"
        )
    try:
        if not is_remote(path):
            os.makedirs(path, exist_ok=True)
            with tempfile.TemporaryFile(dir=path, prefix=".sparkface-"):
                pass
        else:
            system, target = hadoop_file(spark, str(path))
            if not system.mkdirs(target):
                raise OSError(f"the file system would not make {path}")
    except Exception as error:  # noqa: BLE001 - whatever the storage says, the output is at fault
        raise OutputError(
            f"cannot write the output to {path}: {reason_of(error)}; let the job's user write "
            "there, or choose another output"
        ) from None
    for name in replaces:
        folder = join(path, name)
        if foreign := foreign_files(spark, folder):
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise OutputError(
                f"{folder} holds {len(foreign)} files that this job did not write ({shown}): "
                "each run replaces that folder whole; move them, or choose another output"
            )


def reason_of(error: BaseException) -> str:
    """The first line of what the file system or Spark said, from Python or through py4j."""
    java = getattr(error, "java_exception", None)
    return getattr(error, "strerror", None) or str(java or error).strip().splitlines()[0]
