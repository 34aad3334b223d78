"""Faces drawn on their image: each face's box, its landmarks and its predicted labels, for the
README's example and the detection report."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from PIL import Image, ImageDraw

COLOURS = ((255, 210, 0), (0, 200, 255), (255, 80, 160), (120, 255, 120))


def label(row: Mapping) -> str:
    """gender, race, age group (age in years) of a scored row."""
    return f"{row['gender']}, {row['race']}, {row['age_group']} ({row['age_years']:.0f})"


def draw_faces(image: Image.Image, rows: Iterable[Mapping]) -> Image.Image:
    """A copy of the RGB image with every scored row's face_box, face_landmarks and labels."""
    drawn = image.convert("RGB").copy()
    pen = ImageDraw.Draw(drawn)
    width = max(2, round(max(drawn.size) / 400))
    for index, row in enumerate(rows):
        box = row.get("face_box")
        if row.get("status") != "ok" or not box:
            continue
        colour = COLOURS[index % len(COLOURS)]
        x, y, w, h = box["x"], box["y"], box["width"], box["height"]
        pen.rectangle((x, y, x + w, y + h), outline=colour, width=width)
        for point in (row.get("face_landmarks") or {}).values():
            r = width + 1
            pen.ellipse(
                (point["x"] - r, point["y"] - r, point["x"] + r, point["y"] + r), fill=colour
            )
        text = f"{label(row)} {row['face_confidence']:.2f}"
        left, top, right, bottom = pen.textbbox((x, y), text)
        top_y = y - (bottom - top) - 4 if y - (bottom - top) - 4 > 0 else y + h + 2
        pen.rectangle((x, top_y, x + right - left + 4, top_y + bottom - top + 4), fill=colour)
        pen.text((x + 2, top_y + 1), text, fill=(0, 0, 0))
    return drawn


def side_by_side(images: list[Image.Image]) -> Image.Image:
    """The images in one row, top-aligned, on white."""
    height = max(image.height for image in images)
    sheet = Image.new("RGB", (sum(image.width for image in images), height), (255, 255, 255))
    left = 0
    for image in images:
        sheet.paste(image, (left, 0))
        left += image.width
    return sheet
