"""The night's audience as one self-contained HTML page a marketer can open: no server, no file
fetched; the tables travel inside it as JSON and a small script draws the charts (SVG).

It holds what the audience tables hold (sources, windows, counts, shares): no path, box or face.
"""

from __future__ import annotations

import html
import json
from datetime import datetime
from typing import Any

import pandas as pd

from sparkface.core.contract import CLASS_HEADS

HEAD_TITLES = {
    "age_band": "Age band",
    "age_group": "Age group",
    "gender": "Gender",
    "race": "Race",
}


def _time(value: Any, zone: str) -> str | None:
    """A window's start (an instant; without a zone: UTC's) on `zone`'s clock."""
    if pd.isna(value):
        return None
    instant = pd.Timestamp(value)
    instant = instant.tz_localize("UTC") if instant.tzinfo is None else instant
    return instant.tz_convert(zone).strftime("%Y-%m-%d %H:%M")


def report_data(
    counts: pd.DataFrame, shares: pd.DataFrame, about: dict[str, Any]
) -> dict[str, Any]:
    """The page's data: per source its windows (counts, and shares where reported) and its
    night's shares, with the campaign's facts in `about`."""
    zone = about.get("timezone", "UTC")
    present = set(shares["head"]) if len(shares) else set()
    heads = {
        head: title for head, title in HEAD_TITLES.items() if head in CLASS_HEADS or head in present
    }
    sources = []
    for source, windows in counts.sort_values(["source", "window_start"]).groupby("source"):
        mine = shares[shares["source"] == source]
        night = mine[mine["span"] == "night"]
        by_window = mine[mine["span"] == "window"]
        sources.append(
            {
                "source": source,
                "images": int(windows["images"].sum()),
                "images_with_face": int(windows["images_with_face"].sum()),
                "faces": int(windows["faces"].sum()),
                "errors": int(windows["errors"].sum()),
                "windows": int(len(windows)),
                "windows_with_shares": int(windows["shares_reported"].sum()),
                "time_basis": _basis(windows),
                "per_window": [
                    {
                        "start": _time(row.window_start, zone),
                        "images": int(row.images),
                        "faces": int(row.faces),
                        "shares_reported": bool(row.shares_reported),
                        "shares": _shares(
                            by_window[by_window["window_start"] == row.window_start], heads
                        ),
                    }
                    for row in windows.itertuples()
                ],
                "night": _shares(night, heads),
            }
        )
    return {"about": about, "heads": heads, "sources": sources}


def _basis(windows: pd.DataFrame) -> str:
    exif, by_file = windows["images_timed_by_exif"].sum(), windows["images_timed_by_file"].sum()
    if by_file == 0:
        return "capture time (EXIF)"
    if exif == 0:
        return "file modification time"
    return f"EXIF for {exif}, file time for {by_file} images"


