"""Every real dataset × literature student × method study composes and has a valid search space."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from bench.config.compose import compose_raw, conf_dir, validate
from bench.errors import ConfigError
from bench.tune.space import load_space

pytestmark = pytest.mark.slow  # composes every study of every dataset

DATASETS = ("cityscapes", "ade20k", "voc", "camvid")
STUDENTS = ("deeplabv3_r18", "deeplabv3_mbv2", "pspnet_r18")
PROTOCOLS = ("cirkd", "mmseg80k")
METHODS = sorted(p.stem for p in (conf_dir() / "method").glob("*.yaml"))


@pytest.fixture(scope="module")
def method_sections() -> dict[str, dict]:
    """Each method preset as Hydra composes it (it does not depend on dataset, student or protocol)."""
    return {m: OmegaConf.to_container(compose_raw([f"method={m}"]).method) for m in METHODS}


def _check_space(cfg, dataset: str, protocol: str) -> None:
    space = load_space(cfg)  # raises on a default outside its range or an unknown key
    assert space.files[0] == conf_dir().parent / "sweeps" / "train" / dataset / "default.yaml"
    assert {"train.optimizer.lr", "train.optimizer.weight_decay"} <= set(space.distributions)
    # trial 0 is the protocol's own values
    assert space.defaults["train.optimizer.lr"] == {"cirkd": 0.02, "mmseg80k": 0.01}[protocol]
    assert space.defaults["train.optimizer.weight_decay"] == {"cirkd": 1e-4, "mmseg80k": 5e-4}[protocol]
    assert space.defaults["train.schedule.warmup_iters"] == 0


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("dataset", DATASETS)
def test_every_study_has_a_valid_space(dataset, protocol, method_sections):
    """Every student × method study of the dataset under the protocol: the composed config validates
    and its search space loads with trial 0 inside the ranges. The method section does not depend on
    dataset, student or protocol, so each method is composed once and set into the study configs; the
    student does not change the space's keys, so every method is checked with the first student and
    every student with the baseline (validation costs ~0.1 s a config)."""
    for student in STUDENTS:
        overrides = [f"dataset={dataset}", f"student={student}", f"protocol={protocol}"]
        if (dataset, protocol) == ("camvid", "mmseg80k"):
            with pytest.raises(ConfigError, match="not defined for camvid"):
                validate(compose_raw(overrides))
            continue
        base = OmegaConf.to_container(compose_raw(overrides))
        teacher = {"cirkd": "deeplabv3_r101", "mmseg80k": "mmseg_pspnet_r101"}[protocol]  # the protocol's own
        assert (base["student"]["name"], base["teacher"]["name"]) == (student, teacher)
        for method, section in method_sections.items():
            if student != STUDENTS[0] and method != "baseline":
                continue
            _check_space(validate({**base, "method": section}), dataset, protocol)


@pytest.mark.parametrize("dataset", DATASETS)
def test_literature_pair_unless_given(dataset):
    """A real dataset composes teacher DeepLabV3-R101 → student R18; the command line still wins."""
    for name in ("run", "teacher_run"):
        cfg = compose_raw([f"dataset={dataset}"], name)
        assert (cfg.student.name, cfg.teacher.name) == ("deeplabv3_r18", "deeplabv3_r101")
    cfg = compose_raw([f"dataset={dataset}", "student=pspnet_r18", "teacher=deeplabv3_small"])
    assert (cfg.student.name, cfg.teacher.name) == ("pspnet_r18", "deeplabv3_small")
    # finals keep the full schedule; trials use the per-dataset tuning schedule
    assert cfg.tune.trial_iterations < cfg.train.iterations


def test_synthetic_keeps_its_cpu_pair():
    cfg = compose_raw(["dataset=synthetic"])
    assert (cfg.student.name, cfg.teacher.name) == ("deeplabv3_tiny", "deeplabv3_small")
    assert cfg.tune.trial_iterations is None
