"""Labels as column expressions: from UTKFace-style file names (`age_gender_race_datetime.jpg`)
or from a source's labels table (a CSV or Parquet file mapped onto our classes).

Files that cannot be labelled are kept with a `label_error` that says what is wrong.
"""

from __future__ import annotations

import codecs
import logging
import os
import re
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from sparkface.core.config import AgeGroups, ConfigError, SourceConfig
from sparkface.core.contract import GENDERS, MAX_AGE, RACES
from sparkface.core.errors import InputError
from sparkface.spark.ingest import READ_OPTIONS
from sparkface.spark.paths import hadoop_file, input_path, is_remote

log = logging.getLogger("sparkface")

LABEL_COLUMNS = ("age", "gender", "race", "captured_at", "label_error")


def _field(parts: Column, index: int) -> Column:
    """Field `index` of the split name, without what follows a dot and without spaces; null if
    the name has fewer fields."""
    raw = F.get(parts, index)
    return F.nullif(F.trim(F.regexp_replace(raw, r"\..*$", "")), F.lit(""))


def _digits(field: Column) -> Column:
    return field.rlike(r"^[0-9]+$")


def _name_to_index(field: Column, names: tuple[str, ...]) -> Column:
    return F.when(field.isin([str(i) for i in range(len(names))]), field.try_cast("int"))


def parse_labels(df: DataFrame, max_age: int = MAX_AGE) -> DataFrame:
    """Add age, gender, race, captured_at and label_error (null when the name parsed) from the
    `file_name` column."""
    parts = F.split(F.trim(F.col("file_name")), "_")
    age_text, gender_text, race_text = (_field(parts, i) for i in range(3))
    date_text = F.regexp_extract(F.coalesce(F.get(parts, 3), F.lit("")), r"^\s*([0-9]{14})", 1)
    age_value = F.when(_digits(age_text) & (F.length(age_text) <= 4), age_text.try_cast("int"))
    gender_index = _name_to_index(gender_text, GENDERS)
    race_index = _name_to_index(race_text, RACES)

    age_error = (
        F.when(age_text.isNull(), F.lit("missing age field"))
        .when(~_digits(age_text), F.format_string("age is not a whole number: '%s'", age_text))
        .when(
            age_value.isNull() | (age_value > max_age),
            F.format_string(f"age out of range 0-{max_age}: %s", age_text),
        )
    )
    gender_error = F.when(gender_text.isNull(), F.lit("missing gender field")).when(
        gender_index.isNull(),
        F.format_string("gender must be 0 (male) or 1 (female): '%s'", gender_text),
    )
    race_error = (
        F.when(race_text.isNull(), F.lit("missing race field"))
        .when(
            _digits(race_text) & (F.length(race_text) >= 8),
            F.format_string("missing race field (found the date '%s' in its place)", race_text),
        )
        .when(race_index.isNull(), F.format_string("race must be 0-4: '%s'", race_text))
    )
    label_error = F.nullif(F.concat_ws("; ", age_error, gender_error, race_error), F.lit(""))
    labelled = label_error.isNull()
    names_gender = F.array(*[F.lit(name) for name in GENDERS])
    names_race = F.array(*[F.lit(name) for name in RACES])
    return df.select(
        "*",
        F.when(labelled, age_value).alias("age"),
        F.when(labelled, F.get(names_gender, gender_index)).alias("gender"),
        F.when(labelled, F.get(names_race, race_index)).alias("race"),
        F.try_to_timestamp(F.nullif(date_text, F.lit("")), F.lit("yyyyMMddHHmmss")).alias(
            "captured_at"
        ),
        label_error.alias("label_error"),
    )


def age_group_index(age: Column, groups: AgeGroups) -> Column:
    """The ordinal index of an age's bin (0 for the first), -1 below the first bin."""
    expression = F.when(age < groups.lower_bounds[0], F.lit(-1))
    for index, lower in enumerate(groups.lower_bounds):
        upper = groups.upper_bounds[index]
        condition = age >= lower if upper is None else age.between(lower, upper)
        expression = expression.when(condition, F.lit(index))
    return expression


