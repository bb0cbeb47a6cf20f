"""Per-step cost of every registered KD loss term, next to one training step of the student.

``python -m bench.perf.kd [--batch 8 --classes 19 --size 64 128 --student-channels 256
--teacher-channels 512 --device auto --repeats N --set TERM.KEY=VALUE ... --out results/perf]``

Each term of :data:`bench.methods.TERMS` (names starting with ``_`` are test fixtures and skipped) is
built with its published defaults (``conf/method/<term>.yaml`` when that file configures the term,
else its config class) on synthetic taps of the given batch, classes, feature size (``h w`` of the
OS8 maps) and feature widths (``--set cirkd_minibatch.pool_size=1`` changes one setting of one term,
type-checked against its config class), then timed over forward + backward of the term alone, plus
:meth:`~bench.methods.LossTerm.after_step` for terms that train a network of their own. The
reference is one full training step, the trainer's own (:class:`~bench.engine.step.TrainingStep`:
forward, CE + 0.4·aux CE, backward, SGD step of the Cityscapes protocol in fp32) of the
DeepLabV3-ResNet18 student (``conf/student/deeplabv3_r18.yaml``, random init) at the input size that
gives those maps (64×128 ⇒ 512×1024). Results: a Markdown table on stdout and, under ``--out``,
``kd_<device>_b<batch>_<h>x<w>.md`` and ``.csv``.

Memory: on CUDA the peak of ``torch.cuda.max_memory_allocated`` during one iteration minus what was
allocated before it (inputs excluded, gradients of the inputs included). On CPU there is no
allocator counter; the peak resident-set growth is used instead (``VmHWM`` after resetting it
through ``/proc/self/clear_refs`` and returning freed heap with ``malloc_trim``, minus ``VmRSS``
before): it counts pages touched, so it is approximate — allocator slack counts, and memory freed
by earlier iterations and reused does not.
"""

# ruff: noqa: E402  (--help is answered before the imports below)
from __future__ import annotations

from bench.cli import answer_help

answer_help(__name__, __doc__.strip())  # before torch: --help answers at once

import argparse
import contextlib
import csv
import io
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from bench.config.compose import conf_dir, load_config
from bench.config.schema import RunConfig, TermConfig
from bench.engine.step import TrainingStep, untrained_step
from bench.methods import TERMS, LossTerm, TermContext
from bench.models import Taps, build_model
from bench.utils.runtime import memory_mb, peak_memory_mb, reset_peak_memory, resolve_device

STUDENT_PRESET = "deeplabv3_r18"
IGNORE_INDEX = 255
MAX_REPEATS = 100  # cap of timed iterations when --min-seconds asks for more than --repeats
TOTAL_STEPS = 40_000  # the CIRKD schedule, for terms whose behaviour depends on progress
# Encoder stage widths and strides (relative to the input) of the literature's students/teachers,
# for terms that read ``stages``: dilated ResNet-18 and ResNet-101 (OS8).
STAGES = {
    "student": ([64, 64, 128, 256, 512], [2, 4, 8, 8, 8]),
    "teacher": ([64, 256, 512, 1024, 2048], [2, 4, 8, 8, 8]),
}


@dataclass
class Row:
    term: str
    reads: str
    forward_backward_ms: float | None = None
    after_step_ms: float | None = None
    peak_mb: float | None = None
    repeats: int = 0
    note: str = ""

    @property
    def total_ms(self) -> float | None:
        if self.forward_backward_ms is None:
            return None
        return self.forward_backward_ms + (self.after_step_ms or 0.0)


@dataclass
class Settings:
    device: torch.device
    batch: int
    classes: int
    size: tuple[int, int]
    student_channels: int
    teacher_channels: int
    repeats: int
    student_repeats: int
    min_seconds: float
    warmup: int
    memory_limit_mb: float
    stride: int = 8
    sets: dict[str, list[str]] = field(default_factory=dict)  # term → KEY=VALUE from --set
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def input_size(self) -> tuple[int, int]:
        return self.size[0] * self.stride, self.size[1] * self.stride


