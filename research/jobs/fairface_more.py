"""FairFace's other 20,000 training photos as a labelled source (issue 33).

`../shared/data/fairface` is a seeded sample of the 40,000 FairFace training photos that
`github:sumanvithaeadala/EthnicityDetection` holds (`fair_face/train/`, labels in
`fairface_label_train.csv`). This writes the photos that sample left out, with a labels table
in `conf/sources/fairface.yaml`'s format, into OUT (by default `data/fairface-more`, the folder
`conf/sources/fairface-more.yaml` reads):

    python research/jobs/fairface_more.py --repo /path/to/EthnicityDetection \
        --shared ../shared/data/fairface --output data/fairface-more

`--repo` is a checkout or a bare git directory (the `fetch` tool's mirror). The repository's age
column was mangled by a spreadsheet (`03-Sep` is 3-9, `Oct-19` is 10-19, `more than 70` is 70+);
the table written here has FairFace's own bins. Photos keep their names (`train/N.jpg`), so a
photo's split (a hash of its file name) is the one it has in every other source of FairFace:
the shared sample's test photos are never trained on through this one. FairFace's `val/` is not
copied (kept aside for evaluation elsewhere).
"""

from __future__ import annotations

import argparse
import csv
import io
import subprocess
import sys
import tarfile
from pathlib import Path

LABELS = "fairface_label_train.csv"
PHOTOS = "fair_face/train"
AGE_FIXES = {"03-Sep": "3-9", "Oct-19": "10-19", "more than 70": "70+"}


def fixed_age(age: str) -> str:
    """FairFace's bin for the repository's (spreadsheet-mangled) age text."""
    return AGE_FIXES.get(age.strip(), age.strip())


def git(repo: Path, *args: str) -> bytes:
    return subprocess.run(
        ["git", "--git-dir", str(git_dir(repo)), *args], check=True, capture_output=True
    ).stdout


def git_dir(repo: Path) -> Path:
    return repo / ".git" if (repo / ".git").exists() else repo


def left_out_rows(table: bytes, shared: Path) -> list[dict[str, str]]:
    """The repository's label rows whose photo is not in the shared sample, ages fixed."""
    taken = {row["file"] for row in csv.DictReader((shared / "labels.csv").open())}
    rows = []
    for row in csv.DictReader(io.StringIO(table.decode("utf-8"))):
        if row["file"] in taken:
            continue
        rows.append(
            {
                "file": row["file"],
                "age": fixed_age(row["age"]),
                "gender": row["gender"],
                "race": row["race"],
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--shared", type=Path, default=Path("../shared/data/fairface"))
    parser.add_argument("--output", type=Path, default=Path("data/fairface-more"))
    args = parser.parse_args(argv)

    rows = left_out_rows(git(args.repo, "show", f"HEAD:{LABELS}"), args.shared)
    wanted = {f"fair_face/{row['file']}" for row in rows}
    archive = git(args.repo, "archive", "--format=tar", "HEAD", PHOTOS)
    written = 0
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar:
            if member.isfile() and member.name in wanted:
                target = args.output / member.name.removeprefix("fair_face/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(member).read())
                written += 1
    with (args.output / "labels.csv").open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=["file", "age", "gender", "race"])
        writer.writeheader()
        writer.writerows(rows)
    print(f"{written} photos and {len(rows)} labels written to {args.output}")
    return 0 if written == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
