from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from sparkface.core.config import IngestConfig, LabelConfig, folder_source, train_config_from_dict
from sparkface.core.labels import labelled_files
from sparkface.spark.ingest import read_images
from sparkface.train.preparation import assign_split, prepare, rebalance
from sparkface.train.shards import ParquetFaces, pixels_to_array, shard_files
from tests.conftest import utk_names, write_faces


def names_frame(spark, names):
    return spark.createDataFrame([(n,) for n in names], "file_name string")


def test_split_depends_only_on_the_file_name(spark):
    names = [f"{i}_0_0_2017{i:013d}.jpg" for i in range(2000)]
    first = {
        r.file_name: r.split for r in assign_split(names_frame(spark, names), 0.1, 0.1).collect()
    }
    # More data, in another order: no face changes split.
    more = names[::-1] + [f"new_{i}.jpg" for i in range(500)]
    second = {
        r.file_name: r.split for r in assign_split(names_frame(spark, more), 0.1, 0.1).collect()
    }
    assert all(second[name] == split for name, split in first.items())
    shares = {
        s: list(first.values()).count(s) / len(first) for s in ("train", "validation", "test")
    }
    assert shares["train"] == pytest.approx(0.8, abs=0.03)
    assert shares["test"] == pytest.approx(0.1, abs=0.02)


def test_rebalance_samples_training_rows_of_a_class_only(spark):
    rows = [(f"face_{i}.jpg", "white" if i % 2 else "black", "train") for i in range(4000)]
    rows += [(f"val_{i}.jpg", "white", "validation") for i in range(200)]
    df = spark.createDataFrame(rows, "file_name string, race string, split string")
    kept = rebalance(df, {"race": {"white": 0.5}})
    counts = {
        (r.race, r.split): r["count"] for r in kept.groupBy("race", "split").count().collect()
    }
    assert counts[("black", "train")] == 2000
    assert counts[("white", "train")] == pytest.approx(1000, abs=80)
    assert counts[("white", "validation")] == 200
    again = rebalance(df, {"race": {"white": 0.5}})
    assert sorted(r.file_name for r in kept.collect()) == sorted(
        r.file_name for r in again.collect()
    )


@pytest.fixture(scope="module")
def prepared(spark, tmp_path_factory):
    folder = tmp_path_factory.mktemp("faces")
    names = utk_names(120, seed=4)
    names += ["3_0_0_20170101000000001.jpg", "4_1_1_20170101000000002.jpg"]  # under 7
    names += ["39_1_20170116174525125.jpg.chip.jpg"]  # unlabelled
    write_faces(folder, names, size=(70, 90))
    (folder / "50_0_1_20170101000000003.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    config = train_config_from_dict(
        {"image_size": 24, "shards": 2, "sample_fractions": {"race": {"white": 0.5}}}
    )
    out = tmp_path_factory.mktemp("prepared")
    images = labelled_files(
        spark, read_images(spark, str(folder), IngestConfig()), folder_source(str(folder))
    )
    counts = prepare(images, config, LabelConfig().groups, str(out))
    return names, counts, out, config


def test_preparation_counts_what_each_step_drops(prepared):
    names, counts, _, _ = prepared
    under_seven = sum(1 for n in names if int(n.split("_")[0]) < 7)
    assert counts["files"] == len(names) + 1
    assert counts["unlabelled"] == 1
    assert counts["under_min_age"] == under_seven
    assert counts["unreadable"] == 1
    assert "truncated" in counts["unreadable_files"][0]["decode_error"]


def test_shards_hold_every_trainable_face_but_the_sampled_out_white_training_faces(spark, prepared):
    names, counts, out, _ = prepared
    # Trainable: labelled, at least 7, readable (the truncated file is not among `names`).
    trainable = {n for n in names if n[0].isdigit() and n.count("_") >= 3}
    trainable = {n for n in trainable if int(n.split("_")[0]) >= 7}
    split = {
        row.file_name: row.split
        for row in assign_split(names_frame(spark, sorted(trainable)), 0.1, 0.1).collect()
    }
    shards = pq.read_table(out / "shards", columns=["file_name", "race"]).to_pandas()
    held = set(shards["file_name"])
    assert held <= trainable and len(held) == len(shards)
    white_training = {n for n in trainable if n.split("_")[2] == "0" and split[n] == "train"}
    assert trainable - white_training <= held  # every other face is kept
    kept = len(white_training & held)
    assert 0.25 * len(white_training) <= kept <= 0.75 * len(white_training)  # about half
    assert counts["sampled_out"] == len(white_training) - kept
    assert counts["rows"] == {
        name: sum(1 for n in held if split[n] == name) for name in ("train", "validation", "test")
    }


def test_shards_hold_resized_pixels_and_indices(prepared):
    _, counts, out, config = prepared
    files = shard_files(out / "shards", "train")
    assert len(files) <= config.shards
    table = pq.read_table(files)
    assert table.num_rows == counts["rows"]["train"]
    pixels = pixels_to_array(table.column("pixels"), 24)
    assert pixels.shape == (table.num_rows, 24, 24, 3)
    assert set(table.column("gender_index").to_pylist()) <= {0, 1}
    assert min(table.column("age").to_pylist()) >= 7
    assert set(table.column("age_group_index").to_pylist()) <= set(range(8))