def _shares(rows: pd.DataFrame, heads: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    result: dict[str, list[dict[str, Any]]] = {}
    for head in heads:
        part = rows[rows["head"] == head]
        result[head] = [
            {
                "class": row["class"],
                "share": round(float(row["share"]), 4),
                "low": round(float(row["share_low"]), 4),
                "high": round(float(row["share_high"]), 4),
                "averaged": round(float(row["share_averaged"]), 4),
                "corrected": bool(row["corrected"]),
            }
            for _, row in part.iterrows()
        ]
    return result


def page_title(data: dict[str, Any]) -> str:
    """A campaign's name and night; for any other scored output, the hours its windows span."""
    about = data["about"]
    named = " ".join(filter(None, (about.get("campaign"), about.get("night"))))
    if named:
        return f"Audience: {named}"
    starts = sorted(
        window["start"]
        for source in data["sources"]
        for window in source["per_window"]
        if window["start"]
    )
    if not starts:
        return "Audience"
    span = starts[0] if starts[0] == starts[-1] else f"{starts[0]} to {starts[-1]}"
    return f"Audience: {span} ({about.get('timezone', 'UTC')})"


def render_report(data: dict[str, Any]) -> str:
    """The page: the template with the data in it."""
    # Nothing in the data can close or open an element: "<", ">" and "&" travel as JSON escapes.
    payload = (
        json.dumps(data, default=str)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )
    return PAGE.replace("{{title}}", html.escape(page_title(data))).replace("{{data}}", payload)


def now_text() -> str:
    return datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{title}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1em; margin: 1em 0 0.3em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.note { color: #666; font-size: 0.9em; }
.charts { display: flex; flex-wrap: wrap; gap: 1.5em; }
.chart { flex: 0 0 auto; }
svg text { font-size: 11px; fill: #333; }
.bar { fill: #4e79a7; }
.whisker { stroke: #222; stroke-width: 1.5; }
.averaged { fill: #e15759; }
</style>
</head>
<body>
<h1 id="title">{{title}}</h1>
<p class="note" id="about"></p>
<h2>Sources this night</h2>
<table id="sources"><thead><tr><th>source</th><th>images</th><th>with a face</th>
<th>faces</th><th>unreadable</th><th>windows</th><th>with shares</th><th>timed by</th></tr>
</thead><tbody></tbody></table>
<p class="note">Shares are estimated from the model's probabilities and corrected for its known
errors, measured on labelled faces; the bars' whiskers are 95% intervals; the red tick is the
uncorrected average. A window with fewer faces than the minimum shows counts only. This page
holds counts and shares only: no image, file name or face position.</p>
<div id="per-source"></div>
<script type="application/json" id="data">{{data}}</script>
<script>
"use strict";
const data = JSON.parse(document.getElementById("data").textContent);
const NS = "http://www.w3.org/2000/svg";
function el(name, attributes, parent) {
  const node = document.createElementNS(NS, name);
  for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
  if (parent) parent.appendChild(node);
  return node;
}
function text(parent, x, y, content, anchor) {
  const node = el("text", {x: x, y: y, "text-anchor": anchor || "start"}, parent);
  node.textContent = content;
  return node;
}
function html(tag, content, parent) {
  const node = document.createElement(tag);
  if (content !== undefined) node.textContent = content;
  if (parent) parent.appendChild(node);
  return node;
}
function percent(value) { return (100 * value).toFixed(1) + "%"; }

function facesChart(source) {
  const windows = source.per_window, width = 520, height = 180, left = 40, bottom = 40;
  const svg = el("svg", {width: width, height: height, class: "faces-chart",
                         "data-source": source.source});
  const most = Math.max(1, ...windows.map(w => w.faces));
  const step = (width - left - 10) / Math.max(1, windows.length);
  windows.forEach((w, i) => {
    const barHeight = (height - bottom - 10) * w.faces / most;
    const bar = el("rect", {class: "bar", x: left + i * step + 1, y: height - bottom - barHeight,
                            width: Math.max(1, step - 2), height: barHeight,
                            "data-faces": w.faces}, svg);
    el("title", {}, bar).textContent = w.start + ": " + w.faces + " faces";
    if (windows.length <= 24 || i % Math.ceil(windows.length / 12) === 0) {
      text(svg, left + i * step + step / 2, height - bottom + 14, w.start.slice(11), "middle");
    }
  });
  text(svg, left - 4, 14, String(most), "end");
  text(svg, left - 4, height - bottom, "0", "end");
  text(svg, left, height - 8, "faces per window (start, " + (about.timezone || "UTC") + ")");
  return svg;
}

function sharesChart(source, head, rows) {
  const width = 340, rowHeight = 22, left = 70, top = 8;
  const height = top + rows.length * rowHeight + 24;
  const svg = el("svg", {width: width, height: height, class: "shares-chart",
                         "data-source": source.source, "data-head": head});
  const scale = value => left + (width - left - 60) * value;
  rows.forEach((row, i) => {
    const y = top + i * rowHeight;
    text(svg, left - 6, y + 14, row.class, "end");
    const bar = el("rect", {class: "bar", x: left, y: y + 3, width: scale(row.share) - left,
                            height: rowHeight - 8, "data-class": row.class,
                            "data-share": row.share}, svg);
    el("title", {}, bar).textContent = row.class + ": " + percent(row.share) + " (95% " +
      percent(row.low) + " to " + percent(row.high) + ")";
    el("line", {class: "whisker", x1: scale(row.low), x2: scale(row.high), y1: y + 11,
                y2: y + 11}, svg);
    el("rect", {class: "averaged", x: scale(row.averaged) - 1, y: y + 2, width: 2,
                height: rowHeight - 6}, svg);
    text(svg, scale(row.high) + 4, y + 14, percent(row.share));
  });
  text(svg, left, height - 6, rows.length && rows[0].corrected ? "corrected shares, night"
                                                                : "averaged shares, night");
  return svg;
}

const about = data.about;
document.getElementById("about").textContent = [
  about.campaign ? "Campaign " + about.campaign : null,
  about.night ? "night " + about.night : null,
  about.model_version ? "model " + about.model_version : null,
  "windows of " + about.window_minutes + " minutes (" + (about.timezone || "UTC") + ")",
  "shares from " + about.min_faces + " faces a window",
  about.generated_at ? "made " + about.generated_at : null,
].filter(Boolean).join(" · ");

const body = document.querySelector("#sources tbody");
if (!data.sources.length) {
  const row = html("tr", undefined, body);
  const cell = html("td", "No images this night.", row);
  cell.colSpan = 8;
}
for (const source of data.sources) {
  const row = html("tr", undefined, body);
  row.className = "source-row";
  for (const value of [source.source, source.images, source.images_with_face, source.faces,
                       source.errors, source.windows, source.windows_with_shares,
                       source.time_basis]) {
    html("td", String(value), row);
  }
  const section = html("section", undefined, document.getElementById("per-source"));
  section.className = "source";
  section.dataset.source = source.source;
  html("h2", "Source " + source.source, section);
  const charts = html("div", undefined, section);
  charts.className = "charts";
  const facesBox = html("div", undefined, charts);
  facesBox.className = "chart";
  html("h3", "Faces per window", facesBox);
  facesBox.appendChild(facesChart(source));
  for (const head of Object.keys(data.heads)) {
    const box = html("div", undefined, charts);
    box.className = "chart";
    html("h3", data.heads[head], box);
    const rows = source.night[head] || [];
    if (rows.length) box.appendChild(sharesChart(source, head, rows));
    else html("p", "Too few faces for shares.", box).className = "note";
  }
  const table = html("table", undefined, section);
  const head = html("tr", undefined, html("thead", undefined, table));
  const banded = "age_band" in data.heads;
  for (const name of ["window", "images", "faces", "women (95%)", "most common age group"]
                       .concat(banded ? ["most common age band (95%)"] : [])) {
    html("th", name, head);
  }
  const rows = html("tbody", undefined, table);
  for (const w of source.per_window) {
    const tr = html("tr", undefined, rows);
    html("td", w.start, tr);
    html("td", String(w.images), tr);
    html("td", String(w.faces), tr);
    const female = (w.shares.gender || []).find(r => r.class === "female");
    html("td", w.shares_reported && female ? percent(female.share) + " (" + percent(female.low) +
         "–" + percent(female.high) + ")" : "–", tr);
    const ages = w.shares.age_group || [];
    const top = ages.length ? ages.reduce((a, b) => (b.share > a.share ? b : a)) : null;
    html("td", w.shares_reported && top ? top.class + " " + percent(top.share) : "–", tr);
    if (banded) {
      const bands = w.shares.age_band || [];
      const band = bands.length ? bands.reduce((a, b) => (b.share > a.share ? b : a)) : null;
      html("td", w.shares_reported && band ? band.class + " " + percent(band.share) + " (" +
           percent(band.low) + "–" + percent(band.high) + ")" : "–", tr);
    }
  }
}
document.body.dataset.rendered = "yes";
</script>
</body>
</html>
"""
