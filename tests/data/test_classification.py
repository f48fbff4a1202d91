import pytest
import torch

from odeflow.data import holdout, load_classification


def test_digits_train_test_split():
    pytest.importorskip("sklearn")
    xtr, ytr = load_classification("digits", "train")
    xte, yte = load_classification("digits", "test")
    assert xtr.shape[1:] == (1, 8, 8) and xtr.dtype == torch.float32 and ytr.dtype == torch.int64
    assert len(xtr) + len(xte) == 1797
    assert 0.0 <= float(xtr.min()) and float(xtr.max()) <= 1.0 and float(xtr.max()) > 0.9
    assert set(ytr.tolist()) == set(range(10)) and set(yte.tolist()) == set(range(10))
    # no image appears in both splits
    flat_tr = {tuple(v) for v in xtr.reshape(len(xtr), -1).tolist()}
    shared = sum(tuple(v) in flat_tr for v in xte.reshape(len(xte), -1).tolist())
    assert shared < 10  # digits has a handful of exact duplicate images, no more


def test_annuli_splits_differ():
    xtr, ytr = load_classification("annuli", "train")
    xte, _ = load_classification("annuli", "test")
    assert xtr.shape == (2000, 2) and xte.shape == (1000, 2)
    assert not torch.equal(xtr[:10], xte[:10])


@pytest.mark.parametrize("name,split,match", [("svhn", "train", "valid: annuli"), ("digits", "val", "valid: train")])
def test_unknown_names(name, split, match):
    with pytest.raises(ValueError, match=match):
        load_classification(name, split)


def test_image_sets_need_their_files(tmp_path):
    with pytest.raises((FileNotFoundError, ImportError, ValueError)):
        load_classification("mnist", "train", data_dir=tmp_path / "nowhere")


def test_holdout():
    keep, held = holdout(100, 0.1, seed=0)
    assert len(held) == 10 and len(keep) == 90
    assert sorted(torch.cat([keep, held]).tolist()) == list(range(100))
    with pytest.raises(ValueError, match="fraction"):
        holdout(10, 1.5)
