"""What a comparison will cost, before anything trains: ``python -m bench.plan`` (``make plan``).

For each dataset it lists the teachers (the full-data teacher of the finals and, for a KD method, each
repeat's tuning teacher, trained on the tuning-train part: ``<teacher>/tune``), the study of the
baseline and of every method (trials × the per-trial schedule, plus the hold-out validations that feed
the pruner) and the finals (seeds × the protocol's full schedule, plus one validation each), with the
step time each assumes, the GPU-hours and the checkpoint disk; then the total. Step times come from a
short calibration on the current device (random inputs at the training size through the composed
student, teacher and loss terms, forward + backward + optimizer step) when a GPU is visible or
``--calibrate`` is given; otherwise from an *estimate*: the FLOPs of the step (student forward +
backward ≈ 3 × forward, plus the teacher's forward; counted with ``torch.utils.flop_counter`` on the
meta device) at an assumed throughput (``--tflops``). Estimates leave out the KD terms' own cost (see
``make perf-kd``) and data loading.

Usage: ``python -m bench.plan [dataset=a,b|all] [method=m1,m2] [student=...] [teacher=...]
[tune.*=...] [key=value ...] [--estimate | --calibrate] [--tflops 60] [--steps 10]``; without
``method=`` every method of ``conf/method`` is planned next to the baseline. With
``experiment=<paper>_<dataset>`` (``make plan PAPER=cirkd DATASET=cityscapes``) a published table is
priced as ``make reproduce`` runs it: its dataset, every student with its methods, the teacher
converted from the official checkpoint rather than trained.
"""

# ruff: noqa: E402  (--help is answered before the imports below)
from __future__ import annotations

from bench.cli import answer_help

answer_help(__name__, __doc__.strip())  # before torch: --help answers at once

import json
import logging
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.config import RunConfig
from bench.config.budget import Budget
from bench.config.compose import conf_dir, load_config
from bench.config.overrides import Overrides
from bench.data import DATASETS
from bench.errors import BenchError, ConfigError
from bench.methods import needs_teacher
from bench.models import build_model
from bench.teachers import teacher_path
from bench.tune import study as st
from bench.utils.logs import setup_logging

if TYPE_CHECKING:
    from bench.engine.step import TrainingStep

log = logging.getLogger("bench")

REAL_DATASETS = ("cityscapes", "ade20k", "voc", "camvid", "coco_stuff164k")
# Typical evaluation image (height, width) per dataset: Cityscapes and CamVid have one size; ADE20K and
# VOC vary (ADE20K val: mostly 512 on the short side; VOC: at most 500 on the long side).
EVAL_SIZES = {
    "cityscapes": (1024, 2048), "ade20k": (512, 683), "voc": (375, 500), "camvid": (360, 480),
    "coco_stuff164k": (480, 640),  # COCO 2017: mostly 640 on the long side
}  # fmt: skip
DEFAULT_TFLOPS = 60.0  # assumed sustained bf16 throughput: ~20 % of an A100's 312 TFLOP/s dense peak
BYTES = 4  # fp32 weights (and SGD momentum) in checkpoints


@dataclass
class Row:
    """One line of the plan: ``runs`` trainings of ``iterations`` steps, each with ``evals`` validations."""

    dataset: str
    stage: str  # teacher | study | finals | fidelity (optional, not in the totals)
    method: str
    runs: int
    iterations: int
    step_s: float
    evals: int  # validations per run
    eval_images: int
    eval_image_s: float
    disk_bytes: float
    note: str = ""

    @property
    def gpu_hours(self) -> float:
        per_run = self.iterations * self.step_s + self.evals * self.eval_images * self.eval_image_s
        return self.runs * per_run / 3600


class Timing:
    """Seconds per training step and per evaluated image of a composed config."""

    source = ""

    def step(self, cfg: RunConfig) -> float:  # pragma: no cover - interface
        raise NotImplementedError

    def eval_image(self, cfg: RunConfig) -> float:  # pragma: no cover - interface
        raise NotImplementedError


def _network(model_cfg, num_classes: int, role: str, device: torch.device | str):
    return build_model(replace(model_cfg, encoder_weights=None), num_classes, role=role).to(device)


_COUNTS: dict[str, int] = {}


def _key(model_cfg, *rest) -> str:
    return json.dumps([asdict(model_cfg), *rest], sort_keys=True, default=str)


