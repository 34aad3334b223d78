"""How right the audience shares are, on nights made of labelled faces of known composition.

    python benchmarks/audience_accuracy.py [--nights 40] [--model DIR] [--cache FILE.npz]

1. Scores the test split of each labelled source (conf/sources/fairface, utkface) as a campaign
   does (detect mode, the labelled face), keeping each face's true classes and probabilities
   (cached in --cache; no path is kept).
2. Builds nights: three sources (a camera on FairFace's photos, one on UTKFace's faces, one on
   both), --windows windows each, every window 200-400 faces drawn without replacement with a
   mix of its own (per head, class weights from a Dirichlet, --concentration 1: flat), and
   estimates each window's shares as the audience step does (the package's calibration,
   measured on the validation splits, and conf/audience.yaml's pseudo_faces).
3. Prints, per head: windows, the mean and 90th percentile of half the sum of absolute differences
   from the true shares (corrected, uncorrected probability averaging, counting the most probable
   class), and how often the 95% intervals hold the true share.

Age groups are known only for faces with exact ages (UTKFace): FairFace's are labelled with age
bins that cut across the model's groups, so the age-group rows use the windows of UTKFace's faces.
Photos in the wild with exact ages: `--sources all-age-faces --camera hall=all-age-faces` with a
cache of their own (the calibration stays the package's, measured on FairFace and UTKFace).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent

import numpy as np  # noqa: E402

from sparkface.audience.calibration import load_calibration, load_likeness  # noqa: E402
from sparkface.audience.shares import group_index, merge_classes, total_variation  # noqa: E402
from sparkface.audience.tables import AGE_BAND, window_shares, with_bands  # noqa: E402
from sparkface.core.config import load_audience  # noqa: E402
from sparkface.core.contract import CLASS_HEADS  # noqa: E402
from sparkface.core.package import default_model_dir, load_bundle  # noqa: E402

AUDIENCE = load_audience()
PSEUDO_FACES = AUDIENCE.pseudo_faces
CAMERAS = {"lobby": ("fairface",), "mall": ("utkface",), "station": ("fairface", "utkface")}


def scored_faces(model: str, sources: list[str], split: str) -> dict[str, np.ndarray]:
    """Each source's labelled faces of `split`: source, true classes, probabilities."""
    from sparkface.core.config import load_ingest, load_labels, load_source, load_train
    from sparkface.evaluate.tally import labelled_probabilities, labelled_scores
    from sparkface.spark.runner import arrow_batch, in_session

    bundle = load_bundle(model)
    labels, ingest = load_labels(), load_ingest()
    fractions = load_train().split

    def work(spark):
        frames = []
        for name in sources:
            _, usable, scored = labelled_scores(
                spark, load_source(name), bundle, ingest, labels, 128, (split, fractions), "detect"
            )
            frame = labelled_probabilities(scored, usable, bundle.classes, labels.groups)
            frame["source"] = name
            frames.append(frame)
        return frames

    frames = in_session("audience-accuracy", ingest, work, extra=arrow_batch(128))
    faces: dict[str, np.ndarray] = {"source": np.concatenate([f["source"] for f in frames])}
    for head in CLASS_HEADS:
        truth = np.concatenate([f[f"true_{head}"].fillna(-1).to_numpy() for f in frames])
        faces[f"true_{head}"] = truth.astype("int64")
        faces[head] = np.concatenate([np.stack(f[head].to_numpy()) for f in frames])
    return faces


def cached_faces(cache: Path, model: str, sources: list[str], split: str) -> dict[str, np.ndarray]:
    """The scored faces from `cache` if the same package, sources and split wrote it, else scored
    again and cached: a cache another package wrote is never read as this one's. What wrote it
    is kept beside it (FILE.npz.json), so the research scripts read the faces alone as before."""
    key = {"model": model_version(model), "sources": ",".join(sources), "split": split}
    written_by = cache.with_name(cache.name + ".json")
    if cache.is_file():
        written = json.loads(written_by.read_text()) if written_by.is_file() else {}
        if written == key:
            return dict(np.load(cache, allow_pickle=False))
        was = written or "an unknown package"
        print(f"{cache} was scored with {was}, not {key}: scoring again")
    faces = scored_faces(model, sources, split)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **{name: value.astype(str) if name == "source" else value
                       for name, value in faces.items()})  # fmt: skip
    written_by.write_text(json.dumps(key) + "\n")
    return faces


