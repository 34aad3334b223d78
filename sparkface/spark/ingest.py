"""Reading folders of images into Spark with the binaryFile source."""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from sparkface.core.config import IngestConfig
from sparkface.core.errors import InputError
from sparkface.spark.paths import hadoop_file, input_path, is_remote
from sparkface.spark.session import names_in_utf8

log = logging.getLogger("sparkface")

FILE_COLUMNS = ("path", "file_name", "file_size", "modified_at")

# Local files are read without Hadoop's checksums: its checksummed local file system looks for a
# `.NAME.crc` beside each file and cannot even name one for a file whose name holds a colon
# (camera frames named by their time, `cam1_2026-12-07T14:53:00.jpg`), which failed the whole
# job. Options of this read only (the session's file system stays as it is); no image has a
# checksum file, and without the lookups the read is faster. The cache is bypassed because an
# instance of the checksummed one, cached by scheme, would otherwise be reused.
#
# Spark's listing hides every name starting with "_" or ".". Cameras write "_" names: Sony's and
# Nikon's photos in Adobe RGB are `_DSC0001.JPG`, and folders such as `_archive` hold real
# images; those had no row and no word. Only "." names (`.DS_Store`, macOS's `._IMG_0001.JPG`,
# a file manager's `.thumbnails/`) stay hidden, as everywhere in Unix, and the walk counts them.
READ_OPTIONS = {
    "fs.file.impl": "org.apache.hadoop.fs.RawLocalFileSystem",
    "fs.file.impl.disable.cache": "true",
    "ignoredPathSegmentRegex": r"^\.",
}


def extension_pattern(extensions: tuple[str, ...]) -> str:
    """A case-insensitive regex matching file names that end in one of `extensions`."""
    alternatives = "|".join(extension.lstrip(".").lower() for extension in extensions)
    return rf"(?i)\.({alternatives})$"


def java_regex(pattern: str) -> str:
    """A Python regular expression (how the configuration's patterns are checked) as Java's, which
    Spark's `rlike` and `regexp_extract` run: a named group `(?P<name>…)` is `(?<gNname>…)`, its
    name letters and digits only and numbered to stay unique (`cam_id` is `g0camid`), and
    `(?P=name)` is `\\k<gNname>`. Else the run failed after listing its input, with a Java
    PatternSyntaxException. Groups keep their numbers."""
    names: dict[str, str] = {}

    def java_name(name: str) -> str:
        if name not in names:
            names[name] = f"g{len(names)}{re.sub(r'[^A-Za-z0-9]', '', name)}"
        return names[name]

    pattern = re.sub(r"\(\?P<(\w+)>", lambda m: f"(?<{java_name(m.group(1))}>", pattern)
    return re.sub(r"\(\?P=(\w+)\)", lambda m: f"\\k<{java_name(m.group(1))}>", pattern)


def file_name(path: Column) -> Column:
    """The last component of a path (binaryFile keeps spaces and non-ASCII letters as they are)."""
    return F.regexp_extract(path, r"([^/]+)$", 1)


def _binary_files(
    spark: SparkSession, input_dir: str, max_bytes: int | None = None
) -> tuple[DataFrame, Walk]:
    if not is_remote(input_dir):
        local = Path(input_dir)
        if not local.exists():
            raise InputError(f"input folder does not exist: {input_dir}")
        if not (local.is_dir() or local.is_file()):
            raise InputError(f"input is neither a folder nor a file: {input_dir}")
    # Spark's file sources skip zero-length files, and files over max_bytes are left out below:
    # list both ourselves so they are not lost (a larger file keeps null content). A local input
    # is walked first, so that an entry it cannot read stops the job before Spark lists it.
    walk = walk_input(spark, input_dir, max_bytes)
    options = dict(READ_OPTIONS)
    if _one_file(spark, input_dir):
        # One file named by its user is read whatever its name (Spark hid `.x.jpg` too).
        options["ignoredPathSegmentRegex"] = "(?!)"
    files = (
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", "true")
        .option("ignoreMissingFiles", "true")
        .options(**options)
        .load([input_path(root) for root in walk.roots])
    )
    if max_bytes is not None:
        # Pushed down into the scan: a larger file's bytes are never read into memory.
        files = files.where(F.col("length") <= max_bytes)
    unread = spark.createDataFrame(walk.unread, files.schema)
    files = files.unionByName(unread).select(
        F.col("path"),
        file_name(F.col("path")).alias("file_name"),
        F.col("length").alias("file_size"),
        F.col("modificationTime").alias("modified_at"),
        F.col("content"),
    )
    return files, walk


