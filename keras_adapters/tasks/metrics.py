"""GLUE evaluation metrics (sklearn / scipy).

Classification: "accuracy"; CoLA adds "matthews_corr"; MRPC and QQP add "f1"
(positive class "1"); the generic task adds "macro_f1" for more than two
classes. Regression (STS-B, generic regression): "pearson", "spearman", "mse".
"""

import warnings
from typing import Union

import numpy as np
from scipy import stats
from sklearn import metrics as skm

from keras_adapters.data import glue
from keras_adapters.errors import UserInputError


def compute_metrics(task_name_or_processor: Union[str, "glue.Processor"], labels,
                    predictions) -> dict:
  """Returns {metric name: float} for one task.

  Args:
    task_name_or_processor: a task name (any alias) or a processor from
      `glue.get_processor` (needed for a generic regression task).
    labels: gold class indices (classification) or scores (regression).
    predictions: predicted class indices, or [n, num_classes] logits
      (arg-maxed), or predicted scores for regression.
  """
  processor = task_name_or_processor
  if isinstance(processor, str):
    processor = glue.get_processor(processor)
  labels = np.asarray(labels)
  predictions = np.asarray(predictions)
  if predictions.ndim == 2 and not processor.is_regression:
    predictions = predictions.argmax(axis=-1)
  labels, predictions = labels.reshape(-1), predictions.reshape(-1)
  if len(labels) == 0 or len(labels) != len(predictions):
    raise UserInputError(f"compute_metrics: {len(labels)} labels vs {len(predictions)} "
                         f"predictions; need the same non-zero number")

  if processor.is_regression:
    labels, predictions = labels.astype(np.float64), predictions.astype(np.float64)
    with warnings.catch_warnings():  # constant input: nan correlation, no warning spam
      warnings.simplefilter("ignore")
      return {"pearson": float(stats.pearsonr(labels, predictions)[0]),
              "spearman": float(stats.spearmanr(labels, predictions)[0]),
              "mse": float(np.mean((labels - predictions) ** 2))}

  result = {"accuracy": float(skm.accuracy_score(labels, predictions))}
  if processor.metric == "matthews_corr":
    result["matthews_corr"] = float(skm.matthews_corrcoef(labels, predictions))
  elif processor.metric == "f1":
    positive = processor.labels.index("1")
    result["f1"] = float(skm.f1_score(labels, predictions, pos_label=positive, zero_division=0))
  elif processor.name == "generic" and _num_classes(processor, labels, predictions) > 2:
    result["macro_f1"] = float(skm.f1_score(labels, predictions, average="macro", zero_division=0))
  return result


def _num_classes(processor, labels, predictions) -> int:
  """The processor's label count, or the classes seen if its labels are not inferred yet."""
  try:
    return len(processor.labels)
  except UserInputError:
    return len(set(labels.tolist()) | set(predictions.tolist()))