def model_version(model: str) -> str:
    """The package's version, network and mirror setting: what its probabilities depend on."""
    bundle = load_bundle(model)
    flip = bundle.descriptor.get("flip_test_time")
    return f"{bundle.descriptor.get('version')} {bundle.sha256[:12]} flip={flip}"


def draw_window(
    faces, pool: np.ndarray, rng, concentration: float, heads=CLASS_HEADS
) -> np.ndarray:
    """200-400 faces of `pool`, drawn without replacement with a mix of their own: per head,
    class weights from a Dirichlet of `concentration` (a face whose class is unknown: 1)."""
    weights = np.ones(len(pool))
    for head in heads:
        truth = faces[f"true_{head}"][pool]
        mix = rng.dirichlet(np.full(faces[head].shape[1], concentration))
        weights *= np.where(truth >= 0, mix[np.clip(truth, 0, None)], 1.0)
    size = int(rng.integers(200, 401))
    return rng.choice(pool, size, replace=False, p=weights / weights.sum())


def simulate(
    faces,
    calibration,
    nights,
    windows,
    draws,
    seed,
    concentration=1.0,
    likeness=None,
    heads=CLASS_HEADS,
    cameras=CAMERAS,
):
    """Per window and head: faces, true shares, estimates (with interval), averaged, counted;
    each window's mix drawn over `heads`' classes."""
    rng = np.random.default_rng(seed)
    config = AUDIENCE.model_copy(update={"draws": draws})
    results = []
    for night in range(nights):
        for camera, sources in cameras.items():
            pool = np.flatnonzero(np.isin(faces["source"], sources))
            if len(pool) == 0:
                continue  # none of this camera's sources scored (--sources)
            for window in range(windows):
                chosen = draw_window(faces, pool, rng, concentration, heads)
                size = len(chosen)
                # Estimated as the audience step does, the heads others are sensitive to
                # (sensitive_to) first.
                known = [h for h in heads if (faces[f"true_{h}"][chosen] >= 0).all()]
                if not known:
                    continue  # some faces' class unknown in every head: no true shares
                vectors = {h: faces[h][chosen] for h in (*CLASS_HEADS, *heads)}
                found = window_shares(
                    vectors, calibration, config, likeness, [seed, night, window], known
                )
                for head, shares in found.items():
                    classes = faces[head].shape[1]
                    true_shares = np.bincount(faces[f"true_{head}"][chosen], minlength=classes)
                    true_shares = true_shares / size
                    results.append(
                        {
                            "camera": camera,
                            "head": head,
                            "faces": size,
                            "corrected": total_variation(shares.share, true_shares),
                            "averaged": total_variation(shares.averaged, true_shares),
                            "counted": total_variation(shares.counted, true_shares),
                            "held": int(
                                ((shares.low <= true_shares) & (true_shares <= shares.high)).sum()
                            ),
                            "intervals": classes,
                        }
                    )
    return results


def nights(faces, calibration, likeness, args, heads=CLASS_HEADS) -> list[dict]:
    """`simulate` with the command line's nights, windows, draws, seed, mixes and cameras."""
    return simulate(
        faces,
        calibration,
        args.nights,
        args.windows,
        args.draws,
        args.seed,
        args.concentration,
        likeness,
        heads,
        args.cameras,
    )


