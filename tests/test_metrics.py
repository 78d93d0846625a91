import math

import torch

from lienzo.metrics import classification_metrics


def test_metrics_against_hand_computed_values():
    # 3 classes, 4 samples. Predictions (argmax): 0, 2, 2, 1; targets 0, 1, 2, 2.
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 2.0], [0.0, 0.0, 3.0], [1.0, 2.0, 0.0]])
    targets = torch.tensor([0, 1, 2, 2])
    m = classification_metrics(logits, targets, ["a", "b", "c"])
    assert m["top1"] == 0.5
    assert m["top5"] == 1.0  # k is capped at the number of classes
    log_probs = logits.log_softmax(1)
    expected_ce = -sum(float(log_probs[i, t]) for i, t in enumerate(targets)) / 4
    assert math.isclose(m["cross_entropy"], expected_ce, rel_tol=1e-6)
    assert m["confusion"] == [[1, 0, 0], [0, 0, 1], [0, 1, 1]]
    assert m["per_class"]["c"]["count"] == 2 and m["per_class"]["c"]["top1"] == 0.5
    assert m["per_class"]["b"]["top1"] == 0.0
    assert math.isclose(m["per_class"]["a"]["cross_entropy"], -float(log_probs[0, 0]), rel_tol=1e-6)


def test_top5_of_ten_classes():
    logits = torch.arange(10.0).repeat(2, 1)  # class 9 highest, class 0 lowest
    m = classification_metrics(logits, torch.tensor([5, 4]), [str(i) for i in range(10)])
    assert m["top5"] == 0.5 and m["top1"] == 0.0
    assert m["per_class"]["0"]["count"] == 0 and m["per_class"]["0"]["top1"] is None


def test_ties_are_broken_the_same_way_everywhere():
    logits = torch.tensor([[1.0, 1.0, 0.0], [0.5, 0.5, 0.5]])  # exact ties, as bf16 logits give
    m = classification_metrics(logits, torch.tensor([1, 0]), ["a", "b", "c"])
    assert m["top1"] == 0.5 and m["confusion"] == [[1, 0, 0], [1, 0, 0], [0, 0, 0]]
    assert m["per_class"]["a"]["top1"] == 1.0 and m["per_class"]["b"]["top1"] == 0.0
