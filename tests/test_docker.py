"""The image's build inputs, checked without building it: the pins pins.py gives, the context
sent, podman's settings (tests/test_image.py builds and runs the image)."""

from __future__ import annotations

import configparser
import fnmatch
import subprocess
import sys
import tomllib

from tests.conftest import ROOT

DOCKER = ROOT / "docker"


def pins(*extras: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, str(DOCKER / "pins.py"), str(ROOT / "pyproject.toml"), *extras],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_the_image_installs_the_plain_pins_unless_an_extra_is_named():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    plain = pins()
    assert plain == project["dependencies"]
    assert not [pin for pin in plain if pin.startswith(("tensorflow", "keras"))]
    assert pins("keras") == plain + project["optional-dependencies"]["keras"]
    # dev names sparkface[keras]: taken apart into its pins, each once
    dev = pins("dev,keras")
    assert "tensorflow==2.21.0" in dev and "pytest==9.2.0" in dev
    assert len(dev) == len(set(dev)) and not [pin for pin in dev if pin.startswith("sparkface")]
    unknown = subprocess.run(
        [sys.executable, str(DOCKER / "pins.py"), str(ROOT / "pyproject.toml"), "gpu"],
        capture_output=True,
        text=True,
    )
    assert unknown.returncode == 1 and "no extra 'gpu'" in unknown.stderr


def test_the_wheelhouse_holds_the_build_backend_that_pyproject_pins():
    # scripts/build_image.sh adds these, so that the image installs the project offline.
    backend = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    assert pins("--build-system") == backend


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
