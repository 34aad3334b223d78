"""spark-submit jobs/describe_faces.py --shards SHARDS --input FACES --output OUT: training shards
with a second teacher's answer for each face: dlib's face descriptor (128 numbers), computed on the
executors from the face's original crop under FACES (sparkface.train.descriptors), written to OUT
as the same shards (split=..., as many files each, rows in a shuffled order) with a `descriptor`
column. A student trained on OUT with
`training.descriptor_weight` learns to predict it. Needs the teacher extra (dlib)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pyspark.sql import functions as F

from sparkface.core.config import load_ingest
from sparkface.spark.ingest import read_images
from sparkface.spark.runner import in_session, run_main
from sparkface.train.descriptors import DESCRIPTOR_COLUMN, descriptors_of, with_descriptors
from sparkface.train.preparation import SPLITS, write_shards

log = logging.getLogger("sparkface")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="describe_faces", description=__doc__)
    parser.add_argument("--shards", required=True, help="a training run's shards folder")
    parser.add_argument("--input", required=True, help="the folder the shards were prepared from")
    parser.add_argument("--output", required=True, help="where the described shards go")
    parser.add_argument("--seed", type=int, default=0, help="of the rows' shuffled order")
    return parser.parse_args(argv)


def describe(spark, args: argparse.Namespace) -> dict[str, int]:
    images = read_images(spark, args.input, load_ingest(None))
    # Every face's descriptor once, kept while each split is joined to it and written.
    described = descriptors_of(spark.read.parquet(args.shards), images).persist()
    for split in SPLITS:
        source = Path(args.shards) / f"split={split}"
        shards = with_descriptors(spark.read.parquet(str(source)), images, described)
        files = len(list(source.glob("*.parquet")))
        write_shards(shards, str(Path(args.output) / f"split={split}"), files, args.seed)
    described.unpersist()
    written = spark.read.parquet(args.output)
    counts = written.agg(
        F.count("*").alias("rows"),
        F.sum(F.col(DESCRIPTOR_COLUMN).isNull().cast("int")).alias("without"),
    ).first()
    return {"rows": counts["rows"], "without_descriptor": counts["without"] or 0}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)

    def body() -> None:
        counts = in_session("sparkface-describe", load_ingest(None), lambda s: describe(s, args))
        log.info("described shards in %s: %s", args.output, counts)

    return run_main("describe_faces", body)


if __name__ == "__main__":
    sys.exit(main())
