"""A GPU machine's training run, rehearsed here: scripts/gpu/environment.py names what
jobs/fit.py needs there and what travels as wheels, and `scripts/gpu/train.sh train` runs on
JAX with every installed package the machine lacks made unimportable (TensorFlow and Spark
among them), as that machine has them (docs/gpu.md)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import tarfile
import tomllib

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name as canonical

from tests.conftest import ROOT, job_environment, load_job, spark_submit, utk_names, write_faces

ENVIRONMENT = ROOT / "scripts" / "gpu" / "environment.py"
# Left importable, whatever the closure says: this project (from the checkout there) and the
# tools that install it.
KEPT = {"sparkface", "pip", "setuptools", "wheel"}


def environment():
    return load_job("environment", "scripts/gpu")


def closure(names) -> set[str]:
    """The distributions `names` need, with what they need, as installed here (no extras)."""
    markers = {**default_environment(), "extra": ""}
    seen, todo = set(), [canonical(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.distribution(name).requires or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for line in requires:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate(markers):
                todo.append(canonical(requirement.name))
    return seen


def lacking(present: set[str]) -> list[str]:
    """The top-level modules of the installed distributions outside `present`."""
    modules = importlib.metadata.packages_distributions()
    return sorted(
        module
        for module, distributions in modules.items()
        if module.isidentifier() and not {canonical(d) for d in distributions} & (present | KEPT)
    )


def machine_site(folder, present: set[str]):
    """A folder whose sitecustomize makes every module outside `present` unimportable, put
    first on PYTHONPATH as scripts/gpu/train.sh puts the wheels' SITE."""
    folder.mkdir(parents=True, exist_ok=True)
    blocked = lacking(present)
    # Not found, as on that machine: neither in sys.modules (Keras looks there for TensorFlow)
    # nor by any finder after this one.
    (folder / "sitecustomize.py").write_text(
        "import sys\n"
        f"BLOCKED = frozenset({blocked!r})\n"
        "class Absent:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] in BLOCKED:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Absent())\n"
    )
    return folder, blocked


def the_machine(env) -> set[str]:
    """What the GPU machine has once `setup` has installed the wheels."""
    wheels = [Requirement(w).name for w in env.WHEELS]
    return closure([*env.PRESENT, *wheels])


def test_the_wheels_are_the_versions_the_project_pins_and_tests():
    env = environment()
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {
        canonical(Requirement(r).name): str(Requirement(r).specifier)
        for r in [*pins["dependencies"], *pins["optional-dependencies"]["keras"]]
    }
    for line in env.WHEELS:
        wheel = Requirement(line)
        name = canonical(wheel.name)
        assert str(wheel.specifier) == f"=={importlib.metadata.version(name)}", line
        if name in declared:
            assert str(wheel.specifier) == declared[name], line


def test_what_the_run_imports_comes_with_the_machine_or_the_wheels():
    env = environment()
    present = the_machine(env)
    assert "pydantic" in present and "keras" in present and "tensorflow" not in present
    assert "pyspark" not in present and "matplotlib" not in present
    # Each module the check imports belongs to a distribution the machine then has.
    owners = importlib.metadata.packages_distributions()
    for module in env.REQUIRED:
        top = module.split(".")[0]
        if top == "sparkface":
            continue
        assert {canonical(d) for d in owners[top]} & present, module


