"""research/benchmarks/teacher_probe.py: a TensorFlow.js graph model with float16 weights is
rebuilt and answers as its graph says."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from research.benchmarks.teacher_probe import NETWORKS, load_graph_model, unfused


def _const(name: str, dtype: str = "DT_FLOAT") -> dict:
    return {"name": name, "op": "Const", "attr": {"dtype": {"type": dtype}}}


def _fused_matmul(fused_ops: list[str]) -> dict:
    """TensorFlow.js's fused product of input_1 and w, plus b, then these ops."""
    names = [base64.b64encode(op.encode()).decode() for op in fused_ops]
    return {
        "name": "out",
        "op": "_FusedMatMul",
        "input": ["input_1", "w", "b"],
        "attr": {
            "T": {"type": "DT_FLOAT"},
            "fused_ops": {"list": {"s": names}},
            "num_args": {"i": "1"},
            "epsilon": {"f": 0},
            "transpose_a": {"b": False},
            "transpose_b": {"b": False},
        },
    }


def _write(folder, name: str, nodes: list[dict], arrays: dict[str, np.ndarray]) -> None:
    weights = [
        {"name": key, "shape": list(a.shape), "dtype": "float32"} for key, a in arrays.items()
    ]
    (folder / f"{name}.bin").write_bytes(
        b"".join(a.astype("float32").tobytes() for a in arrays.values())
    )
    (folder / f"{name}.json").write_text(
        json.dumps(
            {
                "format": "graph-model",
                "modelTopology": {"node": nodes, "versions": {"producer": 1}},
                "weightsManifest": [{"paths": [f"{name}.bin"], "weights": weights}],
            }
        )
    )


_INPUT = {
    "name": "input_1",
    "op": "Placeholder",
    "attr": {
        "dtype": {"type": "DT_FLOAT"},
        "shape": {"shape": {"dim": [{"size": "-1"}, {"size": "2"}]}},
    },
}


def test_a_fused_product_is_written_out_and_answers_as_fused(tmp_path):
    pytest.importorskip("tensorflow")
    w, b = np.array([[1.0, -2.0], [0.5, 1.0]]), np.array([0.25, -0.5])
    nodes = [_INPUT, _const("w"), _const("b"), _fused_matmul(["BiasAdd", "Relu"])]
    _write(tmp_path, "fused", nodes, {"w": w, "b": b})
    network = load_graph_model(tmp_path, "fused", ("out:0",))
    pixels = np.array([[1.0, 2.0], [-3.0, 0.5], [0.0, 0.0]], dtype="float32")
    (out,) = network(pixels)
    np.testing.assert_allclose(out, np.maximum(pixels @ w + b, 0), rtol=1e-6)
    assert (out == 0).any() and (out > 0).any()  # the ReLU both cut and passed


def test_a_fused_op_the_probe_cannot_write_out_is_named():
    with pytest.raises(ValueError, match="out: fused Elu"):
        unfused([_INPUT, _const("w"), _const("b"), _fused_matmul(["BiasAdd", "Elu"])])


