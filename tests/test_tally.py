"""Which scored face of a labelled photo the evaluation takes, and in what order a calibration
gets the labelled faces (sparkface.evaluate.tally)."""

from __future__ import annotations

from pyspark.sql import functions as F

from sparkface.core.config import load_labels
from sparkface.core.contract import CLASS_HEADS
from sparkface.evaluate.tally import labelled_face, labelled_probabilities


def scored_rows(spark, rows):
    """Rows of the scoring job's output, the columns the choice reads."""
    schema = (
        "path string, status string, face_index int, width int, height int, "
        "face_box struct<x:int,y:int,width:int,height:int>"
    )
    return spark.createDataFrame(rows, schema)


def test_the_labelled_face_is_the_one_nearest_the_photos_centre(spark):
    rows = [
        # the most confident face (index 0) small at the edge, the labelled one in the middle
        ("file:/a.jpg", "ok", 0, 224, 224, (0, 0, 30, 30)),
        ("file:/a.jpg", "ok", 1, 224, 224, (70, 60, 90, 100)),
        # a wide photo: the centre is the width's, not the height's
        ("file:/b.jpg", "ok", 0, 400, 100, (10, 20, 60, 60)),
        ("file:/b.jpg", "ok", 1, 400, 100, (170, 30, 60, 60)),
        ("file:/c.jpg", "ok", 0, 224, 224, (60, 60, 100, 100)),
        # a crop scored in aligned mode: no box, its own face
        ("file:/d.jpg", "ok", None, 200, 200, None),
        # nothing found, or unreadable: no face to evaluate
        ("file:/e.jpg", "no_face", None, 224, 224, None),
        ("file:/f.jpg", "error", None, None, None, None),
    ]
    chosen = labelled_face(scored_rows(spark, rows)).toPandas()
    assert dict(zip(chosen["path"], chosen["face_index"].fillna(-1).astype(int), strict=True)) == {
        "file:/a.jpg": 1,
        "file:/b.jpg": 1,
        "file:/c.jpg": 0,
        "file:/d.jpg": -1,
    }


def test_labelled_probabilities_come_in_the_order_of_their_paths(spark):
    # A calibration's bootstrap resamples faces by position: the same faces must come in the
    # same order however Spark partitioned them.
    groups = load_labels().groups
    classes = {
        "age_group": list(groups.names),
        "gender": ["male", "female"],
        "race": ["white", "black", "asian", "indian", "others"],
    }
    names = [f"file:/faces/{i:03d}.jpg" for i in range(60)]
    shuffled = [names[(7 * i) % 60] for i in range(60)]  # 7 and 60 are coprime: a permutation
    usable = spark.createDataFrame(
        [
            (n, 20 + i % 40, "female" if i % 2 else "male", classes["race"][i % 5])
            for i, n in enumerate(shuffled)
        ],
        "path string, age int, gender string, race string",
    ).repartition(7)
    maps = ", ".join(f"{head}: map<string,double>" for head in CLASS_HEADS)
    scored = spark.createDataFrame(
        [(n, int(n[-7:-4])) for n in reversed(shuffled)], "path string, rank int"
    ).repartition(5)
    # each face's probabilities say which file it is: P(female) = its number / 100
    scored = scored.select(
        "path",
        F.struct(
            *[
                F.create_map(
                    *[
                        x
                        for name in classes[head]
                        for x in (
                            F.lit(name),
                            F.col("rank") / 100
                            if (head, name) == ("gender", "female")
                            else F.lit(0.0),
                        )
                    ]
                ).alias(head)
                for head in CLASS_HEADS
            ]
        )
        .cast(f"struct<{maps}>")
        .alias("probabilities"),
    )
    frame = labelled_probabilities(scored, usable, classes, groups)
    assert [round(row[1] * 100) for row in frame["gender"]] == list(range(60))
    assert "path" not in frame.columns
