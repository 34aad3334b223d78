"""Scoring speed, side by side in one run, on the same images and model:

1. the job (`run_scoring`, local mode, all cores);
2. the ceiling: one Python process decoding the same bytes, already in memory, with the same model;
3. Spark's `pyspark.ml.functions.predict_batch_udf` with the same model and preprocessing;
4. the notebook way: open each file, `model.predict` one image at a time (on a subset).

    python benchmarks/score_bench.py --input ../shared/data/utkface --images 4000
    python benchmarks/score_bench.py --input ../shared/data/utkface --scale 20000,200000
    python benchmarks/score_bench.py --images 4000 --model NEW --against OLD

`--against` runs the job and the one-process ceiling for both packages instead, alternating, in
one session, and prints the new one's speed as a multiple of the old one's.

`--scale` instead runs `spark-submit jobs/score.py --faces aligned` on folders of N hard-linked
copies of the input's faces (under new names) and prints time per image and the peak memory (RSS)
of the driver JVM, the Python driver and the largest Python worker, sampled from /proc, and checks
that the output has one row per file. With `--master spark://...` (scripts/cluster.sh) and `--conf`
settings it runs on that cluster and samples its executors too:

    python benchmarks/score_bench.py --scale 200000 --master spark://127.0.0.1:7177 \
        --conf spark.executor.memory=1g --conf spark.executor.pyspark.memory=1g
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sparkface.core.config import IngestConfig  # noqa: E402
from sparkface.core.images import decode_face  # noqa: E402
from sparkface.core.package import (  # noqa: E402
    default_model_dir,
    flip_for,
    load_bundle,
    load_package_model,
    predict,
)
from sparkface.score.run import run_scoring  # noqa: E402


def sample_folder(source: Path, count: int, target: Path) -> Path:
    """`count` hard links to the source's images under new names (cycling through them)."""
    names = sorted(p.name for p in source.iterdir() if p.is_file())
    target.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        name = names[index % len(names)]
        link = target / f"{index // 10000:03d}" / f"copy{index:07d}_{name}"
        link.parent.mkdir(exist_ok=True)
        if not link.exists():
            os.link(source / name, link)
    return target


def session(cores: str = "local[*]"):
    from sparkface.spark.session import build_session

    return build_session(
        "score-bench",
        IngestConfig(),
        {
            "spark.master": cores,
            "spark.ui.enabled": "false",
            "spark.sql.execution.arrow.maxRecordsPerBatch": "128",
        },
        log_level="ERROR",
    )


def bench_job(spark, folder: Path, bundle, out: Path) -> float:
    start = time.perf_counter()
    summary = run_scoring(
        spark,
        str(folder),
        str(out),
        bundle,
        IngestConfig(),
        formats=("parquet",),
        batch_size=128,
        run_id="bench",
        faces="aligned",
    )
    return summary["files"] / (time.perf_counter() - start)


def bench_ceiling(files: list[Path], bundle, model) -> float:
    contents = [path.read_bytes() for path in files]  # in memory before the clock starts
    spec = bundle.image_spec
    flip = flip_for(bundle.descriptor)
    start = time.perf_counter()
    for begin in range(0, len(contents), 128):
        faces = np.stack([decode_face(c, spec).pixels for c in contents[begin : begin + 128]])
        predict(model, faces, flip=flip)
    return len(contents) / (time.perf_counter() - start)


def bench_predict_batch_udf(spark, folder: Path, bundle, out: Path) -> float:
    """Decode in a pandas UDF to an array column, then predict_batch_udf with the same model."""
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, FloatType, StructField, StructType

    from sparkface.spark.ingest import read_images

    spec = bundle.image_spec
    size = spec.size
    broadcast = spark.sparkContext.broadcast(bundle)
    flip = flip_for(bundle.descriptor)

    @F.pandas_udf(ArrayType(FloatType()))
    def decode(contents: pd.Series) -> pd.Series:
        return pd.Series(
            [decode_face(c, spec).pixels.reshape(-1).astype(np.float32) for c in contents]
        )

    def make_predict_fn():
        from sparkface.score.transform import cached_model

        model = cached_model(broadcast.value)

        def predict_fn(faces: np.ndarray) -> dict[str, np.ndarray]:
            result = predict(model, faces.astype(np.uint8), flip=flip)
            return {
                head: result[head].astype(np.float32) for head in ("age_group", "gender", "race")
            }

        return predict_fn

    return_type = StructType(
        [StructField(h, ArrayType(FloatType())) for h in ("age_group", "gender", "race")]
    )
    classify = predict_batch_udf(
        make_predict_fn,
        return_type=return_type,
        batch_size=128,
        input_tensor_shapes=[[size, size, 3]],
    )
    images = read_images(spark, str(folder), IngestConfig())
    start = time.perf_counter()
    count = (
        images.select("path", decode("content").alias("face"))
        .select("path", classify("face").alias("prediction"))
        .write.mode("overwrite")
        .parquet(str(out))
    )
    del count
    rows = spark.read.parquet(str(out)).count()
    return rows / (time.perf_counter() - start)