def _one_file(spark: SparkSession, input_dir: str) -> bool:
    """Whether the input is one file (a local path, or a URI that names no pattern)."""
    if not is_remote(input_dir):
        return os.path.isfile(input_dir)
    system, target = hadoop_file(spark, input_dir)
    return bool(system.exists(target) and system.getFileStatus(target).isFile())


def not_utf8(path: str) -> bool:
    """Whether a local path holds bytes that are not UTF-8 (Python keeps them as surrogates,
    which UTF-8 cannot encode)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _hidden(name: str) -> bool:
    # As READ_OPTIONS' ignoredPathSegmentRegex: Spark's listing leaves these out.
    return name.startswith(".")


class Walk(NamedTuple):
    """What a walk of the input finds besides Spark's own listing."""

    unread: list[tuple]  # rows of the files Spark's scan leaves out
    aliases: list[str]  # local folders reached through a link to a folder walked anyway
    roots: list[str]  # what Spark lists (recursively): the input, or around its aliases
    suffixes: Counter[str]  # the files' extensions, lower case ("" for none), a file once
    hidden: int  # entries named with a leading "." (a hidden folder once, not its files)


def walk_input(spark: SparkSession, input_dir: str, max_bytes: int | None = None) -> Walk:
    """The files the binaryFile scan leaves out, as (path, modificationTime, length, content)
    rows spelled as binaryFile spells them: empty ones (content b""), with `max_bytes` larger
    ones (content None), and a local input's entries that are no regular file (a link to
    nothing, a pipe: length and content None). A local input's files and folders that the job's
    user may not read raise InputError, each named.

    Each local folder is walked once, by its own path where the input holds it: a folder met
    again (through a `latest` link to a dated folder, round a loop, by a second link) is an
    alias. Spark follows every link it meets (a loop forty deep, two loops past its memory), so
    it lists `roots` that hold no alias: the input itself when there is none, else the files of
    each folder above one and its other folders. `suffixes` counts every file's extension, so
    that the files left out by their names are counted too, and `hidden` the entries left out
    as hidden (a name starting with ".")."""
    suffixes: Counter[str] = Counter()
    ascii_only = not names_in_utf8(spark)  # Java without a UTF-8 locale: see session.py

    def row(path: str, size: int | None, modified_seconds: float) -> tuple | None:
        suffixes[os.path.splitext(path.rsplit("/", 1)[-1])[1].lower()] += 1
        modified = datetime.fromtimestamp(modified_seconds, UTC)
        if size is None:  # no regular file, nothing to read: no size, no content
            return (path, modified, None, None)
        if not_utf8(path) or (ascii_only and not path.isascii()):
            # Spark names files in UTF-8: a name in other bytes (Latin-1 `café.jpg` from an old
            # Windows copy), or any but ASCII where Java's locale is not UTF-8, is one it cannot
            # open, and passed over. Its row, spelled with the bytes escaped, has its size and no
            # content (`check_listed` says why).
            return (
                path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"),
                modified,
                size,
                None,
            )
        if size == 0:
            return (path, modified, 0, b"")
        if max_bytes is not None and size > max_bytes:
            return (path, modified, size, None)
        return None

    if is_remote(input_dir):
        return _walk_remote(spark, input_dir, row, suffixes)
    return _walk_local(os.path.abspath(input_dir), row, suffixes)


