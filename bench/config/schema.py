"""Structured config schemas: every key a run accepts, its type and its default.

The YAML files under ``conf/`` are composed by Hydra and then merged into these dataclasses, so a
misspelled key or a wrong type fails at start with the key's full path. Sections whose keys depend on
a registry entry (the dataset, each KD loss term) are validated against that entry's own subclass.
Every value a paper reports as part of its protocol is a field here, not a constant in code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from omegaconf import MISSING


# Enum-like keys are typed: OmegaConf refuses any other value when a config is composed, and
# bench.config.compose words the error as `key='value'; valid: ...`. Member names equal their values
# (OmegaConf matches strings by name); members compare equal to their strings.
class Precision(StrEnum):
    """``train.precision``: autocast dtype (fp16 adds a GradScaler)."""

    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


class TrainSplit(StrEnum):
    """``train.split``: the training split (tune_train: train minus the hold-out)."""

    train = "train"
    tune_train = "tune_train"


class EvalSplit(StrEnum):
    """``eval.split``: the evaluation split (tune_holdout: the hold-out carved from train)."""

    val = "val"
    tune_holdout = "tune_holdout"


class EvalMode(StrEnum):
    """``eval.mode``: whole images, or sliding-window crops."""

    whole = "whole"
    slide = "slide"


class EvalSelect(StrEnum):
    """``eval.select``: which checkpoint's scores a run reports (best_on_val: the best of the
    validations on ``eval.split``, as CIRKD reports; optimistic, flagged by the report)."""

    last = "last"
    best_on_val = "best_on_val"


class BudgetKind(StrEnum):
    """``tune.budget``: what a tuning budget counts (finished trials, or device-seconds: training
    seconds × a trial's GPUs, or × its worker's CPU threads)."""

    trials = "trials"
    time = "time"


class CEDenominator(StrEnum):
    """``train.ce_denominator``: what the task cross-entropy is divided by."""

    valid = "valid"
    all = "all"


class Sampler(StrEnum):
    """``tune.sampler``: Optuna's TPE, or random search (where budget curves are exact)."""

    tpe = "tpe"
    random = "random"


class Pruner(StrEnum):
    """``tune.pruner``: stop poor trials early at their intermediate hold-out validations."""

    none = "none"
    median = "median"
    halving = "halving"


class OptimizerName(StrEnum):
    """``train.optimizer.name``."""

    sgd = "sgd"
    adamw = "adamw"


class ScheduleName(StrEnum):
    """``train.schedule.name``: LR decay after the warm-up."""

    poly = "poly"
    cosine = "cosine"
    constant = "constant"


@dataclass
class DatasetConfig:
    """Common dataset keys; each registered dataset extends this with its own."""

    name: str = MISSING
    num_classes: int = MISSING
    ignore_index: int = 255
    # ADE20K-style labels: 0 ("other") becomes ignore, every other label shifts down by one.
    reduce_zero_label: bool = False
    root: str | None = None
    # Hold-out carved from the training split for tuning (see bench.data.splits). A fraction in
    # (0, 1) or a number of images; fixed by holdout_seed, independent of the run seed.
    holdout_size: float = 0.2
    holdout_seed: int = 0
    # A file-backed copy whose split sizes differ from the official ones is an error (an incomplete
    # download, a wrong list file); true accepts it with a warning (a subset on purpose).
    allow_partial: bool = False


@dataclass
class ModelConfig:
    """A segmentation network from segmentation-models-pytorch plus the auxiliary FCN head."""

    name: str = MISSING  # preset name, used in result rows and teacher checkpoint keys
    arch: str = MISSING  # bench.models registry key: deeplabv3, deeplabv3plus, pspnet, ...
    encoder: str = MISSING  # smp encoder name (resnet18, mobilenet_v2, tu-<timm model>)
    # null (random init, offline), "imagenet" (fetched by smp) or a path to an encoder state dict.
    encoder_weights: str | None = None
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)  # extra encoder args (timm kwargs)
    output_stride: int = 8
    decoder_kwargs: dict[str, Any] = field(default_factory=dict)  # extra smp decoder args
    # Auxiliary FCN head (3x3 conv → BN → ReLU → dropout → 1x1 conv) on one encoder stage, as in the
    # literature's PSPNet/DeepLabV3 students and teachers. aux_stage indexes the encoder's feature
    # list (0 = input, -2 = ResNet layer3 = "stage 3").
    aux_head: bool = True
    aux_stage: int = -2
    aux_channels: int = 256
    aux_dropout: float = 0.1
    aux_dropout_2d: bool = True  # Dropout2d (whole channels, mmseg) or Dropout (elements, CIRKD)
    # The network's input convention: channel order fed to the first conv (CIRKD's models take BGR)
    channel_order: str = "rgb"  # rgb | bgr
    # Input normalisation (images arrive as uint8 and are scaled to [0, 1] first); the ImageNet
    # statistics every encoder of the literature was pretrained with.
    mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])


