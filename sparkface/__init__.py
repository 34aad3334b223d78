"""sparkface: age group, gender and race from face images, at scale, on Apache Spark."""

from __future__ import annotations

__version__ = "0.1.0"