def _walk_remote(
    spark: SparkSession,
    input_dir: str,
    row: Callable[[str, int | None, float], tuple | None],
    suffixes: Counter[str],
) -> Walk:
    # A URI may be a pattern (`s3a://cams/2026-12-*/`), as Spark reads it: each match is listed
    # flat (fast on object stores). A file below a hidden folder is left out as Spark leaves it,
    # and the hidden entry nearest the match is counted once.
    found: list[tuple] = []
    hidden: set[str] = set()
    system, pattern = hadoop_file(spark, input_dir)
    matches = system.globStatus(pattern) or []
    if not matches:
        raise InputError(f"input folder does not exist: {input_dir} (nothing matches it)")
    for match in matches:
        if _hidden(match.getPath().getName()):
            hidden.add(match.getPath().toString())
            continue
        top = match.getPath().toString().rstrip("/") + "/"
        listing = system.listFiles(match.getPath(), True)
        while listing.hasNext():
            status = listing.next()
            name = status.getPath().toString()
            relative = name.removeprefix(top) if name.startswith(top) else name.rsplit("/", 1)[-1]
            segments = relative.split("/")
            first_hidden = next((i for i, part in enumerate(segments) if _hidden(part)), None)
            if first_hidden is not None:
                hidden.add(top + "/".join(segments[: first_hidden + 1]))
                continue
            found_row = row(name, status.getLen(), status.getModificationTime() / 1000)
            if found_row is not None:
                found.append(found_row)
    return Walk(found, [], [input_dir], suffixes, len(hidden))


def _walk_local(
    root: str, row: Callable[[str, int | None, float], tuple | None], suffixes: Counter[str]
) -> Walk:
    # The input's own folders first, then each link to a folder in the order met (by name):
    # a folder's rows keep its own path however links come and go (a path that changed would
    # be a new file to the next night), and a folder met again, by a link or inside a linked
    # folder, is an alias.
    found: list[tuple] = []
    hidden: set[str] = set()
    unreadable: list[str] = []
    aliases: list[str] = []
    read: set[str] = set()  # the real folders walked
    children: dict[str, list[str]] = {}  # each walked folder's subfolders
    links: list[str] = []

    def walk(start: str) -> None:
        stack = [start]
        while stack:
            folder = stack.pop()
            real = os.path.realpath(folder)
            if real in read:
                aliases.append(folder)
                continue
            read.add(real)
            try:
                entries = os.scandir(folder)
            except PermissionError:
                unreadable.append(f"{folder}/")
                continue
            folders = []
            with entries:
                for entry in entries:
                    if _hidden(entry.name):
                        hidden.add(entry.path)
                        continue
                    if entry.is_dir(follow_symlinks=True):
                        folders.append(entry)
                    elif entry.is_file():
                        if not os.access(entry.path, os.R_OK):
                            unreadable.append(entry.path)
                            continue
                        stat = entry.stat()
                        if (
                            found_row := row(f"file:{entry.path}", stat.st_size, stat.st_mtime)
                        ) is not None:
                            found.append(found_row)
                    else:
                        # A link to nothing, a pipe, a socket, a device: Spark's listing passes
                        # over them, and its read of a pipe would wait for a writer. Their row
                        # says so (`open_image`), rather than none.
                        stat = entry.stat(follow_symlinks=False)
                        found.append(row(f"file:{entry.path}", None, stat.st_mtime))
            folders.sort(key=lambda entry: entry.name)
            links.extend(entry.path for entry in folders if entry.is_symlink())
            children[folder] = [entry.path for entry in folders if not entry.is_symlink()]
            stack.extend(reversed(children[folder]))

    if not os.path.isdir(root):
        # One file, named as its user named it (`--input photo.jpg`): its row, or Spark's.
        if not os.access(root, os.R_OK):
            unreadable.append(root)
        else:
            stat = os.stat(root)
            if (found_row := row(f"file:{root}", stat.st_size, stat.st_mtime)) is not None:
                found.append(found_row)
        children[root] = []
    else:
        walk(root)
    while links:
        link = links.pop(0)
        walk(link)
        if link in children:  # walked, not an alias: a subfolder of the folder holding it
            children[os.path.dirname(link)].append(link)
    if unreadable:
        # Spark would stop at the first of them with a Java error (exit 1, "a bug"); a file the
        # job's user may not open is the machine's setting, not a bad file: say which.
        names = sorted(unreadable)
        shown = ", ".join(names[:5]) + (" …" if len(names) > 5 else "")
        raise InputError(
            f"{len(names)} of the input's files or folders cannot be read (permission "
            f"denied): {shown}; let the job's user read them, or move them out of the input"
        )
    return Walk(found, sorted(aliases), _roots(root, aliases, children), suffixes, len(hidden))


