"""``python -m bench.convert``: official checkpoints in, teacher checkpoints out.

The fixtures are written in the layouts the official training scripts save: CIRKD's
``torch.save(model.state_dict())`` after unwrapping DDP (winycg/CIRKD@2d8ad0f
``train_baseline.py::save_checkpoint``), the same with DDP's ``module.`` prefix or inside a
``{"state_dict": ...}``; mmcv's ``save_checkpoint`` (``{"meta", "state_dict", "optimizer"}``) and
mmengine's ``Runner.save_checkpoint`` (``message_hub`` pickling mmengine classes and numpy values).
Their tensors come from this project's own network with random weights and non-trivial BatchNorm
statistics, its keys renamed to the official names by the rules below (written from the official
module names, independently of :mod:`bench.models.keymaps`), so the converted network must give the
source network's taps exactly.
"""

from __future__ import annotations

import sys
import types
from collections import OrderedDict

import numpy as np
import pytest
import torch

from bench.config.compose import load_config
from bench.convert import main, preset_config
from bench.models import build_model, from_checkpoint

# ----------------------------------------------------------------- our keys → the official names
_CIRKD_STEM = {"conv1.0": "conv1", "conv1.1": "bn1", "conv1.3": "conv2", "conv1.4": "bn2", "conv1.6": "conv3"}
_MMSEG_STEM = {"conv1.0": "stem.0", "conv1.1": "stem.1", "conv1.3": "stem.3", "conv1.4": "stem.4"}
_MMSEG_STEM |= {"conv1.6": "stem.6", "bn1": "stem.7"}
# CIRKD's MobileNetV2 features.k (k >= 1): blocks per timm stage; expand ratio 1 for features.1
_MBV2_BLOCKS = [(s, i) for s, n in enumerate((1, 2, 3, 4, 3, 3, 1)) for i in range(n)]
_MBV2_DS = {"conv_dw": 0, "bn1": 1, "conv_pw": 3, "bn2": 4}
_MBV2_IR = {"conv_pw": 0, "bn1": 1, "conv_dw": 3, "bn2": 4, "conv_pwl": 6, "bn3": 7}


def _swap_prefix(key: str, table: dict[str, str]) -> str:
    for ours, theirs in table.items():
        if key.startswith(ours + "."):
            return theirs + key[len(ours) :]
    return key


def _cirkd_backbone(key: str, mobilenet: bool) -> str:
    if not mobilenet:
        return "pretrained." + _swap_prefix(key, {**_CIRKD_STEM, "bn1": "bn3"})
    head, _, param = key.rpartition(".")
    if head in ("conv_stem", "bn1"):
        return f"pretrained.net.features.0.{0 if head == 'conv_stem' else 1}.{param}"
    _, stage, index, name = head.split(".")
    k = _MBV2_BLOCKS.index((int(stage), int(index))) + 1
    j = (_MBV2_DS if k == 1 else _MBV2_IR)[name]
    return f"pretrained.net.features.{k}.conv.{j}.{param}"


def official_key(codebase: str, preset: str, key: str) -> str:
    """The name CIRKD's or mmseg's own network gives the tensor our ``key`` holds."""
    encoder = "net.encoder.model."
    if codebase == "cirkd":
        if key.startswith(encoder):
            return _cirkd_backbone(key[len(encoder) :], "mbv2" in preset)
        classifier = "head.classifier." if preset.startswith("pspnet") else "head.block.4."
        table = {"aux_head": "auxlayer", "net.segmentation_head.0": classifier[:-1], "net.decoder": "head"}
        return _swap_prefix(key, table)
    if key.startswith(encoder):
        return "backbone." + _swap_prefix(key[len(encoder) :], _MMSEG_STEM)
    table = {
        "net.segmentation_head.0": "decode_head.conv_seg",
        "net.decoder": "decode_head",
        "aux_head.block.0": "auxiliary_head.convs.0.conv",
        "aux_head.block.1": "auxiliary_head.convs.0.bn",
        "aux_head.block.4": "auxiliary_head.conv_seg",
    }
    return _swap_prefix(key, table)


