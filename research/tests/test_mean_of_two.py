"""research/benchmarks/mean_of_two.py: two packages' answers averaged, face by face."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from research.benchmarks.mean_of_two import comparison_lines, paired_faces, right_answers


def write_faces(folder, gender_female: list[float], ages: list[float]) -> str:
    """A per-face table of three FairFace-like faces (bins only), all women, white."""
    rows = [
        {
            "path": f"ff/{index}.jpg",
            "scored": True,
            "true_age": None,
            "true_age_low": low,
            "true_age_high": high,
            "true_age_group": None,
            "true_gender": "female",
            "true_race": "white",
            "gender": "female" if female > 0.5 else "male",
            "age_years": age,
            "probabilities": {
                "gender": [("male", 1 - female), ("female", female)],
                "race": [("white", 0.9), ("others", 0.1)],
                "age_group": [("18-24", 0.5), ("25-34", 0.5)],
            },
        }
        for index, (female, age, (low, high)) in enumerate(
            zip(gender_female, ages, [(10, 19), (20, 29), (70, 116)], strict=True)
        )
    ]
    # as the evaluation writes it: per head, a map of class to probability
    heads = pa.struct(
        [(head, pa.map_(pa.string(), pa.float64())) for head in rows[0]["probabilities"]]
    )
    table = pa.Table.from_pandas(pd.DataFrame(rows).drop(columns="probabilities"))
    table = table.append_column(
        "probabilities", pa.array([row["probabilities"] for row in rows], type=heads)
    )
    (folder / "faces").mkdir(parents=True)
    pq.write_table(table, folder / "faces" / "part.parquet")
    return str(folder)


def test_the_mean_of_two_answers_is_scored_face_by_face(tmp_path):
    # first: right on faces 0 and 1's gender; second: on face 2 only, and sure of it.
    first = write_faces(tmp_path / "a", [0.6, 0.7, 0.45], [8.0, 35.0, 80.0])
    second = write_faces(tmp_path / "b", [0.45, 0.2, 0.99], [15.0, 24.6, 50.0])
    one, two = paired_faces(first, second)
    assert right_answers(one, two, 1.0)["right"]["gender"].tolist() == [True, True, False]
    assert right_answers(one, two, 0.0)["right"]["gender"].tolist() == [False, False, True]
    assert right_answers(one, two, 0.5)["right"]["gender"].tolist() == [True, False, True]
    # The labelled bins are 10-19, 20-29 and 70+; an age is placed among them, the nearest end
    # outside them: the first's 8, 35 and 80 land in each face's own bin; the second's 50 in 20-29.
    assert right_answers(one, two, 1.0)["right"]["age_bin"].tolist() == [True, True, True]
    assert right_answers(one, two, 0.0)["right"]["age_bin"].tolist() == [True, True, False]
    lines = comparison_lines(one, two, [0.5])
    assert lines[0] == "3 faces both scored"
    assert "w = 0.5: gender 66.7, race 100.0, age_bin 66.7" in lines
    assert any(line.startswith("  gender: +0.0") and "1 / 1" in line for line in lines)