def age_group(age: Column, groups: AgeGroups) -> Column:
    """The name of an age's bin, or e.g. '<7' below the first bin; null for a null age."""
    index = age_group_index(age, groups)
    names = F.array(*[F.lit(name) for name in groups.names])
    return F.when(index == -1, F.lit(groups.below_first)).otherwise(F.get(names, index))


def with_age_group(df: DataFrame, groups: AgeGroups) -> DataFrame:
    """Add `age_group` from `age`."""
    return df.withColumn("age_group", age_group(F.col("age"), groups))


# ---------------------------------------------------------------------------------------------
# Labels from a table (conf/sources/NAME.yaml with `labels: TABLE`)

_AGE_BIN = r"^\s*([0-9]+)\s*(?:-\s*([0-9]+)|(\+))\s*$"


def with_age_bounds(df: DataFrame) -> DataFrame:
    """`age_low` and `age_high` from an exact `age` (both the age): the bounds training and
    evaluation read, so that a face labelled with a bin only has bounds and no age."""
    return df.withColumn("age_low", F.col("age")).withColumn("age_high", F.col("age"))


# Where a CSV table starts with a byte-order mark, it says the table's encoding: Excel's
# "Unicode Text" is UTF-16 (tab-separated), its "CSV UTF-8" UTF-8 with a mark.
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF8, "UTF-8"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
# What a CSV that is not UTF-8 most likely is: Excel's plain "CSV" on a Western Windows.
GUESSED_ENCODING = "windows-1252"


def table_encoding(content: bytes, encoding: str = "auto") -> str:
    """The encoding of a CSV table's bytes, by the name Java and Python both know: `encoding`
    unless it is `auto`, else its byte-order mark's, else UTF-8 where every byte is, else
    GUESSED_ENCODING."""
    if encoding != "auto":
        return encoding
    for mark, name in _BYTE_ORDER_MARKS:
        if content.startswith(mark):
            return name
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return GUESSED_ENCODING
    return "UTF-8"


def java_charset(spark: SparkSession, name: str, table: str) -> str:
    """`name` as Java knows it: as given, else by Python's own name for it (`latin-1` is
    `iso8859-1`)."""
    known = spark.sparkContext._jvm.java.nio.charset.Charset.isSupported
    for spelling in (name, codecs.lookup(name).name):
        if known(spelling):
            return spelling
    raise ConfigError(f"labels table {table}: Java knows no encoding {name!r}")


def _table_sample(spark: SparkSession, path: str) -> tuple[bytes, bool]:
    """The bytes of a labels table's file, or of the first file of a table that is a folder (as
    Spark writes one: `part-*` files, `_SUCCESS`), and whether it is a folder."""
    if not is_remote(path):
        if Path(path).is_file():
            return Path(path).read_bytes(), False
        if Path(path).is_dir():
            for where, folders, names in os.walk(path):
                folders[:] = sorted(name for name in folders if not name.startswith((".", "_")))
                for name in sorted(names):
                    file = Path(where, name)
                    if not name.startswith((".", "_")) and file.stat().st_size:
                        return file.read_bytes(), True
            raise InputError(f"labels table {path} is a folder without a file in it")
        raise InputError(f"labels table not found: {path}")
    system, target = hadoop_file(spark, path)
    if not system.exists(target):
        raise InputError(f"labels table not found: {path}")
    top = system.getFileStatus(target)
    folder, first = top.isDirectory(), None
    if folder:
        listing = system.listFiles(target, True)
        while listing.hasNext():
            status = listing.next()
            relative = status.getPath().toString()[len(top.getPath().toString()) :]
            if status.getLen() and not re.search(r"/[._]", relative):
                first = min(first or status.getPath(), status.getPath(), key=str)
        if first is None:
            raise InputError(f"labels table {path} is a folder without a file in it")
    stream = system.open(first or target)
    try:
        content = spark.sparkContext._jvm.org.apache.commons.io.IOUtils.toByteArray(stream)
    finally:
        stream.close()
    return bytes(content), folder