def _roots(root: str, aliases: list[str], children: dict[str, list[str]]) -> list[str]:
    """Folders Spark may list recursively, and the files of the folders above an alias."""
    above = set()
    for alias in aliases:
        folder = os.path.dirname(alias)
        while folder not in above and folder in children:
            above.add(folder)
            folder = os.path.dirname(folder)
    if not above:
        return [root]
    roots = []
    for folder in sorted(above):
        with os.scandir(folder) as entries:
            roots += sorted(
                entry.path for entry in entries if not _hidden(entry.name) and entry.is_file()
            )
        roots += [child for child in children[folder] if child in children and child not in above]
    return roots


def list_files(spark: SparkSession, input_dir: str, ingest: IngestConfig) -> DataFrame:
    """Every file under `input_dir` (recursively), with `is_image` by extension.

    The bytes are not selected, so Spark lists the files without reading them.
    """
    return list_input(spark, input_dir, ingest)[0]


def list_input(spark: SparkSession, input_dir: str, ingest: IngestConfig) -> tuple[DataFrame, Walk]:
    """`list_files`, and the walk of the input that found what Spark's listing leaves out (its
    `hidden` entries), from the one walk."""
    files, walk = _binary_files(spark, input_dir)
    files = files.drop("content")
    is_image = F.col("path").rlike(extension_pattern(ingest.extensions))
    return files.withColumn("is_image", is_image), walk


class Input(NamedTuple):
    """An input's images, how many there were when listed, and how many files were left out as
    not images by their names or as hidden."""

    images: DataFrame
    left_out: dict[str, int]  # extension ("" for none) -> files
    listed: int  # image files listed: fewer rows means some were gone when read
    hidden: int  # files and folders named with a leading "." (a folder once)


def read_input(
    spark: SparkSession, input_dir: str, ingest: IngestConfig, max_bytes: int | None = None
) -> Input:
    """Image files under `input_dir` with their bytes (`read_images`), and the other files
    counted by extension: a `.heic` or a raw `.cr2` has no row, and its count says so; so have
    hidden entries (`.DS_Store`, `.thumbnails/`), counted too."""
    files, walk = _binary_files(spark, input_dir, max_bytes)
    images = files.where(F.col("path").rlike(extension_pattern(ingest.extensions)))
    wanted = {extension.lower() for extension in ingest.extensions}
    left_out = {name: n for name, n in sorted(walk.suffixes.items()) if name not in wanted}
    listed = sum(n for name, n in walk.suffixes.items() if name in wanted)
    return Input(images, left_out, listed, walk.hidden)


def read_images(
    spark: SparkSession, input_dir: str, ingest: IngestConfig, max_bytes: int | None = None
) -> DataFrame:
    """Image files under `input_dir` with their bytes: path, file_name, file_size, modified_at,
    content. Files whose names are not images are left out (`list_files` counts them). Files over
    `max_bytes` keep their row with null content, so a huge file is never read into memory."""
    return read_input(spark, input_dir, ingest, max_bytes).images


def require_columns(df: DataFrame, columns: tuple[str, ...] | list[str], stage: str) -> None:
    """Check the schema at a stage's door; name every missing column."""
    missing = [column for column in columns if column not in df.columns]
    if missing:
        raise ValueError(f"{stage}: input is missing column(s) {missing}; it has {df.columns}")
