"""Configuration: YAML files in conf/ loaded into frozen, validated dataclasses.

Every loader rejects unknown keys and impossible values with a ConfigError that names the key,
so a typo stops a job before any work starts.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, TypeVar

import yaml

from sparkface.core.contract import DEFAULT_AGE_GROUPS, GENDERS, HEADS, MODEL_FILE, RACES
from sparkface.core.errors import UserError
from sparkface.core.home import home

CONF_DIR = home() / "conf"

T = TypeVar("T")


class ConfigError(UserError, ValueError):
    """A configuration file or value that cannot be used; the message names the key."""


def _read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values at the top level")
    return data


def build_dataclass(cls: type[T], data: dict[str, Any], source: str) -> T:
    """Build `cls` from a mapping, naming any unknown or missing key in the error."""
    fields = {field.name: field for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {unknown}; known keys: {sorted(fields)}")
    missing = [
        name
        for name, field in fields.items()
        if name not in data
        and field.default is dataclasses.MISSING
        and field.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{source}: missing key(s) {missing}")
    values = {}
    for name, value in data.items():
        if isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        if isinstance(value, dict) and name in fields:
            value = dict(value)
        values[name] = value
    try:
        return cls(**values)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from error
    except TypeError as error:
        raise ConfigError(f"{source}: {error}") from error


# ---------------------------------------------------------------------------------------------
# Age groups

_BIN = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)|(\+))\s*$")


@dataclasses.dataclass(frozen=True)
class AgeGroups:
    """Ordinal age bins such as ("7-12", ..., "65+"); bounds are inclusive."""

    names: tuple[str, ...]
    lower_bounds: tuple[int, ...]
    upper_bounds: tuple[int | None, ...]

    @property
    def below_first(self) -> str:
        return f"<{self.lower_bounds[0]}"

    @property
    def min_age(self) -> int:
        return self.lower_bounds[0]

    def index_of(self, age: int) -> int:
        """The ordinal index of an age, -1 when it is below the first bin."""
        for index in range(len(self.names) - 1, -1, -1):
            if age >= self.lower_bounds[index]:
                return index
        return -1


def parse_age_groups(names: list[str] | tuple[str, ...], key: str = "age_groups") -> AgeGroups:
    """Parse and check bins: contiguous, ascending, only the last may be open."""
    if not names:
        raise ConfigError(f"{key}: needs at least one bin, got none")
    lowers: list[int] = []
    uppers: list[int | None] = []
    for position, name in enumerate(names):
        match = _BIN.match(str(name))
        if not match:
            raise ConfigError(f"{key}[{position}]: {name!r} is not 'A-B' or 'A+'")
        lower = int(match.group(1))
        upper = None if match.group(3) else int(match.group(2))
        if upper is not None and upper < lower:
            raise ConfigError(f"{key}[{position}]: {name!r} ends before it starts")
        if upper is None and position != len(names) - 1:
            raise ConfigError(f"{key}[{position}]: only the last bin may be open ({name!r})")
        if lowers and lower != (uppers[-1] or 0) + 1:
            raise ConfigError(
                f"{key}[{position}]: {name!r} must start at {(uppers[-1] or 0) + 1} "
                "(bins are contiguous and ascending)"
            )
        lowers.append(lower)
        uppers.append(upper)
    canonical = tuple(
        f"{lo}+" if up is None else f"{lo}-{up}" for lo, up in zip(lowers, uppers, strict=True)
    )
    return AgeGroups(canonical, tuple(lowers), tuple(uppers))


@dataclasses.dataclass(frozen=True)
class LabelConfig:
    age_groups: tuple[str, ...] = DEFAULT_AGE_GROUPS
    max_age: int = 116

    def __post_init__(self) -> None:
        if not isinstance(self.max_age, int) or self.max_age <= 0:
            raise ConfigError(f"max_age: must be a positive integer, got {self.max_age!r}")
        parse_age_groups(self.age_groups)

    @property
    def groups(self) -> AgeGroups:
        return parse_age_groups(self.age_groups)


@dataclasses.dataclass(frozen=True)
class IngestConfig:
    extensions: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
    max_partition_bytes: int = 64 * 1024 * 1024
    open_cost_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        if not self.extensions:
            raise ConfigError("extensions: needs at least one extension")
        for extension in self.extensions:
            if not re.fullmatch(r"\.[A-Za-z0-9]+", str(extension)):
                raise ConfigError(f"extensions: {extension!r} is not like '.jpg'")
        for key in ("max_partition_bytes", "open_cost_bytes"):
            value = getattr(self, key)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{key}: must be a positive number of bytes, got {value!r}")


FACE_MODES = ("aligned", "detect")
WHOLE_PASSES = ("unscanned", "always")


@dataclasses.dataclass(frozen=True)
class FacesConfig:
    """How faces are found in `detect` mode (conf/faces.yaml)."""

    mode: str = "detect"
    detector: str = "full"
    scan_detector: str = "short"
    min_face_pixels: int = 40
    min_confidence: float = 0.55
    scan_min_confidence: float = 0.65
    max_faces: int = 50
    scan_pixels: int = 256
    whole_pass: str = "unscanned"
    context: float = 0.5
    wide_context: float = 1.0
    refine_window: float = 2.0
    working_pixels: int = 1600
    # Mean keypoints (right eye, left eye, nose tip, mouth centre) of the training crops in their
    # own 200-px frame, measured with the detector (jobs/measure_template.py).
    template: tuple[tuple[float, float], ...] = (
        (58.9, 59.4),
        (137.4, 59.2),
        (98.5, 107.6),
        (98.7, 143.7),
    )
    border: str = "reflect"

    def __post_init__(self) -> None:
        if self.mode not in FACE_MODES:
            raise ConfigError(f"mode: must be one of {', '.join(FACE_MODES)}, got {self.mode!r}")
        if self.detector not in ("full", "full_sparse", "short"):
            raise ConfigError(
                f"detector: must be full, full_sparse or short, got {self.detector!r}"
            )
        if self.scan_detector != "short":
            # The full-range models' interpreter cannot take other input shapes than their own.
            raise ConfigError(
                f"scan_detector: only short scans the whole image at any shape, "
                f"got {self.scan_detector!r}"
            )
        if self.whole_pass not in WHOLE_PASSES:
            raise ConfigError(
                f"whole_pass: must be one of {', '.join(WHOLE_PASSES)}, got {self.whole_pass!r}"
            )
        if self.border not in ("reflect", "black"):
            raise ConfigError(f"border: must be reflect or black, got {self.border!r}")
        for key, low in (("min_face_pixels", 8), ("max_faces", 1), ("scan_pixels", 96)):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"{key}: must be a whole number >= {low}, got {value!r}")
        if not isinstance(self.working_pixels, int) or self.working_pixels < self.scan_pixels:
            raise ConfigError(
                f"working_pixels: must be a whole number >= scan_pixels ({self.scan_pixels}), "
                f"got {self.working_pixels!r}"
            )
        for key in ("min_confidence", "scan_min_confidence"):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or not 0 < value < 1:
                raise ConfigError(f"{key}: must be between 0 and 1, got {value!r}")
        if not isinstance(self.refine_window, (int, float)) or not (
            self.refine_window == 0 or 1 <= self.refine_window <= 4
        ):
            raise ConfigError(f"refine_window: 0 (off) or 1-4, got {self.refine_window!r}")
        for key in ("context", "wide_context"):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or not 0 <= value <= 2:
                raise ConfigError(f"{key}: must be between 0 and 2, got {value!r}")
        points = [tuple(point) for point in self.template]
        if len(points) != 4 or any(len(p) != 2 or not 0 <= min(p) <= max(p) <= 200 for p in points):
            raise ConfigError(
                "template: needs four [x, y] points inside the 200-px crop (right eye, left eye, "
                f"nose tip, mouth centre), got {self.template!r}"
            )
        object.__setattr__(self, "template", tuple((float(x), float(y)) for x, y in points))


def load_faces(path: str | Path | None = None) -> FacesConfig:
    path = path or CONF_DIR / "faces.yaml"
    return build_dataclass(FacesConfig, _read_yaml(path), str(path))


def load_labels(path: str | Path | None = None) -> LabelConfig:
    path = path or CONF_DIR / "labels.yaml"
    return build_dataclass(LabelConfig, _read_yaml(path), str(path))


def load_ingest(path: str | Path | None = None) -> IngestConfig:
    path = path or CONF_DIR / "ingest.yaml"
    return build_dataclass(IngestConfig, _read_yaml(path), str(path))


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, for loaders of other modules."""
    return _read_yaml(path)


