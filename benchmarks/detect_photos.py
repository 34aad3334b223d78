"""`--faces detect` on real photos with true face boxes (WIDER FACE's format): recall by the size
of the face, detections that match no true face, time a photo, and gender against perceived
gender on the faces found; one row per faces config, side by side on the same photos.

Each photo goes through `detect_batch`, the code the scoring job runs per file (detector, merge,
alignment, the model), in `--workers` processes of one thread each.

    python benchmarks/detect_photos.py --images WIDER_val/images \
        --truth wider_face_val_bbx_gt.txt --half even \
        --demographics demographics_val.csv [--faces-config conf/faces.yaml ...] \
        [--set NAME:KEY=VALUE,KEY=VALUE ...] [--limit N] [--output report.json]

The data's own docs: docs/detection.md, "Real photos".
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import yaml  # noqa: E402

from sparkface.core.config import FacesConfig, load_faces  # noqa: E402
from sparkface.core.package import default_model_dir, flip_for, load_bundle  # noqa: E402
from sparkface.detect.faces import FaceFinder  # noqa: E402
from sparkface.evaluate.photos import (  # noqa: E402
    Tally,
    in_half,
    match,
    perceived_genders,
    read_wider_truth,
    table,
)
from sparkface.score.transform import cached_model, detect_batch  # noqa: E402

_WORKER: dict = {}


def _start(model_dir: str, settings: dict) -> None:
    bundle = load_bundle(model_dir)
    faces = FacesConfig(**settings)
    _WORKER.update(
        bundle=bundle,
        model=cached_model(bundle, 1),
        flip=flip_for(bundle.descriptor, "detect"),
        finder=FaceFinder(faces),
        settings=faces,
    )


def _look(path: str) -> tuple[list, list, list, float]:
    """One photo: its detections' boxes, confidences and genders, and the seconds it took."""
    content = Path(path).read_bytes()
    w = _WORKER
    start = time.perf_counter()
    columns, _ = detect_batch(
        [content], [len(content)], w["bundle"], w["model"], w["flip"], w["finder"], w["settings"]
    )
    seconds = time.perf_counter() - start
    rows = [i for i, box in enumerate(columns["face_box"]) if box is not None]
    boxes = [tuple(columns["face_box"][i][k] for k in ("x", "y", "width", "height")) for i in rows]
    return (
        boxes,
        [columns["face_confidence"][i] for i in rows],
        [columns["gender"][i] for i in rows],
        seconds,
    )


def measure(
    photos: list[str],
    images: Path,
    truth: dict,
    genders: dict,
    model_dir: str,
    settings: FacesConfig,
    workers: int,
) -> dict:
    """The report of one faces config over `photos`."""
    paths = [str(images / photo) for photo in photos]
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, _start, (model_dir, settings.model_dump())) as pool:
        looked = pool.map(_look, paths, chunksize=4)
    tally = Tally()
    for photo, (boxes, confidences, predicted, seconds) in zip(photos, looked, strict=True):
        matched, unmatched = match(boxes, confidences, truth[photo])
        pairs = {
            index: (gender, predicted[matched[index]] if matched[index] is not None else None)
            for index, gender in genders.get(photo, {}).items()
            if index < len(truth[photo])
        }
        tally.add_photo(truth[photo], matched, unmatched, seconds, pairs)
    return tally.report()


def variants(args: argparse.Namespace) -> dict[str, FacesConfig]:
    """The faces configs to compare: each --faces-config, then each --set on the first one."""
    configs = {Path(p).stem: load_faces(p) for p in args.faces_config or []}
    if not configs:
        configs = {"faces.yaml": load_faces(None)}
    base = next(iter(configs.values()))
    for spec in args.set or []:
        name, _, assignments = spec.partition(":")
        changes = {}
        for assignment in filter(None, re.split(r",(?=\s*\w+=)", assignments)):
            key, _, value = assignment.partition("=")
            changes[key.strip()] = yaml.safe_load(value)
        configs[name] = FacesConfig(**{**base.model_dump(), **changes})
    return configs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="detect_photos", description=__doc__)
    parser.add_argument("--images", required=True, help="folder the truth's photo paths are in")
    parser.add_argument("--truth", required=True, help="boxes in WIDER FACE's text format")
    parser.add_argument("--half", choices=("even", "odd", "all"), default="all")
    parser.add_argument("--demographics", help="perceived gender (widerface-demographics CSV)")
    parser.add_argument("--model", default=None, help="default: the shipped model")
    parser.add_argument("--faces-config", action="append", help="default: conf/faces.yaml")
    parser.add_argument(
        "--set", action="append", help="NAME:KEY=VALUE,...: the first config with these changes"
    )
    parser.add_argument("--limit", type=int, default=0, help="the first N photos of the half")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--output", help="write the reports here as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    images = Path(args.images)
    truth = read_wider_truth(args.truth)
    photos = sorted(p for p in truth if in_half(p, args.half) and (images / p).is_file())
    if args.limit:
        photos = photos[: args.limit]
    genders = perceived_genders(args.demographics, photos) if args.demographics else {}
    model_dir = str(args.model or default_model_dir())
    reports = {}
    for name, settings in variants(args).items():
        reports[name] = measure(photos, images, truth, genders, model_dir, settings, args.workers)
        print(f"{name}: {json.dumps(reports[name])}", flush=True)
    print(f"\n{len(photos)} photos ({args.half} half), model {model_dir}\n")
    print(table(reports))
    if args.output:
        Path(args.output).write_text(json.dumps(reports, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
