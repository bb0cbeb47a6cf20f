"""The install is sound: torch and torchvision match, smp imports and builds a model."""

import torch


def test_torchvision_ops_load_with_this_torch():
    # A CPU-only torch next to the registry's torchvision fails here ("operator torchvision::nms").
    import torchvision

    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    keep = torchvision.ops.nms(boxes, torch.tensor([1.0, 0.5]), 0.5)
    assert keep.tolist() == [0]


def test_smp_imports_and_builds_a_model():
    import segmentation_models_pytorch as smp

    model = smp.DeepLabV3(encoder_name="resnet18", encoder_weights=None, classes=3).eval()
    out = model(torch.zeros(1, 3, 64, 64))
    assert out.shape == (1, 3, 64, 64)