def test_the_check_names_what_is_missing(tmp_path):
    site, blocked = machine_site(tmp_path / "site", the_machine(environment()) - {"pydantic"})
    assert "pydantic" in blocked and "tensorflow" in blocked
    result = subprocess.run(
        [sys.executable, str(ENVIRONMENT), "check"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={**os.environ, "PYTHONPATH": f"{site}:{ROOT}", "KERAS_BACKEND": "jax"},
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr[-2000:]
    missing = next(line for line in result.stdout.splitlines() if line.startswith("missing: "))
    assert "pydantic (" in missing and "keras (" not in missing
    assert "optional, missing: matplotlib" in result.stdout


@pytest.mark.slow
def test_a_training_run_on_the_gpu_machine_s_packages_with_jax(tmp_path):
    pytest.importorskip("jax", reason="the GPU machine's backend: pip install '.[dev]'")
    env = environment()
    faces = tmp_path / "faces"
    write_faces(faces, utk_names(120, seed=4), size=(48, 48))
    recipe = tmp_path / "rehearsal.yaml"
    recipe.write_text(
        "image_size: 32\nshards: 2\n"
        "model: {filters: [8, 16, 16], dense_units: [16, 8], dropout: 0.1,"
        " separable_blocks: [1], augment_light: true}\n"
        "training: {batch_size: 16, epochs: 3, patience: 3, shuffle_buffer: 64,"
        " average_epochs: 1, average_learning_rate: 0.001, augment_workers: 2}\n"
    )
    prepared = subprocess.run(
        spark_submit("train.py", "--input", str(faces), "--output", str(tmp_path / "p"),
                     "--config", str(recipe), "--prepare-only"),
        capture_output=True, text=True, env=job_environment(), cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert prepared.returncode == 0, prepared.stdout[-3000:]
    # The bundle as `train.sh bundle` makes it (lossy WebP, docs/gpu.md), staged as the calls do.
    stage = tmp_path / "stage"
    (stage / "meta").mkdir(parents=True)
    for name in ("preparation.json", "config.yaml"):
        (stage / "meta" / name).write_bytes((tmp_path / "p" / name).read_bytes())
    packed = subprocess.run(
        [sys.executable, "scripts/gpu/shards_webp.py", "pack", str(tmp_path / "p" / "shards"),
         str(stage / "shards"), "--splits", "train", "validation", "test", "--image-size", "32",
         "--quality", "95"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert packed.returncode == 0, packed.stderr[-2000:]

    site, blocked = machine_site(tmp_path / "site", the_machine(env))
    assert {"tensorflow", "pyspark", "matplotlib"} <= set(blocked)
    results = tmp_path / "results"
    trained = subprocess.run(
        ["bash", "scripts/gpu/train.sh", "train", str(recipe)],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
        env={**os.environ, "STAGE": str(stage), "SITE": str(site), "PYTHON": sys.executable,
             "RUNS": str(tmp_path / "runs"), "OUT": str(results), "FIT_SECONDS": "500",
             "FACES": str(faces), "KERAS_BACKEND": "jax"},
    )  # fmt: skip
    log = (tmp_path / "runs" / "train-rehearsal" / "fit.log").read_text()
    assert trained.returncode == 0, trained.stderr[-2000:] + log[-3000:]
    assert "with the jax backend" in log
    assert "matplotlib is not installed" in log  # and the package was made all the same
    assert sorted(p.name for p in results.iterdir()) == ["rehearsal.keras", "rehearsal.tar.gz"]
    with tarfile.open(results / "rehearsal.tar.gz") as archive:
        descriptor = json.load(archive.extractfile("model/model.json"))
        metrics = json.load(archive.extractfile("evaluation/metrics.json"))
    assert descriptor["input_size"] == [32, 32, 3]
    assert descriptor["metrics"]["gender_accuracy"] == metrics["gender_accuracy"]

    # Back here, the JAX-trained network loads with TensorFlow and answers as it did there.
    from sparkface.core.package import load_model_file
    from sparkface.evaluate.split import evaluate_split

    model = load_model_file(results / "rehearsal.keras")
    again = evaluate_split(
        model, tmp_path / "runs" / "train-rehearsal" / "shards", "test", 32, True,
        tuple(descriptor["classes"]["age_group"]),
    )  # fmt: skip
    assert again["faces"] == metrics["faces"] > 0
    one_face = 1 / again["faces"]
    for head in ("gender", "race", "age_group"):
        assert abs(again[f"{head}_accuracy"] - metrics[f"{head}_accuracy"]) <= one_face, head
