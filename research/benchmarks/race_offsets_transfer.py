"""Do offsets on the five races' log probabilities, fitted on one source's faces, help another's?
(docs/experiments.md, twenty-fifth session.) From the faces `jobs/evaluate.py --per-face` wrote:

    PYTHONPATH=. .venv/bin/python research/benchmarks/race_offsets_transfer.py \
        out/eval/scratch-fairface-more-validation out/eval/scratch-fairface-validation \
        out/eval/scratch-utkface-validation

The offsets are fitted on the first folder's faces (white's held at 0; each other race's in turn,
on a grid of 0.05 from -1 to 1, four rounds, to put the most faces right), then each folder's race
accuracy is printed without them and with them. Offsets that only fit one source's mix of races
and its photos raise that source and lower the others.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from research.benchmarks.mean_of_two import probabilities
from research.benchmarks.per_face import scored_faces

GRID = np.round(np.arange(-1.0, 1.0001, 0.05), 2)


def race_logs(folder: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The race classes, each labelled face's log probabilities and its true class's column."""
    faces = scored_faces(folder)
    faces = faces[faces["true_race"].notna()]
    names, probs = probabilities(faces, "race")
    truth = np.array([names.index(race) for race in faces["true_race"]])
    return names, np.log(np.clip(probs, 1e-9, 1.0)), truth


def accuracy(logs: np.ndarray, truth: np.ndarray, offsets: np.ndarray | float) -> float:
    return float((np.argmax(logs + offsets, axis=1) == truth).mean())


def fit_offsets(logs: np.ndarray, truth: np.ndarray, rounds: int = 4) -> np.ndarray:
    """Offsets (the first class's 0) that put the most faces right, one class at a time."""
    offsets = np.zeros(logs.shape[1])
    for _ in range(rounds):
        for column in range(1, logs.shape[1]):
            trials = [np.where(np.arange(logs.shape[1]) == column, v, offsets) for v in GRID]
            offsets = max(trials, key=lambda trial: accuracy(logs, truth, trial))
    return offsets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "folders", nargs="+", help="evaluate.py --per-face folders; fit on the first"
    )
    args = parser.parse_args(argv)
    sets = [(folder, *race_logs(folder)) for folder in args.folders]
    names, logs, truth = sets[0][1:]
    offsets = fit_offsets(logs, truth)
    print("offsets: " + ", ".join(f"{n} {o:+.2f}" for n, o in zip(names, offsets, strict=True)))
    for folder, _, logs, truth in sets:
        before, after = accuracy(logs, truth, 0.0), accuracy(logs, truth, offsets)
        print(f"{folder}: race {100 * before:.1f} -> {100 * after:.1f} ({len(truth)} faces)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
