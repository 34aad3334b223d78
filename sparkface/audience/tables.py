"""A night's audience from its scored rows, in Spark: per source and time window, counts (images,
images with a face, faces) and each head's class shares, corrected, with a 95% interval.

Privacy by design: the tables hold sources, windows, counts and shares only: no path, file name,
box, landmark or single face's prediction. A window with fewer than `min_faces` faces has its
counts and no shares.

With `age_bands` (conf/audience.yaml), the model's age groups merged into wider bands are a
fourth head, `age_band`: each face's probability of a band the sum of its groups', corrected
with the age groups' labelled faces merged the same way; with `sensitive_to`, its interval also
holds its shares under a correction fitted on those faces weighted to the window's races.
"""

from __future__ import annotations

import logging
import re
import zlib

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparkface.audience.likeness import SourceClassifier
from sparkface.audience.shares import HeadCalibration, Shares, corrected_share, estimate
from sparkface.core.config import AudienceConfig
from sparkface.core.contract import CLASS_HEADS
from sparkface.core.errors import UserError
from sparkface.spark.ingest import java_regex, require_columns

log = logging.getLogger("sparkface")

UNKNOWN_SOURCE = "unknown"
AGE_BAND = "age_band"
NEEDED = ("path", "modified_at", "status", "probabilities")

COUNTS_SCHEMA = T.StructType(
    [
        T.StructField("source", T.StringType()),
        T.StructField("window_start", T.TimestampType()),
        T.StructField("window_end", T.TimestampType()),
        T.StructField("images", T.LongType()),
        T.StructField("images_with_face", T.LongType()),
        T.StructField("faces", T.LongType()),
        T.StructField("errors", T.LongType()),
        T.StructField("images_timed_by_exif", T.LongType()),
        T.StructField("images_timed_by_file", T.LongType()),
        T.StructField("time_basis", T.StringType()),
        T.StructField("timezone", T.StringType()),  # the clock the windows were cut by
        T.StructField("shares_reported", T.BooleanType()),
    ]
)
SHARES_SCHEMA = T.StructType(
    [
        T.StructField("source", T.StringType()),
        T.StructField("span", T.StringType()),  # "window", or "night": all the source's faces
        T.StructField("window_start", T.TimestampType()),  # null for the night
        T.StructField("head", T.StringType()),
        T.StructField("class", T.StringType()),
        T.StructField("faces", T.LongType()),
        T.StructField("share", T.DoubleType()),
        T.StructField("share_low", T.DoubleType()),
        T.StructField("share_high", T.DoubleType()),
        T.StructField("share_averaged", T.DoubleType()),
        T.StructField("share_counted", T.DoubleType()),
        T.StructField("corrected", T.BooleanType()),
    ]
)


def source_of(path: Column, config: AudienceConfig) -> Column:
    """The source (camera, screen) a file is from: a path segment or a pattern's `source` group;
    "unknown" when the path gives none."""
    if config.source_pattern:
        group = re.compile(config.source_pattern).groupindex["source"]
        found = F.regexp_extract(path, java_regex(config.source_pattern), group)
    else:
        segments = F.split(F.regexp_replace(path, r"^[A-Za-z][A-Za-z0-9+.-]*:", ""), "/")
        found = F.try_element_at(segments, F.lit(config.source_segment))
    return F.when(F.coalesce(found, F.lit("")) == "", F.lit(UNKNOWN_SOURCE)).otherwise(found)


def window_start(time: Column, minutes: int, zone: str = "UTC") -> Column:
    """The start of the window of `minutes` that holds `time`, windows cut by `zone`'s clock
    (an hour's window starts on the hour there). Where the clock goes back, its repeated hour is
    one window."""
    seconds = minutes * 60
    local = F.unix_timestamp(F.from_utc_timestamp(time, zone))
    return F.to_utc_timestamp(F.timestamp_seconds(F.floor(local / seconds) * seconds), zone)


def window_end(start: Column, minutes: int, zone: str = "UTC") -> Column:
    local = F.from_utc_timestamp(start, zone) + F.make_interval(mins=F.lit(minutes))
    return F.to_utc_timestamp(local, zone)


def placed(predictions: DataFrame, config: AudienceConfig) -> DataFrame:
    """Each scored row with its source, its time (capture time, else the file's modification
    time; a capture time its camera wrote without an offset read by `config.timezone`'s clock)
    and its window."""
    require_columns(predictions, NEEDED, "audience")
    for name, kind in (("captured_at", "timestamp"), ("captured_offset", "string")):
        if name not in predictions.columns:  # scored before capture times were read
            predictions = predictions.withColumn(name, F.lit(None).cast(kind))
    captured = F.col("captured_at")
    # Scoring read a time without an offset as UTC: its clock's reading, here read in the zone.
    clock = F.when(F.col("captured_offset").isNull(), F.to_utc_timestamp(captured, config.timezone))
    time = F.coalesce(clock.otherwise(captured), F.col("modified_at"))
    return (
        predictions.withColumn("source", source_of(F.col("path"), config))
        .withColumn("timed_by_exif", F.col("captured_at").isNotNull())
        .withColumn("window_start", window_start(time, config.window_minutes, config.timezone))
    )


