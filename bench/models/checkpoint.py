"""A network from a teacher checkpoint of this project (`make teacher`, `python -m bench.convert`)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import torch

from bench.config.schema import ModelConfig
from bench.errors import CheckpointError
from bench.models.build import build_model
from bench.models.files import load_file


def from_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The network of a teacher checkpoint (``make teacher`` or ``python -m bench.convert``), in eval
    mode: uint8 or float 0–255 RGB ``[B, 3, H, W]`` in (its own channel order and normalisation are
    applied inside), :class:`~bench.models.taps.Taps` (``logits_low``, ``logits``, ``aux_logits``,
    ``feat``, ``stages``) out."""
    path = Path(path)
    obj = load_file(path)
    if not (isinstance(obj, dict) and "meta" in obj and "state_dict" in obj):
        raise CheckpointError(
            f"{path}: not a teacher checkpoint of this project (convert it first: python -m bench.convert)"
        )
    meta = obj["meta"]
    known = {f.name for f in fields(ModelConfig)}
    cfg = ModelConfig(**{k: v for k, v in meta["model"].items() if k in known})
    cfg.encoder_weights = None
    model = build_model(cfg, meta["num_classes"], role="checkpoint")
    model.load_state_dict(obj["state_dict"])
    return model.to(device).eval()
