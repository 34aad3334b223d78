"""spark-submit jobs/describe_faces.py --shards SHARDS --input FACES --output OUT: training shards
with a second teacher's answer for each face: dlib's face descriptor (128 numbers), computed on the
executors from the face's original crop under FACES (sparkface.train.descriptors), written to OUT
as the same shards (split=...) with a `descriptor` column. A student trained on OUT with
`training.descriptor_weight` learns to predict it. Needs the teacher extra (dlib)."""

from __future__ import annotations

import argparse
import logging
import sys

from pyspark.sql import functions as F

from sparkface.core.config import load_ingest
from sparkface.spark.ingest import read_images
from sparkface.spark.runner import in_session, run_main
from sparkface.train.descriptors import DESCRIPTOR_COLUMN, with_descriptors

log = logging.getLogger("sparkface")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="describe_faces", description=__doc__)
    parser.add_argument("--shards", required=True, help="a training run's shards folder")
    parser.add_argument("--input", required=True, help="the folder the shards were prepared from")
    parser.add_argument("--output", required=True, help="where the described shards go")
    return parser.parse_args(argv)


def describe(spark, args: argparse.Namespace) -> dict[str, int]:
    shards = spark.read.parquet(args.shards)
    splits = shards.select("split").distinct().count()
    described = with_descriptors(shards, read_images(spark, args.input, load_ingest(None)))
    described.repartition(splits * 4, "split").write.mode("overwrite").partitionBy("split").parquet(
        args.output
    )
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