def read_table(spark: SparkSession, path: str, encoding: str = "auto") -> DataFrame:
    """A labels table, one file or a folder of them as Spark writes it: Parquet (by its bytes)
    or CSV with a header, every column a string named as its header has it, spaces around it
    trimmed. A CSV's separator is the one its header holds most of: `,`, or `;` as a
    spreadsheet writes CSV where the decimal mark is a comma, or a tab. Its encoding is
    `encoding`, or with `auto` as table_encoding reads it (a guess is logged): a table in
    another one left each image with a letter beyond ASCII "not in the labels table", and one
    in UTF-16 had no column. A folder of CSV files stopped the job (exit 1), read as Parquet."""
    content, folder = _table_sample(spark, path)
    options = dict(READ_OPTIONS)
    # A folder's `_SUCCESS` is no table; a file is read as named (`_labels.csv` too).
    options["ignoredPathSegmentRegex"] = r"^[._]" if folder else "(?!)"
    reader = spark.read.options(**options)
    if content.startswith(b"PAR1"):
        table = reader.parquet(input_path(path))
    else:
        charset = java_charset(spark, table_encoding(content, encoding), path)
        if charset == GUESSED_ENCODING and encoding == "auto":
            log.warning(
                "labels table %s is not UTF-8: read as %s, as Excel saves CSV on a Western "
                "Windows; if names in it read wrong, its source's `encoding` says what it is",
                path,
                charset,
            )
        lines = content.decode(charset, errors="replace").lstrip("\ufeff").splitlines()
        header = lines[0] if lines else ""
        separator = max((",", ";", "\t"), key=header.count) if header else ","
        if charset != "UTF-8":
            # Spark reads only Unicode and Latin-1 unless told to take any Java charset; a
            # whole file at once, as UTF-16's lines are not ended by one byte.
            spark.conf.set("spark.sql.legacy.javaCharsets", "true")
            reader = reader.option("encoding", charset).option("multiLine", "true")
        table = (
            reader.option("header", "true")
            .option("inferSchema", "false")
            .option("sep", separator)
            .csv(input_path(path))
        )
    return table.select([F.col(f"`{c}`").cast("string").alias(c.strip()) for c in table.columns])


def _class_text(column: str) -> Column:
    """A table's class as the source's mapping names it: trimmed, and a code `1` also as a float
    column writes it (`1.0`: pandas, with one class missing in the column, writes every code so,
    and a Parquet float column reads so)."""
    return F.regexp_replace(F.trim(F.col(column)), r"^(-?[0-9]+)\.0*$", "$1")


def _check_classes(table: DataFrame, column: str, mapping: dict[str, str], source: str) -> None:
    """Every class the table uses must be mapped onto ours: name the ones that are not."""
    found = {row[0] for row in table.select(_class_text(column)).distinct().collect() if row[0]}
    unknown = sorted(found - set(mapping))
    if unknown:
        raise ConfigError(
            f"source {source}: the labels table's {column} has class(es) {unknown} that "
            f"conf/sources/{source}.yaml does not map (it maps {sorted(mapping)})"
        )


def table_file(file: Column, images: str) -> Column:
    """A labels table's `file` as the image's path under `images`: as the table has it
    (`2026/a.jpg`, `./2026/a.jpg`), or written from Windows (`2026\\a.jpg`), or whole, as a
    listing of the folder writes it (`/data/photos/2026/a.jpg`, `file:/…`, `s3a://…`)."""
    name = F.regexp_replace(F.regexp_replace(F.trim(file), r"\\", "/"), r"^(\./)+", "")
    folder = images.rstrip("/")
    if is_remote(folder):
        prefixes = [folder + "/"]
    else:
        spellings = {str(Path(folder).absolute()), str(Path(folder).resolve())}
        prefixes = [
            f"{scheme}{path}/" for path in sorted(spellings) for scheme in ("", "file:", "file://")
        ]
    for prefix in prefixes:
        name = F.when(
            name.startswith(prefix), F.substring(name, len(prefix) + 1, 1 << 20)
        ).otherwise(name)
    return name


