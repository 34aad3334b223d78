"""The project's build: the backend that [build-system] pins builds the wheel without a
deprecation, and the tests build their wheels (without isolation) with that same backend."""

from __future__ import annotations

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
