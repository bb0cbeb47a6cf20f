"""Every term across a CNN and a transformer (SegFormer) network, in both directions.

Student maps are resized to the teacher's (docs: the alignment rule), widths go through each term's
adapter; where a term cannot work across the pair it must say so in one ConfigError naming itself.
"""

from __future__ import annotations

import math

import pytest
import torch

from bench.config.compose import load_config
from bench.errors import ConfigError
from bench.methods import TermContext, build_term
from bench.models import build_model

from .test_contract import CHEAP, NAMES

C = 3


def _net(group: str, name: str):
    cfg = load_config([f"{group}={name}", f"{group}.encoder_weights=null"])
    torch.manual_seed(0)
    return build_model(getattr(cfg, group), num_classes=C, role=group)


@pytest.fixture(scope="module")
def nets():
    return {"cnn": _net("student", "deeplabv3_tiny"), "segformer": _net("student", "segformer_b0")}


# Terms that cannot run on a pair (teacher->student), with what their error must say.
REFUSED = {
    ("rdd", "segformer->cnn"): "needs a teacher with an aux head",
    # MiT's last stage is at 1/32: 2×2 at this 64×64 input (16×32 at 512×1024, where it runs)
    ("afdcd", "segformer->cnn"): "smaller than one patch",
}


@pytest.mark.parametrize(
    "pair", [("segformer", "cnn"), ("cnn", "segformer")], ids=["cnn->segformer", "segformer->cnn"]
)
@pytest.mark.parametrize("name", NAMES)
def test_term_runs_across_architectures(name, pair, nets):
    s_net, t_net = nets[pair[0]].train(), nets[pair[1]].eval()
    images = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    labels = torch.randint(0, C, (2, 64, 64))
    student = s_net(images)
    with torch.no_grad():
        teacher = t_net(images)
    ctx = TermContext(
        num_classes=C,
        student_channels=s_net.tap_channels(),
        teacher_channels=t_net.tap_channels(),
        total_steps=10,
        batch_size=2,
        input_size=(64, 64),
        feature_size=tuple(teacher.logits_low.shape[-2:]),
    )
    params = {k: v for k, v in CHEAP.get(name, {}).items() if k != "groups"}
    try:
        term = build_term(name, ctx, **params)
        loss = term(student, teacher, labels, 9)
    except ConfigError as e:
        assert name in str(e), f"the error does not name the term: {e}"
        key = (name, f"{pair[1]}->{pair[0]}")
        assert key in REFUSED, f"{name} refused {key[1]}: {e}"
        assert REFUSED[key] in str(e)
        return
    assert math.isfinite(loss.item())
    loss.backward()
