"""Build a :class:`~bench.models.segmenter.Segmenter` from a model preset, with its encoder weights."""

from __future__ import annotations

from pathlib import Path

import torch

from bench.config.schema import ModelConfig
from bench.errors import CheckpointError, ConfigError, UnavailableError
from bench.models.registry import MODELS
from bench.models.segmenter import FCNHead, Segmenter


def build_model(cfg: ModelConfig, num_classes: int, role: str = "student") -> Segmenter:
    """Build a :class:`Segmenter` from a model preset.

    ``encoder_weights``: null (random init), ``imagenet`` (smp fetches them; needs network access)
    or the path to an encoder state dict (``.pth``/``.pt``/``.safetensors``).
    """
    builder = MODELS.get(cfg.arch)
    weights = cfg.encoder_weights
    local = weights is not None and weights != "imagenet"
    try:
        net = builder(cfg, num_classes, None if local else weights)
    except TypeError as e:  # a misspelled key in encoder_kwargs / decoder_kwargs
        raise ConfigError(f"{role}: {e}; check {role}.encoder_kwargs and {role}.decoder_kwargs") from None
    except (OSError, RuntimeError) as e:
        if weights == "imagenet":
            raise UnavailableError(
                f"{role}.encoder_weights=imagenet: could not fetch weights for '{cfg.encoder}' ({e}). "
                f"Offline? Download them once and pass {role}.encoder_weights=/path/to/weights.pth"
            ) from None
        raise
    if local:
        _load_encoder_weights(net.encoder, Path(weights), role)
    aux = None
    if cfg.aux_head:
        stages = net.encoder.out_channels
        if not -len(stages) < cfg.aux_stage < len(stages):
            raise ConfigError(f"{role}.aux_stage={cfg.aux_stage} but the encoder has {len(stages)} outputs")
        aux = FCNHead(
            stages[cfg.aux_stage], cfg.aux_channels, num_classes, cfg.aux_dropout, cfg.aux_dropout_2d
        )
    if cfg.channel_order not in ("rgb", "bgr"):
        raise ConfigError(f"{role}.channel_order must be rgb or bgr, got {cfg.channel_order!r}")
    return Segmenter(net, aux, cfg.aux_stage, cfg.output_stride, cfg.mean, cfg.std, cfg.channel_order)


def _load_encoder_weights(encoder: torch.nn.Module, path: Path, role: str) -> None:
    """Load an encoder state dict: smp/timm layout, or an official ImageNet backbone file of CIRKD
    (``resnet*-imagenet.pth``, ``mobilenetv2-imagenet.pth``) or mmseg (``resnet*_v1c``), whose keys
    :mod:`bench.models.keymaps` maps onto the timm encoder."""
    from bench.models.files import load_file, unwrap_state_dict
    from bench.models.keymaps import backbone_map

    if not path.is_file():
        raise UnavailableError(
            f"{role}.encoder_weights={path}: file not found (use null, imagenet or a path)"
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file as load_safetensors

        state = load_safetensors(str(path))
    else:
        state = unwrap_state_dict(load_file(path), path)
    own = encoder.state_dict()
    candidates = [state]
    if any(k.startswith("model.") for k in own):
        candidates.append(
            {f"model.{k}": v for k, v in state.items()}
        )  # timm-universal encoders nest under model.
        for codebase in ("cirkd", "mmseg"):
            mapped = backbone_map(codebase, str(getattr(encoder, "name", "")))
            renamed = {mapped(k): v for k, v in state.items()}
            candidates.append({f"model.{k}": v for k, v in renamed.items() if k is not None})
    best = min(candidates, key=lambda c: len(set(own) - set(c)))
    missing = [k for k in own if k not in best and not k.endswith("num_batches_tracked")]
    wrong = [k for k in own if k in best and best[k].shape != own[k].shape]
    if missing or wrong:
        raise CheckpointError(
            f"{role}.encoder_weights={path} does not fit encoder; {len(missing)} weights missing, e.g. "
            f"{missing[:3]}; {len(wrong)} of another shape, e.g. {wrong[:3]}"
        )
    encoder.load_state_dict({k: v for k, v in best.items() if k in own}, strict=False)