# ----------------------------------------------------------------- source networks and files
def source_network(preset: str, classes: int = 19, seed: int = 0) -> torch.nn.Module:
    """Our network of ``preset`` with random weights and BatchNorm statistics far from (0, 1)."""
    torch.manual_seed(seed)
    model = build_model(preset_config(preset), classes)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 2 + 0.3)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.2)
                m.num_batches_tracked.fill_(40000)
    return model.eval()


def official_state(codebase: str, preset: str, model: torch.nn.Module) -> OrderedDict:
    return OrderedDict((official_key(codebase, preset, k), v) for k, v in model.state_dict().items())


class HistoryBuffer:
    """Pickled under mmengine's name: a class the project cannot (and must not) import."""

    def __init__(self) -> None:
        self._log_history = np.array([1.5, 1.2])
        self._count_history = np.array([1, 1])


def save_cirkd(path, state: OrderedDict, layout: str = "bare") -> None:
    """``bare``: CIRKD's own save; ``ddp``: the DDP wrapper's state dict; ``wrapped``: a
    ``{"state_dict": ...}`` holding the DDP one."""
    if layout != "bare":
        state = OrderedDict(("module." + k, v) for k, v in state.items())
    torch.save({"state_dict": state, "epoch": 3} if layout == "wrapped" else state, path)


