"""compute_metrics against hand-computed values."""

import math

import pytest

from keras_adapters.data import glue
from keras_adapters.errors import UserInputError
from keras_adapters.tasks.metrics import compute_metrics


def test_cola_accuracy_and_mcc():
  # TP=2 FN=1 FP=1 TN=2: mcc = (2*2 - 1*1) / sqrt(3*3*3*3) = 1/3
  m = compute_metrics("CoLA", [1, 1, 0, 0, 1, 0], [1, 0, 0, 1, 1, 0])
  assert m == pytest.approx({"accuracy": 4 / 6, "matthews_corr": 1 / 3})


@pytest.mark.parametrize("task", ["mrpc", "QQP"])
def test_f1_tasks(task):
  # TP=2 FN=1 FP=1 TN=1: precision = recall = f1 = 2/3
  m = compute_metrics(task, [1, 1, 1, 0, 0], [1, 1, 0, 1, 0])
  assert m == pytest.approx({"accuracy": 3 / 5, "f1": 2 / 3})


def test_logits_are_argmaxed():
  m = compute_metrics("rte", [0, 1, 1], [[2.0, -1.0], [0.1, 0.3], [5.0, 1.0]])
  assert m == pytest.approx({"accuracy": 2 / 3})


def test_stsb():
  # centred x = (-1, 0, 1), y = (-1, 1, 0): r = 1 / sqrt(2 * 2) = 0.5; same ranks -> rho 0.5
  m = compute_metrics("sts-b", [1.0, 2.0, 3.0], [1.0, 3.0, 2.0])
  assert m == pytest.approx({"pearson": 0.5, "spearman": 0.5, "mse": 2 / 3})
  m = compute_metrics("stsb", [1, 2, 3, 4], [2, 4, 6, 8])
  assert m == pytest.approx({"pearson": 1.0, "spearman": 1.0, "mse": 7.5})
  assert math.isnan(compute_metrics("stsb", [1, 2, 3], [2, 2, 2])["pearson"])


def test_generic():
  # class F1s: 0 -> 1, 1 -> 0, 2 -> P 2/3 R 1 = 0.8; macro = 0.6
  m = compute_metrics("generic", [0, 1, 2, 2], [0, 2, 2, 2])
  assert m == pytest.approx({"accuracy": 0.75, "macro_f1": 0.6})
  assert compute_metrics("csv", [0, 1, 1, 0], [0, 1, 0, 0]) == pytest.approx({"accuracy": 0.75})
  regression = glue.get_processor("generic", is_regression=True)
  assert compute_metrics(regression, [1, 2], [2, 3]) == pytest.approx(
      {"pearson": 1.0, "spearman": 1.0, "mse": 1.0})


def test_bad_lengths():
  with pytest.raises(UserInputError, match="3 labels vs 2 predictions"):
    compute_metrics("sst-2", [0, 1, 1], [0, 1])
  with pytest.raises(UserInputError, match="0 labels vs 0 predictions"):
    compute_metrics("sst-2", [], [])