def audience_counts(rows: DataFrame, config: AudienceConfig) -> DataFrame:
    """Per source and window: images, images with a face, faces, unreadable files, how the
    images were timed, and whether the window has enough faces for shares."""
    ok = F.col("status") == "ok"
    counts = rows.groupBy("source", "window_start").agg(
        F.countDistinct("path").alias("images"),
        F.countDistinct(F.when(ok, F.col("path"))).alias("images_with_face"),
        F.count_if(ok).alias("faces"),
        F.countDistinct(F.when(F.col("status") == "error", F.col("path"))).alias("errors"),
        F.countDistinct(F.when(F.col("timed_by_exif"), F.col("path"))).alias(
            "images_timed_by_exif"
        ),
    )
    by_file = F.col("images") - F.col("images_timed_by_exif")
    return counts.select(
        "source",
        "window_start",
        window_end(F.col("window_start"), config.window_minutes, config.timezone).alias(
            "window_end"
        ),
        F.col("images").cast("long"),
        F.col("images_with_face").cast("long"),
        F.col("faces").cast("long"),
        F.col("errors").cast("long"),
        F.col("images_timed_by_exif").cast("long"),
        by_file.cast("long").alias("images_timed_by_file"),
        F.when(by_file == 0, "exif")
        .when(F.col("images_timed_by_exif") == 0, "file")
        .otherwise("mixed")
        .alias("time_basis"),
        F.lit(config.timezone).alias("timezone"),
        (F.col("faces") >= config.min_faces).alias("shares_reported"),
    )


def band_groups(config: AudienceConfig, age_groups: list[str]) -> list[list[int]]:
    """`config.age_bands` as the indices of the model's age groups in each band; every group
    must be in a band, and every group a band names must be one of the model's."""
    known = list(age_groups)
    groups = []
    for band, members in config.age_bands.items():
        unknown = [group for group in members if group not in known]
        if unknown:
            raise UserError(
                f"audience age_bands: {band!r} names {unknown}, not among the model's age "
                f"groups {known}"
            )
        groups.append([known.index(group) for group in members])
    left = [group for group in known if not any(group in m for m in config.age_bands.values())]
    if groups and left:
        raise UserError(f"audience age_bands: the model's age groups {left} are in no band")
    return groups


def with_bands(
    classes: dict[str, list[str]],
    calibration: dict[str, HeadCalibration] | None,
    config: AudienceConfig,
) -> tuple[dict[str, list[str]], dict[str, HeadCalibration] | None, list[list[int]]]:
    """The heads' classes and calibration with the age bands' head added, when there are bands
    that fit the model's age groups (else none, with a warning); and the bands' group indices."""
    try:
        groups = band_groups(config, classes["age_group"]) if config.age_bands else []
    except UserError as error:
        # The bands are settings for the shipped model's groups; another model's night still
        # gets its tables, without them.
        log.warning("%s: no age bands this night", error)
        groups = []
    if not groups:
        return classes, calibration, []
    classes = {**classes, AGE_BAND: list(config.age_bands)}
    if calibration and "age_group" in calibration:
        ages = calibration["age_group"]
        bands = ages.merged(list(config.age_bands), groups).fit(on=ages.fit_on)
        calibration = {**calibration, AGE_BAND: bands}
    return classes, calibration, groups


def audience_shares(
    rows: DataFrame,
    classes: dict[str, list[str]],
    calibration: dict[str, HeadCalibration] | None,
    config: AudienceConfig,
    likeness: SourceClassifier | None = None,
) -> DataFrame:
    """Per source, window (of at least `min_faces` faces), head and class: the share, corrected
    with `calibration` where it has the head (each face by the labelled sources it is like, with
    `likeness`), its interval, and the uncorrected averages; and the same for each source's
    whole night (span "night")."""
    for head, calibrated in (calibration or {}).items():
        if list(calibrated.classes) != list(classes[head]):
            raise ValueError(
                f"audience calibration: {head} classes {list(calibrated.classes)} differ from "
                f"the model's {classes[head]}"
            )
    if likeness is not None:
        widths = sum(len(classes.get(head, ())) for head in likeness.heads)
        if widths != len(likeness.mean):
            raise ValueError(
                f"audience calibration: its source classifier reads {len(likeness.mean)} "
                f"probabilities of {list(likeness.heads)}, the model gives {widths}"
            )
    classes, calibration, groups = with_bands(classes, calibration, config)
    vectors = [
        F.array(*[F.col("probabilities")[head][name] for name in classes[head]]).alias(head)
        for head in CLASS_HEADS
    ]
    ages = [F.col("probabilities")["age_group"][name] for name in classes["age_group"]]
    if groups:
        bands = [sum((ages[i] for i in group[1:]), ages[group[0]]) for group in groups]
        vectors.append(F.array(*bands).alias(AGE_BAND))
    faces = rows.where(F.col("status") == "ok").select(
        "source", F.lit("window").alias("span"), "window_start", *vectors
    )
    night = (
        nightly_faces(faces, config.min_faces)
        .withColumn("span", F.lit("night"))
        .withColumn("window_start", F.lit(None).cast("timestamp"))
    )
    # Fitted here, once, on the driver: the executors receive the fitted recalibrations.
    fitted = {
        head: part if part.fitted else part.fit() for head, part in (calibration or {}).items()
    }
    estimator = _window_shares(classes, fitted, config, likeness)
    return (
        faces.unionByName(night)
        .groupBy("source", "span", "window_start")
        .applyInPandas(estimator, SHARES_SCHEMA)
    )


