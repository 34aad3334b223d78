"""Choosing between models: Markdown tables of the headline metrics of training runs (from their
summaries) or of model packages on a split of their shards, with the average of their predictions.

Choose on the validation split; the test split is for reporting.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from research.bootstrap import races_gap_draws
from sparkface.core.contract import CLASS_HEADS, RACES
from sparkface.core.errors import InputError
from sparkface.core.package import flip_for, load_package_model, read_descriptor
from sparkface.evaluate.metrics import compute_metrics
from sparkface.evaluate.split import predict_stream
from sparkface.evaluate.uncertainty import accuracy_spread
from sparkface.train.shards import ParquetFaces, shard_files

# (header, metrics key, format) of each figure of a table row.
COLUMNS = (
    ("gender", "gender_accuracy", "{:.1%}"),
    ("race", "race_accuracy", "{:.1%}"),
    ("age group", "age_group_accuracy", "{:.1%}"),
    ("within one group", "age_group_within_one", "{:.1%}"),
    ("age MAE (years)", "age_mae_years", "{:.2f}"),
)


def _row(name: str, metrics: dict[str, Any], extra: tuple[str, ...] = ()) -> str:
    cells = [pattern.format(metrics[key]) for _, key, pattern in COLUMNS]
    return "| " + " | ".join([name, str(metrics["faces"]), *cells, *extra]) + " |"


def _header(first: str, extra: tuple[str, ...] = ()) -> list[str]:
    names = [first, *(c[0] for c in COLUMNS), *extra]
    return ["| model | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]


def runs_table(runs: dict[str, str | Path]) -> str:
    """Test-split metrics, epochs and seconds an epoch of training runs (each the OUT folder of
    `jobs/train.py`), by name."""
    lines = _header("test faces", ("epochs", "s/epoch"))
    for name, folder in runs.items():
        path = Path(folder) / "summary.json"
        if not path.is_file():
            raise InputError(f"{name}: no training summary {path}")
        summary = json.loads(path.read_text())
        training = summary["training"]
        extra = (str(training["epochs_run"]), f"{training['seconds_per_epoch']:.0f}")
        lines.append(_row(name, summary["metrics"], extra))
    return "\n".join(lines)


def split_metrics(
    models: list[tuple[str, str]], split: str, age_groups: tuple[str, ...]
) -> dict[str, dict[str, Any]]:
    """Metrics of model packages on one split of their shards (model folder, shards folder), by
    name, each scored in its own runtime and with mirror averaging as its descriptor says, and,
    for two or more, of their averaged predictions (`split_predictions`)."""
    named, truth = split_predictions(models, split)
    return {name: compute_metrics(p, truth, age_groups) for name, p in named.items()}


def split_predictions(
    models: list[tuple[str, str]], split: str
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """The predictions of model packages on one split of their shards, by name (and, for two or
    more, of their average, last), and the labels. Every shards folder must hold the same faces
    in the same order (the same data settings but the image size), which is checked."""
    named: dict[str, dict[str, np.ndarray]] = {}
    truth = None
    for model_dir, shards in models:
        descriptor = read_descriptor(model_dir)
        size = descriptor["input_size"][0]
        stream = ParquetFaces(shard_files(shards, split), size, 256)
        model = load_package_model(model_dir)
        predictions, labels = predict_stream(model, stream, flip_for(descriptor))
        if truth is not None and any(not np.array_equal(truth[k], labels[k]) for k in truth):
            raise InputError(f"{shards}: not the same faces in the same order as the first shards")
        truth = labels
        name = f"{model_dir} ({size}px)"
        while name in named:  # the same package twice: a row each
            name += "'"
        named[name] = predictions
    if len(named) > 1:
        scored = list(named.values())
        named["average of the models"] = {
            key: np.mean([p[key] for p in scored], axis=0) for key in scored[0]
        }
    return named, truth


# The heads a gap is measured on: accuracy points, and age's error in years.
GAP_HEADS = (*CLASS_HEADS, "age")


def _shortfall_per_face(
    reference: dict[str, np.ndarray], other: dict[str, np.ndarray], truth: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Per face and head, how much worse `other` does than `reference`: 100 points where only the
    reference is right (-100 the other way round), and for age the years of error more."""
    shortfall = {}
    for head in CLASS_HEADS:
        right = [(p[head].argmax(axis=1) == truth[head]).astype(float) for p in (reference, other)]
        shortfall[head] = 100.0 * (right[0] - right[1])
    errors = [np.abs(np.ravel(p["age"]) - truth["age"]) for p in (reference, other)]
    shortfall["age"] = errors[1] - errors[0]
    return shortfall


