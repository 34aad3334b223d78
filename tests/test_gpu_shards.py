"""scripts/gpu/shards_webp.py: shards packed as lossless WebP for a GPU machine come back the
same, row for row, and a changed pixel is caught."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import ROOT

SIZE = 8


def load_script():
    spec = importlib.util.spec_from_file_location(
        "shards_webp", ROOT / "scripts" / "gpu" / "shards_webp.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_shards(folder, rng):
    for split, rows in (("train", 5), ("validation", 3)):
        faces = rng.integers(0, 256, (rows, SIZE, SIZE, 3), dtype=np.uint8)
        table = pa.table({
            "file_name": [f"{split}{i}.jpg" for i in range(rows)],
            "age": pa.array(rng.integers(7, 90, rows), type=pa.int32()),
            "pixels": pa.array([face.tobytes() for face in faces], type=pa.binary()),
        })  # fmt: skip
        (folder / f"split={split}").mkdir(parents=True)
        pq.write_table(table, folder / f"split={split}" / "part-00000.parquet")


def test_packed_shards_unpack_to_the_same_rows(tmp_path):
    script = load_script()
    write_shards(tmp_path / "shards", np.random.default_rng(0))
    hashes = script.pack(tmp_path / "shards", tmp_path / "packed", ["train", "validation"], SIZE)
    assert script.unpack(tmp_path / "packed", tmp_path / "back") == hashes
    for split in ("train", "validation"):
        original = pq.read_table(tmp_path / "shards" / f"split={split}")
        assert pq.read_table(tmp_path / "back" / f"split={split}").equals(original)


def test_a_shard_file_with_no_rows_packs_and_unpacks(tmp_path):
    # Spark writes such a file when no face of a split hashes to one of its shards.
    script = load_script()
    write_shards(tmp_path / "shards", np.random.default_rng(3))
    empty = pq.read_table(tmp_path / "shards" / "split=train").slice(0, 0)
    pq.write_table(empty, tmp_path / "shards" / "split=train" / "part-00001.parquet")
    hashes = script.pack(tmp_path / "shards", tmp_path / "packed", ["train", "validation"], SIZE)
    assert script.unpack(tmp_path / "packed", tmp_path / "back") == hashes
    back = tmp_path / "back" / "split=train"
    assert pq.read_table(back / "part-00001.parquet").num_rows == 0
    assert pq.read_table(back).equals(pq.read_table(tmp_path / "shards" / "split=train"))


def test_unpacking_stops_when_the_pixels_differ_from_the_packed_ones(tmp_path):
    script = load_script()
    write_shards(tmp_path / "shards", np.random.default_rng(1))
    script.pack(tmp_path / "shards", tmp_path / "packed", ["train", "validation"], SIZE)
    manifest = tmp_path / "packed" / "manifest.json"
    recorded = json.loads(manifest.read_text())
    recorded["pixels_sha256"]["train"] = "0" * 64
    manifest.write_text(json.dumps(recorded))
    with pytest.raises(SystemExit, match="split train: pixels differ"):
        script.unpack(tmp_path / "packed", tmp_path / "back")


def test_lossy_packing_comes_back_close_and_checks_its_bytes(tmp_path):
    script = load_script()
    rng = np.random.default_rng(2)
    # Smooth faces, as photos are: lossy WebP keeps them close; random noise it would not.
    ramp = np.linspace(0, 255, 16, dtype=np.float64)
    for split, rows in (("train", 4), ("validation", 2)):
        faces = np.stack([
            np.stack([np.add.outer(ramp, ramp) / 2 * shade for shade in (0.3, 0.6, 0.9)], axis=-1)
            * rng.uniform(0.5, 1.0)
            for _ in range(rows)
        ]).astype(np.uint8)  # fmt: skip
        table = pa.table({
            "file_name": [f"{split}{i}.jpg" for i in range(rows)],
            "pixels": pa.array([face.tobytes() for face in faces], type=pa.binary()),
        })  # fmt: skip
        (tmp_path / "shards" / f"split={split}").mkdir(parents=True)
        pq.write_table(table, tmp_path / "shards" / f"split={split}" / "part-00000.parquet")
    lossless = script.pack(tmp_path / "shards", tmp_path / "exact", ["train"], 16)
    script.pack(tmp_path / "shards", tmp_path / "packed", ["train", "validation"], 16, quality=90)
    manifest = json.loads((tmp_path / "packed" / "manifest.json").read_text())
    assert manifest["quality"] == 90 and "pixels_sha256" not in manifest
    assert manifest["webp_sha256"]["train"] != lossless["train"]
    script.unpack(tmp_path / "packed", tmp_path / "back")
    for split in ("train", "validation"):
        original = pq.read_table(tmp_path / "shards" / f"split={split}")
        back = pq.read_table(tmp_path / "back" / f"split={split}")
        assert back.column("file_name").equals(original.column("file_name"))
        before = np.frombuffer(b"".join(original.column("pixels").to_pylist()), np.uint8)
        after = np.frombuffer(b"".join(back.column("pixels").to_pylist()), np.uint8)
        assert before.shape == after.shape
        assert 0 < np.abs(after.astype(int) - before).mean() < 4
    # A face's bytes changed on the way: caught before training on it.
    path = tmp_path / "packed" / "split=validation" / "part-00000.parquet"
    table = pq.read_table(path)
    faces = table.column("pixels").to_pylist()
    faces[0], faces[1] = faces[1], faces[0]
    pixels = pa.array(faces, type=pa.binary())
    pq.write_table(table.set_column(table.schema.get_field_index("pixels"), "pixels", pixels), path)
    with pytest.raises(SystemExit, match="split validation: WebP bytes differ"):
        script.unpack(tmp_path / "packed", tmp_path / "again")


def test_packed_files_go_into_as_few_parts_as_fit(tmp_path):
    script = load_script()
    sizes = {"test": [20], "train": [20, 40, 40, 40], "validation": [20]}
    for split, each in sizes.items():
        (tmp_path / "shards" / f"split={split}").mkdir(parents=True)
        for index, size in enumerate(each):
            (tmp_path / "shards" / f"split={split}" / f"{index}.parquet").write_bytes(b"x" * size)
    moved = script.parts(tmp_path, 60)
    # In the order found, 60 at a time, they would take four parts; first-fit decreasing, three.
    assert [sum(f.stat().st_size for f in part) for part in moved] == [60, 60, 60]
    names = sorted(f"{f.parent.name}/{f.name}" for part in moved for f in part)
    assert names == sorted(
        f"split={s}/{i}.parquet" for s, e in sizes.items() for i in range(len(e))
    )
    assert [f.parents[2].name for f in moved[2]] == ["part3"] * len(moved[2])
    assert not list((tmp_path / "shards").glob("split=*"))
    with pytest.raises(SystemExit, match="part1 is there already"):
        script.parts(tmp_path, 60)


def test_a_file_larger_than_a_part_is_a_part_of_its_own(tmp_path):
    script = load_script()
    (tmp_path / "shards" / "split=train").mkdir(parents=True)
    for name, size in (("big", 80), ("small", 10)):
        (tmp_path / "shards" / "split=train" / f"{name}.parquet").write_bytes(b"x" * size)
    assert [[f.name for f in part] for part in script.parts(tmp_path, 56)] == [
        ["big.parquet"],
        ["small.parquet"],
    ]


def test_the_calls_set_up_first_carry_a_part_each_and_train_last(tmp_path, capsys):
    script = load_script()
    bundle = tmp_path / ".gpu"
    for folder, size in (("meta", 5), ("wheels", 30), ("shards", 1)):
        (bundle / folder).mkdir(parents=True)
        (bundle / folder / "a").write_bytes(b"x" * size)
    for number, size in ((1, 50), (2, 40), (3, 45)):
        (bundle / f"part{number}" / "shards" / "split=train").mkdir(parents=True)
        (bundle / f"part{number}" / "shards" / "split=train" / "f").write_bytes(b"x" * size)
    copy = "mkdir -p /tmp/sparkface-gpu && cp -r {} /tmp/sparkface-gpu/"
    assert script.calls(bundle, 10) == [
        ([".gpu/meta", ".gpu/wheels"], 45, "scripts/gpu/train.sh setup"),
        ([".gpu/shards", ".gpu/part1"], 61, copy.format(".gpu/shards .gpu/part1/.")),
        ([".gpu/part2"], 50, copy.format(".gpu/part2/.")),
        ([".gpu/part3"], 55, "scripts/gpu/train.sh train RECIPE..."),
    ]
    # A tree that leaves a call over the limit stops the bundle with the calls named.
    tree = script.CALL_BYTES - 44
    assert script.main(["calls", str(bundle), "--tree-bytes", str(tree)]) == 1
    assert "calls [2, 4] carry more than 67.1 MB" in capsys.readouterr().out
    assert script.main(["calls", str(bundle), "--tree-bytes", "10"]) == 0
