"""``make reproduce`` / ``python -m bench.reproduce`` and the experiment presets it runs
(conf/experiment/), held against the published table (conf/published/)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bench.config.compose import conf_dir, load_config
from bench.report import published
from bench.reproduce import Step, experiments, main, plan_steps

from .test_plan import Fixed

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", experiments())
def test_each_experiment_composes_the_whole_published_table(name):
    """Every student × method it runs has a published row of its paper, dataset, protocol and
    teacher, and every such published row is run: nothing missing, nothing extra."""
    cfg = load_config([f"experiment={name}"])
    rep = cfg.reproduction
    assert rep.experiment == name and rep.protocol is not None
    assert (conf_dir().parent / "conf" / "published" / f"{rep.paper}.yaml").is_file() or (
        conf_dir() / "published" / f"{rep.paper}.yaml"
    ).is_file()
    rows = published.read_file(conf_dir() / "published" / f"{rep.paper}.yaml")
    comparison = (cfg.dataset.name, "val", rep.protocol, cfg.teacher.name)
    table = {
        (r.student, r.preset)
        for r in rows
        if (r.dataset, r.split, r.protocol, r.teacher) == comparison and r.student and r.preset
    }
    assert {(s, m) for s, methods in rep.runs.items() for m in methods} == table
    assert cfg.student.name == next(iter(rep.runs))
    for student in rep.runs:  # every student composes with its official backbone file named
        assert load_config([f"experiment={name}", f"student={student}"]).student.name == student
        assert rep.backbones[student] in rep.downloads
    assert rep.teacher_file in rep.downloads and rep.codebase == "cirkd"
    assert all(url.startswith("https://") for url in rep.downloads.values())


def test_the_commands_of_a_reproduction(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["cirkd", "voc", "--files", "dl", "tune.trials=4"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(
        "# download dl/deeplabv3_resnet101_voc_best_model.pth: https://drive.google.com/"
    )
    commands = [line for line in out if not line.startswith("#")]
    assert commands[0] == (
        "python -m bench.convert cirkd dl/deeplabv3_resnet101_voc_best_model.pth --preset deeplabv3_r101 "
        "--dataset voc -o results/teachers/voc/deeplabv3_r101.pt"
    )
    sweeps = [c for c in commands if c.startswith("python -m bench.sweep")]
    assert len(sweeps) == 2 * 2  # two students × (baseline + CIRKD)
    assert sweeps[0] == (
        "python -m bench.sweep experiment=cirkd_voc student=deeplabv3_r18 "
        "student.encoder_weights=dl/resnet18-imagenet.pth method=baseline tune.trials=4"
    )
    assert commands[-2:] == ["python -m bench.final dataset=voc tune.trials=4", "python -m bench.report"]
    # a teacher already converted is not converted again
    (tmp_path / "results/teachers/voc").mkdir(parents=True)
    (tmp_path / "results/teachers/voc/deeplabv3_r101.pt").write_bytes(b"x")
    steps, needed = plan_steps("cirkd", "voc", Path("dl"), [])
    # the tuning teacher: trained without the hold-out the KD trials are scored on (the official saw it)
    assert steps[0] == Step("bench.teacher", ("--part=tune", "experiment=cirkd_voc"))
    assert steps[1].module == "bench.sweep"
    assert Path("dl/deeplabv3_resnet101_voc_best_model.pth") not in needed
    (tmp_path / "results/teachers/voc/deeplabv3_r101.tune-h0.1-s0.pt").write_bytes(b"x")
    assert plan_steps("cirkd", "voc", Path("dl"), [])[0][0].module == "bench.sweep"


@pytest.mark.parametrize(("paper", "dataset"), [("nope", "cityscapes"), ("cirkd", "synthetic"), ("", "voc")])
def test_an_unknown_table_is_one_line_listing_the_known_ones(paper, dataset, capsys):
    assert main([paper, dataset]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"no experiment for PAPER={paper or '(none)'} DATASET={dataset}" in err
    assert "known: PAPER=afdcd DATASET=ade20k" in err and "PAPER=cirkd DATASET=cityscapes" in err


def test_run_without_the_official_files_names_them_and_runs_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["cirkd", "cityscapes", "--run"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert "missing official files: downloads/deeplabv3_resnet101_citys_best_model.pth" in err
    assert "downloads/mobilenetv2-imagenet.pth (https://drive.google.com/" in err
    assert not (tmp_path / "results").exists()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_reproduce_and_plan_take_paper_and_dataset():
    def make(*args: str) -> subprocess.CompletedProcess[str]:
        argv = ["make", *args, "STAMP="]
        return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)

    done = make("-s", "reproduce", "PAPER=nope", "DATASET=voc")
    assert done.returncode == 2 and "no experiment for PAPER=nope DATASET=voc; known:" in done.stderr
    dry = make("-n", "reproduce", "PAPER=cirkd", "DATASET=voc", "RUN=1", "FILES=dl", "TRIALS=4")
    recipe = " ".join(dry.stdout.replace("\\\n", " ").split())  # one line, continuations joined
    assert 'bench.reproduce "cirkd" "voc" --files dl --run tune.trials=4' in recipe
    assert "bench.plan experiment=cirkd_voc" in make("-n", "plan", "PAPER=cirkd", "DATASET=voc").stdout
    assert "reproduce" in make("-s", "help").stdout


@pytest.mark.slow  # builds the real presets to count their parameters
def test_plan_prices_a_published_table_as_reproduce_runs_it(tmp_path):
    text = __import__("bench.plan", fromlist=["main"]).main(
        ["experiment=cirkd_voc", f"teachers_dir={tmp_path}", "--estimate"], timing=Fixed()
    )
    lines = [line.split() for line in text.splitlines()]
    studies = [p[2] for p in lines if p[1:2] == ["study"]]
    assert studies == [
        "deeplabv3_r18/baseline",
        "deeplabv3_r18/cirkd_paper",
        "pspnet_r18/baseline",
        "pspnet_r18/cirkd_paper",
    ]
    teacher = [p for p in lines if p[1:2] == ["teacher"]]
    assert len(teacher) == 2 and teacher[0][3] == "0" and "converted from" in " ".join(teacher[0])
    assert (
        teacher[1][2] == "deeplabv3_r101/tune" and teacher[1][3] == "1"
    )  # trained: the official saw the hold-out
    assert all(p[0] == "voc" for p in lines if p[1:2] in (["study"], ["finals"]))


def test_student_and_method_choose_within_the_table(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    steps, _ = plan_steps("cirkd", "cityscapes", Path("dl"), ["method=dsd,cirkd_paper", "student=pspnet_r18"])
    sweeps = [s.args for s in steps if s.module == "bench.sweep"]
    assert [(a[1], a[3]) for a in sweeps] == [("student=pspnet_r18", "method=baseline"),
                                             ("student=pspnet_r18", "method=cirkd_paper")]  # fmt: skip
    assert all("method=dsd,cirkd_paper" not in a for s in steps for a in s.args)
    assert main(["cirkd", "cityscapes", "method=dist"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: method dist is not in experiment cirkd_cityscapes; "
        "it has skd_paper, ifvd_paper, cwd_paper, dsd, cirkd_paper"
    )
    assert main(["cirkd", "cityscapes", "student=segformer_b0"]) == 2
    assert "student segformer_b0 is not in experiment cirkd_cityscapes" in capsys.readouterr().err
