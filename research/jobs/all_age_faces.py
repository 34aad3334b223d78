"""All-Age-Faces as a labelled source: exact ages and gender, no race (issue 33).

`github:middleyuan/All-Age-Faces-Dataset` holds 13,322 photos of faces (`All-Age-Faces
Dataset/original images/NNNNNAxx.jpg`, xx the age in years, 2-80; ids 00000-07380 women,
07381-13321 men; research licence, cite Cheng et al. 2019). Most of the faces are East Asian, not
all, and no face has a race label, so the source names race `unlabelled`
(`conf/sources/all-age-faces.yaml`): its faces teach age and gender only. This writes the
original photos (not the set's own aligned crops: training finds and aligns every face as scoring
does) and a labels table into OUT (by default `data/all-age-faces`):

    python research/jobs/all_age_faces.py --repo /path/to/All-Age-Faces-Dataset \
        --output data/all-age-faces

`--repo` is a checkout or a bare git directory (the `fetch` tool's mirror).
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import subprocess
import sys
import tarfile
from pathlib import Path

PHOTOS = "All-Age-Faces Dataset/original images"
NAME = re.compile(r"^(\d{5})A(\d{2})\.jpg$")
LAST_WOMAN = 7380


def label(name: str) -> dict[str, str] | None:
    """The labels a photo's name gives (file, age in years, gender), or None for another name."""
    match = NAME.match(name)
    if not match:
        return None
    identity, age = int(match.group(1)), int(match.group(2))
    return {"file": name, "age": str(age), "gender": "F" if identity <= LAST_WOMAN else "M"}


def git_dir(repo: Path) -> Path:
    return repo / ".git" if (repo / ".git").exists() else repo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--output", type=Path, default=Path("data/all-age-faces"))
    args = parser.parse_args(argv)

    archive = subprocess.run(
        ["git", "--git-dir", str(git_dir(args.repo)), "archive", "--format=tar", "HEAD", PHOTOS],
        check=True,
        capture_output=True,
    ).stdout
    args.output.mkdir(parents=True, exist_ok=True)
    rows, skipped = [], []
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar:
            if not member.isfile():
                continue
            name = Path(member.name).name
            row = label(name)
            if row is None:
                skipped.append(name)
                continue
            (args.output / name).write_bytes(tar.extractfile(member).read())
            rows.append(row)
    rows.sort(key=lambda row: row["file"])
    with (args.output / "labels.csv").open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=["file", "age", "gender"])
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} photos and labels written to {args.output}; names not read: {skipped}")
    return 0 if rows and not skipped else 1


if __name__ == "__main__":
    sys.exit(main())