@dataclass
class TeacherConfig(ModelConfig):
    # null: look the checkpoint up by key (results/teachers/<dataset>/<name>.pt); else a path.
    checkpoint: str | None = None


@dataclass
class WeightScheduleConfig:
    """A multiplier of a loss weight over training: ``start → end`` as training progresses.

    ``shape``: ``constant`` (always ``start``), ``linear`` (``start + (end − start)·p`` with progress
    ``p = step / iterations``) or ``stairs`` (the same, with ``p`` floored to ``1/stages`` steps — e.g.
    AICSD's per-epoch Adaptive Loss Weighting ``α = ⌊epoch⌋ / E`` with ``stages = E``).
    """

    shape: str = "constant"  # constant | linear | stairs
    start: float = 1.0
    end: float = 1.0
    stages: int = 1


@dataclass
class TermConfig:
    """Keys common to every KD loss term; each term's class extends this with its parameters."""

    term: str | None = None  # registry name; null means the entry's key in method.terms
    weight: float = 1.0
    schedule: WeightScheduleConfig | None = None  # null: the weight is constant


@dataclass
class MethodConfig:
    """A KD method: a name plus the loss terms it adds to the shared task loss."""

    name: str = MISSING
    terms: dict[str, Any] = field(default_factory=dict)
    # Multiplier of the task CE (main + aux) over training; null keeps it at 1. Only methods that
    # define their objective so (AICSD's ALW) set it; the baseline never does.
    task_schedule: WeightScheduleConfig | None = None
    # Terms whose estimated extra memory at the training size exceeds this stop the run at start.
    memory_limit_mb: float = 8192.0


@dataclass
class OptimizerConfig:
    name: OptimizerName = OptimizerName.sgd
    lr: float = 0.01
    momentum: float = 0.9  # sgd
    nesterov: bool = False  # sgd
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # adamw
    weight_decay: float = 1e-4
    # LR multiplier for decoder and heads (APD uses 10); 1 keeps one LR for everything.
    head_lr_mult: float = 1.0


@dataclass
class ScheduleConfig:
    name: ScheduleName = ScheduleName.poly
    power: float = 0.9  # poly exponent
    warmup_iters: int = 0  # linear warm-up from warmup_start_factor·lr to lr
    warmup_start_factor: float = 0.1
    min_lr: float = 0.0


@dataclass
class AugmentConfig:
    """Training augmentation, applied per sample with an RNG derived from the run seed."""

    scale_range: list[float] = field(default_factory=lambda: [1.0, 1.0])  # random rescale factor
    # > 0: the factor is drawn from {lo, lo + step, ..., hi} (CIRKD: 0.1 over [0.5, 2.0]); 0: uniform.
    scale_step: float = 0.0
    # mmseg's keep-ratio base scale [long, short] (RandomResize scale=(2048, 512)): the factor applies
    # to the size that fits this box; null: it applies to the image's own size (CIRKD).
    base_size: list[int] | None = None
    hflip: bool = True
    # Photometric jitter strength (brightness, contrast, saturation); 0 disables.
    jitter: float = 0.0
    # mmseg RandomCrop: redraw the crop (up to 10 times) while one class covers this fraction or more
    # of its labelled pixels; 1 disables.
    cat_max_ratio: float = 1.0
    # mmseg PhotoMetricDistortion: brightness ±32, contrast ×[0.5, 1.5], saturation ×[0.5, 1.5] and
    # hue ±18 (of 180), each with probability 1/2, contrast first or last.
    photometric: bool = False


