"""Nightly campaign runs: incremental, idempotent, atomically published, logged.

Layout under a campaign's output folder OUT:

    OUT/predictions/campaign=NAME/run_date=YYYY-MM-DD/part-*.parquet   published rows
        (with _SUCCESS and _manifest.json)
    OUT/predictions_json/campaign=NAME/run_date=YYYY-MM-DD/part-*.json the same rows, JSON lines
    OUT/runs/*.parquet                                                  one row per run
    OUT/_staging/, OUT/_publish/, OUT/_locks/                          never read as data

A run scores into _staging and only then swaps its folders into place (`sparkface.score.publish`),
so readers see the previous state or the new one, never half of a run.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field, model_validator
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sparkface.audience.calibration import load_calibration, load_likeness
from sparkface.audience.run import REPORT_FILE, write_audience
from sparkface.core.config import (
    AudienceConfig,
    ConfigError,
    FacesConfig,
    IngestConfig,
    Number,
    Positive,
    Settings,
    from_home,
    load_audience,
    load_faces,
    load_yaml,
    named_file,
    validated,
)
from sparkface.core.errors import PackageError, UserError
from sparkface.core.package import ModelBundle, default_model_dir, load_bundle
from sparkface.score.lock import CampaignLock, CampaignLocked
from sparkface.score.publish import Fault, journal_path, partition_dir, publish, recover
from sparkface.score.run import images_to_score, log_left_out
from sparkface.score.transform import score_images
from sparkface.spark.ingest import Input, java_regex
from sparkface.spark.outputs import FORMATS, summarise, write_predictions
from sparkface.spark.paths import folder_key, is_remote, within, writable_folder, written_path

log = logging.getLogger("sparkface")


__all__ = ["Campaign", "CampaignError", "CampaignLocked", "load_campaign", "run_campaign"]


class CampaignError(UserError):
    """A run that cannot go ahead (its inputs, model or run date); the message says why."""


class Campaign(Settings):
    """A campaign file, conf/campaigns/NAME.yaml."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]
    inputs: tuple[Annotated[str, Field(min_length=1)], ...] = Field(min_length=1)
    output: Annotated[str, Field(min_length=1)]
    model: str = ""
    formats: tuple[Literal[FORMATS], ...] = Field(("parquet", "json"), min_length=1)
    batch_size: Positive = 128
    extensions: tuple[str, ...] = ()
    file_name_pattern: str = ""
    modified_after: str = ""
    lock_stale_after_hours: Number = 12.0
    faces: Literal["", "aligned", "detect"] = ""  # empty: conf/faces.yaml's mode (detect)
    audience: AudienceConfig = (
        AudienceConfig()
    )  # load_campaign: conf/audience.yaml, then the file's

    @model_validator(mode="after")
    def _patterns(self) -> Campaign:
        if is_remote(self.output):
            # Else the run log and the lock were written to a local folder named `hdfs:`, and
            # the run failed (exit 1) after scoring the night.
            raise ValueError(
                f"output: {self.output!r} is a URI; a campaign's output must be a folder of a "
                "file system (a local disk, or on a cluster one that every node mounts): "
                "publishing a night renames its folders and keeps a lock beside them. A one-off "
                "`jobs/score.py --output` may be a URI"
            )
        if overlap := overlapping(self.inputs):
            inner, outer = overlap
            where = "listed twice" if inner == outer else f"inside {outer!r}"
            raise ValueError(
                f"inputs: {inner!r} is {where} (links followed): each of its files would be "
                "scored twice a night; list one of them"
            )
        for folder in self.inputs:
            if within(folder, self.output) or within(self.output, folder):
                # A night replaces folders under its output, and would list what it wrote.
                raise ValueError(
                    f"output: {self.output!r} and the input {folder!r} overlap (links "
                    "followed); choose an output apart from every input"
                )
        if self.file_name_pattern:
            try:
                re.compile(self.file_name_pattern)
            except re.error as error:
                raise ValueError(f"file_name_pattern: not a regular expression: {error}") from None
        if self.modified_after:
            try:
                datetime.fromisoformat(str(self.modified_after))
            except ValueError:
                raise ValueError(
                    f"modified_after: {self.modified_after!r} is not an ISO date or time"
                ) from None
        return self

    def face_settings(self) -> FacesConfig | None:
        """How faces are found (conf/faces.yaml) in detect mode; None in aligned mode."""
        settings = load_faces()
        return settings if (self.faces or settings.mode) == "detect" else None

    @property
    def model_dir(self) -> str:
        return self.model or str(default_model_dir())

    def ingest(self, base: IngestConfig) -> IngestConfig:
        if not self.extensions:
            return base
        return base.model_copy(update={"extensions": tuple(self.extensions)})


