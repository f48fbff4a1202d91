import pytest
import torch

from odeflow.models import mlp_classifier
from odeflow.tasks.classify_figures import confusion_matrix, plot_confusion, plot_decision_boundary, plot_flow


def test_confusion_matrix_counts():
    target = torch.tensor([0, 0, 1, 2, 2, 2])
    pred = torch.tensor([0, 1, 1, 2, 0, 2])
    expected = torch.tensor([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    assert torch.equal(confusion_matrix(pred, target, 3), expected)
    with pytest.raises(ValueError, match="differ in shape"):
        confusion_matrix(pred[:2], target, 3)


@pytest.mark.parametrize("kind", ["odenet", "anode", "sonode", "resnet"])
def test_figures_are_written(tmp_path, kind):
    model = mlp_classifier(kind, 2, 2, hidden=(8,), augment=1, resnet_steps=2)
    x, y = torch.randn(50, 2), torch.randint(0, 2, (50,))
    plot_confusion(confusion_matrix(y, y, 2), tmp_path / "c.png")
    plot_decision_boundary(model, x, y, tmp_path / "d.png", n_grid=20)
    plot_flow(model, x, y, tmp_path / "f.png")
    for name in ("c.png", "d.png", "f.png"):
        assert (tmp_path / name).stat().st_size > 1000
