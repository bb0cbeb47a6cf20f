"""Config composition from the real conf/ files, and its errors."""

from pathlib import Path

import pytest

from bench.config import RunConfig
from bench.config.compose import conf_dir, config_hash, load_config, to_dict
from bench.errors import ConfigError

from ..conftest import tiny_config


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (conf_dir() / group).glob("*.yaml"))


def test_default_config_composes_to_typed_objects():
    cfg = load_config(["output_dir=x"])
    assert isinstance(cfg, RunConfig)
    assert cfg.dataset.name == "synthetic" and cfg.method.name == "baseline"
    assert cfg.train.optimizer.lr > 0 and cfg.output_dir == "x"


@pytest.mark.parametrize("student", _options("student"))
@pytest.mark.parametrize("method", _options("method"))
def test_every_student_and_method_composes(student, method):
    cfg = load_config([f"student={student}", f"method={method}"])
    assert cfg.student.name == student and cfg.method.name == method
    # The default output folder separates runs by dataset, student, teacher, method and seed.
    assert Path(cfg.output_dir).parts[-5:] == ("synthetic", student, cfg.teacher.name, method, "seed0")


def test_teacher_presets_compose():
    for teacher in _options("teacher"):
        assert load_config([f"teacher={teacher}"]).teacher.name == teacher


def test_run_config_has_no_hydra_interpolations():
    # Trial configs are built with the compose API, where ${hydra:...} does not resolve.
    for path in conf_dir().rglob("*.yaml"):
        assert "${hydra:" not in path.read_text(), path


def test_train_protocol_follows_the_dataset():
    cfg = load_config([])
    assert cfg.train.iterations == load_config(["train=synthetic"]).train.iterations


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("train.lrr=0.1", "train.lrr"),  # misspelled key
        ("+train.optimizer.lrr=0.1", "lrr"),  # misspelled key added with +
        ("train.iterations=many", "train.iterations"),  # wrong type
        ("+method.terms.kd.temprature=2", "temprature"),  # misspelled term parameter
    ],
)
def test_bad_keys_and_types_name_the_key(override, named):
    extra = ["method=kd"] if "terms.kd" in override else []
    with pytest.raises(ConfigError, match=named):
        load_config([*extra, override])


@pytest.mark.parametrize(
    ("group", "valid"), [("dataset", "synthetic"), ("method", "kd"), ("student", "deeplabv3_r18")]
)
def test_unknown_preset_lists_valid_names(group, valid):
    with pytest.raises(ConfigError) as err:
        load_config([f"{group}=nope"])
    assert "nope" in str(err.value) and valid in str(err.value)


def test_unknown_registry_names_list_valid_names():
    with pytest.raises(ConfigError, match=r"valid names: .*deeplabv3"):
        load_config(["student.arch=unet3000"])
    with pytest.raises(ConfigError, match=r"valid names: .*kd"):
        load_config(["+method.terms.foo={weight: 1}"])


def test_inconsistent_values_are_rejected():
    with pytest.raises(ConfigError, match=r"train.precision"):
        load_config(["train.precision=fp8"])
    with pytest.raises(ConfigError, match=r"divisible by student.output_stride"):
        load_config(["train.crop_size=[30,30]"])
    with pytest.raises(ConfigError, match="num_classes"):
        load_config(["dataset.num_classes=5"])


def test_config_hash_ignores_bookkeeping_but_not_protocol(tmp_path):
    a = tiny_config(tmp_path)
    assert config_hash(a) == config_hash(tiny_config(tmp_path / "elsewhere", "progress=true"))
    assert config_hash(a) != config_hash(tiny_config(tmp_path, "train.optimizer.lr=0.5"))
    assert config_hash(a) != config_hash(tiny_config(tmp_path, "seed=1"))