def overlapping(inputs: tuple[str, ...]) -> tuple[str, str] | None:
    """(inner, outer): the first input that is another, or inside it, local folders compared
    where their links lead; None when each folder is listed once."""
    folders = [folder_key(path) for path in inputs]
    for i, inner in enumerate(folders):
        for j, outer in enumerate(folders):
            # The same folder twice is reported at its second listing.
            if i != j and inner.startswith(outer) and (inner != outer or j < i):
                return inputs[i], inputs[j]
    return None


def load_campaign(name: str, folder: str | Path | None = None) -> Campaign:
    """Read conf/campaigns/NAME.yaml; relative paths in it are taken from the home (the checkout,
    or $SPARKFACE_HOME: `sparkface.core.home`)."""
    path = named_file("campaign", name, folder)
    data = load_yaml(path)
    if "name" in data and data["name"] != name:
        raise ConfigError(f"{path}: name: {data['name']!r} differs from the file name {name!r}")
    data["name"] = name
    if isinstance(data.get("audience", {}), dict):
        data["audience"] = load_audience(changes=data.get("audience") or {})
    if isinstance(data.get("inputs"), str):
        data["inputs"] = [data["inputs"]]
    for key in ("output", "model"):
        if isinstance(data.get(key), str) and data[key] and not is_remote(data[key]):
            data[key] = str(from_home(data[key]))
    if isinstance(data.get("inputs"), list):
        data["inputs"] = [
            str(from_home(item)) if isinstance(item, str) and not is_remote(item) else item
            for item in data["inputs"]
        ]
    return validated(Campaign, data, str(path))


# ---------------------------------------------------------------------------------------------
# Paths


def published_dates(root: Path, campaign: str) -> list[str]:
    """Dates with a complete (published, _SUCCESS) partition, oldest first."""
    folder = root / "predictions" / f"campaign={campaign}"
    if not folder.is_dir():
        return []
    return sorted(
        entry.name.split("=", 1)[1]
        for entry in folder.iterdir()
        if entry.name.startswith("run_date=") and (entry / "_SUCCESS").is_file()
    )


def already_scored(spark: SparkSession, root: Path, campaign: str, before: str) -> DataFrame | None:
    """(path, modified_at) of files scored by successful runs of dates before `before`."""
    dates = [d for d in published_dates(root, campaign) if d < before]
    if not dates:
        return None
    paths = [str(partition_dir(root, "predictions", campaign, d)) for d in dates]
    return spark.read.parquet(*map(written_path, paths)).select("path", "modified_at").distinct()


# ---------------------------------------------------------------------------------------------
# A run


def select_files(images: DataFrame, campaign: Campaign) -> DataFrame:
    """The campaign's filters on file name and modification time."""
    if campaign.file_name_pattern:
        images = images.where(F.col("file_name").rlike(java_regex(campaign.file_name_pattern)))
    if campaign.modified_after:
        images = images.where(F.col("modified_at") > F.to_timestamp(F.lit(campaign.modified_after)))
    return images


def record_run(root: Path, row: dict[str, Any]) -> None:
    """Append one row to OUT/runs/ (a small Parquet file per run, written then renamed)."""
    folder = root / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    schema = pa.schema(
        [
            ("run_id", pa.string()),
            ("campaign", pa.string()),
            ("run_date", pa.string()),
            ("status", pa.string()),
            ("reason", pa.string()),
            ("full", pa.bool_()),
            ("started_at", pa.timestamp("us", tz="UTC")),
            ("finished_at", pa.timestamp("us", tz="UTC")),
            ("duration_seconds", pa.float64()),
            ("files_seen", pa.int64()),
            ("scored", pa.int64()),
            ("errors", pa.int64()),
            ("skipped_already_scored", pa.int64()),
            ("model_version", pa.string()),
            ("model_sha256", pa.string()),
            ("spark_application_id", pa.string()),
            ("output", pa.string()),
            ("report", pa.string()),
        ]
    )
    table = pa.Table.from_pylist([{name: row.get(name) for name in schema.names}], schema=schema)
    name = f"run-{row['started_at']:%Y%m%dT%H%M%S}-{row['run_id']}.parquet"
    temporary = folder / f".{name}.tmp"
    pq.write_table(table, temporary)
    os.rename(temporary, folder / name)