# ---------------------------------------------------------------------------------------------
# Training


def _check_fraction(key: str, value: object) -> None:
    if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ConfigError(f"{key}: must be a fraction between 0 and 1, got {value!r}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    filters: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
    convs_per_block: int = 1
    activation: str = "leaky_relu"
    dense_units: tuple[int, ...] = (256, 128)
    dropout: float = 0.4
    augment: bool = True
    # The age heads (age group, age) read dense layers of their own, beside the ones gender and
    # race share: more capacity where a single network falls short of an ensemble, at a cost
    # per face of a few dense multiply-adds (sparkface.train.model.make_model).
    age_branch: bool = False

    def __post_init__(self) -> None:
        if not self.filters or any(not isinstance(f, int) or f <= 0 for f in self.filters):
            raise ConfigError(f"model.filters: needs positive integers, got {self.filters!r}")
        if not isinstance(self.convs_per_block, int) or self.convs_per_block < 1:
            raise ConfigError(f"model.convs_per_block: must be >= 1, got {self.convs_per_block!r}")
        if self.activation not in ("relu", "leaky_relu"):
            raise ConfigError(f"model.activation: 'relu' or 'leaky_relu', got {self.activation!r}")
        if any(not isinstance(u, int) or u <= 0 for u in self.dense_units):
            raise ConfigError(
                f"model.dense_units: needs positive integers, got {self.dense_units!r}"
            )
        _check_fraction("model.dropout", self.dropout)
        if not isinstance(self.age_branch, bool):
            raise ConfigError(f"model.age_branch: true or false, got {self.age_branch!r}")


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    batch_size: int = 64
    epochs: int = 40
    learning_rate: float = 0.002
    weight_decay: float = 0.0001
    patience: int = 6
    shuffle_buffer: int = 4096
    class_weights: bool = True
    # The gender head's loss weighted per race x gender cell (shards.gender_cell_weights).
    gender_cell_weights: bool = False
    loss_weights: dict = dataclasses.field(default_factory=lambda: dict.fromkeys(HEADS, 1.0))
    flip_test_time: bool = True
    steps_per_epoch: int | None = None  # None: one pass over the training split
    xla: bool = False  # compile the training step with XLA on the CPU too (accelerators: always)
    warmup_epochs: int = 0  # learning rate rising linearly from 0 before the cosine decay
    initial_model: str | None = None  # a model package whose weights training starts from
    initial_member: int | None = None  # initial_model is an ensemble: start from its member i
    teacher: str | None = None  # a model package whose predictions the targets mix in
    teacher_share: float = 0.5  # the teacher's share of each target (the labels': the rest)
    # The share of train batches blended face by face before the teacher sees them (mixup;
    # sparkface.train.distill): the student matches its teacher between faces too.
    teacher_mixup: float = 0.0
    # > 0: the network also learns to predict the shards' dlib face descriptors (a head dropped
    # from the package), its loss weighted so (sparkface.train.descriptors).
    descriptor_weight: float = 0.0
    # > 0: the weights of the last this many epochs are averaged, each epoch at
    # average_learning_rate (sparkface.train.averaging); kept only if validation says so.
    average_epochs: int = 0
    average_learning_rate: float = 0.0001

    def __post_init__(self) -> None:
        for key in ("batch_size", "epochs", "patience", "shuffle_buffer"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"training.{key}: must be a positive integer, got {value!r}")
        for key in ("learning_rate", "weight_decay"):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"training.{key}: must be a number >= 0, got {value!r}")
        unknown = set(self.loss_weights) - set(HEADS)
        if unknown:
            raise ConfigError(f"training.loss_weights: unknown head(s) {sorted(unknown)}")
        if not isinstance(self.warmup_epochs, int) or not 0 <= self.warmup_epochs < self.epochs:
            raise ConfigError(
                f"training.warmup_epochs: must be 0 to epochs - 1, got {self.warmup_epochs!r}"
            )
        if not isinstance(self.average_epochs, int) or not (
            0 <= self.average_epochs < self.epochs - self.warmup_epochs
        ):
            raise ConfigError(
                "training.average_epochs: must be 0 to epochs - warmup_epochs - 1, "
                f"got {self.average_epochs!r}"
            )
        rate = self.average_learning_rate
        if self.average_epochs and not (
            isinstance(rate, (int, float)) and 0 < rate <= self.learning_rate
        ):
            raise ConfigError(
                f"training.average_learning_rate: must be > 0 and <= learning_rate, got {rate!r}"
            )
        member = self.initial_member
        if member is not None and (not isinstance(member, int) or member < 0):
            raise ConfigError(f"training.initial_member: must be an index >= 0, got {member!r}")
        if member is not None and self.initial_model is None:
            raise ConfigError("training.initial_member: needs initial_model (an ensemble package)")
        for key in ("initial_model", "teacher"):
            package = getattr(self, key)
            if package is not None and not (Path(package) / MODEL_FILE).is_file():
                raise ConfigError(f"training.{key}: no model package ({MODEL_FILE}) in {package!r}")
        _check_fraction("training.teacher_share", self.teacher_share)
        _check_fraction("training.teacher_mixup", self.teacher_mixup)
        if self.teacher_mixup and not self.teacher:
            raise ConfigError("training.teacher_mixup: needs a teacher to ask about the blends")
        if not isinstance(self.descriptor_weight, (int, float)) or self.descriptor_weight < 0:
            raise ConfigError(
                f"training.descriptor_weight: must be a number >= 0, got {self.descriptor_weight!r}"
            )
        if self.teacher_mixup and self.descriptor_weight:
            raise ConfigError(
                "training.teacher_mixup: blends faces whose dlib descriptors are not blended; "
                "use it without descriptor_weight"
            )