@dataclass
class TrainConfig:
    iterations: int = 1000
    batch_size: int = 8
    # Random crop (height, width) padded with ignore where the image is smaller; null = whole image.
    crop_size: list[int] | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    aux_weight: float = 0.4  # CE weight of the auxiliary head, same for baseline and KD
    # The task CE's divisor: valid pixels (PyTorch, CIRKD) or all pixels, ignored ones included
    # (mmseg's default avg_non_ignore=False; protocol=mmseg80k sets it).
    ce_denominator: CEDenominator = CEDenominator.valid
    grad_clip: float | None = None  # max gradient L2 norm; null disables
    precision: Precision = Precision.fp32  # autocast; fp16 adds a GradScaler
    channels_last: bool = False
    # torch.compile the student's training forward (default inductor backend); the first steps compile.
    compile: bool = False
    deterministic: bool = False
    split: TrainSplit = TrainSplit.train
    num_workers: int = 0  # DataLoader worker processes
    log_interval: int = 20  # steps between loss reports (the only host syncs of the loop)
    val_interval: int = 0  # steps between intermediate validations; 0 = only at the end
    checkpoint_interval: int = 0  # steps between checkpoints; 0 = only at the end


@dataclass
class EvalConfig:
    split: EvalSplit = EvalSplit.val
    mode: EvalMode = EvalMode.whole
    crop_size: list[int] | None = None  # slide window (height, width)
    stride: list[int] | None = None  # slide stride (height, width)
    flip: bool = False  # average with the horizontally flipped prediction
    # Keep-ratio test-time resize to this [long, short] box (mmseg's test Resize), predictions resized
    # back to the label's size; null evaluates at full resolution (CIRKD).
    resize: list[int] | None = None
    batch_size: int = 1
    # Scores are reported on the subset of the split's images; 0 = all.
    max_images: int = 0
    # last: the trained model's scores; best_on_val: the best of validations on eval.split every
    # select_interval steps and at the end (CIRKD: every 800 of 40k steps, 50 validations) — the
    # report flags such rows (selected on val), for reproducing a paper's number, not for comparing.
    select: EvalSelect = EvalSelect.last
    select_interval: int = 0  # best_on_val: steps between validations; 0 = train.iterations / 50


@dataclass
class TuneConfig:
    """Equal-budget tuning (``make sweep``) and the final multi-seed runs (``make final``).

    Every method's study gets the same budget, sampler, sampler seed, pruner and per-trial schedule;
    only the search space's method dimensions differ.
    """

    budget: BudgetKind = BudgetKind.trials  # finished trials | device-seconds
    trials: int = 20  # budget=trials: finished trials per study (see docs/3_tuning_protocol.md)
    seconds: float = 3600.0  # budget=time: device-seconds per study
    trial_iterations: int | None = None  # per-trial schedule; null = train.iterations
    val_interval: int | None = None  # steps between pruning validations; null = ⌈a quarter of a trial⌉
    # Images per forward pass of the hold-out validations; 0 = max(eval.batch_size, train.batch_size).
    eval_batch_size: int = 0
    sampler: Sampler = Sampler.tpe
    sampler_seed: int = 0
    pruner: Pruner = Pruner.median
    pruner_startup_trials: int = 5  # median: trials before pruning starts
    pruner_warmup_steps: int = 0  # median: steps of a trial before it can be pruned
    max_failed_trials: int = 10  # crashes (OOM, errors) not counted in the budget before giving up
    workers: int = 1  # worker processes on this machine (CUDA: one GPU each when several are visible)
    gpus_per_trial: int = 1  # processes (GPUs) of one trial's run; >1: torchrun/DDP, bench.workers.multi_gpu
    # CUDA: workers sharing one GPU (small students leave a large GPU mostly idle); workers i·k … i·k+k-1
    # go to GPU i (mod the visible GPUs).
    workers_per_gpu: int = 1
    # Leases on running trials (bench.tune.heartbeat): a worker refreshes its trial's heartbeat every
    # heartbeat_interval seconds; a RUNNING trial silent for heartbeat_grace seconds is failed as stale.
    heartbeat_interval: float = 30.0
    heartbeat_grace: float = 180.0
    storage: str | None = None  # null: the journal file results/studies/optuna.journal; or an Optuna URL
    sweeps_dir: str | None = None  # search spaces; null = the repository's sweeps/
    studies_dir: str = "results/studies"
    trials_dir: str = "results/trials"
    finals_dir: str = "results/finals"
    keep_trial_checkpoints: bool = False  # trials keep only result.json unless true
    final_seeds: int = 3  # finals: seeds 0 .. final_seeds-1, the same list for every method
    # make fidelity: retrain the top-k and k random completed trials at the final schedule (2k runs)
    fidelity_k: int = 3
    fidelity_dir: str = "results/fidelity"
    repeats: int = 1  # independent studies per method (make sweep runs repeats 0 .. repeats-1)
    repeat: int = 0  # this study's repeat: sampler and hold-out seeds derived from (seed, repeat)
    # A worker whose code differs from its study's is refused; true: it joins, the mix is recorded in
    # the study and flagged by the report (bench.tune.study._code).
    allow_mixed_code: bool = False


