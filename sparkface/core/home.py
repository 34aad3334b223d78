"""Where the project's home is: conf/ (the defaults), models/ (the shipped model) and jobs/.

In order: the folder named by $SPARKFACE_HOME; the checkout this package runs from (an editable
install, or the source tree on the path); the copy a built wheel carries inside the package
(sparkface/_home, made by setup.py). `python -m sparkface.core.home` prints it.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_VARIABLE = "SPARKFACE_HOME"
_PACKAGE = Path(__file__).resolve().parents[1]


def home() -> Path:
    """The folder holding conf/, models/ and jobs/."""
    if os.environ.get(HOME_VARIABLE):
        return Path(os.environ[HOME_VARIABLE]).resolve()
    checkout = _PACKAGE.parent
    if (checkout / "conf").is_dir() and (checkout / "pyproject.toml").is_file():
        return checkout
    return _PACKAGE / "_home"


if __name__ == "__main__":
    print(home())
