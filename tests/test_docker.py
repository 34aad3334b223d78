"""The Docker image pins the same versions as pyproject.toml."""

from __future__ import annotations

import re
import tomllib

from tests.conftest import ROOT


def pins(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        match = re.search(r"([A-Za-z0-9_.-]+)==([0-9][^\s\"',\\]*)", line)
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def test_dockerfile_pins_match_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = pins(project["dependencies"])
    docker = pins((ROOT / "docker" / "Dockerfile").read_text().splitlines())
    assert wanted, "pyproject.toml pins no runtime dependency"
    assert docker == wanted


def test_dockerfile_uses_java_17_and_python_311():
    text = (ROOT / "docker" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", text, re.M)
    assert "openjdk-17" in text
    python = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert python == ">=3.11"