def bench_notebook(files: list[Path], bundle, model) -> float:
    """Open each file, resize it, and ask the model about that one image: `model.predict` in
    Keras, as a notebook would; a TensorFlow Lite package's runner answers `predict_on_batch`."""
    from PIL import Image

    size = bundle.image_spec.size
    ask = (
        (lambda face: model.predict(face, verbose=0))
        if bundle.runtime == "keras"
        else model.predict_on_batch
    )
    start = time.perf_counter()
    for path in files:
        image = Image.open(path).convert("RGB").resize((size, size))
        ask(np.asarray(image, dtype=np.uint8)[None])
    return len(files) / (time.perf_counter() - start)


class PeakMemory:
    """Peak RSS of a process tree, by role, sampled from /proc. With `executors`, the executor
    JVMs of a standalone cluster on this machine (not in the tree) are sampled too."""

    def __init__(self, root_pid: int, executors: bool = False) -> None:
        self.root = root_pid
        self.executors = executors
        self.peaks = {"driver JVM": 0, "Python driver": 0, "Python worker (max)": 0}
        if executors:
            self.peaks["executor JVM (max)"] = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _children(self) -> dict[int, list[int]]:
        tree: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    parent = int(
                        Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]
                    )
                except (OSError, IndexError, ValueError):
                    continue
                tree.setdefault(parent, []).append(int(entry))
        return tree

    def _sample(self) -> None:
        tree = self._children()
        stack = [self.root]
        if self.executors:
            stack += [pid for children in tree.values() for pid in children if _is_executor(pid)]
        while stack:
            pid = stack.pop()
            stack.extend(tree.get(pid, []))
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf(
                    "SC_PAGE_SIZE"
                )
            except (OSError, IndexError, ValueError):
                continue
            if "CoarseGrainedExecutorBackend" in command:
                role = "executor JVM (max)"
            elif "java" in command.split(" ")[0]:
                role = "driver JVM"
            elif "pyspark.daemon" in command or "pyspark.worker" in command:
                role = "Python worker (max)"
            elif "jobs/score.py" in command:
                role = "Python driver"
            else:
                continue
            self.peaks[role] = max(self.peaks[role], rss)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._sample()

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()


def _is_executor(pid: int) -> bool:
    try:
        return b"CoarseGrainedExecutorBackend" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def bench_scale(
    source: Path,
    counts: list[int],
    model_dir: str,
    work: Path,
    master: str | None = None,
    conf: tuple[str, ...] = (),
) -> None:
    """`spark-submit jobs/score.py` on `counts` images each: seconds, peak memory, and a check
    that the output has one row per file. With `master` (a standalone cluster on this machine),
    its executors' memory is sampled too."""
    print(
        f"{'images':>8} {'seconds':>8} {'ms/image':>9} {'driver JVM MB':>14} "
        f"{'Python driver MB':>17} {'worker MB':>10}" + (f" {'executor MB':>12}" if master else "")
    )
    for count in counts:
        folder = sample_folder(source, count, work / f"in{count}")
        env = {
            **os.environ,
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
            "SPARK_CONF_DIR": str(ROOT / "conf" / "spark"),
            "SPARK_LOCAL_IP": "127.0.0.1",
        }
        options = [item for pair in conf for item in ("--conf", pair)]
        command = [
            str(Path(sys.executable).parent / "spark-submit"),
            *(["--master", master] if master else []),
            *options,
            "--conf",
            "spark.ui.enabled=false",
            str(ROOT / "jobs" / "score.py"),
            "--input",
            str(folder),
            "--output",
            str(work / f"out{count}"),
            "--model",
            model_dir,
            "--format",
            "parquet",
            "--faces",
            "aligned",  # the figures are for face crops, one row each
        ]
        start = time.perf_counter()
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        with PeakMemory(process.pid, executors=bool(master)) as memory:
            _, errors = process.communicate()
        seconds = time.perf_counter() - start
        if process.returncode:
            raise SystemExit(f"scoring {count} images failed:\n{errors[-3000:]}")
        import pyarrow.parquet as pq

        written = pq.read_table(work / f"out{count}" / "parquet", columns=["path"])
        paths = written.column("path").to_pylist()
        if len(paths) != count or len(set(paths)) != count:
            raise SystemExit(f"{count} files gave {len(paths)} rows, {len(set(paths))} paths")
        mb = {k: v / 2**20 for k, v in memory.peaks.items()}
        executor = f" {mb['executor JVM (max)']:>12.0f}" if master else ""
        print(
            f"{count:>8} {seconds:>8.1f} {1000 * seconds / count:>9.2f} "
            f"{mb['driver JVM']:>14.0f} {mb['Python driver']:>17.0f} "
            f"{mb['Python worker (max)']:>10.0f}{executor}  (one row per file: checked)",
            flush=True,
        )
        shutil.rmtree(work / f"out{count}", ignore_errors=True)


