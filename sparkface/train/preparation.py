"""Training data in Spark: decode and resize on executors, filter, rebalance, split, write shards.

Every step is a DataFrame -> DataFrame function; `prepare` chains them and counts what each drops.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import BinaryType, IntegerType, StringType, StructField, StructType

from sparkface.core.config import AgeGroups, TrainConfig, TrainFacesConfig, load_faces
from sparkface.core.contract import GENDERS, RACES
from sparkface.core.images import ImageSpec, decode_each
from sparkface.core.labels import age_group_index
from sparkface.detect.faces import cached_finder
from sparkface.spark.ingest import require_columns
from sparkface.spark.paths import spark_path
from sparkface.train.faces import choose_view, detected_faces

log = logging.getLogger("sparkface")

SPLITS = ("train", "validation", "test")
SHARD_COLUMNS = (
    "path",
    "file_name",
    "source",
    "age",
    "age_low",
    "age_high",
    "age_group_index",
    "age_group_low",
    "age_group_high",
    "gender_index",
    "race_index",
    "gender",
    "race",
    "source_weight",
    "pixels",
)


def unit_hash(key: Column, salt: str) -> Column:
    """A number in [0, 1) from a hash of `key`: the same for the same key on every run."""
    return F.pmod(F.xxhash64(key, F.lit(salt)), F.lit(1_000_000)) / F.lit(1_000_000.0)


def assign_split(df: DataFrame, validation: float, test: float) -> DataFrame:
    """`split` by a hash of the file name, so reruns and added data never move a face."""
    position = unit_hash(F.col("file_name"), "split")
    return df.withColumn(
        "split",
        F.when(position < test, "test")
        .when(position < test + validation, "validation")
        .otherwise("train"),
    )


def split_paths(
    files: DataFrame, config: TrainConfig, which: str, labelled_only: bool = False
) -> list[Path]:
    """The local paths of one split's files (`files`: listed files with parsed labels), sorted;
    with `labelled_only`, only labelled faces of trainable age. For tools that work on one split's
    faces outside training: test frames from the test split, the template from the train split."""
    if labelled_only:
        files = keep_trainable(files, config.min_age)
    split = config.split
    chosen = assign_split(files, split.get("validation", 0.1), split.get("test", 0.1))
    rows = chosen.where(F.col("split") == which).select("path").collect()
    return sorted(Path(row.path.removeprefix("file:")) for row in rows)


def keep_trainable(df: DataFrame, min_age: int) -> DataFrame:
    """Only labelled faces of at least `min_age`: an exact age, or a bin that starts there."""
    low = F.col("age_low") if "age_low" in df.columns else F.col("age")
    return df.where(F.col("label_error").isNull() & (low >= min_age))


def sampled_in(fractions: dict[str, dict[str, float]]) -> Column:
    """True for rows kept by the per-class fractions: a training row is kept with its class's
    fraction (classes not listed keep all), chosen by a hash of the file name so the same faces
    are kept on every run. Validation and test rows are always kept."""
    keep = F.lit(1.0)
    for column, per_class in fractions.items():
        for name, fraction in per_class.items():
            keep = F.when(F.col(column) == name, keep * F.lit(float(fraction))).otherwise(keep)
    return (F.col("split") != "train") | (unit_hash(F.col("file_name"), "sample") < keep)


def rebalance(df: DataFrame, fractions: dict[str, dict[str, float]]) -> DataFrame:
    """Rebalance the training split by per-class sampling fractions (see `sampled_in`)."""
    return df.where(sampled_in(fractions))


def with_class_indices(df: DataFrame, groups: AgeGroups) -> DataFrame:
    """Integer targets for the model: age group, gender and race indices; -1 for a gender or a
    race that a source does not label (the loss leaves that head out for the face)."""
    gender_names = F.array(*[F.lit(n) for n in GENDERS])
    race_names = F.array(*[F.lit(n) for n in RACES])
    return df.select(
        "*",
        age_group_index(F.col("age"), groups).alias("age_group_index"),
        age_group_index(F.col("age_low"), groups).alias("age_group_low"),
        age_group_index(F.col("age_high"), groups).alias("age_group_high"),
        F.coalesce(F.array_position(gender_names, F.col("gender")) - 1, F.lit(-1))
        .cast("int")
        .alias("gender_index"),
        F.coalesce(F.array_position(race_names, F.col("race")) - 1, F.lit(-1))
        .cast("int")
        .alias("race_index"),
    )


def decode_images(
    df: DataFrame, spec: ImageSpec, faces: TrainFacesConfig | None = None
) -> DataFrame:
    """Replace `content` by `pixels` (size*size*3 uint8 bytes), decoded on the executors; a file
    that fails keeps its row with `decode_error` set. Other columns pass through. With `faces` in
    `detect` mode, each face is the one the detector finds and aligns, the train split's shown
    first as one of `faces.views` (`sparkface.train.faces`); `face_view` says which view gave it."""
    require_columns(df, ["content", "file_name", "split"], "decode_images")
    detect = faces is not None and faces.mode == "detect"
    if detect:
        df = df.select(
            "*",
            unit_hash(F.col("file_name"), "view").alias("_view_position"),
            F.xxhash64(F.col("file_name"), F.lit("faces")).alias("_view_seed"),
        )
    internal = ("content", "_view_position", "_view_seed")
    passed = [field for field in df.schema.fields if field.name not in internal]
    schema = StructType(
        passed
        + [
            StructField("width", IntegerType()),
            StructField("height", IntegerType()),
            StructField("pixels", BinaryType()),
            StructField("decode_error", StringType()),
            StructField("face_view", StringType()),
        ]
    )
    views = dict(faces.views) if detect else {}

    def decoded_rows(batch: pd.DataFrame) -> Iterator[tuple]:
        if not detect:
            for face, error in decode_each(batch["content"], spec):
                if face is None:
                    yield None, None, None, error, None
                else:
                    yield face.pixels, face.width, face.height, None, "aligned"
            return
        finder = cached_finder(settings)
        chosen = [
            choose_view(views, position) if split == "train" else "crop"
            for split, position in zip(batch["split"], batch["_view_position"], strict=True)
        ]
        seeds = [int(seed) & 0xFFFFFFFFFFFFFFFF for seed in batch["_view_seed"]]
        for pixels, width, height, view, error in detected_faces(
            batch["content"], chosen, seeds, spec, finder, settings
        ):
            yield pixels, width, height, error, view

    settings = load_faces() if detect else None

    def decode(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            rows = list(decoded_rows(batch))
            pixels, widths, heights, errors, face_views = (list(c) for c in zip(*rows, strict=True))
            yield batch[[f.name for f in passed]].assign(
                width=pd.array(widths, dtype="Int32"),
                height=pd.array(heights, dtype="Int32"),
                pixels=[p.tobytes() if p is not None else None for p in pixels],
                decode_error=errors,
                face_view=face_views,
            )

    return df.mapInPandas(decode, schema)


def prepare(
    images: DataFrame, config: TrainConfig, groups: AgeGroups, output_dir: str
) -> dict[str, object]:
    """Write training shards to `output_dir`/shards/split=*/ and return the counts of each step.

    `images` comes from `read_images` + `labelled_files` (one source or several, unioned): each
    source's faces split by a hash of the file name, weighted by `config.sources`.
    """
    spec = ImageSpec(size=config.image_size)
    if config.min_age < groups.min_age:
        log.warning(
            "min_age %d is below the first age group (%s): those faces are dropped too",
            config.min_age,
            groups.names[0],
        )
    trainable = keep_trainable(images, max(config.min_age, groups.min_age))
    split = assign_split(
        trainable, config.split.get("validation", 0.1), config.split.get("test", 0.1)
    )
    sampled = rebalance(split, config.sample_fractions)
    weight = F.lit(1.0)
    for name, value in config.sources.items():
        weight = F.when(F.col("source") == name, F.lit(float(value))).otherwise(weight)
    sampled = sampled.withColumn("source_weight", weight.cast("float"))
    columns = ["path", "file_name", "file_size", "source", "age", "age_low", "age_high"]
    columns += ["gender", "race", "source_weight", "split", "content"]
    decoded = decode_images(sampled.select(*columns), spec, config.faces).cache()
    good = with_class_indices(decoded.where(F.col("decode_error").isNull()), groups)
    shards = Path(output_dir) / "shards"
    for name in SPLITS:
        rows = good.where(F.col("split") == name).select(*SHARD_COLUMNS)
        write_shards(rows, str(shards / f"split={name}"), config.shards, config.seed)
    counts = _step_counts(images, config, groups)
    per_split = {row["split"]: row["count"] for row in good.groupBy("split").count().collect()}
    counts["unreadable"] = decoded.where(F.col("decode_error").isNotNull()).count()
    counts["unreadable_files"] = (
        decoded.where(F.col("decode_error").isNotNull())
        .select("file_name", "decode_error")
        .limit(1000)
        .toPandas()
        .to_dict(orient="records")
    )
    counts["rows"] = {name: int(per_split.get(name, 0)) for name in SPLITS}
    counts["sources"] = {
        f"{row['source']}/{row['split']}": row["count"]
        for row in sorted(good.groupBy("source", "split").count().collect())
    }
    counts["faces"] = config.faces.mode
    counts["views"] = {}
    for row in sorted(good.groupBy("split", "face_view").count().collect()):
        counts["views"].setdefault(row["split"], {})[row["face_view"]] = row["count"]
    counts["image_size"] = config.image_size
    decoded.unpersist()
    (Path(output_dir) / "preparation.json").write_text(json.dumps(counts, indent=2) + "\n")
    return counts


def _step_counts(images: DataFrame, config: TrainConfig, groups: AgeGroups) -> dict[str, object]:
    """How many files each step drops, in one pass over the names (no image bytes are read)."""
    names = assign_split(
        images.select("file_name", "label_error", "age_low", "race", "gender"),
        config.split.get("validation", 0.1),
        config.split.get("test", 0.1),
    )
    labelled = F.col("label_error").isNull()
    trainable = labelled & (F.col("age_low") >= max(config.min_age, groups.min_age))
    row = names.agg(
        F.count("*").alias("files"),
        F.count_if(~labelled).alias("unlabelled"),
        F.count_if(labelled & ~trainable).alias("under_min_age"),
        F.count_if(trainable & ~sampled_in(config.sample_fractions)).alias("sampled_out"),
    ).first()
    return row.asDict()


def write_shards(rows: DataFrame, folder: str, shards: int, seed: int) -> None:
    """One split's rows as `shards` Parquet files, sharded by a hash of the file name and ordered
    within each by a seeded hash: a shuffled, stable layout (rows sorted by name, as a join leaves
    them, would be sorted by age)."""
    bucket = F.pmod(F.xxhash64(F.col("file_name")), F.lit(shards))
    (
        rows.repartition(shards, bucket)
        .sortWithinPartitions(F.xxhash64(F.col("file_name"), F.lit(seed)))
        .write.mode("overwrite")
        .option("compression", "snappy")
        .option("parquet.block.size", 8 * 1024 * 1024)
        .parquet(spark_path(folder))
    )
