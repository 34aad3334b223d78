"""Labels from UTKFace-style file names: `age_gender_race_datetime.jpg`, as column expressions.

Names that do not parse are kept with a `label_error` that says what is wrong.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from sparkface.core.config import AgeGroups
from sparkface.core.contract import GENDERS, MAX_AGE, RACES

LABEL_COLUMNS = ("age", "gender", "race", "captured_at", "label_error")


def _field(parts: Column, index: int) -> Column:
    """Field `index` of the split name, without what follows a dot and without spaces; null if
    the name has fewer fields."""
    raw = F.get(parts, index)
    return F.nullif(F.trim(F.regexp_replace(raw, r"\..*$", "")), F.lit(""))


def _digits(field: Column) -> Column:
    return field.rlike(r"^[0-9]+$")


def _name_to_index(field: Column, names: tuple[str, ...]) -> Column:
    return F.when(field.isin([str(i) for i in range(len(names))]), field.try_cast("int"))


def parse_labels(df: DataFrame, max_age: int = MAX_AGE) -> DataFrame:
    """Add age, gender, race, captured_at and label_error (null when the name parsed) from the
    `file_name` column."""
    parts = F.split(F.trim(F.col("file_name")), "_")
    age_text, gender_text, race_text = (_field(parts, i) for i in range(3))
    date_text = F.regexp_extract(F.coalesce(F.get(parts, 3), F.lit("")), r"^\s*([0-9]{14})", 1)
    age_value = F.when(_digits(age_text) & (F.length(age_text) <= 4), age_text.try_cast("int"))
    gender_index = _name_to_index(gender_text, GENDERS)
    race_index = _name_to_index(race_text, RACES)

    age_error = (
        F.when(age_text.isNull(), F.lit("missing age field"))
        .when(~_digits(age_text), F.format_string("age is not a whole number: '%s'", age_text))
        .when(
            age_value.isNull() | (age_value > max_age),
            F.format_string(f"age out of range 0-{max_age}: %s", age_text),
        )
    )
    gender_error = F.when(gender_text.isNull(), F.lit("missing gender field")).when(
        gender_index.isNull(),
        F.format_string("gender must be 0 (male) or 1 (female): '%s'", gender_text),
    )
    race_error = (
        F.when(race_text.isNull(), F.lit("missing race field"))
        .when(
            _digits(race_text) & (F.length(race_text) >= 8),
            F.format_string("missing race field (found the date '%s' in its place)", race_text),
        )
        .when(race_index.isNull(), F.format_string("race must be 0-4: '%s'", race_text))
    )
    label_error = F.nullif(F.concat_ws("; ", age_error, gender_error, race_error), F.lit(""))
    labelled = label_error.isNull()
    names_gender = F.array(*[F.lit(name) for name in GENDERS])
    names_race = F.array(*[F.lit(name) for name in RACES])
    return df.select(
        "*",
        F.when(labelled, age_value).alias("age"),
        F.when(labelled, F.get(names_gender, gender_index)).alias("gender"),
        F.when(labelled, F.get(names_race, race_index)).alias("race"),
        F.try_to_timestamp(F.nullif(date_text, F.lit("")), F.lit("yyyyMMddHHmmss")).alias(
            "captured_at"
        ),
        label_error.alias("label_error"),
    )


def age_group_index(age: Column, groups: AgeGroups) -> Column:
    """The ordinal index of an age's bin (0 for the first), -1 below the first bin."""
    expression = F.when(age < groups.lower_bounds[0], F.lit(-1))
    for index, lower in enumerate(groups.lower_bounds):
        upper = groups.upper_bounds[index]
        condition = age >= lower if upper is None else age.between(lower, upper)
        expression = expression.when(condition, F.lit(index))
    return expression


def age_group(age: Column, groups: AgeGroups) -> Column:
    """The name of an age's bin, or e.g. '<7' below the first bin; null for a null age."""
    index = age_group_index(age, groups)
    names = F.array(*[F.lit(name) for name in groups.names])
    return F.when(index == -1, F.lit(groups.below_first)).otherwise(F.get(names, index))


def with_age_group(df: DataFrame, groups: AgeGroups) -> DataFrame:
    """Add `age_group` from `age`."""
    return df.withColumn("age_group", age_group(F.col("age"), groups))