def forward_flops(model_cfg, num_classes: int, size: tuple[int, int]) -> int:
    """FLOPs of one forward pass of one image (counted on the meta device: no memory, no compute)."""
    key = _key(model_cfg, num_classes, size, "flops")
    if key in _COUNTS:
        return _COUNTS[key]
    with torch.device("meta"):
        model = build_model(replace(model_cfg, encoder_weights=None), num_classes, role="teacher").eval()
        counter = FlopCounterMode(display=False)
        with counter:
            model(torch.zeros(1, 3, *size)).logits  # noqa: B018 - the upsampled logits count too
    _COUNTS[key] = counter.get_total_flops()
    return _COUNTS[key]


def parameter_count(model_cfg, num_classes: int) -> int:
    """Floating-point parameters and buffers (what a checkpoint stores)."""
    key = _key(model_cfg, num_classes, "params")
    if key not in _COUNTS:
        with torch.device("meta"):
            model = build_model(replace(model_cfg, encoder_weights=None), num_classes, role="teacher")
        tensors = [*model.parameters(), *model.buffers()]
        _COUNTS[key] = sum(t.numel() for t in tensors if t.is_floating_point())
    return _COUNTS[key]


def train_size(cfg: RunConfig) -> tuple[int, int]:
    return tuple(cfg.train.crop_size) if cfg.train.crop_size else eval_size(cfg)


def eval_size(cfg: RunConfig) -> tuple[int, int]:
    if cfg.dataset.name == "synthetic":
        return tuple(cfg.dataset.image_size)
    return EVAL_SIZES.get(cfg.dataset.name, (512, 512))


class FlopEstimate(Timing):
    """Step time = FLOPs of the step / an assumed throughput (a stated estimate, not a measurement)."""

    def __init__(self, tflops: float = DEFAULT_TFLOPS) -> None:
        self.tflops = tflops
        self.source = f"estimate: FLOPs / {tflops:g} TFLOP/s"

    def step(self, cfg: RunConfig) -> float:
        n, size = cfg.dataset.num_classes, train_size(cfg)
        flops = 3 * forward_flops(cfg.student, n, size)
        if needs_teacher(cfg):
            flops += forward_flops(cfg.teacher, n, size)
        return cfg.train.batch_size * flops / (self.tflops * 1e12)

    def eval_image(self, cfg: RunConfig) -> float:
        return forward_flops(cfg.student, cfg.dataset.num_classes, eval_size(cfg)) / (self.tflops * 1e12)


class Calibration(Timing):
    """Median time of ``steps`` real training steps (after 2 warm-up steps) on random inputs."""

    def __init__(self, steps: int = 10) -> None:
        self.steps = steps
        self.source = "calibrated"
        self._cache: dict[str, float] = {}

    def _device(self, cfg: RunConfig) -> torch.device:
        from bench.utils.runtime import resolve_device

        return resolve_device(cfg.device)

    def training_step(self, cfg: RunConfig) -> TrainingStep:
        """The run's own training step (:class:`~bench.engine.step.TrainingStep`: its optimizer and
        learning-rate groups, grad scaler, schedule, loss terms) on randomly initialised networks."""
        from bench.engine.step import untrained_step

        return untrained_step(cfg, self._device(cfg), train_size(cfg))

    def step(self, cfg: RunConfig) -> float:
        key = f"{cfg.dataset.name}/{cfg.student.name}/{cfg.teacher.name}/{cfg.method.name}"
        if key in self._cache:
            return self._cache[key]
        step = self.training_step(cfg)
        device, n = step.device, cfg.dataset.num_classes
        fmt = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
        (h, w), b = train_size(cfg), cfg.train.batch_size
        images = torch.randint(0, 256, (b, 3, h, w), dtype=torch.uint8, device=device)
        images = images.contiguous(memory_format=fmt)
        labels = torch.randint(0, n, (b, h, w), device=device)
        times = []
        for i in range(2 + self.steps):
            _sync(device)
            start = time.perf_counter()
            step(images, labels, i)
            _sync(device)
            times.append(time.perf_counter() - start)
        self._cache[key] = statistics.median(times[2:])
        return self._cache[key]

    def eval_image(self, cfg: RunConfig) -> float:
        device, n = self._device(cfg), cfg.dataset.num_classes
        model = _network(cfg.student, n, "student", device).eval()
        image = torch.zeros(1, 3, *eval_size(cfg), device=device)
        times = []
        with torch.inference_mode():
            for _ in range(3):
                _sync(device)
                start = time.perf_counter()
                model(image).logits  # noqa: B018
                _sync(device)
                times.append(time.perf_counter() - start)
        return statistics.median(times[1:])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def split_sizes(cfg: RunConfig) -> tuple[int, int, int]:
    """(training images, tuning hold-out images, validation images): the copy's when it is there (a
    partial or shrunk copy runs on what it has), else the official splits'."""
    if cfg.dataset.name == "synthetic":
        n, val = cfg.dataset.train_size, cfg.dataset.val_size
    else:
        cls = DATASETS.get(cfg.dataset.name)
        try:  # lists the copy's files (decodes none)
            n, val = len(cls(cfg.dataset, "train")), len(cls(cfg.dataset, "val"))
        except BenchError:  # no copy here (yet): plan the official sizes
            dataset = cls.__new__(cls)
            dataset.cfg = cfg.dataset  # official_size reads only the config
            n, val = dataset.official_size("train") or 0, dataset.official_size("val") or 0
    size = cfg.dataset.holdout_size
    held = round(size * n) if 0 < size < 1 else int(size)
    return n, held, val