def compare(spark, folder: Path, files: list[Path], work: Path, models: tuple[str, str]) -> None:
    """The job and the one-process ceiling for two packages, alternating, in one session."""
    rates: dict[str, dict[str, list[float]]] = {}
    loaded = {}
    for directory in models:
        bundle = load_bundle(directory)
        bench_job(spark, work / "warm", bundle, work / "warmup")  # each model cached
        loaded[directory] = (bundle, load_package_model(directory))
    for round_ in range(2):
        for directory in models:
            bundle, model = loaded[directory]
            rate = rates.setdefault(directory, {"job": [], "ceiling": []})
            rate["job"].append(bench_job(spark, folder, bundle, work / f"job{round_}"))
            rate["ceiling"].append(bench_ceiling(files, bundle, model))
    print(f"{len(files)} images, {os.cpu_count()} cores; best of 2 alternating rounds")
    for directory in models:
        bundle = loaded[directory][0]
        best = {k: max(v) for k, v in rates[directory].items()}
        print(
            f"{bundle.descriptor.get('version'):>24} ({bundle.runtime}, {directory}): "
            f"job {best['job']:7.1f} images/s, one process {best['ceiling']:7.1f} images/s"
        )
    old, new = (rates[directory] for directory in models)
    print(
        f"new / old: job {max(new['job']) / max(old['job']):.2f}x, "
        f"one process {max(new['ceiling']) / max(old['ceiling']):.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--input", default=str(ROOT.parent / "shared" / "data" / "utkface"))
    parser.add_argument("--model", default=str(default_model_dir()))
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--notebook-images", type=int, default=300)
    parser.add_argument("--scale", default=None, help="e.g. 20000,200000")
    parser.add_argument(
        "--against",
        default=None,
        help="another package: the job and one process for both, side by side (--model new)",
    )
    parser.add_argument("--work", default=None, help="scratch folder (default: a temp folder)")
    parser.add_argument("--master", default=None, help="--scale on this cluster (spark://...)")
    parser.add_argument(
        "--conf", action="append", default=[], help="--scale: a Spark setting KEY=VALUE"
    )
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="score-bench-"))
    if args.scale:
        counts = [int(n) for n in args.scale.split(",")]
        bench_scale(Path(args.input), counts, args.model, work, args.master, tuple(args.conf))
        return
    folder = sample_folder(Path(args.input), args.images, work / "in")
    files = sorted(folder.rglob("*.jpg"))
    bundle = load_bundle(args.model)
    model = load_package_model(args.model)
    spark = session()
    warm = sample_folder(Path(args.input), 512, work / "warm")
    bench_job(spark, warm, bundle, work / "warmup")  # JVM, Python workers and model cache warm
    if args.against:
        compare(spark, folder, files, work, (args.against, args.model))
        spark.stop()
        return
    results = {
        "job (run_scoring, local[*])": bench_job(spark, folder, bundle, work / "job"),
        "ceiling (one process, bytes in memory)": bench_ceiling(files, bundle, model),
        "predict_batch_udf": bench_predict_batch_udf(spark, folder, bundle, work / "pbu"),
        "notebook loop (one image per call)": bench_notebook(
            files[: args.notebook_images], bundle, model
        ),
    }
    spark.stop()
    print(
        f"{len(files)} images ({args.notebook_images} for the notebook loop), model "
        f"{bundle.descriptor.get('version')}, {os.cpu_count()} cores"
    )
    for name, rate in results.items():
        print(f"{name:>42}: {rate:8.1f} images/s")
    job = results["job (run_scoring, local[*])"]
    print(
        f"job / ceiling: {job / results['ceiling (one process, bytes in memory)']:.2f} "
        f"(target >= 0.8)"
    )
    print(f"job / predict_batch_udf: {job / results['predict_batch_udf']:.2f} (target >= 1.3)")
    print(f"job / notebook loop: {job / results['notebook loop (one image per call)']:.1f}")


if __name__ == "__main__":
    main()
