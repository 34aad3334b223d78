"""The project's build: the backend that [build-system] pins builds the wheel without a
deprecation, the tests build their wheels (without isolation) with that same backend, and the
source distribution builds the same wheel as the checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from importlib.metadata import version

from tests.conftest import ROOT, build_wheel


def test_the_tests_build_wheels_with_the_backend_a_users_install_gets():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    backend = pyproject["build-system"]["requires"]
    assert backend == ["setuptools==84.2.1"]
    assert set(backend) <= set(pyproject["project"]["optional-dependencies"]["dev"])
    assert version("setuptools") == backend[0].split("==")[1]


def test_the_wheel_builds_without_a_deprecation_and_states_its_licence(tmp_path):
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(name).decode())
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["Name"] == "sparkface" and metadata["Requires-Python"] == ">=3.11"


def contents(wheel) -> dict[str, int]:
    with zipfile.ZipFile(wheel) as archive:
        return {
            info.filename: info.file_size
            for info in archive.infolist()
            if not info.filename.endswith(".dist-info/RECORD")
        }


def test_the_source_distribution_builds_the_wheel_the_checkout_builds(tmp_path):
    # python -m build makes the sdist, then the wheel from it alone, as a pip install from an
    # index's sdist does: without conf/, models/ and jobs/ in it, setup.py cannot copy the home.
    # From a copy of the files git tracks or would: a checkout's egg-info (an editable install's)
    # lists files that setuptools would add to the sdist whatever MANIFEST.in says.
    source = tmp_path / "source"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--no-isolation",
            "-o",
            str(tmp_path / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert "deprecat" not in (built.stdout + built.stderr).lower()
    (from_sdist,) = (tmp_path / "dist").glob("sparkface-*.whl")
    files = contents(from_sdist)
    assert files == contents(build_wheel(tmp_path / "checkout"))
    for home in ("conf/faces.yaml", "jobs/score.py", "models/sparkface-cnn/model.tflite"):
        assert f"sparkface/_home/{home}" in files