def plan_dataset(
    overrides: Sequence[str],
    methods: Sequence[str],
    timing: Timing,
    teacher_cfg: RunConfig | Sequence[RunConfig],
) -> list[Row]:
    """The rows of one dataset: the teachers (the full-data one, then each repeat's tuning teacher,
    :func:`bench.teacher.teacher_configs`), one study per method (baseline first) and their finals."""
    rows = []
    teachers = [teacher_cfg] if isinstance(teacher_cfg, RunConfig) else list(teacher_cfg)
    any_kd = False
    finals, tokens_for = [], []
    for method in methods:
        cfg = load_config([*overrides, f"method={method}"])
        any_kd = any_kd or needs_teacher(cfg)
        if uses_teacher_tokens(cfg):
            tokens_for.append(method)
        _, held, val = split_sizes(cfg)
        step, image = timing.step(cfg), timing.eval_image(cfg)
        trial_steps = st.trial_iterations(cfg)
        evals = trial_steps // st.val_interval(cfg) if st.val_interval(cfg) else 1
        params = parameter_count(cfg.student, cfg.dataset.num_classes)
        kept = 3 * BYTES * params if cfg.tune.keep_trial_checkpoints else 0  # model.pt + last.pt (momentum)
        trials = cfg.tune.trials if cfg.tune.budget == "trials" else 0
        note = "" if trials else f"budget=time: {cfg.tune.seconds:g} device-seconds of training"
        if not trials:
            trials = max(1, round(cfg.tune.seconds / (trial_steps * step)))
        rows.append(
            Row(cfg.dataset.name, "study", method, trials, trial_steps, step, evals, held, image,
                trials * kept, note)
        )  # fmt: skip
        finals.append(
            Row(cfg.dataset.name, "finals", method, cfg.tune.final_seeds, cfg.train.iterations, step, 1, val,
                image, cfg.tune.final_seeds * 3 * BYTES * params)
        )  # fmt: skip
        # make fidelity (optional): top-k + k random trials at the final schedule on the tuning split
        fidelity_runs = 2 * cfg.tune.fidelity_k
        finals.append(
            Row(cfg.dataset.name, "fidelity", method, fidelity_runs, cfg.train.iterations, step, 1, held,
                image, fidelity_runs * 3 * BYTES * params, "optional: make fidelity")
        )  # fmt: skip
    # the tuning teachers only when a KD method tunes with them
    teacher_rows = [teacher_row(c, timing) for c in (teachers if any_kd else teachers[:1])]
    if tokens_for:
        rows.extend(tokens_row(c, timing, tokens_for) for c in teachers)
    return teacher_rows + rows + finals


def teacher_row(t: RunConfig, timing: Timing) -> Row:
    """One teacher's training (nothing when its checkpoint is stored): the full-data teacher, or a
    tuning teacher (the same recipe on the tuning-train part, named ``<teacher>/tune``)."""
    from bench.teachers import is_tune_part

    _, _, val = split_sizes(t)
    params = parameter_count(t.student, t.dataset.num_classes)
    path = teacher_path(t)
    exists = path.is_file()
    tune = is_tune_part(t.train.split)
    what = f"{t.teacher.name}/tune" if tune else t.teacher.name
    note = f"{path} exists" if exists else ""
    if tune:
        note = f"tuning teacher: train minus the hold-out (seed {t.dataset.holdout_seed})" + (
            f"; {note}" if note else ""
        )
    return Row(
        t.dataset.name, "teacher", what, 0 if exists else 1, t.train.iterations, timing.step(t), 1, val,
        timing.eval_image(t), 0 if exists else 4 * BYTES * params, note,
    )  # fmt: skip