def banded_results(faces, calibration, likeness, args) -> list[dict]:
    """The age bands' windows (conf/audience.yaml's `age_bands`): the same nights with the age
    groups merged into bands, each window's mix drawn over the bands, corrected as the audience
    step corrects them (the age groups' labelled faces merged the same way)."""
    if not AUDIENCE.age_bands or "age_group" not in calibration:
        return []
    names = list(calibration["age_group"].classes)
    _, merged, groups = with_bands(
        {"age_group": names}, {"age_group": calibration["age_group"]}, AUDIENCE
    )
    if not groups:
        return []
    band_of = group_index(groups, len(names))
    truth = faces["true_age_group"]
    banded = {
        **faces,
        AGE_BAND: merge_classes(faces["age_group"], groups),
        f"true_{AGE_BAND}": np.where(truth >= 0, band_of[np.clip(truth, 0, None)], -1),
    }
    calibration = {**calibration, AGE_BAND: merged[AGE_BAND]}
    results = nights(banded, calibration, likeness, args, (AGE_BAND, "gender", "race"))
    return [row for row in results if row["head"] == AGE_BAND]


def table(results, by_camera: bool = False) -> str:
    """Per head (and camera): windows, share errors (mean, 90th percentile), interval coverage."""
    import pandas as pd

    frame = pd.DataFrame(results)
    keys = ["head", "camera"] if by_camera else ["head"]
    lines = [
        f"| {' | '.join(keys)} | windows | corrected: mean (90th pct) | averaged: mean (90th pct) "
        "| counted: mean (90th pct) | 95% intervals holding the truth |",
        "|---|" + "---|" * (len(keys) + 4),
    ]
    order = {head: i for i, head in enumerate((AGE_BAND, *CLASS_HEADS))}
    groups = sorted(frame.groupby(keys), key=lambda item: (order[item[0][0]], item[0]))
    for key, part in groups:
        cells = [
            f"{100 * part[kind].mean():.1f} ({100 * part[kind].quantile(0.9):.1f})"
            for kind in ("corrected", "averaged", "counted")
        ]
        coverage = part["held"].sum() / part["intervals"].sum()
        lines.append(
            f"| {' | '.join(key)} | {len(part)} | {' | '.join(cells)} | {100 * coverage:.1f}% "
            f"({part['held'].sum()} of {part['intervals'].sum()}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(default_model_dir()))
    parser.add_argument("--sources", default="fairface,utkface")
    parser.add_argument("--split", default="test")
    parser.add_argument("--cache", default=str(ROOT / "out" / "audience-faces.npz"))
    parser.add_argument("--nights", type=int, default=40)
    parser.add_argument("--windows", type=int, default=6)
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--concentration", type=float, default=1.0, help="of the Dirichlet behind each mix"
    )
    parser.add_argument(
        "--camera",
        action="append",
        default=[],
        metavar="NAME=SOURCE[,SOURCE]",
        help="the nights' cameras and the sources whose faces each sees (default: lobby, mall "
        "and station on FairFace's and UTKFace's faces)",
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    args.cameras = {
        name: tuple(sources.split(","))
        for name, sources in (setting.split("=", 1) for setting in args.camera)
    } or CAMERAS
    faces = cached_faces(Path(args.cache), args.model, args.sources.split(","), args.split)
    calibration = load_calibration(args.model) or {}
    counts = {str(n): int((faces["source"] == n).sum()) for n in np.unique(faces["source"])}
    print(f"faces of the {args.split} split: {counts}; calibration: {bool(calibration)}")
    likeness = load_likeness(args.model)
    if likeness is not None:
        odds = likeness.posteriors({head: faces[head] for head in CLASS_HEADS})
        own = np.array(likeness.sources)[odds.argmax(axis=1)] == faces["source"]
        print(f"faces the source classifier finds like their own source: {100 * own.mean():.1f}%")
        for name in likeness.sources:
            mean = odds[faces["source"] == name].mean(axis=0)
            said = ", ".join(
                f"{other} {m:.2f}" for other, m in zip(likeness.sources, mean, strict=True)
            )
            print(f"  {name}'s faces, mean odds of being like: {said}")
    results = nights(faces, calibration, likeness, args)
    if not results:
        print(f"no night: the cameras' sources ({args.cameras}) were not among --sources")
        return 0
    results += banded_results(faces, calibration, likeness, args)
    print(table(results))
    print(table(results, by_camera=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
