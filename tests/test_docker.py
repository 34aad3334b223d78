"""The image's recipe, read without building it (tests/test_image.py builds and runs it)."""

from __future__ import annotations

import configparser
import fnmatch
import re
import tomllib

from tests.conftest import ROOT

DOCKER = ROOT / "docker"


def test_the_default_base_is_python_311_on_bookworm_and_java_17_comes_with_it():
    text = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE=python:3\.11-slim-bookworm$", text, re.M)
    assert re.search(r"^FROM \$\{BASE\}$", text, re.M)
    assert "openjdk-17-jre-headless" in text
    python = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert python == ">=3.11"


def test_the_pins_are_read_from_pyproject_not_copied():
    text = (DOCKER / "Dockerfile").read_text()
    assert '["project"]' in text and '["dependencies"]' in text
    assert not re.search(r"[A-Za-z]==[0-9]", text), "a version pinned in the Dockerfile itself"


def test_the_build_context_leaves_out_the_environment_and_outputs():
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def sent(path: str) -> bool:
        keep = True
        for pattern in patterns:
            negated = pattern.startswith("!")
            bare = pattern.lstrip("!")
            if fnmatch.fnmatch(path, bare) or path.startswith(bare.rstrip("/") + "/"):
                keep = negated
        return keep

    for path in (".venv/bin/python", "out/predictions/x.parquet", ".git/HEAD", "build/lib/x.py"):
        assert not sent(path), path
    for path in ("pyproject.toml", "sparkface/core/home.py", "models/sparkface-cnn/model.keras"):
        assert sent(path), path
    assert sent("docker/wheelhouse/README.md")


def test_podman_runs_with_runc_on_the_host_network_without_default_ulimits():
    settings = configparser.ConfigParser()
    settings.read(DOCKER / "containers.conf")
    assert settings["engine"]["runtime"] == '"runc"'
    assert settings["containers"]["default_ulimits"] == "[]"
    assert settings["containers"]["netns"] == '"host"'