@dataclass
class LauncherConfig:
    """Where sweep workers run (``make sweep LAUNCHER=slurm``); see bench.workers.slurm."""

    name: str = "local"  # local: tune.workers processes here | slurm: a Slurm job array via submitit
    jobs: int | None = None  # Slurm: array size (one worker each); null = tune.workers
    partition: str | None = None
    account: str | None = None
    gpus_per_node: int = 0  # GPUs per job; 0 with tune.gpus_per_trial=N>1: N (it must equal N)
    cpus_per_task: int = 4
    mem_gb: float = 16.0
    timeout_min: int = 240  # the job's time limit
    max_parallel: int | None = None  # array throttle (%N); null = no limit
    folder: str = "results/slurm/%j"  # submitit's folder: one log per job (%j = the job id)
    setup: list[str] = field(default_factory=list)  # shell lines before the worker (module load ...)
    wait: bool = True  # wait for the jobs, printing the study's status; false = submit and return


@dataclass
class LoggerConfig:
    """Experiment tracking (``logger=<name>``, see :mod:`bench.tracking`); never part of the config hash."""

    name: str = "none"  # none | csv | tensorboard | mlflow | wandb
    dir: str | None = None  # csv: null = <output_dir>/logs; others: results/<tool> (mlflow: results/)
    tracking_uri: str | None = None  # mlflow: any tracking URI; null = sqlite:///<dir>/mlflow.db
    experiment: str = "segkd-bench"  # mlflow experiment / W&B project
    mode: str = "offline"  # wandb: offline | online
    group: str | None = None  # runs shown together; null = dataset/student/teacher/method (trials: study)


@dataclass
class ReproductionConfig:
    """What a run reproduces: labels only, never part of the config hash (the settings they stand for
    are in the other groups). ``conf/protocol/<name>.yaml`` sets ``protocol``; ``experiment=<name>``
    (``conf/experiment/``) sets the rest. The report matches ``dataset``, student, teacher and
    ``protocol`` against the published results (``conf/published/``, :mod:`bench.report.published`)."""

    protocol: str | None = None  # the protocol preset the run was composed with (null: none)
    experiment: str | None = None  # the experiment preset (null: none)
    paper: str | None = None  # the paper whose table the experiment reproduces (conf/published/<paper>.yaml)
    # make reproduce: every student of that table (the first is the default) → its KD method presets
    runs: dict[str, list[str]] = field(default_factory=dict)
    codebase: str | None = None  # the official code whose teacher file `bench.convert` reads (cirkd)
    teacher_file: str | None = None  # the official teacher checkpoint's file name
    backbones: dict[str, str] = field(default_factory=dict)  # student preset → ImageNet backbone file name
    downloads: dict[str, str] = field(default_factory=dict)  # file name → URL (the official README's)


@dataclass
class RunConfig:
    """One training run: dataset × student × (teacher) × method under a train and eval protocol."""

    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    student: ModelConfig = field(default_factory=ModelConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    launcher: LauncherConfig = field(default_factory=LauncherConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    reproduction: ReproductionConfig = field(default_factory=ReproductionConfig)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    output_dir: str = MISSING
    resume: bool = False
    progress: bool = True  # show a progress bar
    teachers_dir: str = "results/teachers"


# Keys that do not change what a run computes; left out of the config hash.
NON_SEMANTIC_KEYS = (
    "tune",
    "reproduction",
    "launcher",
    "logger",
    "output_dir",
    "resume",
    "progress",
    "teachers_dir",
    "teacher.checkpoint",
    "train.num_workers",
    "train.log_interval",
    "train.checkpoint_interval",
)
