"""Configuration: YAML files in conf/ validated by pydantic into frozen models.

Every loader rejects unknown keys, values of the wrong type (a boolean is `true` or `false`, a
count a whole number) and impossible values with a ConfigError naming the file and the key, so a
typo stops a job before any work starts. A relative path in any file under conf/ (a recipe's
`extends`, `initial_model` and `teacher`, a campaign's inputs, output and model) is taken from the
project's home (`sparkface.core.home`): the checkout, or $SPARKFACE_HOME.
"""

from __future__ import annotations

import codecs
import dataclasses
import re
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)

from sparkface.core.contract import (
    DEFAULT_AGE_GROUPS,
    GENDERS,
    HEADS,
    MAX_AGE,
    RACES,
    RUNTIME_FILES,
)
from sparkface.core.errors import UserError
from sparkface.core.home import home

CONF_DIR = home() / "conf"

Model = TypeVar("Model", bound=BaseModel)

# Scalars as YAML gives them, never coerced: `augment: "yes please"` or `epochs: 3.5` is an error.
Bool = Annotated[bool, Strict()]
Int = Annotated[int, Strict()]
Number = Annotated[float, Strict()]  # an int is a number too
Fraction = Annotated[float, Strict(), Field(ge=0.0, le=1.0)]
Positive = Annotated[int, Strict(), Field(ge=1)]


class ConfigError(UserError, ValueError):
    """A configuration file or value that cannot be used; the message names the key."""


class Settings(BaseModel):
    """A block of settings: frozen, no unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


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


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, for loaders of other modules."""
    return _read_yaml(path)


def _known_keys(cls: type[BaseModel], location: tuple) -> list[str]:
    """The keys a block takes, for the block an unknown key was found in."""
    for part in location[:-1]:
        annotation = cls.model_fields[part].annotation if part in cls.model_fields else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        cls = annotation
    return sorted(cls.model_fields)


def _message(cls: type[BaseModel], error: dict[str, Any]) -> str:
    location = tuple(error["loc"])
    key = ".".join(str(part) for part in location if part != "[key]") or "(top level)"
    if location and location[-1] == "[key]":
        return f"{key}: unknown key: {error['msg']}"
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key; known keys: {_known_keys(cls, location)}"
    if error["type"] == "missing":
        return f"{key}: missing key"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "value_error":  # our own checks, which name their key in their block
        return f"{key}.{message}" if location else message
    return f"{key}: {message}, got {error.get('input')!r}"


def validated(cls: type[Model], data: dict[str, Any], source: str) -> Model:
    """`cls` from a mapping, or a ConfigError naming `source` and every bad key."""
    try:
        return cls.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{source}: {_problems(cls, error)}") from None


def _problems(cls: type[BaseModel], error: ValidationError) -> str:
    return "; ".join(_message(cls, e) for e in error.errors())


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


class LabelConfig(Settings):
    """conf/labels.yaml: the age groups and the oldest plausible age."""

    age_groups: tuple[str, ...] = DEFAULT_AGE_GROUPS
    max_age: Positive = 116

    @model_validator(mode="after")
    def _bins(self) -> LabelConfig:
        parse_age_groups(self.age_groups)
        return self

    @property
    def groups(self) -> AgeGroups:
        return parse_age_groups(self.age_groups)


