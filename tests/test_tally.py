"""Which scored face of a labelled photo the evaluation takes (sparkface.evaluate.tally)."""

from __future__ import annotations

from sparkface.evaluate.tally import labelled_face


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
