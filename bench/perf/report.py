"""Benchmark tables: printed with their settings, written to ``results/perf/`` as CSV and Markdown."""

from __future__ import annotations

import csv
import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bench.perf.kd import device_name
from bench.utils.devices import available_cpus
from bench.utils.io import write_text_atomic


@dataclass
class Table:
    name: str  # file stem: <name>_<device>.{md,csv}
    title: str
    columns: list[str]
    settings: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", *(f"- {s}" for s in self.settings), ""]
        lines += ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(lines) + "\n"

    def csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(self.columns)
        writer.writerows(self.rows)
        return buf.getvalue()


def load_line() -> str:
    """``/proc/loadavg``'s three averages (timings on a busy machine are inflated)."""
    if not hasattr(os, "getloadavg"):
        return "load average n/a"
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def device_line(device: torch.device) -> str:
    return (
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}; device {device_name(device)}; {available_cpus()} CPUs in "
        f"the affinity; torch threads {torch.get_num_threads()}; torch {torch.__version__}; {load_line()}"
    )


def write_table(table: Table, out: Path, device: torch.device) -> None:
    """Print the table and write ``<out>/<name>_<device type>.{md,csv}`` atomically."""
    text = table.markdown()
    print(text, flush=True)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / f"{table.name}_{device.type}.md", text)
    write_text_atomic(out / f"{table.name}_{device.type}.csv", table.csv())
