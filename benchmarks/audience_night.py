"""Campaign nights with their audience step, end to end: how right the published shares are on a
night of labelled photos, and what the step costs on a large night.

    python benchmarks/audience_night.py                         # a labelled night
    python benchmarks/audience_night.py --cost ../shared/data/utkface --sources 10

Labelled night: the test split's photos of FairFace and UTKFace, copied into three cameras'
folders (lobby: FairFace's photos, mall: UTKFace's, station: both) and --hours hour windows, each
photo to one camera and hour with odds that differ per window by gender and race (so every window
has its own mix), timed by the file's modification time. One campaign night
(`run_campaign`, detect mode, the shipped package and its calibration) scores them and publishes
the audience; each window's published shares are compared with the labels of its photos with a
face (age groups on the mall's windows only: FairFace's age bins cut across the model's groups).

Cost: the input's images copied into --sources folders with modification times spread over 24
hours, one campaign night with the audience step; prints the night's and the step's seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sparkface.audience.shares import group_index, total_variation  # noqa: E402
from sparkface.audience.tables import AGE_BAND, with_bands  # noqa: E402
from sparkface.core.config import AudienceConfig, load_audience, load_ingest  # noqa: E402
from sparkface.core.contract import CLASS_HEADS, GENDERS, RACES  # noqa: E402
from sparkface.core.package import default_model_dir, load_bundle  # noqa: E402
from sparkface.score.campaigns import Campaign, run_campaign  # noqa: E402
from sparkface.spark.runner import arrow_batch, in_session  # noqa: E402

CAMERAS = {"lobby": ("fairface",), "mall": ("utkface",), "station": ("fairface", "utkface")}
NIGHT = "2026-12-01"


def labelled_photos(spark, split: str) -> pd.DataFrame:
    """Path, source and true classes of each usable labelled photo of `split`."""
    from pyspark.sql import functions as F

    from sparkface.core.config import load_labels, load_source, load_train
    from sparkface.core.labels import age_group_index, labelled_files
    from sparkface.spark.ingest import list_files
    from sparkface.train.preparation import assign_split

    labels, ingest, fractions = load_labels(), load_ingest(), load_train().split
    frames = []
    for name in ("fairface", "utkface"):
        source = load_source(name)
        files = list_files(spark, source.images, ingest).where("is_image")
        photos = assign_split(
            labelled_files(spark, files, source, labels.max_age),
            fractions.get("validation", 0.1),
            fractions.get("test", 0.1),
        ).where((F.col("split") == split) & F.col("label_error").isNull())
        photos = photos.where(F.col("age_low") >= labels.groups.min_age)
        frames.append(
            photos.select(
                "path",
                F.lit(name).alias("source"),
                age_group_index(F.col("age"), labels.groups).alias("age_group"),
                "gender",
                "race",
            ).toPandas()
        )
    return pd.concat(frames, ignore_index=True)


def place(photos: pd.DataFrame, hours: int, seed: int) -> pd.DataFrame:
    """Each photo's camera and hour: odds per (camera, hour) by gender and race."""
    rng = np.random.default_rng(seed)
    slots = [(camera, hour) for camera in CAMERAS for hour in range(hours)]
    odds = np.ones((len(photos), len(slots)))
    gender = photos["gender"].map({g: i for i, g in enumerate(GENDERS)}).to_numpy()
    race = photos["race"].map({r: i for i, r in enumerate(RACES)}).to_numpy()
    for column, (camera, _) in enumerate(slots):
        genders = rng.dirichlet(np.full(len(GENDERS), 2.0))
        races = rng.dirichlet(np.full(len(RACES), 1.0))
        eligible = photos["source"].isin(CAMERAS[camera]).to_numpy()
        odds[:, column] = genders[gender] * races[race] * eligible
    odds /= odds.sum(axis=1, keepdims=True)
    chosen = np.array([rng.choice(len(slots), p=row) for row in odds])
    placed = photos.copy()
    placed["camera"] = [slots[c][0] for c in chosen]
    placed["hour"] = [8 + slots[c][1] for c in chosen]
    return placed


def copy_night(photos: pd.DataFrame, folder: Path, seed: int) -> pd.DataFrame:
    """Copy each photo to folder/CAMERA/, timed in its hour; their new paths."""
    rng = np.random.default_rng(seed)
    paths = []
    for index, row in enumerate(photos.itertuples()):
        original = Path(row.path.removeprefix("file:"))
        target = folder / row.camera / f"{index:06d}{original.suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(original, target)
        moment = datetime(2026, 12, 1, row.hour, int(rng.integers(0, 60)), tzinfo=UTC)
        os.utime(target, (moment.timestamp(), moment.timestamp()))
        paths.append(f"file:{target}")
    return photos.assign(path=paths)


def run_night(spark, inputs: list[str], output: Path, audience: AudienceConfig) -> dict:
    campaign = Campaign(
        name="night", inputs=tuple(inputs), output=str(output), faces="detect", audience=audience
    )
    started = time.perf_counter()
    record = run_campaign(
        spark, campaign, NIGHT, full=True, bundle=load_bundle(default_model_dir())
    )
    record["wall_seconds"] = time.perf_counter() - started
    manifest = output / "predictions" / "campaign=night" / f"run_date={NIGHT}" / "_manifest.json"
    record["audience"] = json.loads(manifest.read_text())["audience"]
    return record


