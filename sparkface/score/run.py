"""A one-off scoring run: every image under a folder into Parquet and JSON, with a summary."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import SparkSession

from sparkface.core.config import DEFAULT_FACE_MODE, FacesConfig, IngestConfig, detector_settings
from sparkface.core.images import ImageSpec
from sparkface.core.package import ModelBundle
from sparkface.score.transform import score_images
from sparkface.spark.ingest import Input, read_input
from sparkface.spark.outputs import summarise, write_predictions
from sparkface.spark.paths import join, remove_folder, writable_folder, write_text
from sparkface.spark.progress import log_progress

log = logging.getLogger("sparkface")


def images_to_score(
    spark: SparkSession, input_dir: str, ingest: IngestConfig, spec: ImageSpec
) -> Input:
    """Every image file under `input_dir`: bytes for those within the size limit, none (and an
    error later) for larger ones, so a huge file is never read into a worker's memory; and the
    other files, counted."""
    return read_input(spark, input_dir, ingest, max_bytes=spec.max_file_bytes)


def log_left_out(left_out: dict[str, int], where: str, hidden: int = 0) -> None:
    """Say which files have no row because their names are not images' (conf/ingest.yaml) or
    are hidden."""
    if hidden:
        log.warning(
            "%d hidden files or folders under %s have no row: names starting with '.' "
            "(.DS_Store, ._IMG_0001.JPG, .thumbnails/) are left out",
            hidden,
            where,
        )
    if left_out:
        names = ", ".join(f"{name or '(none)'} {count}" for name, count in left_out.items())
        log.warning(
            "%d files under %s have no row: not images by their extensions (%s); "
            "conf/ingest.yaml's extensions say which are",
            sum(left_out.values()),
            where,
            names,
        )


def run_scoring(
    spark: SparkSession,
    input_dir: str,
    output_dir: str,
    bundle: ModelBundle,
    ingest: IngestConfig,
    formats: tuple[str, ...] = ("parquet", "json"),
    batch_size: int = 128,
    run_id: str = "",
    faces: FacesConfig | str = DEFAULT_FACE_MODE,
) -> dict[str, Any]:
    """Score every image under `input_dir` into `output_dir`/{parquet,json}; return the summary.
    `faces`: "detect" (the default) finds every face with conf/faces.yaml's settings, a
    FacesConfig with its own; "aligned" scores each file as one aligned crop."""
    faces = detector_settings(faces)
    writable_folder(spark, output_dir, ("parquet", "json"), input_dir)
    started = time.perf_counter()
    scored_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    images, left_out, listed, hidden = images_to_score(spark, input_dir, ingest, bundle.image_spec)
    scored = score_images(
        images, bundle, batch_size=batch_size, run_id=run_id, scored_at=scored_at, faces=faces
    )
    log.info(
        "scoring %s with model %s (batch %d, faces %s)",
        input_dir,
        bundle.descriptor.get("version"),
        batch_size,
        "aligned" if faces is None else "detect",
    )
    with log_progress(spark.sparkContext):
        written = write_predictions(scored, output_dir, formats)
        summary = summarise(written)
    if "json" not in formats and remove_folder(spark, join(output_dir, "json")):
        # An earlier run's JSON lines beside this run's Parquet and summary: its rows, not these.
        log.info("removed %s: an earlier run's (this run wrote no JSON)", join(output_dir, "json"))
    seconds = time.perf_counter() - started
    summary.update(
        {
            "left_out_by_extension": left_out,
            "left_out_hidden": hidden,
            "gone_before_read": max(listed - summary["files"], 0),
            "input": input_dir,
            "output": output_dir,
            "model_version": bundle.descriptor.get("version"),
            "run_id": run_id,
            "seconds": round(seconds, 2),
            "images_per_second": round(summary["files"] / seconds, 1) if seconds else None,
        }
    )
    write_text(spark, join(output_dir, "summary.json"), json.dumps(summary, indent=2) + "\n")
    log.info(
        "%d files: %d scored, %d without a face, %d errors %s; %.1f images/s",
        summary["files"],
        summary["scored"],
        summary["no_face"],
        summary["errors"],
        summary["errors_by_reason"],
        summary["images_per_second"] or 0,
    )
    log_left_out(left_out, input_dir, hidden)
    if summary["gone_before_read"]:
        # Spark passes over a file deleted between its listing and its read (ignoreMissingFiles).
        log.warning(
            "%d image files under %s were listed but gone when read: no row",
            summary["gone_before_read"],
            input_dir,
        )
    return summary
