"""Print the pinned requirements of pyproject.toml, one a line: the project's dependencies and
those of each extra named in the first argument (comma-separated, such as "keras"), an extra that
names sparkface's own extras taken apart into theirs. The Dockerfile and scripts/build_image.sh
install exactly these. With --build-system, the build backend's pins instead ([build-system]
requires), which an offline install of the project itself needs.

    python3 docker/pins.py pyproject.toml [EXTRAS]
    python3 docker/pins.py pyproject.toml --build-system
"""

from __future__ import annotations

import re
import sys
import tomllib


def pins(project: dict, extras: list[str]) -> list[str]:
    found = list(project["dependencies"])
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise SystemExit(f"no extra {extra!r} in pyproject.toml; known: {sorted(optional)}")
        for requirement in optional[extra]:
            own = re.fullmatch(rf"{project['name']}\[(.+)\]", requirement)
            found += (
                pins({**project, "dependencies": []}, own.group(1).split(","))
                if own
                else [requirement]
            )
    return list(dict.fromkeys(found))


if __name__ == "__main__":
    with open(sys.argv[1], "rb") as file:
        pyproject = tomllib.load(file)
    if sys.argv[2:] == ["--build-system"]:
        print("\n".join(pyproject["build-system"]["requires"]))
        raise SystemExit(0)
    project = pyproject["project"]
    extras = [name for name in (sys.argv[2] if len(sys.argv) > 2 else "").split(",") if name]
    print("\n".join(pins(project, extras)))