# What a training face can be shown as before the detector finds it (TrainFacesConfig.views):
# the crop itself, pasted into a camera-like frame, or re-framed as in sparkface.evaluate.frames.
TRAINING_VIEWS = ("crop", "frame", "looser", "tighter", "shifted", "tilted")


@dataclasses.dataclass(frozen=True)
class TrainFacesConfig:
    """How preparation makes the training faces. `aligned`: each crop as it is (centre square).
    `detect`: each face found and aligned by the detector as `--faces detect` does when scoring
    (conf/faces.yaml's settings), the train split's faces each first shown as one of `views`
    (shares that sum to 1, chosen by a hash of the file name); validation and test faces as
    crops."""

    mode: str = "aligned"
    views: dict = dataclasses.field(default_factory=lambda: {"crop": 1.0})

    def __post_init__(self) -> None:
        if self.mode not in FACE_MODES:
            raise ConfigError(
                f"faces.mode: must be one of {', '.join(FACE_MODES)}, got {self.mode!r}"
            )
        if not isinstance(self.views, dict) or not self.views:
            raise ConfigError(f"faces.views: expected a mapping of shares, got {self.views!r}")
        unknown = set(self.views) - set(TRAINING_VIEWS)
        if unknown:
            raise ConfigError(
                f"faces.views: unknown view(s) {sorted(unknown)}; known: {list(TRAINING_VIEWS)}"
            )
        for name, share in self.views.items():
            _check_fraction(f"faces.views.{name}", share)
        if abs(sum(self.views.values()) - 1.0) > 1e-6:
            raise ConfigError(f"faces.views: shares must sum to 1, got {self.views!r}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    image_size: int = 64
    min_age: int = 7
    sample_fractions: dict = dataclasses.field(default_factory=lambda: {"race": {"white": 0.5}})
    split: dict = dataclasses.field(default_factory=lambda: {"validation": 0.1, "test": 0.1})
    shards: int = 8
    seed: int = 1337
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    faces: TrainFacesConfig = dataclasses.field(default_factory=TrainFacesConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.image_size, int) or not 16 <= self.image_size <= 512:
            raise ConfigError(f"image_size: must be 16-512 pixels, got {self.image_size!r}")
        if not isinstance(self.min_age, int) or self.min_age < 0:
            raise ConfigError(f"min_age: must be an age in years, got {self.min_age!r}")
        classes = {"race": RACES, "gender": GENDERS}
        for column, fractions in self.sample_fractions.items():
            if column not in classes:
                raise ConfigError(
                    f"sample_fractions: unknown column {column!r}; use race or gender"
                )
            for name, value in dict(fractions).items():
                if name not in classes[column]:
                    raise ConfigError(
                        f"sample_fractions.{column}: unknown class {name!r}; "
                        f"known: {list(classes[column])}"
                    )
                _check_fraction(f"sample_fractions.{column}.{name}", value)
        unknown = set(self.split) - {"validation", "test"}
        if unknown:
            raise ConfigError(f"split: unknown key(s) {sorted(unknown)}; use validation, test")
        for key, value in self.split.items():
            _check_fraction(f"split.{key}", value)
        if sum(self.split.values()) >= 1.0:
            raise ConfigError("split: validation + test must leave faces for training")
        if not isinstance(self.shards, int) or self.shards < 1:
            raise ConfigError(f"shards: must be a positive integer, got {self.shards!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def train_config_from_dict(data: dict[str, Any], source: str = "train config") -> TrainConfig:
    data = dict(data)
    if isinstance(data.get("model"), dict):
        data["model"] = build_dataclass(ModelConfig, data["model"], f"{source}: model")
    if isinstance(data.get("training"), dict):
        data["training"] = build_dataclass(TrainingConfig, data["training"], f"{source}: training")
    if isinstance(data.get("faces"), dict):
        data["faces"] = build_dataclass(TrainFacesConfig, data["faces"], f"{source}: faces")
    for key in ("sample_fractions", "split"):
        if key in data and not isinstance(data[key], dict):
            raise ConfigError(f"{source}: {key}: expected a mapping, got {data[key]!r}")
    return build_dataclass(TrainConfig, data, source)


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`base` with `changes` applied: mappings merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            value = _merged(merged[key], value)
        merged[key] = value
    return merged


def read_extending(path: str | Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A YAML mapping whose optional `extends: OTHER.yaml` (relative to its own folder) names a
    file it starts from: its own keys change the other's, nested mappings key by key. So two
    recipes that differ by a seed differ by one line in one file."""
    path = Path(path).resolve()
    if path in chain:
        cycle = " -> ".join(str(p) for p in (*chain, path))
        raise ConfigError(f"extends: a cycle of config files: {cycle}")
    data = _read_yaml(path)
    base = data.pop("extends", None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: extends: expected a file name, got {base!r}")
    return _merged(read_extending(path.parent / base, (*chain, path)), data)


def load_train(path: str | Path | None = None) -> TrainConfig:
    """A training config; it may extend another (see `read_extending`)."""
    path = path or CONF_DIR / "train.yaml"
    return train_config_from_dict(read_extending(path), str(path))