def labels_from_table(
    spark: SparkSession, files: DataFrame, source: SourceConfig, max_age: int = MAX_AGE
) -> DataFrame:
    """`files` (path, file_name, ...) with age, age_low, age_high, gender, race and label_error
    from the source's labels table, matched by the image's path under `source.images`. An age is
    years (exact: `age` and both bounds) or a bin `lo-hi` / `lo+` (bounds only, the last up to
    `max_age`); an image the table does not name is unlabelled, and says so. A head the source
    names `unlabelled` is null on every face (a labelled face all the same)."""
    table = read_table(spark, source.labels, source.encoding)
    wanted = [f for f in ("file", "age", "gender", "race") if f not in source.unlabelled]
    fields = {field: _column(table, source.column(field)) for field in wanted}
    missing = [name for name in fields.values() if name not in table.columns]
    if missing:
        raise ConfigError(
            f"source {source.name}: the labels table {source.labels} has no column(s) {missing} "
            f"(it has {table.columns}; conf/sources/{source.name}.yaml `columns` renames them, "
            "`unlabelled` names a head the table has no labels for)"
        )
    for head in ("gender", "race"):
        if head in fields:
            _check_classes(table, fields[head], getattr(source, head), source.name)

    def mapped(head: str) -> Column:
        """The head's class in our names; null where the source has no labels for it."""
        expression = F.lit(None).cast("string")
        if head not in fields:
            return expression
        column, mapping = fields[head], getattr(source, head)
        for theirs, ours in mapping.items():
            expression = F.when(_class_text(column) == theirs, F.lit(ours)).otherwise(expression)
        return expression

    age_text = F.trim(F.col(fields["age"]))
    # Whole years, also as a float column writes them ("35.0": pandas, with a missing age in
    # the column, writes every age so, and a Parquet float column reads so).
    years = F.regexp_extract(age_text, r"^([0-9]+)(\.0*)?$", 1)
    exact = years != ""
    binned = F.regexp_extract(age_text, _AGE_BIN, 1) != ""
    low = F.when(exact, years.try_cast("int")).when(
        binned, F.regexp_extract(age_text, _AGE_BIN, 1).try_cast("int")
    )
    high = F.when(exact, years.try_cast("int")).when(
        binned,
        F.when(F.regexp_extract(age_text, _AGE_BIN, 3) == "+", F.lit(max_age)).otherwise(
            F.regexp_extract(age_text, _AGE_BIN, 2).try_cast("int")
        ),
    )
    rows = table.select(
        table_file(F.col(fields["file"]), source.images).alias("_file"),
        F.when(exact, years.try_cast("int")).alias("_age"),
        low.alias("_age_low"),
        high.alias("_age_high"),
        mapped("gender").alias("_gender"),
        mapped("race").alias("_race"),
        age_text.alias("_age_text"),
    )
    # A file the table names twice alike is one face; twice with different labels, no label is
    # the truth, and keeping either row (Spark keeps any) would change training and evaluation
    # from one run to the next.
    label_columns = ("_age", "_age_low", "_age_high", "_gender", "_race", "_age_text")
    labels = rows.groupBy("_file").agg(
        *[F.first(name).alias(name) for name in label_columns],
        F.size(F.collect_set(F.struct(*label_columns))).alias("_labellings"),
    )
    joined = by_name(files, labels, path_under(source.images), label_columns)
    bounds_error = F.when(
        F.col("_age_low").isNull(),
        F.format_string("age is not years or a bin 'lo-hi' / 'lo+': '%s'", F.col("_age_text")),
    ).when(
        (F.col("_age_high") < F.col("_age_low")) | (F.col("_age_high") > max_age),
        F.format_string(f"age out of range 0-{max_age}: '%s'", F.col("_age_text")),
    )
    label_error = (
        F.when(F.col("_file").isNull(), F.lit("not in the labels table"))
        .when(
            F.col("_same_name") > 1,
            F.format_string(
                "the labels table names '%s' without its folder, and %d images are so named",
                F.col("_file"),
                F.col("_same_name"),
            ),
        )
        .when(
            F.col("_labellings") > 1,
            F.format_string("labelled %d different ways in the labels table", F.col("_labellings")),
        )
        .otherwise(
            F.nullif(
                F.concat_ws(
                    "; ",
                    bounds_error,
                    *[
                        F.when(F.col(f"_{head}").isNull(), F.lit(f"no {head}"))
                        for head in ("gender", "race")
                        if head in fields
                    ],
                ),
                F.lit(""),
            )
        )
    )
    labelled = label_error.isNull()
    return joined.select(
        *files.columns,
        F.when(labelled, F.col("_age")).alias("age"),
        F.when(labelled, F.col("_age_low")).alias("age_low"),
        F.when(labelled, F.col("_age_high")).alias("age_high"),
        F.when(labelled, F.col("_gender")).alias("gender"),
        F.when(labelled, F.col("_race")).alias("race"),
        F.lit(None).cast("timestamp").alias("captured_at"),
        label_error.alias("label_error"),
    )