def save_mmseg(path, state: OrderedDict, layout: str = "mmcv", monkeypatch=None) -> None:
    """``mmcv``: mmcv 1.x ``save_checkpoint``; ``mmengine``: mmengine's Runner (message hub with
    mmengine objects and numpy values in the pickle)."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.01, momentum=0.9)
    opt.param_groups[0]["params"][0].grad = torch.ones(2)
    opt.step()
    classes = tuple(f"class{i}" for i in range(19))
    if layout == "mmcv":
        meta = {"mmcv_version": "1.7.1", "time": "Sun Dec  6 17:00:00 2026", "CLASSES": classes,
                "PALETTE": [[i, i, i] for i in range(19)], "env_info": "sys.platform: linux",
                "config": "norm_cfg = dict(type='SyncBN')", "seed": 0, "exp_name": "x.py",
                "mmseg_version": "0.30.0", "iter": 80000, "hook_msgs": {}}  # fmt: skip
        torch.save({"meta": meta, "state_dict": state, "optimizer": opt.state_dict()}, path)
        return
    module = types.ModuleType("mmengine.logging.history_buffer")
    module.HistoryBuffer = HistoryBuffer
    monkeypatch.setattr(HistoryBuffer, "__module__", module.__name__)
    with monkeypatch.context() as m:
        for name in ("mmengine", "mmengine.logging"):
            m.setitem(sys.modules, name, types.ModuleType(name))
        m.setitem(sys.modules, module.__name__, module)
        meta = {"iter": 80000, "mmengine_version": "0.10.7", "seed": np.int64(0),
                "dataset_meta": {"classes": classes}, "cfg": "model = dict(type='SegModel')"}  # fmt: skip
        hub = {"log_scalars": {"train/loss": HistoryBuffer()}, "runtime_info": {"iter": 80000}}
        ckpt = {"meta": meta, "state_dict": state, "message_hub": hub, "optimizer": opt.state_dict(),
                "param_schedulers": [{"last_step": 80000}]}  # fmt: skip
        torch.save(ckpt, path)
    assert "mmengine" not in sys.modules  # loading cannot use the class


def convert(codebase, src, preset, dst, capsys, dataset="cityscapes") -> tuple[int, str]:
    code = main([codebase, str(src), "--preset", preset, "--dataset", dataset, "-o", str(dst)])
    return code, capsys.readouterr().err


# ----------------------------------------------------------------- layouts in, same network out
@pytest.mark.parametrize("preset", ["deeplabv3_r18", "pspnet_r18", "deeplabv3_mbv2"])
def test_key_map_rules_round_trip(preset):
    """The rules above and bench.models.keymaps agree on every tensor of each network."""
    from bench.models.keymaps import segmentation_map

    cfg = preset_config(preset)
    mapping = segmentation_map("cirkd", cfg.encoder)
    own = build_model(cfg, 19).state_dict()
    assert {mapping(official_key("cirkd", preset, k)) for k in own} == set(own)


CASES = [
    ("cirkd", "deeplabv3_r18", "bare"),
    ("cirkd", "deeplabv3_r18", "ddp"),
    ("cirkd", "pspnet_r18", "wrapped"),
    ("cirkd", "deeplabv3_mbv2", "bare"),
    ("mmseg", "mmseg_deeplabv3_r18", "mmcv"),
    ("mmseg", "mmseg_pspnet_r18", "mmengine"),
]


@pytest.mark.parametrize(("codebase", "preset", "layout"), CASES)
def test_converted_network_gives_the_source_networks_taps(
    codebase, preset, layout, tmp_path, capsys, monkeypatch
):
    source = source_network(preset)
    src, dst = tmp_path / "official.pth", tmp_path / "teacher.pt"
    state = official_state(codebase, preset, source)
    if codebase == "cirkd":
        save_cirkd(src, state, layout)
    else:
        save_mmseg(src, state, layout, monkeypatch)
    code, err = convert(codebase, src, preset, dst, capsys)
    assert (code, err) == (0, "")

    ours = from_checkpoint(dst)
    assert not ours.training
    images = torch.randint(0, 256, (2, 3, 64, 96), dtype=torch.uint8)
    with torch.no_grad():
        want = source(images)
        for given in (images, images.float()):  # uint8 and float 0-255 RGB
            got = ours(given)
            for tap in ("logits_low", "aux_logits", "feat"):
                if getattr(want, tap) is None:
                    assert getattr(got, tap) is None
                else:
                    torch.testing.assert_close(getattr(got, tap), getattr(want, tap), rtol=0, atol=0)
    meta = torch.load(dst, weights_only=False)["meta"]
    assert meta["source"]["codebase"] == codebase and meta["num_classes"] == 19


@pytest.mark.slow  # ResNet-101 built three times
def test_converted_teacher_is_accepted_by_a_run(tmp_path, capsys):
    """``teacher.checkpoint=DST.pt`` passes the preflight check and loads as the run's teacher."""
    from bench.preflight import check_teacher
    from bench.teachers import load_teacher

    source = source_network("deeplabv3_r101")
    src, dst = tmp_path / "deeplabv3_resnet101_citys_best_model.pth", tmp_path / "t.pt"
    save_cirkd(src, official_state("cirkd", "deeplabv3_r101", source))
    assert (
        main(["cirkd", str(src), "--preset", "deeplabv3_r101", "--dataset", "cityscapes", "-o", str(dst)])
        == 0
    )
    assert f"use teacher=deeplabv3_r101 teacher.checkpoint={dst}" in capsys.readouterr().out
    cfg = load_config(["dataset=cityscapes", "method=kd", f"teacher.checkpoint={dst}"])
    assert cfg.teacher.name == "deeplabv3_r101"
    check_teacher(cfg)
    teacher, path, _ = load_teacher(cfg, torch.device("cpu"))
    assert path == dst
    images = torch.randint(0, 256, (1, 3, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        torch.testing.assert_close(teacher(images).logits_low, source(images).logits_low, rtol=0, atol=0)


def test_the_printed_command_names_a_preset_the_run_accepts(tmp_path, capsys):
    """A teacher preset gets ``teacher=NAME teacher.checkpoint=DST``; a student preset is no run's
    teacher, so the message says how to use the file instead of an override that fails."""
    src, dst = tmp_path / "psp.pth", tmp_path / "psp.pt"
    save_cirkd(src, official_state("cirkd", "pspnet_r18", source_network("pspnet_r18")))
    assert main(["cirkd", str(src), "--preset", "pspnet_r18", "--dataset", "cityscapes", "-o", str(dst)]) == 0
    out = capsys.readouterr().out
    assert "teacher=pspnet_r18" not in out and "from_checkpoint" in out


# ----------------------------------------------------------------- bad files: exit 2, one line
@pytest.fixture(scope="module")
def r18_state():
    return official_state("cirkd", "deeplabv3_r18", source_network("deeplabv3_r18"))


def refused(capsys, src, *args, codebase="cirkd", preset="deeplabv3_r18", dataset="cityscapes") -> str:
    dst = src.with_name("out.pt")
    code, err = convert(codebase, src, preset, dst, capsys, dataset)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert str(src) in lines[0] and not dst.exists()
    for word in args:
        assert word in lines[0], lines[0]
    return lines[0]


def test_other_preset_of_the_same_codebase(tmp_path, capsys, r18_state):
    src = tmp_path / "r18.pth"
    save_cirkd(src, r18_state)
    refused(capsys, src, "deeplabv3_r101", "shape", preset="deeplabv3_r101")


def test_other_architecture(tmp_path, capsys, r18_state):
    src = tmp_path / "r18.pth"
    save_cirkd(src, r18_state)
    refused(capsys, src, "pspnet_r18", "another architecture", preset="pspnet_r18")


def test_other_codebase(tmp_path, capsys):
    src = tmp_path / "mmseg.pth"
    state = official_state("mmseg", "mmseg_pspnet_r18", source_network("mmseg_pspnet_r18"))
    save_mmseg(src, state)
    refused(capsys, src, "an mmseg checkpoint", "python -m bench.convert mmseg")


def test_wrong_class_count(tmp_path, capsys, r18_state):
    src = tmp_path / "r18.pth"
    save_cirkd(src, r18_state)
    refused(capsys, src, "19 classes", "'ade20k' has 150", dataset="ade20k")


def test_truncated_file(tmp_path, capsys, r18_state):
    src = tmp_path / "r18.pth"
    save_cirkd(src, r18_state)
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 2])
    refused(capsys, src, "truncated")