def test_a_tfjs_graph_model_answers_with_its_float16_weights(tmp_path):
    pytest.importorskip("tensorflow")
    # P(male) = sigmoid(sum(x * a)), the features = x * b: the outputs' names as FaceRes's.
    nodes = [
        {
            "name": "input_1",
            "op": "Placeholder",
            "attr": {
                "dtype": {"type": "DT_FLOAT"},
                "shape": {"shape": {"dim": [{"size": "-1"}, {"size": "3"}]}},
            },
        },
        _const("a"),
        _const("b"),
        _const("axis", "DT_INT32"),
        {
            "name": "scaled",
            "op": "Mul",
            "input": ["input_1", "a"],
            "attr": {"T": {"type": "DT_FLOAT"}},
        },
        {
            "name": "summed",
            "op": "Sum",
            "input": ["scaled", "axis"],
            "attr": {
                "T": {"type": "DT_FLOAT"},
                "Tidx": {"type": "DT_INT32"},
                "keep_dims": {"b": True},
            },
        },
        {
            "name": "gender_pred/Sigmoid",
            "op": "Sigmoid",
            "input": ["summed"],
            "attr": {"T": {"type": "DT_FLOAT"}},
        },
        {
            "name": "global_pooling/Mean",
            "op": "Mul",
            "input": ["input_1", "b"],
            "attr": {"T": {"type": "DT_FLOAT"}},
        },
    ]
    a, b = np.array([0.5, -0.25, 2.0]), np.array([1.0, 3.0, -0.5])
    weights = [
        {"name": "a", "shape": [3], "dtype": "float32", "quantization": {"dtype": "float16"}},
        {"name": "b", "shape": [3], "dtype": "float32", "quantization": {"dtype": "float16"}},
        {"name": "axis", "shape": [1], "dtype": "int32"},
    ]
    raw = a.astype("float16").tobytes() + b.astype("float16").tobytes() + np.int32([1]).tobytes()
    (tmp_path / "tiny.bin").write_bytes(raw)
    (tmp_path / "tiny.json").write_text(
        json.dumps(
            {
                "format": "graph-model",
                "modelTopology": {"node": nodes, "versions": {"producer": 1}},
                "weightsManifest": [{"paths": ["tiny.bin"], "weights": weights}],
            }
        )
    )
    network = load_graph_model(tmp_path, "tiny", NETWORKS["faceres"].outputs)
    pixels = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]], dtype="float32")
    male, features = network(pixels)
    np.testing.assert_allclose(male.ravel(), 1 / (1 + np.exp(-(pixels @ a))), rtol=1e-6)
    np.testing.assert_allclose(features, pixels * b, rtol=1e-6)


def test_a_quantization_the_probe_cannot_read_is_named(tmp_path):
    pytest.importorskip("tensorflow")
    weights = [{"name": "a", "shape": [1], "dtype": "float32", "quantization": {"dtype": "uint8"}}]
    (tmp_path / "q.bin").write_bytes(b"\x00")
    (tmp_path / "q.json").write_text(
        json.dumps(
            {
                "modelTopology": {"node": [_const("a")]},
                "weightsManifest": [{"paths": ["q.bin"], "weights": weights}],
            }
        )
    )
    with pytest.raises(ValueError, match="a: uint8 weights"):
        load_graph_model(tmp_path, "q", ("a:0",))


@pytest.mark.slow  # trains Keras heads
def test_heads_beside_the_shipped_network_match_its_faces_by_path(tmp_path, capsys):
    from research.benchmarks.teacher_probe import beside

    rng = np.random.default_rng(0)
    races = np.tile(np.arange(5), 200)  # 1,000 faces, each race 200 times
    genders = np.tile([0, 1], 500)
    paths = np.array([f"/photos/{i}.jpg" for i in range(1000)])
    # The shipped network's features name the race exactly; this network's are noise. The cache
    # holds the faces in another order than the probe described them in.
    order = rng.permutation(1000)
    pooled = np.eye(5)[races] * 3 + 0.1 * rng.standard_normal((1000, 5))
    for split in ("train", "validation"):
        np.savez(
            tmp_path / f"cache.{split}.npz",
            path=paths[order],
            pooled=pooled[order].astype(np.float32),
            race=np.eye(5)[races[order]],  # its own head: right on every face
            gender=np.eye(2)[1 - genders[order]],  # and wrong on every one
        )
    noise = rng.standard_normal((1000, 8))
    labels = np.stack([genders, races], axis=1)
    beside(
        str(tmp_path / "cache"), (noise, labels, paths), (noise, labels, paths), epochs=20, batch=50
    )
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines()[2:]]
    table = {(row[0].strip("| "), row[1]): row[3].rstrip(" |") for row in rows}
    assert table[("race", "the network's own head")] == "100.0%", table
    assert table[("gender", "the network's own head")] == "0.0%"
    shipped = float(table[("race", "the shipped network's")].split("%")[0])
    assert shipped > 85, table  # its features, matched to the right faces, name the race
    assert float(table[("race", "this network's")].split("%")[0]) < 40  # noise: about 20%
