"""Speed of `--faces detect` on camera frames beside `--faces aligned` on face crops, side by side
in one run, with the shipped model (or `--model DIR`, in its own runtime) and conf/faces.yaml:

1. the scoring job (`run_scoring`, local mode, all cores) on N 640x480 frames (0-3 faces, about
   1.65 each, pasted from the input's crops) in detect mode, and on N of the input's crops in
   aligned mode: frames per second, faces per second, and their ratio;
2. where a frame's time goes, in one process: decoding, detecting, aligning, scoring.

`--against FACES_YAML` runs detect mode once more with those faces settings (a partial file: the
rest from the defaults), in the same session, and prints conf/faces.yaml's frames per second as a
multiple of its. `--rounds N` runs every job N times, alternating, and keeps each one's fastest
(the first run of a session pays for its start-up).

    python benchmarks/detect_bench.py --input ../shared/data/utkface --frames 1000
    python benchmarks/detect_bench.py --frames 1000 --rounds 2 \
        --against research/conf/faces-blazeface.yaml
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
import uuid
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent

import numpy as np  # noqa: E402

from sparkface.core.config import IngestConfig, load_faces  # noqa: E402
from sparkface.core.images import open_image, square_pixels  # noqa: E402
from sparkface.core.package import (  # noqa: E402
    default_model_dir,
    flip_for,
    load_bundle,
    load_package_model,
    predict,
)
from sparkface.detect.faces import (  # noqa: E402
    FaceFinder,  # noqa: E402
    align,
    detect,
)
from sparkface.score.run import run_scoring  # noqa: E402
from sparkface.train.frames import jpeg, make_frame  # noqa: E402


def make_inputs(source: Path, count: int, folder: Path, seed: int = 0) -> tuple[Path, Path, int]:
    """`count` frames and `count` crops (hard links) in folder/frames and folder/crops."""
    rng = np.random.default_rng(seed)
    names = sorted(p for p in source.iterdir() if p.is_file())
    frames, crops = folder / "frames", folder / "crops"
    frames.mkdir(parents=True)
    crops.mkdir()
    faces = 0
    for index in range(count):
        pasted = int(rng.choice([0, 1, 2, 3], p=[0.1, 0.35, 0.35, 0.2]))
        chosen = [names[int(i)] for i in rng.integers(0, len(names), size=pasted)]
        frame, placed = make_frame(rng, chosen, pasted, (640, 480))
        faces += len(placed)
        (frames / f"frame_{index:05d}.jpg").write_bytes(jpeg(frame, int(rng.integers(60, 91))))
        os.link(names[index % len(names)], crops / f"{index:05d}_{names[index % len(names)].name}")
    return frames, crops, faces


def bench_jobs(
    frames: Path,
    crops: Path,
    work: Path,
    model_dir: str,
    against: str | None = None,
    rounds: int = 1,
) -> dict[str, tuple[float, dict]]:
    """Each run's fastest of `rounds` rounds, the runs alternating within a round."""
    from sparkface.spark.session import build_session

    ingest = IngestConfig()
    spark = build_session("detect-bench", ingest, {"spark.ui.enabled": "false"})
    bundle = load_bundle(model_dir)
    runs = [("aligned, crops", crops, "aligned"), ("detect, frames", frames, load_faces())]
    if against:
        runs.append((f"detect ({Path(against).name}), frames", frames, load_faces(against)))
    results: dict[str, tuple[float, dict]] = {}
    try:
        for _, (name, folder, settings) in itertools.product(range(rounds), runs):
            started = time.perf_counter()
            summary = run_scoring(
                spark, str(folder), str(work / uuid.uuid4().hex), bundle, ingest, ("parquet",),
                run_id="bench", faces=settings,
            )  # fmt: skip
            seconds = time.perf_counter() - started
            if name not in results or seconds < results[name][0]:
                results[name] = (seconds, summary)
    finally:
        spark.stop()
    return results


def breakdown(frames: Path, count: int, model_dir: str) -> dict[str, float]:
    """Milliseconds per frame in each step, one process, one thread each."""
    bundle = load_bundle(model_dir)
    model = load_package_model(model_dir)
    settings = load_faces()
    detector = FaceFinder(settings)
    spent = dict.fromkeys(("decode", "detect", "align", "score"), 0.0)
    files = sorted(frames.iterdir())[:count]
    flip = flip_for(bundle.descriptor, "detect")
    predict(model, np.zeros((1, *bundle.descriptor["input_size"]), np.uint8), flip=flip)
    for path in files:
        data = path.read_bytes()
        moment = time.perf_counter()
        image = open_image(data, bundle.image_spec, settings.working_pixels)
        spent["decode"] += time.perf_counter() - moment
        moment = time.perf_counter()
        found = detect(image, detector, settings)
        spent["detect"] += time.perf_counter() - moment
        moment = time.perf_counter()
        crops = [
            square_pixels(align(image, f.keypoints, settings), bundle.image_spec.size)
            for f in found
        ]
        spent["align"] += time.perf_counter() - moment
        moment = time.perf_counter()
        if crops:
            predict(model, np.stack(crops), flip=flip)
        spent["score"] += time.perf_counter() - moment
    return {step: 1000 * seconds / len(files) for step, seconds in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", default=str(ROOT.parent / "shared" / "data" / "utkface"))
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--breakdown", type=int, default=200, help="frames timed step by step")
    parser.add_argument("--model", default=str(default_model_dir()), help="a model package")
    parser.add_argument("--against", help="faces settings to compare detect mode with (YAML)")
    parser.add_argument(
        "--rounds", type=int, default=1, help="every run this many times, alternating; the fastest"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=ROOT / "out" if (ROOT / "out").is_dir() else None) as tmp:
        work = Path(tmp)
        frames, crops, faces = make_inputs(Path(args.input), args.frames, work)
        print(
            f"{args.frames} frames of 640x480 with {faces} faces ({faces / args.frames:.2f} each)"
        )
        results = bench_jobs(frames, crops, work / "out", args.model, args.against, args.rounds)
        print("| job (2 cores, local mode) | files | seconds | files/s | faces scored/s |")
        print("|---|---|---|---|---|")
        rates = {}
        for name, (seconds, summary) in results.items():
            rates[name] = summary["files"] / seconds
            print(
                f"| {name} | {summary['files']} | {seconds:.1f} | {rates[name]:.1f} | "
                f"{summary['scored'] / seconds:.1f} |"
            )
        ratio = rates["detect, frames"] / rates["aligned, crops"]
        print(f"detect frames/s over aligned crops/s: {ratio:.2f}")
        for name, rate in rates.items():
            if name.startswith("detect ("):
                print(f"detect frames/s over {name}: {rates['detect, frames'] / rate:.2f}")
        steps = breakdown(frames, args.breakdown, args.model)
        total = sum(steps.values())
        print(
            f"one process, ms per frame ({args.breakdown} frames): "
            + ", ".join(f"{step} {ms:.1f} ({100 * ms / total:.0f}%)" for step, ms in steps.items())
            + f"; total {total:.1f}"
        )


if __name__ == "__main__":
    main()