def test_config_hash_counts_the_device_by_kind(tmp_path):
    """A final run trained on the GPU a worker slot gave it (cuda:1) is the same run as on cuda:0."""
    cuda = {config_hash(tiny_config(tmp_path, f"device={d}")) for d in ("cuda", "cuda:0", "cuda:3")}
    assert len(cuda) == 1
    assert cuda != {config_hash(tiny_config(tmp_path, "device=cpu"))}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.precision=fp8"], "train.precision='fp8'; valid: fp32, bf16, fp16"),
        (["train.split=val"], "train.split='val'; valid: train, tune_train"),
        (["eval.split=test"], "eval.split='test'; valid: val, tune_holdout"),
        (["eval.mode=tiles"], "eval.mode='tiles'; valid: whole, slide"),
        (["tune.budget=hours"], "tune.budget='hours'; valid: trials, time"),
        (["tune.sampler=grid"], "tune.sampler='grid'; valid: tpe, random"),
        (["tune.pruner=hyperband"], "tune.pruner='hyperband'; valid: none, median, halving"),
        (["train.optimizer.name=adam"], "train.optimizer.name='adam'; valid: sgd, adamw"),
        (["train.schedule.name=step"], "train.schedule.name='step'; valid: poly, cosine, constant"),
        (
            ["method=rdd", "method.terms.rdd.mask_mode=nand"],
            "method.terms.rdd.mask_mode='nand'; valid: xor, or, and, ohem",
        ),
        (
            ["method=rdd", "method.terms.rdd.switch=cosine"],
            "method.terms.rdd.switch='cosine'; valid: hard, linear",
        ),
        (
            ["method=skd_paper", "method.terms.adv.loss=wgan"],
            "method.terms.adv.loss='wgan'; valid: hinge, wgan-gp",
        ),
        (
            ["+method.terms.x={term: skd_holistic, preprocess: relu}"],
            "method.terms.x.preprocess='relu'; valid: bn, tanh, none",
        ),
        (
            ["+method.terms.x={term: skd_holistic, d_optimizer: rmsprop}"],
            "method.terms.x.d_optimizer='rmsprop'; valid: adam, sgd",
        ),
        (
            ["method=cwd_feat", "method.terms.cwd_feat.adapter=mlp"],
            "method.terms.cwd_feat.adapter='mlp'; valid: conv, conv_bn_relu",
        ),
        # A term added with + is checked against its own schema too.
        (
            ["+method.terms.x={term: cwd_feat, normalizer: both}"],
            "method.terms.x.normalizer='both'; valid: teacher, student",
        ),
    ],
)
def test_enum_keys_name_the_key_and_the_valid_values(overrides, message):
    with pytest.raises(ConfigError) as err:
        load_config(overrides)
    assert str(err.value) == message


def test_enum_values_that_are_no_identifiers_compose():
    """``wgan-gp``, ``or`` and ``and`` are valid values though no Python names."""
    cfg = load_config(["method=skd_paper", "method.terms.adv.loss=wgan-gp"])
    assert cfg.method.terms["adv"].loss == "wgan-gp"
    for mode in ("or", "and"):
        assert (
            load_config(["method=rdd", f"method.terms.rdd.mask_mode={mode}"]).method.terms["rdd"].mask_mode
            == mode
        )


def test_enum_values_read_as_their_strings():
    cfg = load_config(["train.precision=bf16", "tune.budget=time"])
    assert cfg.train.precision == "bf16" and f"{cfg.tune.budget}" == "time"
    assert {"bf16": 1}[cfg.train.precision] == 1
    data = to_dict(cfg)
    assert type(data["train"]["precision"]) is str and type(data["eval"]["mode"]) is str


def _omegaconf_container(run: RunConfig) -> dict:
    from omegaconf import OmegaConf

    expected = OmegaConf.to_container(OmegaConf.structured(run), resolve=True, enum_to_str=True)
    expected["tune"]["storage"] = to_dict(run)["tune"]["storage"]  # masked
    return expected


def test_to_dict_is_omegaconfs_container():
    """Config hashes are of ``to_dict``: it must stay what OmegaConf's container of the run gives."""
    run = load_config(
        ["method=skd_paper", "train.precision=bf16", "tune.storage='postgresql://u:secret@h/db'"]
    )
    assert to_dict(run) == _omegaconf_container(run) and "secret" not in str(to_dict(run))


@pytest.mark.slow  # composes 22 presets
def test_to_dict_is_omegaconfs_container_of_every_preset():
    methods = sorted(p.stem for p in (conf_dir() / "method").glob("*.yaml"))
    datasets = [p.stem for p in (conf_dir() / "dataset").glob("*.yaml") if p.stem != "folder"]
    runs = [load_config([f"method={m}"]) for m in methods]
    typed = ["train.precision=bf16", "train.crop_size=[64,64]"]  # an enum and a list
    runs += [load_config([f"dataset={d}", *typed]) for d in datasets]
    for run in runs:
        assert to_dict(run) == _omegaconf_container(run)