def _column(table: DataFrame, name: str) -> str:
    """The table's column `name`: as named, else in any case (`File`, `AGE`: a spreadsheet's
    header); `name` itself where there is none."""
    by_case = {column.lower(): column for column in table.columns}
    return name if name in table.columns else by_case.get(name.lower(), name)


def path_under(images: str) -> Column:
    """A listed file's `path` under the folder `images`, as a labels table names it; null for a
    file elsewhere."""
    folder = images.rstrip("/")
    prefix = folder + "/" if is_remote(folder) else f"file:{Path(folder).resolve()}/"
    return F.when(
        F.col("path").startswith(prefix), F.substring(F.col("path"), len(prefix) + 1, 1 << 20)
    )


def rows_without_image(spark: SparkSession, files: DataFrame, source: SourceConfig) -> DataFrame:
    """The files a source's labels table names (`file`, as it names them) that are no image of
    `files`, by path or, named alone, by file name as labels_from_table matches them: a typo, a
    photo moved or deleted. Its labels teach nothing, and nothing else said so."""
    table = read_table(spark, source.labels, source.encoding)
    column = _column(table, source.column("file"))
    named = table.select(
        F.col(column).alias("file"), table_file(F.col(column), source.images).alias("_file")
    ).distinct()
    unmatched = named.join(
        files.select(path_under(source.images).alias("_file")), "_file", "left_anti"
    )
    alone = unmatched.where(~F.col("_file").contains("/")).join(
        files.select(F.col("file_name").alias("_file")), "_file", "left_anti"
    )
    return unmatched.where(F.col("_file").contains("/")).unionByName(alone).select("file")


def by_name(
    files: DataFrame, labels: DataFrame, relative: Column, label_columns: tuple[str, ...]
) -> DataFrame:
    """`files` joined with the table's `labels` by each image's `relative` path: `_file` and
    `label_columns` from the row that names it, and `_same_name`, null unless that row names it
    by its file name alone. A row naming no image by its path (`a.jpg`, as an annotation tool
    exports names) labels the image of that name deeper in the folder (`2026-11/a.jpg`): each
    such image was "not in the labels table". `_same_name` counts the images so named, which
    one row cannot label if there are several. Only small tables are broadcast: the images'
    bytes are never shuffled."""
    exact = labels.select("_file").join(files.select(relative.alias("_file")), "_file", "left_semi")
    loose = labels.where(~F.col("_file").contains("/")).join(exact.distinct(), "_file", "left_anti")
    loose = loose.select([F.col(name).alias(f"_n{name}") for name in loose.columns])
    same_name = (
        files.select(F.col("file_name").alias("_n_file"))
        .join(F.broadcast(loose.select("_n_file")), "_n_file", "left_semi")
        .groupBy("_n_file")
        .agg(F.count(F.lit(1)).alias("_same_name"))
    )
    joined = (
        files.join(F.broadcast(labels), relative == F.col("_file"), "left")
        .join(F.broadcast(loose), F.col("file_name") == F.col("_n_file"), "left")
        .join(F.broadcast(same_name), "_n_file", "left")
    )
    # Decided once, before `_file` itself is replaced.
    joined = joined.withColumn("_named", F.col("_file").isNull() & F.col("_n_file").isNotNull())
    named = F.col("_named")
    for name in ("_file", *label_columns, "_labellings"):
        joined = joined.withColumn(name, F.when(named, F.col(f"_n{name}")).otherwise(F.col(name)))
    return joined.withColumn("_same_name", F.when(named, F.col("_same_name")))


def labelled_files(
    spark: SparkSession, files: DataFrame, source: SourceConfig, max_age: int = MAX_AGE
) -> DataFrame:
    """Listed or read files with their labels (age, age_low, age_high, gender, race,
    label_error) and `source`, from the source's file names or its labels table."""
    if source.from_names:
        labelled = with_age_bounds(parse_labels(files, max_age))
    else:
        labelled = labels_from_table(spark, files, source, max_age)
    return labelled.withColumn("source", F.lit(source.name))