def experiment_rows(rows: list[Row], student: str | None, index: int, converted: str | None) -> list[Row]:
    """A published table's rows for one of its students: the teacher once (converted from the
    official ``converted`` file, not trained), the studies and finals named by student."""
    out = []
    for r in rows:
        if r.stage == "teacher" and r.method != "maskd_tokens":
            if index:
                continue
            if converted and r.runs and not r.method.endswith("/tune"):  # the tuning teacher still trains
                r = replace(r, runs=0, disk_bytes=0.0, note=f"converted from {converted} (make reproduce)")
        elif student:
            r = replace(r, method=f"{student}/{r.method}")
        out.append(r)
    return out


def uses_teacher_tokens(cfg: RunConfig) -> bool:
    """Whether a run needs MasKD tokens trained on its teacher (``make maskd-tokens``)."""
    return any(
        (term.term or key) == "maskd" and getattr(term, "tokens", "teacher") == "teacher"
        for key, term in cfg.method.terms.items()
    )


def tokens_row(t: RunConfig, timing: Timing, methods: Sequence[str]) -> Row:
    """MasKD stage 1 on the teacher: one run of the release's 10,000 iterations, unless stored.

    A token step is the teacher's forward (no gradient through the network; the tokens are T×C
    numbers): a third of the teacher's training step, as the estimates count forward + backward.
    """
    from bench.maskd_tokens import ITERATIONS
    from bench.methods.terms.maskd import tokens_path
    from bench.teachers import is_tune_part
    from bench.utils.io import sha256_file

    path = teacher_path(t)
    stored = path.is_file() and tokens_path(path, sha256_file(path)).is_file()
    note = "stored" if stored else f"make maskd-tokens, for {', '.join(methods)}"
    what = "maskd_tokens/tune" if is_tune_part(t.train.split) else "maskd_tokens"
    return Row(t.dataset.name, "teacher", what, 0 if stored else 1, ITERATIONS, timing.step(t) / 3,
               0, 0, 0.0, 0.0, note)  # fmt: skip


def format_plan(rows: Sequence[Row], header: Sequence[str]) -> str:
    lines = [*header, ""]
    what = max([16, *(len(r.method) for r in rows)])
    head = f"{'dataset':<11} {'stage':<8} {'what':<{what}} {'runs':>5} {'steps/run':>9} {'step ms':>8} "
    head += f"{'evals/run':>9} {'eval imgs':>9} {'GPU-h':>9} {'disk GB':>8}"
    lines += [head, "-" * len(head)]
    for r in rows:
        step_ms = "<0.1" if 0 < r.step_s < 5e-5 else f"{1000 * r.step_s:.1f}"  # a shrunk CPU config
        lines.append(
            f"{r.dataset:<11} {r.stage:<8} {r.method:<{what}} {r.runs:>5} {r.iterations:>9} {step_ms:>8} "
            f"{r.evals:>9} {r.eval_images:>9} {hours_text(r.gpu_hours):>9} {r.disk_bytes / 1e9:>8.2f}"
            + (f"  ({r.note})" if r.note else "")
        )
    lines.append("-" * len(head))
    for dataset in dict.fromkeys(r.dataset for r in rows):
        mine = [r for r in rows if r.dataset == dataset]
        lines.append(_total(f"{dataset} total", mine))
    if len({r.dataset for r in rows}) > 1:
        lines.append(_total("total", rows))
    return "\n".join(lines)


def _total(label: str, rows: Sequence[Row]) -> str:
    by_stage = {s: sum(r.gpu_hours for r in rows if r.stage == s) for s in ("teacher", "study", "finals")}
    parts = ", ".join(f"{s} {h:,.1f}" for s, h in by_stage.items())
    disk = sum(r.disk_bytes for r in rows) / 1e9
    return f"{label}: {sum(by_stage.values()):,.1f} GPU-h ({parts}); checkpoints {disk:,.1f} GB"


