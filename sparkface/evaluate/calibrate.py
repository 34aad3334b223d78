"""The package's audience calibration, measured: each labelled source's faces (a validation
split) scored as campaigns score them, their true classes and probabilities pooled per head."""

from __future__ import annotations

from typing import Any

import numpy as np
from pyspark.sql import SparkSession

from sparkface.audience.likeness import SourceClassifier, fit_source_classifier
from sparkface.audience.shares import HeadCalibration
from sparkface.core.config import FacesConfig, IngestConfig, LabelConfig, SourceConfig
from sparkface.core.contract import CLASS_HEADS
from sparkface.core.package import ModelBundle
from sparkface.evaluate.tally import labelled_probabilities, labelled_scores


def measure_calibration(
    spark: SparkSession,
    sources: list[SourceConfig],
    bundle: ModelBundle,
    ingest: IngestConfig,
    labels_config: LabelConfig,
    split: tuple[str, dict[str, float]] | None,
    faces: FacesConfig | str = "detect",
    batch_size: int = 128,
    counted_as: dict[str, str] | None = None,
) -> tuple[dict[str, HeadCalibration], list[dict[str, Any]], SourceClassifier | None]:
    """Per head, the pooled labelled faces of `sources` (each face where its labels give the
    head's class: a face labelled with an age bin only has no age group) with their sources and
    their true classes of the other heads, unfitted; what each source gave; and, with two
    sources or more, the classifier of which source a face is like, fitted on every face found
    (labelled or not). A source named in `counted_as` counts as the one it maps to: more faces
    of the same kind (more FairFace photos, say) for one correction, not a kind of its own."""
    counted_as = counted_as or {}
    every: dict[str, list[np.ndarray]] = {head: [] for head in CLASS_HEADS}
    truths: dict[str, list[np.ndarray]] = {head: [] for head in CLASS_HEADS}
    vectors: dict[str, list[np.ndarray]] = {head: [] for head in CLASS_HEADS}
    names: dict[str, list[np.ndarray]] = {head: [] for head in CLASS_HEADS}
    # Per head, its faces' true classes of the other heads (-1: unknown).
    others: dict[str, dict[str, list[np.ndarray]]] = {
        head: {other: [] for other in CLASS_HEADS if other != head} for head in CLASS_HEADS
    }
    faces_of: list[np.ndarray] = []
    measured_on = []
    for source in sources:
        _, usable, scored = labelled_scores(
            spark, source, bundle, ingest, labels_config, batch_size, split, faces
        )
        frame = labelled_probabilities(scored, usable, bundle.classes, labels_config.groups)
        usable.unpersist()
        scored.unpersist()
        given = {}
        kind = counted_as.get(source.name, source.name)
        for head in CLASS_HEADS:
            width = len(bundle.classes[head])
            rows = frame[head].to_numpy()
            every[head].append(np.stack(rows) if len(rows) else np.zeros((0, width)))
            known = frame[f"true_{head}"].notna() & (frame[f"true_{head}"] >= 0)
            truths[head].append(frame.loc[known, f"true_{head}"].to_numpy("int64"))
            rows = frame.loc[known, head].to_numpy()
            vectors[head].append(np.stack(rows) if len(rows) else np.zeros((0, width)))
            names[head].append(np.full(int(known.sum()), kind))
            for other, parts in others[head].items():
                parts.append(frame.loc[known, f"true_{other}"].fillna(-1).to_numpy("int64"))
            given[head] = int(known.sum())
        faces_of.append(np.full(len(frame), kind))
        measured_on.append(
            {
                "source": source.name,
                **({"counted_as": kind} if kind != source.name else {}),
                "split": split[0] if split else "all",
                "faces": "detect" if faces != "aligned" else "aligned",
                "faces_by_head": given,
            }
        )
    heads = {
        head: HeadCalibration(
            tuple(bundle.classes[head]),
            np.concatenate(truths[head]),
            np.concatenate(vectors[head]).astype("float64"),
            np.concatenate(names[head]),
            others={other: np.concatenate(parts) for other, parts in others[head].items()},
        )
        for head in CLASS_HEADS
        if sum(len(part) for part in truths[head])
    }
    likeness = fit_source_classifier(
        {head: np.concatenate(every[head]).astype("float64") for head in CLASS_HEADS},
        np.concatenate(faces_of),
    )
    return heads, measured_on, likeness