def run_campaign(
    spark: SparkSession,
    campaign: Campaign,
    run_date: str,
    *,
    full: bool = False,
    ingest: IngestConfig | None = None,
    bundle: ModelBundle | None = None,
    before_publish: Callable[[Path], None] | None = None,
    fault: Fault | None = None,
) -> dict[str, Any]:
    """One night's run of `campaign`: select the files, score what is new (or everything with
    `full`) into staging, publish the date's partition atomically, and record the run, failed or
    not. A failure is re-raised as it came, after it is recorded. First of all, a publish that an
    earlier, killed run left half done is completed (`sparkface.score.publish`).

    For tests: `before_publish` is called with the staging folder, `fault` after each publishing
    step."""
    check_run_date(run_date)
    writable_folder(spark, campaign.output)
    root = Path(campaign.output)
    record = new_record(spark, campaign, run_date, full)
    lock = CampaignLock(root, campaign.name, record["run_id"], campaign.lock_stale_after_hours)
    lock.acquire()  # a refused start is not a run: nothing is recorded
    staging = root / "_staging" / f"campaign={campaign.name}" / f"run_date={run_date}"
    staging = staging / record["run_id"]
    started = time.perf_counter()
    try:
        record_recoveries(root, record, recover(root, campaign.name))
        bundle = bundle or campaign_model(campaign)
        record.update(
            model_version=str(bundle.descriptor.get("version")), model_sha256=bundle.sha256
        )
        images, left_out, _, hidden = select_images(
            spark, campaign, campaign.ingest(ingest or IngestConfig()), bundle
        )
        seen = images.count()
        if not full:
            images = unscored(spark, images, root, campaign.name, run_date)
        summary = stage(images, bundle, campaign, record, staging)
        summary["left_out_by_extension"] = left_out
        summary["left_out_hidden"] = hidden
        if campaign.audience.enabled:
            summary["audience"] = stage_audience(spark, bundle, campaign, record, staging)
            record["report"] = str(
                partition_dir(root, "reports", campaign.name, run_date) / REPORT_FILE
            )
        record.update(
            files_seen=seen,
            scored=summary["scored"],
            errors=summary["errors"],
            skipped_already_scored=seen - summary["files"],
            duration_seconds=round(time.perf_counter() - started, 2),
        )
        write_manifest(staging, record, summary, campaign.formats)
        if before_publish:
            before_publish(staging)
        publish(staging, root, campaign.name, run_date, campaign.formats, record["run_id"], fault)
        record.update(status="succeeded", finished_at=datetime.now(UTC))
        log_published(record, partition_dir(root, "predictions", campaign.name, run_date))
        log_left_out(left_out, f"campaign {campaign.name}'s inputs", hidden)
        return record
    except Exception as error:
        record.update(
            status="failed",
            reason=f"{type(error).__name__}: {error}"[:2000],
            finished_at=datetime.now(UTC),
            duration_seconds=round(time.perf_counter() - started, 2),
        )
        raise
    finally:
        record_run(root, record)
        if not journal_path(root, campaign.name, run_date).exists():
            shutil.rmtree(staging, ignore_errors=True)  # else the next run completes the publish
        lock.release()


def check_run_date(run_date: str) -> None:
    try:
        date.fromisoformat(run_date)
    except ValueError:
        raise CampaignError(f"--run-date {run_date!r} is not a date YYYY-MM-DD") from None


def new_record(
    spark: SparkSession, campaign: Campaign, run_date: str, full: bool
) -> dict[str, Any]:
    """The run's row of OUT/runs, as far as it is known when the run starts."""
    return {
        "run_id": uuid.uuid4().hex,
        "campaign": campaign.name,
        "run_date": run_date,
        "full": full,
        "started_at": datetime.now(UTC),
        "output": str(Path(campaign.output)),
        "spark_application_id": spark.sparkContext.applicationId,
    }