# ---------------------------------------------------------------------------------------- memory
@contextlib.contextmanager
def peak_memory(device: torch.device) -> Iterator[list[float | None]]:
    """Yields a one-element list that holds the peak extra MB of the block once it has run.

    The run's peak of :mod:`bench.utils.runtime` minus what was in use when the block started; None
    where the peak cannot be reset (not Linux): the process's high-water mark is no figure for a block.
    """
    out: list[float | None] = [None]
    _sync(device)
    kind = reset_peak_memory(device)
    if kind == "cpu_max_rss_process":
        yield out
        return
    base = memory_mb(device, kind)
    yield out
    _sync(device)
    out[0] = peak_memory_mb(device, kind) - base


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------------------------------- inputs
def make_context(s: Settings) -> TermContext:
    def channels(role: str, width: int) -> dict[str, Any]:
        return {"feat": width, "logits": s.classes, "aux_logits": s.classes, "stages": STAGES[role][0]}

    return TermContext(
        num_classes=s.classes,
        ignore_index=IGNORE_INDEX,
        student_channels=channels("student", s.student_channels),
        teacher_channels=channels("teacher", s.teacher_channels),
        total_steps=TOTAL_STEPS,
        aux_weight=0.4,
        batch_size=s.batch,
        input_size=s.input_size,
        feature_size=s.size,
        cost_only=True,  # random taps: terms' trained state (MasKD tokens) is random of its shape
    )