def compare(
    output: Path, photos: pd.DataFrame, classes: dict[str, list[str]], audience: AudienceConfig
) -> pd.DataFrame:
    """Per window and head: faces, and the share errors of the published and uncorrected shares
    against the labels of the window's faces (the age bands' from their age groups)."""
    groups = with_bands(classes, None, audience)[2]
    if groups:
        classes = {**classes, AGE_BAND: list(audience.age_bands)}
        band_of = group_index(groups, len(classes["age_group"]))
        ages = photos["age_group"].fillna(-1).astype(int).to_numpy()
        bands = np.where(ages >= 0, band_of[np.clip(ages, 0, None)], np.nan)
        photos = photos.assign(**{AGE_BAND: bands})
    predictions = pd.read_parquet(output / "predictions", columns=["path", "status"])
    faces = predictions[predictions["status"] == "ok"].merge(photos, on="path")
    shares = pd.read_parquet(output / "audience_shares")
    shares = shares[shares["span"] == "window"]
    rows = []
    for (camera, start, head), part in shares.groupby(["source", "window_start", "head"]):
        hour = pd.Timestamp(start).hour
        window = faces[(faces["camera"] == camera) & (faces["hour"] == hour)]
        truth = window[head]
        if head in ("age_group", AGE_BAND):
            if (truth.isna() | (truth < 0)).any():
                continue
            truth = pd.Series(np.asarray(classes[head])[truth.astype(int).to_numpy()])
        true_shares = truth.value_counts(normalize=True).reindex(classes[head]).fillna(0)
        part = part.set_index("class").reindex(classes[head])
        held = (part["share_low"] <= true_shares) & (true_shares <= part["share_high"])
        rows.append(
            {
                "camera": camera,
                "hour": hour,
                "head": head,
                "faces": int(part["faces"].iloc[0]),
                "labelled_faces": len(window),
                "corrected": total_variation(part["share"], true_shares),
                "averaged": total_variation(part["share_averaged"], true_shares),
                "counted": total_variation(part["share_counted"], true_shares),
                "held": int(held.sum()),
                "intervals": len(classes[head]),
            }
        )
    return pd.DataFrame(rows)


def labelled_night(args) -> None:
    audience = load_audience(changes={"draws": args.draws})
    with tempfile.TemporaryDirectory(dir=ROOT / "out") as scratch:
        scratch = Path(scratch)

        def work(spark):
            photos = place(labelled_photos(spark, args.split), args.hours, args.seed)
            photos = copy_night(photos, scratch / "night", args.seed)
            record = run_night(spark, [str(scratch / "night")], scratch / "out", audience)
            return photos, record

        photos, record = in_session("audience-night", load_ingest(), work, extra=arrow_batch(128))
        classes = load_bundle(default_model_dir()).classes
        result = compare(scratch / "out", photos, classes, audience)
        shutil.copyfile(record["report"], args.report)  # the page holds no path or face
    print(f"report: {args.report}")
    print(f"{len(photos)} photos, {record['scored']} faces; night {record['wall_seconds']:.1f} s, "
          f"audience step {record['audience']['seconds']:.1f} s")  # fmt: skip
    print(
        "| head | windows | faces a window | corrected | averaged | counted | intervals holding |"
    )
    print("|---|---|---|---|---|---|---|")
    for head in (AGE_BAND, *CLASS_HEADS):
        part = result[result["head"] == head]
        if part.empty:
            continue
        print(
            f"| {head} | {len(part)} | {part['faces'].min()}-{part['faces'].max()} | "
            + " | ".join(
                f"{100 * part[k].mean():.1f}" for k in ("corrected", "averaged", "counted")
            )
            + f" | {part['held'].sum()} of {part['intervals'].sum()} |"
        )


def cost_night(args) -> None:
    """The step's cost on a large night: copies of --cost's images, --sources folders, 24 h."""
    source = Path(args.cost)
    names = sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith("."))
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(dir=ROOT / "out") as scratch:
        scratch = Path(scratch)
        for index, path in enumerate(names):
            target = scratch / "night" / f"screen-{index % args.sources:02d}" / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            moment = datetime(2026, 12, 1, tzinfo=UTC).timestamp() + rng.uniform(0, 86400)
            os.utime(target, (moment, moment))
        record = in_session(
            "audience-cost",
            load_ingest(),
            lambda spark: run_night(
                spark,
                [str(scratch / "night")],
                scratch / "out",
                load_audience(changes={"draws": args.draws}),
            ),
            extra=arrow_batch(128),
        )
    step = record["audience"]["seconds"]
    night = record["duration_seconds"]
    print(
        f"{len(names)} images, {record['scored']} faces, {args.sources} sources x 24 h: night "
        f"{night:.1f} s, of which the audience step {step:.1f} s: it adds "
        f"{100 * step / (night - step):.1f}% to the night without it "
        f"({record['audience']['windows']} windows)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cost", help="a folder of images: measure the step's cost instead")
    parser.add_argument("--sources", type=int, default=10)
    parser.add_argument("--split", default="test")
    parser.add_argument("--hours", type=int, default=4)
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--report", default=str(ROOT / "out" / "audience-night.html"), help="the night's page"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    (ROOT / "out").mkdir(exist_ok=True)
    cost_night(args) if args.cost else labelled_night(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