def nightly_faces(faces: DataFrame, min_faces: int) -> DataFrame:
    """The faces a source's night shares are of: those of its windows with shares, and those of
    its smaller windows only where they number `min_faces` or more together. Else the night's
    shares less its windows' would give the few faces' own: a lone face's prediction."""
    in_window = F.count(F.lit(1)).over(Window.partitionBy("source", "window_start"))
    faces = faces.withColumn("_in_window", in_window)
    unreported = F.sum((F.col("_in_window") < min_faces).cast("int")).over(
        Window.partitionBy("source")
    )
    kept = (F.col("_in_window") >= min_faces) | (F.col("_unreported") >= min_faces)
    return faces.withColumn("_unreported", unreported).where(kept).drop("_in_window", "_unreported")


def _window_shares(
    classes: dict[str, list[str]],
    calibration: dict[str, HeadCalibration],
    config: AudienceConfig,
    likeness: SourceClassifier | None,
):
    def run(window: pd.DataFrame) -> pd.DataFrame:
        count = len(window)
        if count < config.min_faces:
            return pd.DataFrame(columns=SHARES_SCHEMA.fieldNames())
        source, span = window["source"].iloc[0], window["span"].iloc[0]
        start = window["window_start"].iloc[0]
        # One seed per window, so that a rerun gives the same intervals.
        seed = [config.seed, zlib.crc32(f"{source}|{span}|{start}".encode())]
        vectors = {head: np.stack(window[head].to_numpy()).astype("float64") for head in classes}
        parts = []
        for head, shares in window_shares(vectors, calibration, config, likeness, seed).items():
            parts.append(
                pd.DataFrame(
                    {
                        "source": source,
                        "span": span,
                        "window_start": start,
                        "head": head,
                        "class": classes[head],
                        "faces": count,
                        "share": shares.share,
                        "share_low": shares.low,
                        "share_high": shares.high,
                        "share_averaged": shares.averaged,
                        "share_counted": shares.counted,
                        "corrected": shares.corrected,
                    }
                )
            )
        return pd.concat(parts, ignore_index=True)

    return run


def window_shares(
    vectors: dict[str, np.ndarray],
    calibration: dict[str, HeadCalibration] | None,
    config: AudienceConfig,
    likeness: SourceClassifier | None = None,
    seed=0,
    heads: list[str] | tuple[str, ...] | None = None,
) -> dict[str, Shares]:
    """One group of faces' shares per head of `heads` (by default every head of `vectors`, each
    head's probabilities, the age bands' as the sums of their groups'): corrected where
    `calibration` has the head (fitted), each face by the labelled sources it is like. A head
    `config.sensitive_to` names is corrected after the head it is sensitive to, and its interval
    also holds its shares under a correction fitted on labelled faces like the window's in that
    head (`HeadCalibration.reweighted`)."""
    heads = list(vectors if heads is None else heads)
    needed = heads + [config.sensitive_to[h] for h in heads if h in config.sensitive_to]
    calibration = calibration or {}
    like = (
        likeness.window({head: vectors[head] for head in CLASS_HEADS})
        if likeness and calibration
        else None
    )
    first = set(config.sensitive_to.values())
    order = sorted(dict.fromkeys(h for h in needed if h in vectors), key=lambda h: h not in first)
    found: dict[str, Shares] = {}
    for head in order:
        calibrated = calibration.get(head)
        by = config.sensitive_to.get(head)
        shrink = config.pseudo_faces.get(head, 0.0)
        alternative = None
        if calibrated is not None and by in found and found[by].corrected:
            refitted = calibrated.reweighted(by, found[by].share)
            if refitted is not calibrated:
                alternative = corrected_share(vectors[head], refitted, shrink, like)
        found[head] = estimate(
            vectors[head],
            calibrated,
            draws=config.draws,
            seed=seed,
            pseudo_faces=shrink,
            realised=head not in config.mix_intervals,
            likeness=like,
            alternative=alternative,
        )
    return {head: found[head] for head in heads}


def audience_tables(
    predictions: DataFrame,
    classes: dict[str, list[str]],
    calibration: dict[str, HeadCalibration] | None,
    config: AudienceConfig,
    likeness: SourceClassifier | None = None,
) -> tuple[DataFrame, DataFrame]:
    """(counts, shares) of a night's scored rows; see the module's docstring."""
    rows = placed(predictions, config).select(
        "path", "status", "timed_by_exif", "source", "window_start", "probabilities"
    )
    shares = audience_shares(rows, classes, calibration, config, likeness)
    return audience_counts(rows, config), shares
