"""Merge shards prepared apart into one run folder that `jobs/train.py --reuse-shards` accepts.

Preparing a source is a pure function of each file (its split, view and alignment come from
hashes of its file name), so the shards of sources prepared in separate runs with the same data
settings hold the rows one run over all of them would hold; only their files are cut
differently. This links every part file of each PREPARED folder's `shards/split=*/` into
OUT/shards, sums their `preparation.json` counts, and writes OUT/config.yaml from RECIPE, so that

    python research/jobs/merge_shards.py --recipe R --output OUT out/train-world out/prep-more
    spark-submit jobs/train.py --reuse-shards --output OUT --config R

trains on all of them. Refused when the folders' data settings differ from each other or from
the recipe's, or when their sources overlap.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from sparkface.core.config import load_labels, load_train
from sparkface.train.packaging import write_config

DATA_KEYS = ("image_size", "min_age", "sample_fractions", "split", "shards", "faces")
SUMMED = ("files", "unlabelled", "under_min_age", "sampled_out", "unreadable")


def merged_counts(preparations: list[dict[str, Any]]) -> dict[str, Any]:
    """One `preparation.json` for the union of several."""
    merged: dict[str, Any] = {key: sum(p.get(key, 0) for p in preparations) for key in SUMMED}
    merged["unreadable_files"] = [f for p in preparations for f in p.get("unreadable_files", [])]
    for nested in ("rows", "sources"):
        total: Counter[str] = Counter()
        for p in preparations:
            total.update(p.get(nested, {}))
        merged[nested] = dict(sorted(total.items()))
    views: dict[str, Counter[str]] = {}
    for p in preparations:
        for split, counts in p.get("views", {}).items():
            views.setdefault(split, Counter()).update(counts)
    merged["views"] = {split: dict(sorted(c.items())) for split, c in sorted(views.items())}
    for key in ("faces", "image_size"):
        merged[key] = preparations[0].get(key)
    return merged


def check_compatible(recipe: dict[str, Any], configs: list[dict[str, Any]]) -> None:
    """The prepared folders agree with the recipe on every data setting; sources are disjoint
    and together the recipe's."""
    for key in DATA_KEYS:
        for folder_config in configs:
            if folder_config.get(key) != recipe.get(key):
                raise SystemExit(f"data setting {key!r} differs: {folder_config.get(key)!r}")
    seen: set[str] = set()
    for folder_config in configs:
        names = set(folder_config.get("sources") or {})
        if names & seen:
            raise SystemExit(f"sources prepared twice: {sorted(names & seen)}")
        seen |= names
    if seen != set(recipe.get("sources") or {}):
        raise SystemExit(
            f"prepared sources {sorted(seen)} are not the recipe's {recipe['sources']}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("prepared", type=Path, nargs="+")
    args = parser.parse_args(argv)

    config = load_train(args.recipe)
    recipe = json.loads(json.dumps(config.to_dict()))
    configs = [yaml.safe_load((p / "config.yaml").read_text()) for p in args.prepared]
    check_compatible(recipe, configs)
    shards = args.output / "shards"
    if shards.exists():
        raise SystemExit(f"{shards} exists: give a new --output")
    for folder in args.prepared:
        for part in sorted((folder / "shards").glob("split=*/*.parquet")):
            target = shards / part.parent.name / f"{folder.name}-{part.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(part.resolve(), target)
    preparations = [json.loads((p / "preparation.json").read_text()) for p in args.prepared]
    counts = merged_counts(preparations)
    (args.output / "preparation.json").write_text(json.dumps(counts, indent=2) + "\n")
    write_config(args.output, config, load_labels(None))
    print(f"{args.output}: rows {counts['rows']}, sources {counts['sources']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
