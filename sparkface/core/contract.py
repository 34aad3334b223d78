"""The model's contract: what every stage agrees on, in one leaf that imports nothing.

Head names, class lists, the age scale and the model package's file names. Preparation writes
shards with these classes, training builds heads with them, scoring names its columns after
them and a package's descriptor records them; changing one here changes them all.
"""

from __future__ import annotations

# The model's outputs: three class heads (softmax) and the age regression head.
CLASS_HEADS: tuple[str, ...] = ("age_group", "gender", "race")
HEADS: tuple[str, ...] = (*CLASS_HEADS, "age")

# Class lists in label order: UTKFace's file names give gender 0-1 and race 0-4.
GENDERS: tuple[str, ...] = ("male", "female")
RACES: tuple[str, ...] = ("white", "black", "asian", "indian", "others")
DEFAULT_AGE_GROUPS: tuple[str, ...] = (
    "7-12",
    "13-17",
    "18-24",
    "25-34",
    "35-44",
    "45-54",
    "55-64",
    "65+",
)
MAX_AGE = 116

# The age head predicts years / AGE_SCALE.
AGE_SCALE = 100.0

# A model package is a folder holding its descriptor and the network in its runtime's file: the
# descriptor's "runtime" says which ("keras", or "tflite" for a converted package, which scores
# but does not train or average).
DESCRIPTOR_FILE = "model.json"
KERAS_FILE = "model.keras"
TFLITE_FILE = "model.tflite"
RUNTIME_FILES = {"keras": KERAS_FILE, "tflite": TFLITE_FILE}