def paired_gaps(
    reference: dict[str, np.ndarray],
    other: dict[str, np.ndarray],
    truth: dict[str, np.ndarray],
    draws: int = 2000,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """How far `other` falls short of `reference` on the same faces, per head: points of accuracy
    (age: years of mean absolute error more), each with a 95% interval from a paired bootstrap
    over the faces (one draw of faces for all heads), so that a gap of half a point can be told
    from the noise of a couple of thousand faces."""
    shortfall = _shortfall_per_face(reference, other, truth)
    faces = len(truth["age"])
    picks = np.random.default_rng(seed).integers(0, faces, (draws, faces))
    gaps = {}
    for head in GAP_HEADS:
        means = shortfall[head][picks].mean(axis=1)
        low, high = np.percentile(means, [2.5, 97.5])
        gaps[head] = {
            "gap": round(float(shortfall[head].mean()), 2),
            "low": round(float(low), 2),
            "high": round(float(high), 2),
        }
    return gaps


# The goals a distilled network is held to against its teacher: each class head within half a point
# of accuracy, age within a tenth of a year of mean error; and on its own, a gap of at most 3 points
# between the best and the worst race's gender accuracy.
GOALS = {**dict.fromkeys(CLASS_HEADS, 0.5), "age": 0.1, "races_gap": 3.0}


def chance_within(
    reference: dict[str, np.ndarray],
    other: dict[str, np.ndarray],
    truth: dict[str, np.ndarray],
    fresh_faces: int,
    goals: dict[str, float] = GOALS,
    draws: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """How likely a fresh set of `fresh_faces` faces like these finds `other` within `goals`:
    each head's shortfall from `reference`, its own gap between races in gender accuracy
    ("races_gap"), every head at once ("heads") and every goal at once ("all").

    Two levels of bootstrap: each draw resamples the faces measured here (what the two models'
    difference might truly be) and then draws the fresh set from that resample (the luck of a set
    of that size). With the second level alone a large fresh set would look certain whatever
    the few thousand faces behind it."""
    shortfall = _shortfall_per_face(reference, other, truth)
    faces = len(truth["age"])
    rng = np.random.default_rng(seed)
    met: dict[str, list[np.ndarray]] = {}
    for start in range(0, draws, 100):  # a hundred draws at a time bounds the memory
        count = min(100, draws - start)
        population = rng.integers(0, faces, (count, faces))
        fresh = np.take_along_axis(population, rng.integers(0, faces, (count, fresh_faces)), 1)
        figures = {head: shortfall[head][fresh].mean(axis=1) for head in GAP_HEADS}
        drawn = np.stack([np.bincount(row, minlength=faces) for row in fresh])
        figures["races_gap"] = races_gap_draws(other, truth, drawn)
        for goal, figure in figures.items():
            met.setdefault(goal, []).append(figure <= goals[goal])
    draws_met = {goal: np.concatenate(parts) for goal, parts in met.items()}
    together = {
        "heads": np.all([draws_met[head] for head in GAP_HEADS], axis=0),
        "all": np.all(list(draws_met.values()), axis=0),
    }
    return {goal: float(ok.mean()) for goal, ok in (draws_met | together).items()}


def fair_model_chance(
    truth: dict[str, np.ndarray],
    accuracy: float,
    fresh_faces: int,
    goal: float = GOALS["races_gap"],
    draws: int = 20000,
    seed: int = 0,
) -> float:
    """How likely a fresh set of `fresh_faces` faces, its races in the shares of `truth`'s, finds
    the gap between races in gender accuracy within `goal` points for a model right on a share
    `accuracy` of every race's faces: a model with no true gap at all, so that what is left is the
    noise of a few hundred faces a race, which no model escapes."""
    races = np.bincount(truth["race"], minlength=len(RACES))
    rng = np.random.default_rng(seed)
    faces = rng.multinomial(fresh_faces, races / races.sum(), draws)
    gaps = accuracy_spread(rng.binomial(faces, accuracy), faces)
    return float(np.mean(gaps <= goal))


def fair_model_note(
    named: dict[str, dict[str, np.ndarray]], truth: dict[str, np.ndarray], fresh_faces: int
) -> str:
    """`fair_model_chance` at the first model's gender accuracy, as a sentence: the chance of the
    races-gap goal that `chance_table` should be read against."""
    first = next(iter(named.values()))
    accuracy = float(np.mean(first["gender"].argmax(axis=1) == truth["gender"]))
    chance = fair_model_chance(truth, accuracy, fresh_faces)
    return (
        f"A model right on {accuracy:.1%} of genders in every race (the first model's accuracy, "
        f"no gap at all) keeps its races gap within {GOALS['races_gap']:g} points on "
        f"{fresh_faces} fresh faces with a chance of {100 * chance:.0f}%: the noise of the "
        "faces alone."
    )


def chance_table(
    named: dict[str, dict[str, np.ndarray]], truth: dict[str, np.ndarray], fresh_faces: int
) -> str:
    """`chance_within` for each model against the first, as a Markdown table of percentages."""
    names = list(named)
    header = [
        "model", "gender", "race", "age group", "age MAE", "every head", "races gap <= 3",
        "every goal",
    ]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    order = ("gender", "race", "age_group", "age", "heads", "races_gap", "all")
    for name in names[1:]:
        chances = chance_within(named[names[0]], named[name], truth, fresh_faces)
        cells = [f"{100 * chances[goal]:.0f}%" for goal in order]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(lines)


def gaps_table(named: dict[str, dict[str, np.ndarray]], truth: dict[str, np.ndarray]) -> str:
    """Each model's shortfall from the first (`paired_gaps`) as a Markdown table."""
    names = list(named)
    header = ["model", "gender", "race", "age group", "age MAE (years)"]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    order = ("gender", "race", "age_group", "age")
    for name in names[1:]:
        gaps = paired_gaps(named[names[0]], named[name], truth)
        cells = [f"{gaps[h]['gap']:+.2f} ({gaps[h]['low']:+.2f} to {gaps[h]['high']:+.2f})"
                 for h in order]  # fmt: skip
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(lines)


def split_table(named: dict[str, dict[str, Any]]) -> str:
    """The headline metrics of `split_metrics`'s models as a Markdown table."""
    lines = _header("faces")
    lines.extend(_row(name, metrics) for name, metrics in named.items())
    return "\n".join(lines)
