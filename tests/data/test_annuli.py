import pytest
import torch

from odeflow.data import make_annuli


@pytest.mark.parametrize("dim", [2, 3])
def test_radii_labels_and_balance(dim):
    x, y = make_annuli(1001, seed=3, r1=0.5, r2=1.0, r3=1.5, dim=dim)
    r = x.norm(dim=1)
    assert x.shape == (1001, dim) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert bool((r[y == 0] <= 0.5 + 1e-6).all())
    assert bool(((r[y == 1] >= 1.0 - 1e-6) & (r[y == 1] <= 1.5 + 1e-6)).all())
    assert int((y == 0).sum()) == 500 and int((y == 1).sum()) == 501
    # labels are shuffled, not sorted
    assert 0 < int((y[:100] == 0).sum()) < 100


def test_seeded():
    a, b = make_annuli(50, seed=1), make_annuli(50, seed=1)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], make_annuli(50, seed=2)[0])


@pytest.mark.parametrize(
    "kwargs,match", [(dict(n=1), "n must be"), (dict(n=10, r1=1.0, r2=0.5), "radii"), (dict(n=10, dim=0), "dim")]
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_annuli(**kwargs)