def make_tensors(s: Settings, role: str, requires: frozenset[str], grad: bool) -> dict[str, Any]:
    """Random leaf tensors for one net's taps (only the stages when the term reads them)."""
    h, w = s.size
    width = s.student_channels if role == "student" else s.teacher_channels

    def leaf(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, device=s.device).requires_grad_(grad)

    tensors: dict[str, Any] = {
        "feat": leaf(s.batch, width, h, w),
        "logits_low": leaf(s.batch, s.classes, h, w),
        "aux_logits": leaf(s.batch, s.classes, h, w),
        "stages": [],
    }
    if "stages" in requires:
        H, W = s.input_size
        tensors["stages"] = [
            leaf(s.batch, c, H // stride, W // stride) for c, stride in zip(*STAGES[role], strict=True)
        ]
    return tensors


def taps_of(tensors: dict[str, Any], s: Settings) -> Taps:
    """Fresh :class:`Taps` over the same tensors (the upsampled ``logits`` are recomputed)."""
    return Taps(
        stages=tensors["stages"],
        feat=tensors["feat"],
        logits_low=tensors["logits_low"],
        aux_logits=tensors["aux_logits"],
        size=s.input_size,
    )


def make_labels(s: Settings) -> torch.Tensor:
    labels = torch.randint(0, s.classes, (s.batch, *s.input_size), device=s.device)
    ignore = torch.rand(labels.shape, device=s.device) < 0.05
    return labels.masked_fill(ignore, IGNORE_INDEX)


def default_config(name: str) -> tuple[TermConfig, str]:
    """The term's defaults in the single-term method that uses it (``conf/method/<name>.yaml``, else
    the first method config listing it), or its config class's defaults when no method uses it."""
    cls = TERMS.get(name)
    files = sorted(
        (conf_dir() / "method").glob("*.yaml"),
        key=lambda p: (p.stem != name, p.stem.endswith("_paper"), p.stem),
    )
    for path in files:
        cfg = load_config([f"method={path.stem}", "output_dir=unused"])
        for key, entry in cfg.method.terms.items():
            if (entry.term or key) == name:
                return entry, f"conf/method/{path.name}"
    return cls.Config(), f"{cls.Config.__name__} defaults"


def configured(name: str, sets: list[str]) -> tuple[TermConfig, str]:
    """:func:`default_config` with ``KEY=VALUE`` settings (``--set``) applied and type-checked."""
    cfg, source = default_config(name)
    if not sets:
        return cfg, source
    try:
        merged = OmegaConf.merge(OmegaConf.structured(cfg), OmegaConf.from_dotlist(sets))
    except OmegaConfBaseException as e:
        keys = ", ".join(f.name for f in fields(cfg) if f.name != "term")
        raise ValueError(f"--set {name}: {str(e).splitlines()[0]} (keys of {name}: {keys})") from e
    return OmegaConf.to_object(merged), f"{source}; {', '.join(sets)}"


# ---------------------------------------------------------------------------------------- timing
def _has_after_step(term: LossTerm) -> bool:
    return type(term).after_step is not LossTerm.after_step


def time_term(name: str, s: Settings) -> Row:
    cls = TERMS.get(name)
    row = Row(name, ", ".join(sorted(cls.requires)))
    cfg, row.note = configured(name, s.sets.get(name, []))
    ctx = make_context(s)
    try:
        term = cls(cfg, ctx).to(s.device)
    except Exception as e:  # a term that cannot be built here (e.g. needs a file) is reported, not fatal
        row.note = f"not built: {type(e).__name__}: {e}"
        return row
    estimate = term.estimate_memory_mb()
    if estimate is not None and estimate > s.memory_limit_mb:
        row.note = f"skipped: estimate {estimate:.0f} MB > {s.memory_limit_mb:.0f} MB"
        return row
    row.reads = ", ".join(sorted(term.requires))  # a term holding others reads what they read
    student = make_tensors(s, "student", term.requires, grad=True)
    teacher = make_tensors(s, "teacher", term.requires, grad=False) if cls.needs_teacher else None
    labels = make_labels(s)
    forward_backward, after, peaks = [], [], []
    try:
        i = 0
        while i < s.warmup + s.repeats or (
            sum(forward_backward) + sum(after) < s.min_seconds and len(forward_backward) < MAX_REPEATS
        ):
            for t in [*student["stages"], student["feat"], student["logits_low"], student["aux_logits"]]:
                t.grad = None
            term.zero_grad(set_to_none=True)
            s_taps = taps_of(student, s)
            t_taps = taps_of(teacher, s) if teacher is not None else None
            with peak_memory(s.device) as peak:
                _sync(s.device)
                start = time.perf_counter()
                loss = term(s_taps, t_taps, labels, i)
                loss.backward()
                _sync(s.device)
                middle = time.perf_counter()
                if _has_after_step(term):
                    term.after_step(s_taps, t_taps, labels, i)
                    _sync(s.device)
                end = time.perf_counter()
            del loss
            if i >= s.warmup:
                forward_backward.append(middle - start)
                after.append(end - middle)
                peaks.append(peak[0])
            i += 1
    except Exception as e:  # e.g. out of memory: report and go on with the next term
        row.note = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:120]}"
        return row
    row.repeats = len(forward_backward)
    row.forward_backward_ms = 1000 * statistics.median(forward_backward)
    row.after_step_ms = 1000 * statistics.median(after) if _has_after_step(term) else None
    known = [p for p in peaks if p is not None]
    row.peak_mb = max(known) if known else None
    if estimate is not None:
        row.note += f"; estimate {estimate:.0f} MB"
    return row


def student_config(s: Settings) -> RunConfig:
    """The reference step's run config: the Cityscapes protocol (SGD, poly schedule, CE + 0.4·aux CE)
    with the DeepLabV3-ResNet18 student (random init), the baseline objective, fp32, at the
    settings' batch and classes."""
    cfg = load_config(
        [
            "dataset=cityscapes",
            f"student={STUDENT_PRESET}",
            "student.encoder_weights=null",
            "method=baseline",
            "train.precision=fp32",
            "train.compile=false",
            f"train.batch_size={s.batch}",
            f"train.iterations={TOTAL_STEPS}",
        ]
    )
    return replace(cfg, dataset=replace(cfg.dataset, num_classes=s.classes, ignore_index=IGNORE_INDEX))


def student_step(s: Settings, cfg: RunConfig | None = None) -> TrainingStep:
    """One training step of ``cfg`` (default :func:`student_config`) on random weights, built as the
    trainer builds its own; the settings' stride becomes the student's."""
    cfg = cfg or student_config(s)
    with torch.device("meta"):  # the stride only: no memory, no initialisation
        s.stride = build_model(cfg.student, s.classes, role="student").head_stride
    return untrained_step(cfg, s.device, s.input_size)