def campaign_model(campaign: Campaign) -> ModelBundle:
    try:
        return load_bundle(campaign.model_dir)
    except PackageError as error:
        raise CampaignError(f"campaign {campaign.name}: model: {error}") from error


def select_images(
    spark: SparkSession, campaign: Campaign, ingest: IngestConfig, bundle: ModelBundle
) -> Input:
    """Every image under the campaign's inputs that passes its filters, and the other files,
    counted by extension, and the hidden ones."""
    missing = [p for p in campaign.inputs if not is_remote(p) and not Path(p).is_dir()]
    if missing:
        raise CampaignError(f"campaign {campaign.name}: input folder(s) missing: {missing}")
    images, left_out, listed, hidden = None, Counter(), 0, 0
    for folder in campaign.inputs:
        found = images_to_score(spark, folder, ingest, bundle.image_spec)
        images = found.images if images is None else images.unionByName(found.images)
        left_out.update(found.left_out)
        listed += found.listed
        hidden += found.hidden
    return Input(select_files(images, campaign), dict(sorted(left_out.items())), listed, hidden)


def unscored(
    spark: SparkSession, images: DataFrame, root: Path, campaign: str, run_date: str
) -> DataFrame:
    """`images` less those that successful runs of earlier dates scored (same path and time)."""
    earlier = already_scored(spark, root, campaign, run_date)
    return images if earlier is None else images.join(earlier, ["path", "modified_at"], "left_anti")


def stage(
    images: DataFrame,
    bundle: ModelBundle,
    campaign: Campaign,
    record: dict[str, Any],
    staging: Path,
) -> dict[str, Any]:
    """Score `images` into the staging folder with the one-off run's writer; its summary."""
    scored = score_images(
        images,
        bundle,
        batch_size=campaign.batch_size,
        run_id=record["run_id"],
        scored_at=record["started_at"].strftime("%Y-%m-%d %H:%M:%S"),
        faces=campaign.face_settings(),
    )
    return summarise(write_predictions(scored, str(staging), campaign.formats))


def stage_audience(
    spark: SparkSession,
    bundle: ModelBundle,
    campaign: Campaign,
    record: dict[str, Any],
    staging: Path,
) -> dict[str, Any]:
    """The night's audience tables and report, from the staged predictions, into staging."""
    predictions = spark.read.parquet(written_path(staging / "parquet"))
    about = {
        "campaign": campaign.name,
        "night": record["run_date"],
        "model_version": str(bundle.descriptor.get("version")),
    }
    calibration = load_calibration(bundle.folder) if bundle.folder else None
    likeness = load_likeness(bundle.folder) if bundle.folder else None
    return write_audience(
        predictions, staging, bundle.classes, calibration, campaign.audience, about, likeness
    )


def write_manifest(
    staging: Path, record: dict[str, Any], summary: dict[str, Any], formats: tuple[str, ...]
) -> None:
    manifest = {
        key: (value.isoformat() if isinstance(value, datetime) else value)
        for key, value in record.items()
    } | {
        "errors_by_reason": summary["errors_by_reason"],
        "left_out_by_extension": summary.get("left_out_by_extension", {}),
        "left_out_hidden": summary.get("left_out_hidden", 0),
        "formats": list(formats),
    }
    if "audience" in summary:
        manifest["audience"] = summary["audience"]
    (staging / "parquet" / "_manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def record_recoveries(root: Path, record: dict[str, Any], completed: list[dict[str, str]]) -> None:
    """A row in the run log for each interrupted run whose publish this run completed."""
    for interrupted in completed:
        now = datetime.now(UTC)
        record_run(
            root,
            {
                **record,
                **interrupted,
                "status": "recovered",
                "reason": f"killed while publishing; run {record['run_id']} completed its publish",
                "started_at": now,
                "finished_at": now,
            },
        )


def log_published(record: dict[str, Any], partition: Path) -> None:
    log.info(
        "campaign %s %s: %d files seen, %d skipped as already scored, %d scored, "
        "%d errors; published %s; audience report %s",
        record["campaign"],
        record["run_date"],
        record["files_seen"],
        record["skipped_already_scored"],
        record["scored"],
        record["errors"],
        partition,
        record.get("report") or "off",
    )
