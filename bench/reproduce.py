"""``python -m bench.reproduce PAPER DATASET [--files DIR] [--run] [key=value ...]`` (``make reproduce``).

A published table end to end with the paper's own teacher: the experiment preset
``conf/experiment/<PAPER>_<DATASET>.yaml`` names the protocol, dataset, teacher, students and KD
method presets of the table. Without ``--run`` the commands are printed, one a line, to read or run
by hand; with ``--run`` they run in order and the first failure stops the rest (its exit status).

1. the official teacher checkpoint (``DIR/<teacher_file>``) is converted into the teacher this
   project loads (skipped when that teacher file exists already); the finals distil from it, while
   the KD trials use a tuning teacher trained without the tuning hold-out (``bench.teacher
   --part=tune``, skipped when it exists), since the official teacher saw those images;
2. the baseline and every KD method is tuned for each student (``bench.sweep``), the student's
   encoder starting from the official ImageNet backbone file (``DIR/<backbone file>``);
3. the finals of those studies (``bench.final``) and the report (``bench.report``), where the
   published columns stand beside the tuned comparison.

DIR (``--files``, default ``downloads``) holds the files under the names the experiment gives; the
URLs of the official READMEs are printed with them. ``key=value`` overrides go to every sweep and
final (e.g. ``tune.trials=20``), except ``student=a,b`` and ``method=a,b``, which choose among the
table's students and methods (``make reproduce ... METHOD=kd``); ``make plan PAPER=... DATASET=...``
prices the whole table first.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError, ConfigError
from bench.paths import conf_dir


@dataclass(frozen=True)
class Step:
    """One command of a reproduction: ``python -m <module> <args>``."""

    module: str
    args: tuple[str, ...]

    def argv(self) -> list[str]:
        return [sys.executable, "-m", self.module, *self.args]

    def text(self) -> str:
        return shlex.join(["python", "-m", self.module, *self.args])


def experiments() -> list[str]:
    return sorted(p.stem for p in (conf_dir() / "experiment").glob("*.yaml"))


def experiment_name(paper: str, dataset: str) -> str:
    """``<paper>_<dataset>`` when that experiment exists; else a :class:`ConfigError` listing them."""
    name = f"{paper}_{dataset}"
    if name not in experiments():
        known = ", ".join(f"PAPER={n.split('_', 1)[0]} DATASET={n.split('_', 1)[1]}" for n in experiments())
        raise ConfigError(f"no experiment for PAPER={paper or '(none)'} DATASET={dataset}; known: {known}")
    return name


def plan_steps(paper: str, dataset: str, files: Path, extra: list[str]) -> tuple[list[Step], dict[Path, str]]:
    """The commands of a reproduction, and the official files they read (path → download URL)."""
    from bench.config.compose import load_config  # here, not above: --help answers without Hydra
    from bench.config.overrides import Overrides
    from bench.teachers import teacher_path

    name = experiment_name(paper, dataset)
    given = Overrides(extra)
    extra = given.without("student", "method", below=False).as_list()
    cfg = load_config([f"experiment={name}", *extra])
    rep = cfg.reproduction
    runs = chosen_runs(name, rep.runs, given.choices("student"), given.choices("method"))
    needed: dict[Path, str] = {}
    steps = []
    teacher = teacher_path(cfg)
    if not teacher.is_file():
        if not rep.codebase or not rep.teacher_file:
            raise ConfigError(f"experiment {name} names no official teacher file (reproduction.teacher_file)")
        src = files / rep.teacher_file
        needed[src] = rep.downloads.get(rep.teacher_file, "")
        convert = (rep.codebase, str(src), "--preset", cfg.teacher.name, "--dataset", dataset)
        steps.append(Step("bench.convert", (*convert, "-o", str(teacher))))
    if any(runs.values()) and not teacher_path(cfg, "tune_train").is_file():
        # KD trials are scored on the tuning hold-out: their teacher is trained without it (the
        # official one saw it), under the project's teacher recipe (bench.teacher_split)
        steps.append(Step("bench.teacher", ("--part=tune", f"experiment={name}", *extra)))
    for student, methods in runs.items():
        weights = []
        if student in rep.backbones:
            path = files / rep.backbones[student]
            needed[path] = rep.downloads.get(rep.backbones[student], "")
            weights = [f"student.encoder_weights={path}"]
        for method in ("baseline", *methods):
            args = (f"experiment={name}", f"student={student}", *weights, f"method={method}", *extra)
            steps.append(Step("bench.sweep", args))
    steps.append(Step("bench.final", (f"dataset={dataset}", *extra)))
    steps.append(Step("bench.report", ()))
    return steps, needed


def chosen_runs(
    name: str, runs: dict[str, list[str]], students: list | None, methods: list | None
) -> dict[str, list[str]]:
    """The table's students and methods, narrowed to those chosen (None: all); a choice outside the
    table is a :class:`ConfigError` naming what the table holds."""
    every = list(dict.fromkeys(m for ms in runs.values() for m in ms))
    for kind, chosen, known in (("student", students, list(runs)), ("method", methods, every)):
        unknown = [str(c) for c in chosen or [] if str(c) not in known and str(c) != "baseline"]
        if unknown:
            raise ConfigError(
                f"{kind} {', '.join(unknown)} is not in experiment {name}; it has {', '.join(known)}"
            )
    keep_students = [str(s) for s in students] if students else list(runs)
    keep_methods = [str(m) for m in methods] if methods else every
    return {s: [m for m in ms if m in keep_methods] for s, ms in runs.items() if s in keep_students}


def missing_files(needed: dict[Path, str]) -> str | None:
    """One line naming each official file that is not there and where to download it; None if all are."""
    gone = [f"{path} ({url or 'docs/reproducing.md'})" for path, url in needed.items() if not path.is_file()]
    if not gone:
        return None
    return f"missing official files: {'; '.join(gone)}; download them there (or: --files DIR)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.reproduce",
        description=__doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paper", help="the paper, e.g. cirkd (conf/experiment/<paper>_<dataset>.yaml)")
    parser.add_argument("dataset", help="the dataset of its table, e.g. cityscapes")
    parser.add_argument("--files", type=Path, default=Path("downloads"), help="the official files' folder")
    parser.add_argument("--run", action="store_true", help="run the commands (default: print them)")
    parser.add_argument("overrides", nargs="*", help="key=value for every sweep and final")
    args = parser.parse_intermixed_args(argv)
    try:
        steps, needed = plan_steps(args.paper, args.dataset, args.files, args.overrides)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not args.run:
        for path, url in needed.items():
            print(f"# {'found' if path.is_file() else 'download'} {path}: {url}")
        print("\n".join(s.text() for s in steps))
        return 0
    gone = missing_files(needed)
    if gone:
        print(f"error: {gone}", file=sys.stderr)
        return 2
    for step in steps:
        print(f"+ {step.text()}", flush=True)
        done = subprocess.run(step.argv(), check=False)
        if done.returncode:
            print(f"error: stopped: `{step.text()}` exited with {done.returncode}", file=sys.stderr)
            return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
