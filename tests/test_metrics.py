"""tinygrad_course.metrics against hand-computed cases and scikit-learn's metrics."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_course as tg
from tinygrad_course.metrics import (RunningMetrics, accuracy, confusion_matrix, dice, iou, pixel_accuracy,
                                     top_k_accuracy)

skm = pytest.importorskip("sklearn.metrics")

LOGITS = np.array([[0.1, 2.0, 0.3],    # predicts 1, true 1
                   [1.5, 0.2, 0.9],    # predicts 0, true 2 (2 is second)
                   [0.0, 0.5, 0.4],    # predicts 1, true 0 (0 is third)
                   [3.0, 1.0, 2.0]])   # predicts 0, true 0
TARGET = np.array([1, 2, 0, 0])


# --- classification -------------------------------------------------------------------------------
def test_accuracy_by_hand_from_scores_labels_and_tensors():
    assert accuracy(LOGITS, TARGET) == 0.5
    assert accuracy(LOGITS.argmax(1), TARGET) == 0.5
    assert accuracy(tg.Tensor(LOGITS), tg.Tensor(TARGET)) == 0.5
    assert isinstance(accuracy(LOGITS, TARGET), float)
    # segmentation-style scores (N, C, H, W) against labels (N, H, W)
    scores = np.zeros((1, 2, 2, 2))
    scores[0, 1, 0, :] = 1.0
    assert accuracy(scores, np.array([[[1, 1], [0, 1]]])) == 0.75


def test_top_k_accuracy_by_hand():
    assert top_k_accuracy(LOGITS, TARGET, k=1) == 0.5
    assert top_k_accuracy(LOGITS, TARGET, k=2) == 0.75
    assert top_k_accuracy(LOGITS, TARGET, k=3) == 1.0
    # ties count for the true class
    assert top_k_accuracy(np.array([[1.0, 1.0, 0.0]]), np.array([1]), k=1) == 1.0


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_top_k_accuracy_matches_sklearn(k):
    rng = np.random.default_rng(0)
    scores, target = rng.standard_normal((200, 7)), rng.integers(0, 7, 200)
    assert top_k_accuracy(scores, target, k) == pytest.approx(
        skm.top_k_accuracy_score(target, scores, k=k, labels=np.arange(7)))
    assert top_k_accuracy(scores, target, 1) == accuracy(scores, target)


def test_confusion_matrix_by_hand_and_against_sklearn():
    cm = confusion_matrix(LOGITS, TARGET, 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 0]])  # rows: true class
    assert cm.dtype == np.int64
    rng = np.random.default_rng(1)
    pred, target = rng.integers(0, 5, 300), rng.integers(0, 5, 300)
    np.testing.assert_array_equal(confusion_matrix(pred, target, 6),
                                  skm.confusion_matrix(target, pred, labels=np.arange(6)))


def test_classification_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(3,\)"):
        accuracy(LOGITS, TARGET[:3])
    with pytest.raises(ValueError, match=r"\(4, 3\) and \(5,\)"):
        top_k_accuracy(LOGITS, np.zeros(5, dtype=np.int64))
    with pytest.raises(ValueError, match="k=4"):
        top_k_accuracy(LOGITS, TARGET, k=4)
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        top_k_accuracy(LOGITS, np.array([0, 1, 2, 3]), k=1)
    with pytest.raises(ValueError, match=r"target labels must be in \[0, 2\)"):
        confusion_matrix(np.array([0, 1]), np.array([0, 2]), 2)
    with pytest.raises(TypeError, match="integer class labels"):
        accuracy(LOGITS, TARGET.astype(float))
    with pytest.raises(ValueError, match="empty"):
        accuracy(np.zeros(0), np.zeros(0, dtype=np.int64))


# --- binary segmentation --------------------------------------------------------------------------
PRED = np.array([[[1, 1, 0], [0, 1, 0]],
                 [[0, 0, 0], [0, 0, 0]]])
TRUE = np.array([[[1, 0, 0], [0, 1, 1]],
                 [[0, 0, 0], [0, 0, 0]]])


def test_segmentation_metrics_by_hand():
    # image 0: intersection 2, |P| 3, |T| 3, union 4, 4 of 6 pixels agree; image 1: both empty
    assert pixel_accuracy(PRED, TRUE) == pytest.approx(10 / 12)
    assert iou(PRED, TRUE) == pytest.approx(2 / 4)
    assert dice(PRED, TRUE) == pytest.approx(4 / 6)
    np.testing.assert_allclose(pixel_accuracy(PRED, TRUE, per_image=True), [4 / 6, 1.0])
    np.testing.assert_allclose(iou(PRED, TRUE, per_image=True), [0.5, 1.0])      # empty vs empty = 1.0
    np.testing.assert_allclose(dice(PRED, TRUE, per_image=True), [4 / 6, 1.0])


def test_empty_cases():
    empty = np.zeros((2, 2), dtype=bool)
    full = np.ones((2, 2), dtype=bool)
    assert iou(empty, empty) == 1.0 and dice(empty, empty) == 1.0
    assert iou(full, empty) == 0.0 and dice(empty, full) == 0.0


def test_masks_from_probabilities_logits_bools_and_tensors():
    probs = np.where(PRED > 0, 0.9, 0.2)
    logits = np.where(PRED > 0, 3.0, -1.0)
    expected = iou(PRED, TRUE)
    assert iou(probs, TRUE) == expected
    assert iou(logits, TRUE.astype(bool), threshold=0.0) == expected
    assert iou(tg.Tensor(probs), tg.Tensor(TRUE.astype(np.float32))) == expected


def test_segmentation_metrics_match_sklearn():
    rng = np.random.default_rng(2)
    pred, true = rng.random((3, 8, 8)) > 0.6, rng.random((3, 8, 8)) > 0.5
    assert pixel_accuracy(pred, true) == pytest.approx(skm.accuracy_score(true.ravel(), pred.ravel()))
    assert iou(pred, true) == pytest.approx(skm.jaccard_score(true.ravel(), pred.ravel()))
    assert dice(pred, true) == pytest.approx(skm.f1_score(true.ravel(), pred.ravel()))
    per_image = [skm.jaccard_score(t.ravel(), p.ravel()) for p, t in zip(pred, true)]
    np.testing.assert_allclose(iou(pred, true, per_image=True), per_image)


def test_segmentation_errors():
    with pytest.raises(ValueError, match=r"\(2, 2, 3\) and target mask \(2, 3\)"):
        iou(PRED, TRUE[0])
    with pytest.raises(ValueError, match="0 and 1"):
        dice(PRED * 2, TRUE)
    with pytest.raises(ValueError, match="per_image"):
        pixel_accuracy(np.ones(3), np.ones(3), per_image=True)


# --- running averages -------------------------------------------------------------------------
def test_running_metrics_weight_by_batch_size():
    running = RunningMetrics()
    running.update(10, loss=1.0, top1=0.5)
    running.update(30, loss=tg.Tensor(np.array(2.0)), top1=1.0, top5=1.0)
    averages = running.averages()
    assert averages["loss"] == pytest.approx((10 * 1.0 + 30 * 2.0) / 40)
    assert averages["top1"] == pytest.approx((5 + 30) / 40)
    assert averages["top5"] == 1.0 and running.count("top5") == 30 and running.count("loss") == 40
    assert "loss" in running and "loss=1.75" in repr(running)
    running.reset()
    assert running.averages() == {}
    with pytest.raises(KeyError, match="loss"):
        running["loss"]
    with pytest.raises(ValueError, match="batch_size"):
        running.update(0, loss=1.0)


def test_running_metrics_over_batches_equal_the_whole_epoch():
    rng = np.random.default_rng(3)
    scores, target = rng.standard_normal((103, 10)), rng.integers(0, 10, 103)
    running = RunningMetrics()
    for i in range(0, 103, 16):
        s, t = scores[i:i + 16], target[i:i + 16]
        running.update(len(t), top1=accuracy(s, t), top5=top_k_accuracy(s, t, 5))
    assert running["top1"] == pytest.approx(accuracy(scores, target))
    assert running["top5"] == pytest.approx(top_k_accuracy(scores, target, 5))
