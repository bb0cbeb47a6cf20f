"""Published results beside the tuned comparison: ``published_miou``, ``published_baseline``,
``published_delta`` and a line per matching row under the Markdown table.

The published numbers are data, one file per source in ``conf/published/`` (conf/published/README.md). A row
of the comparison matches a published row when its dataset, its protocol (the ``reproduction.protocol``
label its finals were composed with, ``conf/protocol/<name>.yaml``), its teacher and student presets
and its method preset are the published row's; the baseline row matches any published row of its
dataset, protocol and pair (its published mIoU is the reported baseline). Only val-split rows match
(the report's finals are evaluated on val). Where several sources report one comparison, the first
file in name order gives the columns and the Markdown line names the others that differ.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.errors import ConfigError
from bench.paths import conf_dir

COLUMNS = ["published_miou", "published_baseline", "published_delta"]
# One published row: the source, the comparison it belongs to, and the two numbers.
FIELDS = (
    "paper",
    "arxiv",
    "source",
    "table",
    "dataset",
    "split",
    "protocol",
    "setting",
    "teacher",
    "teacher_paper",
    "student",
    "student_paper",
    "method",
    "preset",
    "miou",
    "baseline",
)
FILE_KEYS = {"paper", "arxiv", "source", "tables"}
TABLE_KEYS = {"table", "dataset", "split", "protocol", "setting", "teacher", "teacher_paper", "rows"}
ROW_FIELDS = ("student", "student_paper", "method", "preset", "miou", "baseline")
# What identifies one published number: two rows with this key must agree.
KEY = ("paper", "table", "dataset", "split", "protocol", "teacher_paper", "student_paper", "method")


@dataclass(frozen=True)
class Published:
    """One published number and where it comes from (see :data:`FIELDS`)."""

    paper: str
    arxiv: str
    source: str
    table: str
    dataset: str
    split: str
    protocol: str | None
    setting: str | None
    teacher: str | None
    teacher_paper: str
    student: str | None
    student_paper: str
    method: str
    preset: str | None
    miou: float
    baseline: float | None

    @property
    def delta(self) -> float | None:
        return None if self.baseline is None else self.miou - self.baseline

    @property
    def cites(self) -> str:
        return f"{self.paper} (arXiv {self.arxiv}; {self.source}, {self.table})"


def published_dir() -> Path:
    return conf_dir() / "published"


def read_file(path: Path) -> list[Published]:
    """The rows of one source file; a malformed file is a :class:`ConfigError` naming it and the cause."""
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or set(data) != FILE_KEYS:
        raise ConfigError(f"{path}: needs exactly the keys {sorted(FILE_KEYS)}")
    out = []
    for t in data["tables"]:
        if set(t) - TABLE_KEYS or not {"table", "dataset", "split", "protocol", "teacher", "rows"} <= set(t):
            raise ConfigError(f"{path}: table {t.get('table')!r} needs the keys {sorted(TABLE_KEYS)}")
        for row in t["rows"]:
            if len(row) != len(ROW_FIELDS):
                raise ConfigError(f"{path}: row {row} of {t['table']!r} needs {', '.join(ROW_FIELDS)}")
            values = dict(zip(ROW_FIELDS, row, strict=True))
            out.append(
                Published(
                    paper=str(data["paper"]),
                    arxiv=str(data["arxiv"]),
                    source=str(data["source"]),
                    table=str(t["table"]),
                    dataset=str(t["dataset"]),
                    split=str(t["split"]),
                    protocol=t["protocol"],
                    setting=t.get("setting"),
                    teacher=t["teacher"],
                    teacher_paper=str(t.get("teacher_paper") or ""),
                    student=values["student"],
                    student_paper=str(values["student_paper"]),
                    method=str(values["method"]),
                    preset=values["preset"],
                    miou=float(values["miou"]),
                    baseline=None if values["baseline"] is None else float(values["baseline"]),
                )
            )
    return out


def load(folder: Path | None = None) -> list[Published]:
    """Every published row, files in name order."""
    folder = published_dir() if folder is None else folder
    return [r for path in sorted(folder.glob("*.yaml")) for r in read_file(path)]


def duplicates(rows: Iterable[Published]) -> list[str]:
    """Keys (:data:`KEY`) that hold two different numbers, one line each."""
    seen: dict[tuple, tuple[float, float | None]] = {}
    out = []
    for r in rows:
        key = tuple(getattr(r, k) for k in KEY)
        numbers = (r.miou, r.baseline)
        if key in seen and seen[key] != numbers:
            out.append(f"{key}: {seen[key]} and {numbers}")
        seen.setdefault(key, numbers)
    return out


def matches(
    rows: Sequence[Published],
    dataset: str,
    protocol: str | None,
    teacher: str | None,
    student: str,
    method: str,
) -> list[Published]:
    """The published rows one comparison row reads against (empty: none). A protocol, teacher or
    student that is not a preset (null) matches nothing."""
    if protocol is None or teacher is None:
        return []
    found = [
        r
        for r in rows
        if r.split == "val"
        and (r.dataset, r.protocol, r.teacher, r.student) == (dataset, protocol, teacher, student)
        and (method == "baseline" or r.preset == method)
    ]
    if method == "baseline":
        found = [r for r in found if r.baseline is not None]
    return found


def columns(found: Sequence[Published], method: str) -> dict[str, float]:
    """The three columns from the first match (NaN where nothing matches or nothing was reported)."""
    nan = math.nan
    if not found:
        return dict.fromkeys(COLUMNS, nan)
    first = found[0]
    if method == "baseline":
        base = first.baseline
        return {"published_miou": base, "published_baseline": base, "published_delta": 0.0}
    base = nan if first.baseline is None else first.baseline
    delta = nan if first.delta is None else first.delta
    return {"published_miou": first.miou, "published_baseline": base, "published_delta": delta}


def _group(dataset: str, student: str, teacher: Any, method: str) -> tuple[str, str, str | None, str]:
    """A method's finals within a comparison; the baseline's whatever teacher its rows name."""
    return dataset, student, None if method == "baseline" or not isinstance(teacher, str) else teacher, method


def protocols(runs: Any) -> dict[tuple[str, str, str | None, str], str | None]:
    """The protocol label of each method's finals (their ``config``), keyed by :func:`_group`; None
    where the finals ran without one or disagree."""
    out: dict[tuple, set] = {}
    for r in runs.itertuples():
        config = r.config if isinstance(r.config, dict) else {}
        label = (config.get("reproduction") or {}).get("protocol")
        out.setdefault(_group(r.dataset, r.student, r.teacher, r.method), set()).add(label)
    return {k: next(iter(v)) if len(v) == 1 else None for k, v in out.items()}


def add_columns(rows: list[dict[str, Any]], runs: Any, published: Sequence[Published] | None = None) -> None:
    """Add :data:`COLUMNS` and ``published_source`` to each comparison row (in place)."""
    published = load() if published is None else published
    labels = protocols(runs)
    for row in rows:
        protocol = labels.get(_group(row["dataset"], row["student"], row["teacher"], row["method"]))
        found = matches(published, row["dataset"], protocol, row["teacher"], row["student"], row["method"])
        row.update(columns(found, row["method"]))
        row["published_source"] = "; ".join(dict.fromkeys(r.cites for r in found))
        row["protocol"] = protocol or ""


def _signed(x: float) -> str:
    return f"{x:+.2f}"


def lines(table: Any) -> list[str]:
    """One sentence per KD row with a published number: the published gain beside ours, e.g.
    ``skd_paper: published +1.21 over 74.21 (CIRKD ...); against a tuned baseline +0.20 [-0.40, 0.80]``."""
    if "published_miou" not in table:
        return []
    out = []
    for r in table.itertuples():
        if r.method == "baseline" or not isinstance(r.published_miou, float) or math.isnan(r.published_miou):
            continue
        if math.isnan(r.published_delta):
            published = f"published {r.published_miou:.2f} (no baseline reported)"
        else:
            published = f"published {_signed(r.published_delta)} over {r.published_baseline:.2f}"
        if math.isnan(r.delta):
            ours = "against a tuned baseline: undefined"
        elif math.isnan(r.delta_ci_low):
            ours = f"against a tuned baseline {_signed(r.delta)}"
        else:
            interval = f"[{r.delta_ci_low:.2f}, {r.delta_ci_high:.2f}]"
            ours = f"against a tuned baseline {_signed(r.delta)} {interval}"
        where = f"{r.dataset}/{r.student}/{r.teacher}/{r.method}"
        out.append(f"{where}: {published}; {ours} (source: {r.published_source})")
    return out