def time_student_step(s: Settings) -> tuple[float, float | None]:
    """Median ms and peak extra MB of one training step of the DeepLabV3-ResNet18 student."""
    step = student_step(s)
    images = torch.randint(0, 256, (s.batch, 3, *s.input_size), dtype=torch.uint8, device=s.device)
    labels = make_labels(s)
    times, peaks = [], []
    for i in range(s.warmup + s.student_repeats):
        with peak_memory(s.device) as peak:
            _sync(s.device)
            start = time.perf_counter()
            step(images, labels, i)
            _sync(s.device)
            end = time.perf_counter()
        if i >= s.warmup:
            times.append(end - start)
            peaks.append(peak[0])
    known = [p for p in peaks if p is not None]
    return 1000 * statistics.median(times), (max(known) if known else None)


# ---------------------------------------------------------------------------------------- report
def _fmt(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return f"cpu ({line.split(':', 1)[1].strip()})"
    return f"cpu ({platform.processor() or platform.machine()})"


def render(s: Settings, rows: list[Row], student_ms: float, student_mb: float | None) -> str:
    h, w = s.size
    H, W = s.input_size
    memory = (
        "CUDA max_memory_allocated during one iteration minus allocated before it"
        if s.device.type == "cuda"
        else "peak RSS growth during one iteration (VmHWM after clear_refs, minus VmRSS; approximate)"
    )
    command = " ".join(["python -m bench.perf.kd", *s.extra["argv"]])
    load = ""
    if s.device.type == "cpu" and hasattr(os, "getloadavg"):  # other processes inflate CPU timings
        load = f", load average {os.getloadavg()[0]:.1f} at the end (1 min)"
    lines = [
        f"KD term cost, {time.strftime('%Y-%m-%d')}: `{command}`",
        "",
        f"- device: {device_name(s.device)}{load}; torch {torch.__version__}; "
        f"threads {torch.get_num_threads()}",
        f"- batch {s.batch}, {s.classes} classes, maps {h}×{w} (input {H}×{W} at OS{s.stride}); "
        f"feat widths student {s.student_channels} / teacher {s.teacher_channels}",
        f"- per term: median over ≥ {s.repeats} timed iterations, more until {s.min_seconds:g} s "
        f"are timed (at most {MAX_REPEATS}; column n); student step: median of {s.student_repeats}; "
        f"{s.warmup} warm-up iteration(s) first; fp32",
        f"- reference: one training step of the {STUDENT_PRESET} student (forward, CE + 0.4·aux CE, "
        f"backward, SGD step) = {student_ms:.1f} ms, peak {_fmt(student_mb, 0)} MB",
        f"- memory: {memory}",
        "",
        "| term | reads | fwd+bwd ms | after_step ms | total ms | × student step | peak MB | n | note |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        ratio = None if r.total_ms is None else r.total_ms / student_ms
        lines.append(
            f"| `{r.term}` | {r.reads} | {_fmt(r.forward_backward_ms)} | {_fmt(r.after_step_ms)} | "
            f"{_fmt(r.total_ms)} | {_fmt(ratio, 3)} | {_fmt(r.peak_mb, 0)} | {r.repeats} | {r.note} |"
        )
    return "\n".join(lines) + "\n"


def to_csv(s: Settings, rows: list[Row], student_ms: float) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    measured = ["forward_backward_ms", "after_step_ms", "total_ms", "ratio_to_student_step", "peak_mb"]
    setting = ["device", "torch", "threads", "batch", "classes", "h", "w", "student_step_ms"]
    writer.writerow(["term", "reads", *measured, "repeats", "note", *setting])
    for r in rows:
        ratio = None if r.total_ms is None else r.total_ms / student_ms
        values = [r.forward_backward_ms, r.after_step_ms, r.total_ms, ratio, r.peak_mb, r.repeats, r.note]
        config = [s.device.type, torch.__version__, torch.get_num_threads(), s.batch, s.classes, *s.size]
        writer.writerow([r.term, r.reads, *values, *config, student_ms])
    return buf.getvalue()


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.perf.kd", description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--classes", type=int, default=19)
    p.add_argument("--size", type=int, nargs=2, default=[64, 128], metavar=("H", "W"), help="map size")
    p.add_argument("--student-channels", type=int, default=256, help="student feat width")
    p.add_argument("--teacher-channels", type=int, default=512, help="teacher feat width")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--repeats", type=int, default=None, help="timed iterations per term (10 GPU, 3 CPU)")
    p.add_argument(
        "--student-repeats", type=int, default=None, help="for the student step (= repeats GPU, 1 CPU)"
    )
    p.add_argument("--warmup", type=int, default=1, help="untimed iterations first")
    p.add_argument(
        "--min-seconds", type=float, default=None, help="time cheap terms until this much (1 CPU, 0.2 GPU)"
    )
    p.add_argument("--terms", nargs="*", default=None, help="only these terms (default: all registered)")
    p.add_argument("--memory-limit-mb", type=float, default=8192.0, help="skip terms estimated above this")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="TERM.KEY=VALUE",
        help="one setting of one term instead of its method config's (repeatable), e.g. "
        "cirkd_minibatch.pool_size=1",
    )
    p.add_argument("--out", type=Path, default=Path("results/perf"))
    return p.parse_args(argv)


