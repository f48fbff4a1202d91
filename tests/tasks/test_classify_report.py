"""The data and test part of a series classifier's summary: settings, split sizes and a confusion
matrix with true classes as rows and predictions as columns."""

from types import SimpleNamespace

import torch

from odeflow.tasks.classify_report import data_and_test_report


def test_confusion_rows_are_true_classes_and_counts_add_up():
    g = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 3, (40,), generator=g)
    pred = torch.randint(0, 3, (40,), generator=g)
    cfg = SimpleNamespace(model="random-cde", data="uea:GunPoint", drop=0.3, drop_mode="time")
    data = SimpleNamespace(classes=["a", "b", "c"], train=[0] * 7, val=[0] * 2, test=[0] * 40)
    report = data_and_test_report(cfg, data, labels, pred)
    confusion = torch.tensor(report["test_confusion"])
    for i in range(3):
        for j in range(3):
            assert confusion[i, j] == int(((labels == i) & (pred == j)).sum())
    assert confusion.trace() == int((labels == pred).sum())
    assert (report["n_train"], report["n_val"], report["n_test"]) == (7, 2, 40)
    assert report["model"] == "random-cde" and report["drop"] == 0.3 and report["classes"] == ["a", "b", "c"]