def hours_text(hours: float) -> str:
    """GPU-hours to one decimal; below 0.05 (a shrunk CPU config) GPU-seconds, not 0.0."""
    return f"{hours * 3600:.2f}s".replace("0.00s", "<0.01s") if 0 < hours < 0.05 else f"{hours:,.1f}"


def parse(argv: Sequence[str]) -> tuple[list[str], list[str], list[str], dict]:
    """(datasets, methods, other overrides, flags) from the command line."""
    datasets, methods, rest = ["synthetic"], [], []
    flags = {"calibrate": None, "tflops": DEFAULT_TFLOPS, "steps": 10}
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg in ("--estimate", "--calibrate"):
            flags["calibrate"] = arg == "--calibrate"
        elif arg in ("--tflops", "--steps"):
            if not args:
                raise ConfigError(f"{arg} needs a value")
            flags[arg[2:]] = float(args.pop(0)) if arg == "--tflops" else int(args.pop(0))
        else:
            rest.append(arg)
    given = Overrides(rest)
    chosen_datasets = given.choices("dataset")
    if chosen_datasets is not None:
        datasets = list(REAL_DATASETS) if chosen_datasets == ["all"] else [str(d) for d in chosen_datasets]
    methods = [str(m) for m in given.choices("method") or [] if m != "all"]
    rest = given.without("dataset", "method", below=False).as_list()
    every = sorted(p.stem for p in (conf_dir() / "method").glob("*.yaml"))
    unknown = sorted(set(methods) - set(every))
    if unknown:
        raise ConfigError(f"unknown method(s) {', '.join(unknown)}; valid: {', '.join(every)}")
    if given.has("experiment"):  # a published table: its dataset, students and methods
        table = load_config(Overrides(rest).only("experiment").as_list())
        datasets = datasets if chosen_datasets is not None else [table.dataset.name]
        # each student with the table's methods for it (or those given with method=)
        flags["runs"] = {s: ["baseline", *(methods or m)] for s, m in table.reproduction.runs.items()}
        methods = methods or list(dict.fromkeys(m for v in table.reproduction.runs.values() for m in v))
        flags["converted"] = table.reproduction.teacher_file
    chosen = ["baseline", *[m for m in (methods or every) if m != "baseline"]]
    return datasets, chosen, rest, flags


def main(argv: Sequence[str] | None = None, timing: Timing | None = None) -> str:
    from bench.teacher import teacher_configs

    argv = list(sys.argv[1:] if argv is None else argv)
    if {"-h", "--help"} & set(argv):
        print(__doc__.strip())
        return __doc__
    datasets, methods, rest, flags = parse(argv)
    if timing is None:
        calibrate = flags["calibrate"] if flags["calibrate"] is not None else torch.cuda.is_available()
        timing = Calibration(flags["steps"]) if calibrate else FlopEstimate(flags["tflops"])
    rows = []
    runs = flags.get("runs") or {None: methods}
    for dataset in datasets:
        for i, (student, chosen) in enumerate(runs.items()):
            overrides = [f"dataset={dataset}", *([f"student={student}"] if student else []), *rest]
            teacher_overrides = Overrides(overrides).without("student", "method", below=False).as_list()
            got = plan_dataset(overrides, chosen, timing, teacher_configs(teacher_overrides))
            rows += experiment_rows(got, student if len(runs) > 1 else None, i, flags.get("converted"))
    cfg = load_config([f"dataset={datasets[0]}", *rest])
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu (no GPU visible)"
    header = [
        f"segkd-bench plan: {', '.join(datasets)}; methods: {', '.join(methods)}",
        f"students {cfg.student.name}, teacher {cfg.teacher.name}; budget {Budget.of(cfg.tune).label}, "
        f"{cfg.tune.final_seeds} final seeds; step times: {timing.source} (device: {device})",
        "studies: every trial at its full per-trial schedule (median pruning only lowers the cost); "
        "disk: final runs keep model.pt + last.pt (fp32 weights + SGD momentum), trials keep none",
    ]
    if isinstance(timing, FlopEstimate):
        header.append(
            "ESTIMATES, not measurements: FLOPs of student fwd+bwd (3 × fwd) + teacher fwd at the training "
            f"crop, at an assumed {timing.tflops:g} TFLOP/s; KD terms and data loading not included. "
            "Run on the training GPU for a calibration."
        )
    text = format_plan(rows, header)
    print(text)
    return text


if __name__ == "__main__":
    setup_logging()
    try:
        main()
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
