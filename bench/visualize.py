"""Image | ground truth | prediction panels for a few evaluation images of a finished run.

``python -m bench.visualize <run_dir> [--n 4] [--out PATH] [--root DIR] [--device cpu]``

The run folder holds ``result.json`` (with the full config) and ``model.pt`` (the student's weights).
The images are spread evenly over the run's ``eval.split``; predictions use the run's own inference
protocol (whole / slide, flip); colours and the legend use the dataset's palette and class names,
with ignored pixels in white.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.errors import BenchError, CheckpointError

if TYPE_CHECKING:  # torch and the models load inside the functions, so --help answers at once
    from bench.config.schema import RunConfig
    from bench.models import Segmenter

IGNORE_COLOUR = (255, 255, 255)


def load_run(run_dir: Path, root: str | None = None) -> tuple[RunConfig, Segmenter]:
    """The run's config and its student with the trained weights (no pretrained weights fetched)."""
    import torch

    from bench.config.compose import validate
    from bench.models import build_model
    from bench.results import RESULT_FILE

    result, weights = run_dir / RESULT_FILE, run_dir / "model.pt"
    for path in (result, weights):
        if not path.is_file():
            raise CheckpointError(f"{path} not found; {run_dir} is not a finished run")
    cfg = validate(json.loads(result.read_text())["config"])
    if root is not None:
        cfg.dataset.root = root
    cfg.student.encoder_weights = None  # the trained weights replace them
    model = build_model(cfg.student, cfg.dataset.num_classes)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict(state["state_dict"])
    return cfg, model.eval()


def colourise(label: np.ndarray, palette: Sequence[tuple[int, int, int]], ignore_index: int) -> np.ndarray:
    """``[H, W]`` class ids → ``[H, W, 3]`` uint8 colours; ignore (and anything unknown) in white."""
    lut = np.array([*palette, IGNORE_COLOUR], dtype=np.uint8)
    index = np.where((label >= 0) & (label < len(palette)), label, len(palette))
    return lut[index]


def save_panels(
    run_dir: Path, n: int = 4, out: Path | None = None, root: str | None = None, device: str = "cpu"
) -> Path:
    """Write a PNG with one row (image, ground truth, prediction) per image; returns its path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from bench.data import build_split
    from bench.evaluation.inference import predict
    from bench.utils.runtime import resolve_device

    cfg, model = load_run(run_dir, root)
    dev = resolve_device(device)
    model.to(dev)
    data = build_split(cfg.dataset, cfg.eval.split)
    names, palette = data.class_names, data.palette
    ignore = cfg.dataset.ignore_index
    picks = sorted({int(i) for i in np.linspace(0, len(data) - 1, min(n, len(data)))})

    h, w = data[picks[0]][1].shape
    fig = Figure(figsize=(12, len(picks) * (4 * h / w + 0.4) + 1.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(picks), 3, squeeze=False)
    present: set[int] = set()
    for row, index in zip(axes, picks, strict=True):
        image, label = data[index]
        pred = predict(model, image[None].to(dev), cfg.eval).argmax(1)[0].cpu().numpy()
        truth = label.numpy()
        valid = truth != ignore
        acc = (pred[valid] == truth[valid]).mean() if valid.any() else float("nan")
        present |= set(np.unique(truth[valid]).tolist()) | set(np.unique(pred).tolist())
        panels = (
            image.permute(1, 2, 0).numpy(),
            colourise(truth, palette, ignore),
            colourise(pred, palette, ignore),
        )
        titles = (f"image {index}", "ground truth", f"prediction (pixel acc. {100 * acc:.1f}%)")
        for ax, panel, title in zip(row, panels, titles, strict=True):
            ax.imshow(panel, interpolation="nearest")
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    handles = [Patch(color=np.array(palette[c]) / 255, label=names[c]) for c in sorted(present)]
    handles.append(Patch(facecolor="white", edgecolor="grey", label="ignore"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6), fontsize=8)
    fig.suptitle(
        f"{cfg.dataset.name} {cfg.eval.split} · {cfg.student.name} · {cfg.method.name} · seed {cfg.seed}"
    )
    out = out or run_dir / "panels.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.visualize", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a finished run's output_dir (result.json, model.pt)")
    parser.add_argument("--n", type=int, default=4, help="number of images (default 4)")
    parser.add_argument("--out", type=Path, default=None, help="PNG path (default <run_dir>/panels.png)")
    parser.add_argument("--root", default=None, help="dataset root, if it moved since the run")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")
    try:
        path = save_panels(args.run_dir, args.n, args.out, args.root, args.device)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0


def cli() -> None:
    sys.exit(main())


if __name__ == "__main__":
    cli()
