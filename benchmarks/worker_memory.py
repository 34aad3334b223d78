"""What one scoring worker costs in memory: this process loads a package as an executor's Python
worker does (`cached_model`), scores a batch of face files with the worker's own function
(`score_batch`), and prints its peak address space (`VmPeak`, what
`spark.executor.pyspark.memory` caps) and peak resident memory (`VmHWM`), read from
/proc/self/status, the seconds that took, and whether it imported TensorFlow or Keras.

    python benchmarks/worker_memory.py --input ../shared/data/utkface
    python benchmarks/worker_memory.py --input ../shared/data/utkface \\
        --model out/sparkface-cnn-keras
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

START = time.perf_counter()
ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from sparkface.core.package import default_model_dir, load_bundle  # noqa: E402
from sparkface.score.transform import cached_model, score_batch  # noqa: E402


def peaks() -> dict[str, float]:
    """VmPeak and VmHWM of this process, in MB."""
    wanted = ("VmPeak", "VmHWM")
    with open("/proc/self/status") as status:
        fields = (line.split() for line in status if line.startswith(wanted))
        return {field[0].rstrip(":"): int(field[1]) / 1024 for field in fields}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--input", required=True, help="folder of face files")
    parser.add_argument("--model", default=None, help="package folder (default: the shipped one)")
    parser.add_argument("--faces", type=int, default=256, help="files to score in one batch")
    args = parser.parse_args()
    bundle = load_bundle(args.model or default_model_dir())
    files = sorted(path for path in Path(args.input).iterdir() if path.is_file())[: args.faces]
    model = cached_model(bundle, 1)
    columns = score_batch([path.read_bytes() for path in files], bundle, model, flip=True)
    seconds = time.perf_counter() - START
    memory = peaks()
    imported = sorted({name.split(".")[0] for name in sys.modules} & {"tensorflow", "keras"})
    print(
        f"{bundle.descriptor.get('version')} ({bundle.runtime}): {columns['status'].count('ok')} "
        f"of {len(files)} files scored in {seconds:.2f} s from the process's start; "
        f"address space {memory['VmPeak']:.0f} MB, resident {memory['VmHWM']:.0f} MB; "
        f"imported: {', '.join(imported) or 'neither TensorFlow nor Keras'}"
    )


if __name__ == "__main__":
    main()