def term_settings(sets: list[str], names: list[str]) -> dict[str, list[str]]:
    """``--set TERM.KEY=VALUE`` items as ``KEY=VALUE`` lists per term, each checked (form, term
    among those timed, key and type of the term's config) before anything is timed."""
    by_term: dict[str, list[str]] = defaultdict(list)
    for item in sets:
        name, dot, setting = item.partition(".")
        if not dot or "=" not in setting:
            raise ValueError(f"--set {item}: expected TERM.KEY=VALUE, e.g. cirkd_minibatch.pool_size=1")
        if name not in names:
            raise ValueError(f"--set {item}: {name!r} is not among the timed terms ({', '.join(names)})")
        by_term[name].append(setting)
    for name, settings in by_term.items():
        configured(name, settings)
    return dict(by_term)


def main(argv: list[str] | None = None) -> str:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.terms or [n for n in TERMS.names() if not n.startswith("_")]
    try:
        sets = term_settings(args.sets, names)
    except ValueError as e:  # a user error: named, exit 2 as argparse's own
        print(f"python -m bench.perf.kd: error: {e}", file=sys.stderr)
        raise SystemExit(2) from e
    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    repeats = args.repeats or (10 if gpu else 3)
    settings = Settings(
        device=device,
        batch=args.batch,
        classes=args.classes,
        size=tuple(args.size),
        student_channels=args.student_channels,
        teacher_channels=args.teacher_channels,
        repeats=repeats,
        student_repeats=args.student_repeats or (repeats if gpu else 1),
        min_seconds=args.min_seconds if args.min_seconds is not None else (0.2 if gpu else 1.0),
        warmup=args.warmup,
        memory_limit_mb=args.memory_limit_mb,
        sets=sets,
        extra={"argv": argv},
    )
    torch.manual_seed(0)
    student_ms, student_mb = time_student_step(settings)  # also sets the stride
    rows = []
    for name in names:
        rows.append(time_term(name, settings))
        print(f"{name}: {_fmt(rows[-1].total_ms)} ms", file=sys.stderr, flush=True)
    table = render(settings, rows, student_ms, student_mb)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"kd_{device.type}_b{settings.batch}_{settings.size[0]}x{settings.size[1]}"
    stem += "".join(f"_{item.replace('/', '-')}" for item in args.sets)  # never over the defaults' table
    (args.out / f"{stem}.md").write_text(table)
    (args.out / f"{stem}.csv").write_text(to_csv(settings, rows, student_ms))
    print(f"written: {args.out / stem}.md, .csv", file=sys.stderr)
    return table


if __name__ == "__main__":
    main()
