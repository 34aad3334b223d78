"""The weighted mean of two trained networks' weights (a "model soup"), as one network.

Two networks fine-tuned from the same ancestor often lie in one basin of the loss, so the mean of
their weights is a network that keeps some of what each learnt, at one network's cost (averaging
their predictions would cost two). The batch-normalisation statistics are estimated again on
`--norm-batches` batches of the shards' train split, as training's own weight averaging does.

    .venv/bin/python jobs/soup.py --models A B --weights 0.5 0.5 \
        --shards out/train-world-all/shards --config conf/models/sparkface-cnn-world-all.yaml \
        --output out/world-soup

(a step of `make model-lineage`: the package before the shipped one descends from such a mean, of
two networks trained on the same faces with the sources weighted differently;
`jobs/ensemble.py --average weights` is the same
mean, `sparkface.train.ensemble.mean_weights`, for networks trained on one preparation, equal
weights.)

OUT holds `model.keras` and A's `model.json` with a `soup` entry (the members and weights),
ready for `jobs/convert.py --model OUT`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from sparkface.core.config import load_labels, load_train
from sparkface.core.contract import DESCRIPTOR_FILE, KERAS_FILE
from sparkface.core.package import load_model_file
from sparkface.spark.paths import local_folder
from sparkface.train.averaging import recalibrate_batch_norm
from sparkface.train.ensemble import mean_weights
from sparkface.train.fit import streams


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", type=Path, required=True)
    parser.add_argument("--weights", nargs="+", type=float, required=True)
    parser.add_argument("--shards", type=Path, required=True)
    parser.add_argument("--config", required=True, help="the recipe whose stream to use")
    parser.add_argument("--norm-batches", type=int, default=300)
    parser.add_argument("--output", type=lambda v: Path(local_folder(v)), required=True)
    args = parser.parse_args(argv)
    if len(args.models) != len(args.weights):
        parser.error("give one weight per model")

    networks = [load_model_file(folder / KERAS_FILE) for folder in args.models]
    model = networks[0]
    for layer_name, weights in mean_weights(networks, args.weights).items():
        model.get_layer(layer_name).set_weights(weights)
    config = load_train(args.config)
    train_stream, _ = streams(args.shards, config, len(load_labels().groups.names))
    used = recalibrate_batch_norm(model, iter(train_stream), args.norm_batches)

    args.output.mkdir(parents=True, exist_ok=True)
    model.save(args.output / KERAS_FILE)
    descriptor = json.loads((args.models[0] / DESCRIPTOR_FILE).read_text())
    descriptor["soup"] = {
        "models": [str(folder) for folder in args.models],
        "weights": args.weights,
        "batch_norm_batches": used,
    }
    (args.output / DESCRIPTOR_FILE).write_text(json.dumps(descriptor, indent=2) + "\n")
    for extra in ("preparation.json", "history.csv"):
        if (args.models[0] / extra).is_file():
            shutil.copy(args.models[0] / extra, args.output / extra)
    print(f"{args.output}: {len(networks)} networks, weights {args.weights}, {used} norm batches")
    return 0


if __name__ == "__main__":
    sys.exit(main())