class IngestConfig(Settings):
    """conf/ingest.yaml: which files are images, and how Spark packs them into tasks."""

    extensions: tuple[Annotated[str, Field(pattern=r"^\.[A-Za-z0-9]+$")], ...] = Field(
        (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"),
        min_length=1,
    )
    max_partition_bytes: Positive = 64 * 1024 * 1024
    open_cost_bytes: Positive = 64 * 1024


FaceMode = Literal["aligned", "detect"]
FACE_MODES: tuple[str, ...] = ("aligned", "detect")
# The mode scoring uses when neither the command line nor a campaign names one.
DEFAULT_FACE_MODE = "detect"


Point = tuple[float, float]


class FacesConfig(Settings):
    """How faces are found in `detect` mode (conf/faces.yaml)."""

    mode: FaceMode = DEFAULT_FACE_MODE
    detector: Literal["yunet", "full", "full_sparse", "short"] = "yunet"
    # yunet: the whole image (with its context border) scaled to each of these long sides, one
    # pass each, merged (a smaller side sees larger faces).
    detector_pixels: tuple[Annotated[int, Strict(), Field(ge=128, le=4096)], ...] = Field(
        (640, 320), min_length=1
    )
    # The full-range models' interpreter cannot take other input shapes than their own.
    scan_detector: Literal["short"] = "short"
    min_face_pixels: Annotated[int, Strict(), Field(ge=8)] = 40
    min_confidence: Annotated[float, Strict(), Field(gt=0, lt=1)] = 0.6
    scan_min_confidence: Annotated[float, Strict(), Field(gt=0, lt=1)] = 0.65
    # yunet: a face whose box side is at least large_face_pixels (image pixels) is kept from
    # large_min_confidence: turned or half-hidden large faces score low, and few false faces are
    # that large.
    large_face_pixels: Annotated[int, Strict(), Field(ge=8)] = 160
    large_min_confidence: Annotated[float, Strict(), Field(gt=0, lt=1)] = 0.15
    max_faces: Positive = 50
    scan_pixels: Annotated[int, Strict(), Field(ge=96)] = 272
    whole_pass: Literal["unscanned", "always"] = "unscanned"
    context: Annotated[float, Strict(), Field(ge=0, le=2)] = 0.5
    wide_context: Annotated[float, Strict(), Field(ge=0, le=2)] = 1.0
    refine_window: Number = 2.0
    working_pixels: Int = 1600
    # Mean keypoints (right eye, left eye, nose tip, mouth centre) of the training crops in their
    # own 200-px frame, measured with the detector (research/jobs/measure_template.py).
    template: tuple[Point, ...] = (
        (58.9, 59.4),
        (137.4, 59.2),
        (98.5, 107.6),
        (98.7, 143.7),
    )
    border: Literal["reflect", "black"] = "reflect"

    @model_validator(mode="after")
    def _consistent(self) -> FacesConfig:
        if self.working_pixels < self.scan_pixels:
            raise ValueError(
                f"working_pixels: must be >= scan_pixels ({self.scan_pixels}), "
                f"got {self.working_pixels!r}"
            )
        if not (self.refine_window == 0 or 1 <= self.refine_window <= 4):
            raise ValueError(f"refine_window: 0 (off) or 1-4, got {self.refine_window!r}")
        points = self.template
        if len(points) != 4 or any(not 0 <= value <= 200 for point in points for value in point):
            raise ValueError(
                "template: needs four [x, y] points inside the 200-px crop (right eye, left eye, "
                f"nose tip, mouth centre), got {self.template!r}"
            )
        return self


class AudienceConfig(Settings):
    """How a night's faces become audience tables (conf/audience.yaml; a campaign's `audience:`
    overrides any key): which source (camera, screen) each file is from, the time windows, and
    when a window has too few faces for shares."""

    enabled: Bool = True
    # The source: the path's segment at this position (negative: from the end; -1 is the file
    # name, -2 the folder holding it), or, when set, the named group `source` of this regular
    # expression searched in the path. A path that gives none is from the source "unknown".
    source_segment: Int = -2
    source_pattern: str = ""
    window_minutes: Annotated[int, Strict(), Field(ge=1, le=1440)] = 60
    # The clock windows are cut by (an IANA time zone: "Europe/Paris", "Asia/Kolkata"), which is
    # also the clock of a camera that writes its EXIF time without an offset.
    timezone: str = "UTC"
    min_faces: Positive = 10  # a window with fewer faces reports counts, no shares
    draws: Annotated[int, Strict(), Field(ge=20)] = 200  # bootstrap resamples (uncorrected shares)
    seed: Int = 0
    # Per head, a Dirichlet prior worth this many faces of the calibration's mix: shrinks a
    # window's shares towards it, for a head whose classes the model tells apart poorly
    # (chosen on the validation split: docs/audience.md).
    pseudo_faces: dict[
        Literal["age_group", "age_band", "gender", "race"], Annotated[float, Field(ge=0)]
    ] = {"age_group": 100.0}
    # Wider age bands, each the model's age groups it names (every group in one band): their
    # shares are reported too, as the head "age_band", corrected like the others. {}: no bands.
    age_bands: dict[str, list[str]] = {}
    # Heads whose intervals are for the mix the window's faces were drawn from, wider than for
    # the faces themselves: where the recalibrated probabilities describe a window far from the
    # calibration's mix less well than the narrower interval assumes (docs/audience.md).
    mix_intervals: list[Literal["age_group", "age_band", "gender", "race"]] = []
    # Per head, another head the model's errors on it depend on (ages by race): its interval also
    # holds its shares under a correction fitted on the labelled faces weighted so that their
    # true classes of that head come in the window's corrected shares of it (docs/audience.md).
    sensitive_to: dict[
        Literal["age_group", "age_band", "gender", "race"], Literal["gender", "race"]
    ] = {}

    @model_validator(mode="after")
    def _pattern(self) -> AudienceConfig:
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (ValueError, zoneinfo.ZoneInfoNotFoundError):
            raise ValueError(
                f"timezone: {self.timezone!r} is not a time zone; use an IANA name such as "
                "'Europe/Paris' or 'UTC'"
            ) from None
        seen: dict[str, str] = {}
        for band, groups in self.age_bands.items():
            if not groups:
                raise ValueError(f"age_bands: {band!r} names no age group")
            for group in groups:
                if group in seen:
                    raise ValueError(
                        f"age_bands: the age group {group!r} is in {seen[group]!r} and {band!r}"
                    )
                seen[group] = band
        for head, by in self.sensitive_to.items():
            if by == head:
                raise ValueError(f"sensitive_to: {head} to {by}: name another head")
            if by in self.sensitive_to:
                raise ValueError(
                    f"sensitive_to: {head} to {by}, which is sensitive itself; name a head that "
                    "is not"
                )
        if self.source_segment == 0:
            raise ValueError("source_segment: 0 is the path's root; use a negative position")
        if self.source_pattern:
            try:
                pattern = re.compile(self.source_pattern)
            except re.error as error:
                raise ValueError(f"source_pattern: not a regular expression: {error}") from None
            if "source" not in pattern.groupindex:
                raise ValueError(
                    f"source_pattern: {self.source_pattern!r} has no group named source, "
                    "as in (?P<source>[^/]+)"
                )
        return self


def load_audience(path: str | Path | None = None, changes: dict[str, Any] | None = None):
    """conf/audience.yaml, with `changes` (a campaign's `audience:` block) over it."""
    path = Path(path or CONF_DIR / "audience.yaml")
    data = _read_yaml(path) if path.is_file() else {}
    return validated(AudienceConfig, {**data, **(changes or {})}, str(path))


def detector_settings(faces: FacesConfig | str) -> FacesConfig | None:
    """The detector's settings for a face mode ("detect": conf/faces.yaml's), or None for
    "aligned": each file one face crop, as the training data."""
    if isinstance(faces, FacesConfig):
        return faces
    if faces not in FACE_MODES:
        raise ConfigError(f"faces: must be one of {', '.join(FACE_MODES)}, got {faces!r}")
    return load_faces() if faces == "detect" else None


def load_faces(path: str | Path | None = None) -> FacesConfig:
    path = path or CONF_DIR / "faces.yaml"
    return validated(FacesConfig, _read_yaml(path), str(path))


def load_labels(path: str | Path | None = None) -> LabelConfig:
    path = path or CONF_DIR / "labels.yaml"
    return validated(LabelConfig, _read_yaml(path), str(path))


def load_ingest(path: str | Path | None = None) -> IngestConfig:
    path = path or CONF_DIR / "ingest.yaml"
    return validated(IngestConfig, _read_yaml(path), str(path))


# ---------------------------------------------------------------------------------------------
# Sources of labelled faces

Gender = Literal["male", "female"]
Race = Literal["white", "black", "asian", "indian", "others"]
LABEL_FIELDS = ("file", "age", "gender", "race")


class SourceConfig(Settings):
    """conf/sources/NAME.yaml: a folder of labelled faces. Labels come from UTKFace-style file
    names (`labels: file_names`) or from a table (CSV with a header, or Parquet) whose `file`
    column is the image's path under `images`, with `age` (years, or a bin `lo-hi` / `70+`),
    `gender` and `race`; `gender` and `race` map the table's classes onto ours. A table that has
    no gender or no race (a set of one people's faces, say) names it in `unlabelled`: its faces
    teach and are judged on the other heads only."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]
    images: Annotated[str, Field(min_length=1)]
    labels: Annotated[str, Field(min_length=1)] = "file_names"
    columns: dict[Literal["file", "age", "gender", "race"], str] = Field(default_factory=dict)
    gender: dict[str, Gender] = Field(default_factory=dict)
    race: dict[str, Race] = Field(default_factory=dict)
    unlabelled: tuple[Literal["gender", "race"], ...] = ()
    # What its images are: photos, each face found as scoring finds it (`detect`), or aligned
    # crops like UTKFace's (`aligned`). An evaluation takes this mode unless told otherwise.
    faces: Literal["aligned", "detect"] = "detect"
    # A CSV table's encoding: `auto` reads it from the table (a byte-order mark, UTF-8, else
    # Windows-1252), or any name Python and Java both know (`cp1251`, `shift_jis`, `utf-16`).
    encoding: Annotated[str, Field(min_length=1)] = "auto"

    @field_validator("gender", "race", mode="before")
    @classmethod
    def _classes_as_written(cls, value: Any) -> Any:
        # A table's classes may be codes (`gender: {0: male, 1: female}`), which YAML reads as
        # numbers: they are the table's text all the same. Before, "unknown key: Input should
        # be a valid string".
        if isinstance(value, dict):
            return {
                str(key) if isinstance(key, int) and not isinstance(key, bool) else key: name
                for key, name in value.items()
            }
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        if value != "auto":
            try:
                codecs.lookup(value)
            except LookupError:
                raise ValueError(f"no encoding {value!r} (`auto`, or cp1252, utf-16…)") from None
        return value

    @model_validator(mode="after")
    def _unlabelled_from_a_table(self) -> SourceConfig:
        if self.unlabelled and self.from_names:
            raise ValueError("`unlabelled` is for a labels table: file names carry every label")
        return self

    @property
    def from_names(self) -> bool:
        return self.labels == "file_names"

    def column(self, field: str) -> str:
        """The table's name for one of LABEL_FIELDS."""
        return self.columns.get(field, field)


def named_file(kind: str, name: str, folder: str | Path | None = None) -> Path:
    """conf/KINDs/NAME.yaml (or NAME.yaml in `folder`), or an error naming the ones there are."""
    folder = Path(folder) if folder else CONF_DIR / f"{kind}s"
    path = folder / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
        raise ConfigError(f"no {kind} {name!r}: {path} does not exist (known: {known})")
    return path


def load_source(name: str, folder: str | Path | None = None) -> SourceConfig:
    """conf/sources/NAME.yaml, its `images` and `labels` paths taken from the home."""
    path = named_file("source", name, folder)
    data = _read_yaml(path)
    data.setdefault("name", name)
    for key in ("images", "labels"):
        value = data.get(key)
        if isinstance(value, str) and value != "file_names" and "://" not in value:
            data[key] = str(from_home(value))
    return validated(SourceConfig, data, str(path))


def folder_source(images: str) -> SourceConfig:
    """A folder of faces labelled by UTKFace-style names (a job's plain `--input DIR`)."""
    return SourceConfig(name="input", images=images, faces="aligned")


# ---------------------------------------------------------------------------------------------
# Training


class ModelConfig(Settings):
    """The network: one Conv-BN-activation-MaxPool cycle per entry of `filters`."""

    filters: tuple[Positive, ...] = Field((16, 32, 64, 128, 256, 512), min_length=1)
    convs_per_block: Positive = 1
    activation: Literal["relu", "leaky_relu"] = "leaky_relu"
    dense_units: tuple[Positive, ...] = (256, 128)
    dropout: Fraction = 0.4
    augment: Bool = True
    # With augment: light and colour as cameras see them too (sparkface.train.augment).
    augment_light: Bool = False
    # With augment: this share of the training faces shown in grey (their luminance in all three
    # channels), so that colour, which light and cameras change, counts for less.
    augment_gray: Fraction = 0.0
    # Blocks (counted from 0) whose convolutions are depthwise-separable (a 3 x 3 per channel,
    # then a 1 x 1 across them: about an eighth of the multiply-adds at these widths), but the
    # first on the RGB face: room for wider early blocks at the same scoring cost.
    separable_blocks: tuple[Annotated[int, Strict(), Field(ge=0)], ...] = ()

    @model_validator(mode="after")
    def _blocks(self) -> ModelConfig:
        outside = sorted(b for b in self.separable_blocks if b >= len(self.filters))
        if outside:
            raise ValueError(
                f"separable_blocks: no block {outside} (the network has {len(self.filters)}, "
                f"0 to {len(self.filters) - 1})"
            )
        return self


class TrainingConfig(Settings):
    """How the network is fitted: optimiser, schedule, weights, start and teacher."""

    batch_size: Positive = 64
    epochs: Positive = 40
    learning_rate: Annotated[float, Strict(), Field(ge=0)] = 0.002
    weight_decay: Annotated[float, Strict(), Field(ge=0)] = 0.0001
    patience: Positive = 6
    shuffle_buffer: Positive = 4096
    # Threads that augment the train stream's batches side by side (sparkface.train.shards); a
    # GPU outruns one. 1 keeps the augmentation of the recipes trained before it came.
    augment_workers: Positive = 1
    class_weights: Bool = True
    # Each face's weight in the gender loss times its race's factor here (a race not named: 1;
    # a face without a race label: 1): more of the loss where gender is hardest to tell.
    gender_weight_by_race: dict[Race, Annotated[float, Strict(), Field(ge=0)]] = Field(
        default_factory=dict
    )
    # The same by age in years, `lo-hi` or `lo+`: a face whose age (or whole bin) lies in a range
    # has its gender weight times that range's factor.
    gender_weight_by_age: dict[str, Annotated[float, Strict(), Field(ge=0)]] = Field(
        default_factory=dict
    )
    loss_weights: dict[Literal["age_group", "gender", "race", "age"], Number] = Field(
        default_factory=lambda: dict.fromkeys(HEADS, 1.0)
    )
    flip_test_time: Bool = True
    steps_per_epoch: Positive | None = None  # None: one pass over the training split
    xla: Bool = False  # compile the training step with XLA on the CPU too (accelerators: always)
    warmup_epochs: Annotated[int, Strict(), Field(ge=0)] = 0
    initial_model: str | None = None  # a Keras model package whose weights training starts from
    initial_member: Annotated[int, Strict(), Field(ge=0)] | None = None  # of an ensemble
    # Training from further back: the layers from `fresh_from` on (the network's order, e.g.
    # conv3_0) start from fresh weights rather than the initial model's, and those up to and
    # including `frozen_through` (e.g. pool2) keep the initial model's and are not trained
    # (their batch normalisation in inference mode). Both need initial_model.
    fresh_from: str | None = None
    frozen_through: str | None = None
    teacher: str | None = None  # a model package whose predictions the targets mix in
    teacher_share: Fraction = 0.5  # the teacher's share of each target (the labels': the rest)
    # > 0: the weights of the last this many epochs are averaged, each epoch at
    # average_learning_rate (sparkface.train.averaging); kept only if validation says so.
    average_epochs: Annotated[int, Strict(), Field(ge=0)] = 0
    average_learning_rate: Number = 0.0001

    @model_validator(mode="after")
    def _schedule(self) -> TrainingConfig:
        if self.warmup_epochs >= self.epochs:
            raise ValueError(f"warmup_epochs: must be 0 to epochs - 1, got {self.warmup_epochs}")
        if self.average_epochs >= self.epochs - self.warmup_epochs:
            raise ValueError(
                "average_epochs: must be 0 to epochs - warmup_epochs - 1, "
                f"got {self.average_epochs}"
            )
        rate = self.average_learning_rate
        if self.average_epochs and not 0 < rate <= self.learning_rate:
            raise ValueError(
                f"average_learning_rate: must be > 0 and <= learning_rate, got {rate!r}"
            )
        if self.initial_member is not None and self.initial_model is None:
            raise ValueError("initial_member: needs initial_model (an ensemble package)")
        for name in ("fresh_from", "frozen_through"):
            if getattr(self, name) is not None and self.initial_model is None:
                raise ValueError(f"{name}: needs initial_model (the weights the rest keeps)")
        self.gender_age_ranges()  # each key a range of years
        return self

    def gender_age_ranges(self) -> list[tuple[int, int, float]]:
        """`gender_weight_by_age` as (first year, last year, factor)."""
        ranges = []
        for key, factor in self.gender_weight_by_age.items():
            match = _BIN.match(key)
            low = int(match.group(1)) if match else 0
            high = int(match.group(2) or MAX_AGE) if match else -1
            if high < low:
                raise ValueError(f"gender_weight_by_age: {key!r} is not 'lo-hi' or 'lo+' years")
            ranges.append((low, high, factor))
        return ranges


# What a training face can be shown as before the detector finds it (TrainFacesConfig.views):
# the crop itself, pasted into a camera-like frame, or re-framed as in sparkface.train.frames.
TrainingView = Literal["crop", "frame", "looser", "tighter", "shifted", "tilted"]


class TrainFacesConfig(Settings):
    """How preparation makes the training faces. `aligned`: each crop as it is (centre square).
    `detect`: each face found and aligned by the detector as `--faces detect` does when scoring
    (conf/faces.yaml's settings), the train split's faces each first shown as one of `views`
    (shares that sum to 1, chosen by a hash of the file name); validation and test faces as
    crops."""

    mode: FaceMode = "aligned"
    views: dict[TrainingView, Fraction] = Field(default_factory=lambda: {"crop": 1.0}, min_length=1)

    @model_validator(mode="after")
    def _shares(self) -> TrainFacesConfig:
        if abs(sum(self.views.values()) - 1.0) > 1e-6:
            raise ValueError(f"views: shares must sum to 1, got {self.views!r}")
        return self


class TrainConfig(Settings):
    """A training recipe (conf/models/*.yaml); the defaults are the shipped lineage's first
    recipe, conf/models/sparkface-cnn.yaml."""

    image_size: Annotated[int, Strict(), Field(ge=16, le=512)] = 48
    min_age: Annotated[int, Strict(), Field(ge=0)] = 7
    # The share of each class's faces kept for training (the study kept half the White faces).
    sample_fractions: dict[Literal["race", "gender"], dict[str, Fraction]] = Field(
        default_factory=lambda: {"race": {"white": 1.0}}
    )
    # Shares of faces held out, by a hash of the file name (stable across reruns).
    split: dict[Literal["validation", "test"], Fraction] = Field(
        default_factory=lambda: {"validation": 0.1, "test": 0.1}
    )
    shards: Positive = 8
    seed: Int = 1337
    model: ModelConfig = Field(
        default_factory=lambda: ModelConfig(filters=(16, 32, 64, 128, 256, 384), convs_per_block=2)
    )
    training: TrainingConfig = Field(
        default_factory=lambda: TrainingConfig(epochs=36, patience=8, xla=True)
    )
    faces: TrainFacesConfig = Field(default_factory=TrainFacesConfig)
    # Named sources of conf/sources/ and the weight of each one's faces in the loss; empty: the
    # job's --input folder, labelled by its file names, weight 1.
    sources: dict[str, Annotated[float, Strict(), Field(gt=0)]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _classes_and_split(self) -> TrainConfig:
        classes = {"race": RACES, "gender": GENDERS}
        for column, fractions in self.sample_fractions.items():
            unknown = sorted(set(fractions) - set(classes[column]))
            if unknown:
                raise ValueError(
                    f"sample_fractions.{column}: unknown class(es) {unknown}; "
                    f"known: {list(classes[column])}"
                )
        if sum(self.split.values()) >= 1.0:
            raise ValueError("split: validation + test must leave faces for training")
        return self


def train_config_from_dict(data: dict[str, Any], source: str = "train config") -> TrainConfig:
    return validated(TrainConfig, data, source)


# Top-level keys whose mapping a recipe replaces whole when it names them: a recipe's `sources`
# are the sources it trains on, not more sources beside those of the one it extends.
WHOLE_KEYS = frozenset({"sources"})


def _merged(
    base: dict[str, Any], changes: dict[str, Any], whole: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """`base` with `changes` applied: mappings merge key by key (but those of `whole`), anything
    else is replaced."""
    merged = dict(base)
    for key, value in changes.items():
        if key not in whole and isinstance(value, dict) and isinstance(merged.get(key), dict):
            value = _merged(merged[key], value)
        merged[key] = value
    return merged


def read_extending(path: str | Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A YAML mapping whose optional `extends: conf/models/OTHER.yaml` (from the home, as every
    path under conf/) names a file it starts from: its own keys change the other's, nested
    mappings key by key, but `sources`, which a recipe that names them replaces whole. So two
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
    return _merged(read_extending(from_home(base), (*chain, path)), data, WHOLE_KEYS)


def from_home(path: str) -> Path:
    """A path from a file under conf/: relative ones are taken from the project's home, and `~`
    is the user's home, as a shell reads it (a YAML file's `~/cams` was a folder named `~`)."""
    return (CONF_DIR.parent / Path(path).expanduser()).resolve()


def load_train(path: str | Path | None = None) -> TrainConfig:
    """A training recipe; it may extend another (see `read_extending`). Its `initial_model` and
    `teacher` are taken from the home; `require_packages` checks they exist before training."""
    path = path or CONF_DIR / "models" / "sparkface-cnn.yaml"
    data = read_extending(path)
    training = data.get("training")
    if isinstance(training, dict):
        for key in ("initial_model", "teacher"):
            if isinstance(training.get(key), str) and "://" not in training[key]:
                training[key] = str(from_home(training[key]))
    return train_config_from_dict(data, str(path))


def require_packages(config: TrainConfig, source: str = "training") -> None:
    """Stop before any work when the recipe's initial model or teacher is not a model package
    on disk (a recipe validates without them: `make model-lineage` builds them in order)."""
    settings = config.training
    for key in ("initial_model", "teacher"):
        package = getattr(settings, key)
        if package is None:
            continue
        if not (Path(package) / "model.json").is_file():
            raise ConfigError(
                f"{source}: training.{key}: no model package (model.json) in {package!r}; "
                "`make model-lineage` builds the recipes' packages in order"
            )
        if key == "initial_model" and not (Path(package) / RUNTIME_FILES["keras"]).is_file():
            raise ConfigError(
                f"{source}: training.initial_model: {package!r} is not a Keras package "
                f"({RUNTIME_FILES['keras']}); training starts from Keras weights"
            )