def test_stream_yields_every_row_once_per_pass(prepared):
    _, counts, out, _ = prepared
    stream = ParquetFaces(shard_files(out / "shards", "train"), 24, 16, shuffle_buffer=32, seed=3)
    seen = [targets["age"].ravel() for _, targets in stream]
    assert len(seen) == len(stream)
    assert sum(len(batch) for batch in seen) == counts["rows"]["train"]
    plain = ParquetFaces(shard_files(out / "shards", "train"), 24, 16)
    assert sorted(np.concatenate(seen)) == sorted(
        np.concatenate([t["age"].ravel() for _, t in plain])
    )


def test_stream_memory_is_bounded_by_the_buffer(prepared, monkeypatch):
    import sparkface.train.shards as training

    _, _, out, _ = prepared
    held = []
    original = training._concat

    def watch(parts, rng):
        merged = original(parts, rng)
        held.append(len(merged["age"]))
        return merged

    monkeypatch.setattr(training, "_concat", watch)
    stream = ParquetFaces(
        shard_files(out / "shards", "train"), 24, 4, shuffle_buffer=8, read_batch=8, repeat=True
    )
    iterator = iter(stream)
    for _ in range(len(stream) * 2):  # two passes through a repeating stream
        next(iterator)
    assert stream.rows > 30
    assert max(held) <= 8 + 4 + 8  # buffer + one batch + one read, never the whole split


def test_split_is_recorded_nowhere_but_the_folder(prepared, spark):
    _, counts, out, _ = prepared
    rows = spark.read.parquet(str(out / "shards"))
    by_split = {r.split: r["count"] for r in rows.groupBy("split").count().collect()}
    assert by_split == {k: v for k, v in counts["rows"].items() if v}
    assert rows.where(F.col("age") < 7).count() == 0


def test_an_augmented_stream_varies_the_faces_but_not_the_labels(prepared):
    _, _, out, _ = prepared
    files = shard_files(out / "shards", "train")
    plain = list(ParquetFaces(files, 24, 16, shuffle_buffer=32, seed=3))
    varied = list(ParquetFaces(files, 24, 16, shuffle_buffer=32, seed=3, augment=True))
    assert len(plain) == len(varied)
    for (faces, targets), (new_faces, new_targets) in zip(plain, varied, strict=True):
        np.testing.assert_array_equal(targets["age"], new_targets["age"])
        assert new_faces.shape == faces.shape and new_faces.dtype == np.uint8
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(plain, varied, strict=True))


def test_prefetch_yields_every_batch_in_order_and_reraises_the_producers_error():
    from sparkface.train.shards import prefetch

    assert list(prefetch(iter(range(100)), size=3)) == list(range(100))

    def broken():
        yield 1
        raise OSError("shard unreadable")

    stream = prefetch(broken())
    assert next(stream) == 1
    with pytest.raises(OSError, match="shard unreadable"):
        next(stream)


def test_detect_mode_shards_hold_the_faces_the_detector_aligned_and_lose_none(
    spark, tmp_path_factory
):
    """`faces.mode: detect`: every labelled face is in the shards, aligned as scoring's detect mode
    aligns it; the train split's shown first as its view, the others as crops; a face the detector
    cannot find is kept as its crop (view 'aligned'); an unreadable file is counted."""
    import io
    import shutil

    from PIL import Image

    from sparkface.core.config import load_faces
    from sparkface.core.images import ImageSpec, square_pixels
    from sparkface.detect.faces import FaceFinder, faces_in
    from sparkface.train.faces import nearest
    from tests.test_detect import real_faces

    folder = tmp_path_factory.mktemp("real-faces")
    sources = real_faces(40)
    for source in sources:
        shutil.copy(source, folder / source.name)
    buffer = io.BytesIO()
    Image.new("RGB", (200, 200), (90, 90, 90)).save(buffer, format="JPEG")
    (folder / "30_0_0_20170101000000009.jpg").write_bytes(buffer.getvalue())
    (folder / "50_0_1_20170101000000003.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    config = train_config_from_dict(
        {
            "image_size": 32,
            "shards": 2,
            "sample_fractions": {},
            "split": {"validation": 0.2, "test": 0.2},
            "faces": {"mode": "detect", "views": {"crop": 0.5, "frame": 0.3, "tighter": 0.2}},
        }
    )
    out = tmp_path_factory.mktemp("prepared-detect")
    images = labelled_files(
        spark, read_images(spark, str(folder), IngestConfig()), folder_source(str(folder))
    )
    counts = prepare(images, config, LabelConfig().groups, str(out))
    trainable = [s for s in sources if int(s.name.split("_")[0]) >= 7]
    assert counts["faces"] == "detect" and counts["unreadable"] == 1
    assert sum(counts["rows"].values()) == len(trainable) + 1
    for split, views in counts["views"].items():
        assert sum(views.values()) == counts["rows"][split]
        allowed = (
            {"crop", "frame", "tighter", "aligned"} if split == "train" else {"crop", "aligned"}
        )
        assert set(views) <= allowed
    assert {"frame", "tighter"} <= set(counts["views"]["train"])
    assert sum(views.get("aligned", 0) for views in counts["views"].values()) >= 1
    # A validation or test face is the face scoring's detect mode would score, pixel for pixel.
    rows = pq.read_table(shard_files(out / "shards", "test")).to_pylist()
    rows = [row for row in rows if row["file_name"] != "30_0_0_20170101000000009.jpg"]
    settings = load_faces()
    finder, spec = FaceFinder(settings), ImageSpec(size=32)
    for row in rows[:3]:
        found, width, height = faces_in(
            (folder / row["file_name"]).read_bytes(), spec, finder, settings
        )
        face = nearest(found, width, height, None)
        pixels = np.frombuffer(row["pixels"], np.uint8).reshape(32, 32, 3)
        np.testing.assert_array_equal(pixels, square_pixels(face.crop, 32))