def test_random_bytes(tmp_path, capsys):
    src = tmp_path / "noise.pth"
    src.write_bytes(np.random.default_rng(0).bytes(4096))
    refused(capsys, src, "not a readable PyTorch checkpoint")


@pytest.mark.parametrize(
    "text", ["model: deeplabv3\nmIoU: 78.07\n", "hello\n", "", '{"a": 1}', "\x80\x02}q\x00."]
)
def test_text_file(tmp_path, capsys, text):
    src = tmp_path / "notes.pth"
    src.write_text(text, encoding="latin-1")
    refused(capsys, src, "not a readable PyTorch checkpoint")


def test_missing_keys(tmp_path, capsys, r18_state):
    src = tmp_path / "r18.pth"
    save_cirkd(src, OrderedDict((k, v) for k, v in r18_state.items() if not k.startswith("auxlayer.")))
    refused(capsys, src, "missing", "aux_head")


def test_backbone_file_given_as_a_segmentation_checkpoint(tmp_path, capsys, r18_state):
    """CIRKD's resnet18-imagenet.pth layout: the backbone's keys without ``pretrained.``, an fc."""
    backbone = OrderedDict(
        (k.removeprefix("pretrained."), v) for k, v in r18_state.items() if k.startswith("pretrained.")
    )
    backbone["fc.weight"], backbone["fc.bias"] = torch.zeros(1000, 512), torch.zeros(1000)
    src = tmp_path / "resnet18-imagenet.pth"
    torch.save(backbone, src)
    refused(capsys, src, "backbone", "encoder_weights=")


def test_missing_file(tmp_path, capsys):
    refused(capsys, tmp_path / "nowhere.pth", "no such file")


def test_a_project_teacher_checkpoint_is_not_converted_again(tmp_path, capsys, r18_state):
    src, dst = tmp_path / "r18.pth", tmp_path / "converted.pt"
    save_cirkd(src, r18_state)
    assert convert("cirkd", src, "deeplabv3_r18", dst, capsys)[0] == 0
    refused(capsys, dst, "already", "from_checkpoint")


def test_output_that_cannot_be_written(tmp_path, capsys, r18_state):
    src, blocker = tmp_path / "r18.pth", tmp_path / "a_file"
    save_cirkd(src, r18_state)
    blocker.write_text("")
    code, err = convert("cirkd", src, "deeplabv3_r18", blocker / "out.pt", capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and str(blocker) in err
