"""One SavedModel, one shared backbone, N adapter tasks; tasks chosen per example.

Each request carries a ``task`` string per example, and a batch may mix tasks.
The N packs' per-task variables (adapters, LayerNorms, pooler, head) are
stacked into [N, ...] variables; every Dense/LayerNorm layer that a pack
trains is switched to a task-aware version that gathers, per example, the
weights of that example's task (batched matmuls), so each example runs
through exactly its own task's network while the frozen backbone variables
exist once. Heads with fewer classes are zero-padded to the largest class
count; padded classes get probability 0.

Signatures:
* ``serving_default``: ``task``, ``text_a``, ``text_b`` (tf.string [batch];
  ``text_b`` is ignored for single-sentence tasks, pass "");
* ``serving_ids``: ``task`` + ``input_word_ids``/``input_mask``/
  ``input_type_ids`` (tf.int32 [batch, seq_len]);
* ``serving_fanout`` (when the packs leave out blocks 0..k-1, a shared
  frozen trunk): ``tasks`` (tf.string [num_tasks]), ``text_a``, ``text_b``
  ([batch]): every task on every text, the trunk computed once per text;
  each output gains a task axis: [batch, num_tasks, ...].
Outputs: ``logits``/``probabilities`` [batch, max classes] (padded with 0),
``label`` (tf.string), ``score`` (top probability or regression value),
``num_classes`` (tf.int32, 1 for regression).
"""

import numpy as np
import tensorflow as tf
import tf_keras

from keras_adapters.saving import adapter_pack
from keras_adapters.errors import UserInputError
from keras_adapters.config import AdapterConfig
from keras_adapters.models.text_preprocessor import AdapterTextPreprocessor
from keras_adapters.models.text_preprocessor import IDS
from keras_adapters.serving import common
from keras_adapters.serving.checks import check_packs


class _Context:
  """Holds the traced per-example task ids while a signature is traced;
  for a fan-out, also the task of each of the equal, contiguous row groups
  (one group per task), so task layers multiply once per task."""
  task_ids = None
  group_ids = None


def _ids(layer, inputs):
  ids = layer._mt_context.task_ids  # pylint: disable=protected-access
  if ids is None:  # traced outside a signature (e.g. by Keras): task 0
    ids = tf.zeros(tf.shape(inputs)[:1], tf.int32)
  return ids


class _TaskDense(tf_keras.layers.Dense):
  """Dense whose kernel/bias are gathered per example from [N, ...] stacks."""

  def call(self, inputs):
    ids = self._mt_context.group_ids  # pylint: disable=protected-access
    if ids is None:  # one kernel per example
      ids = _ids(self, inputs)
    kernel = tf.gather(self._mt_stack["kernel"], ids)  # [B or groups, in, out]
    shape = tf.shape(inputs)
    x = tf.reshape(inputs, [tf.size(ids), -1, shape[-1]])
    y = tf.matmul(x, kernel)
    if self.use_bias:
      y += tf.gather(self._mt_stack["bias"], ids)[:, None, :]
    y = tf.reshape(y, tf.concat([shape[:-1], tf.shape(kernel)[-1:]], 0))
    return self.activation(y) if self.activation is not None else y


class _TaskLayerNorm(tf_keras.layers.LayerNormalization):
  """LayerNorm (last axis) with per-example gamma/beta."""

  def call(self, inputs):
    if self.axis != [inputs.shape.rank - 1]:
      raise ValueError("multi-task LayerNorm supports the last axis only")
    ids = _ids(self, inputs)
    shape = [-1] + [1] * (inputs.shape.rank - 2) + [inputs.shape[-1]]
    scale = tf.reshape(tf.gather(self._mt_stack["gamma"], ids), shape)
    offset = tf.reshape(tf.gather(self._mt_stack["beta"], ids), shape)
    mean, variance = tf.nn.moments(inputs, self.axis, keepdims=True)
    return tf.nn.batch_normalization(inputs, mean, variance, offset=offset,
                                     scale=scale,
                                     variance_epsilon=self.epsilon)


_SWAP = {tf_keras.layers.Dense: _TaskDense,
         tf_keras.layers.LayerNormalization: _TaskLayerNorm}


def _attr(layer, variable):
  for name in ("kernel", "bias", "gamma", "beta"):
    if getattr(layer, name, None) is variable:
      return name
  raise UserInputError(f"multi-task export: cannot place {variable.name}")


def _task_value(path, arrays, key, variable):
  """The pack's value of `variable`; a head with fewer classes is padded."""
  if key not in arrays:
    raise UserInputError(f"{path} lacks {key}; export packs built "
                         "with the same fine_tune_mode and backbone")
  value = arrays[key]
  if value.shape[-1:] != tuple(variable.shape[-1:]) and value.shape[
      :-1] == tuple(variable.shape[:-1]):  # a head with fewer classes
    pad = [(0, 0)] * (value.ndim - 1) + [
        (0, variable.shape[-1] - value.shape[-1])]
    value = np.pad(value, pad)
  if value.shape != tuple(variable.shape):
    raise UserInputError(f"{path}: {key} has shape {value.shape}, the "
                         f"model needs {tuple(variable.shape)}")
  return value


def _stack_task_variables(model, encoder, packs, arrays):
  """{id(leaf): (leaf, {attribute: [N, ...] variable})} for every trained
  variable of `model`, stacked over the packs."""
  from keras_adapters.models.tuning import _leaves  # pylint: disable=g-import-not-at-top
  encoder_ids = set(map(id, encoder.weights))
  owner = {id(v): leaf for leaf in _leaves(model) for v in leaf.weights}
  stacks = {}
  for variable in model.trainable_variables:
    key = adapter_pack._key(variable, encoder_ids)  # pylint: disable=protected-access
    per_task = [_task_value(path, a, key, variable)
                for path, a in zip(packs, arrays)]
    leaf = owner[id(variable)]
    if type(leaf) not in _SWAP:
      raise UserInputError(f"multi-task export cannot vary {type(leaf)}")
    stack = tf.Variable(tf.stack(per_task), trainable=False,
                        name=key.replace(":0", "").replace("/", "__"))
    stacks.setdefault(id(leaf), (leaf, {}))[1][_attr(leaf, variable)] = stack
  return stacks


class MultiTaskServer(tf.Module):
  """The shared model, stacked task variables and the serving functions."""

  def __init__(self, packs, pretrained, max_seq_length=None, is_pair=None,
               task_names=None):
    super().__init__(name="multitask_server")
    from keras_adapters.models.text_classifier import build_classifier  # pylint: disable=g-import-not-at-top
    configs, arrays = check_packs(packs, task_names=task_names)
    names = [c["name"] for c in configs]
    self.task_names = names
    self.is_regression = [bool(c.get("is_regression")) for c in configs]
    self.num_classes = [1 if r else len(c["labels"])
                        for r, c in zip(self.is_regression, configs)]
    if is_pair is None:
      is_pair = [common.task_is_pair(c, p) for c, p in zip(configs, packs)]
    self.is_pair = list(is_pair)
    max_classes = max(self.num_classes)
    self.max_seq_length = max_seq_length or max(
        c.get("max_seq_length", 128) for c in configs)

    adapter_config = AdapterConfig.from_dict(configs[0])
    model, encoder = build_classifier(pretrained.encoder, max_classes,
                                      adapter_config=adapter_config)
    # The tasks share blocks 0..k-1 (no adapters, frozen LayerNorms): the
    # fan-out signature computes them once per text for all its tasks.
    self.trunk_depth = adapter_config.trunk_depth
    encoder.set_frozen_trunk(self.trunk_depth)
    fingerprint = adapter_pack.backbone_fingerprint(model, encoder)
    for path, c in zip(packs, configs):
      if c.get("fingerprint") != fingerprint:
        raise UserInputError(f"{path} was trained on another backbone; "
                             "export packs of one backbone together")
    self.max_positions = common.max_positions(
        self.max_seq_length, any(self.is_pair), encoder)
    self.vocab_size = int(encoder.get_config()["vocab_size"])

    self._context = _Context()
    stacks = _stack_task_variables(model, encoder, packs, arrays)
    self.task_variables = {}
    for leaf, by_attr in stacks.values():
      leaf.__class__ = _SWAP[type(leaf)]
      object.__setattr__(leaf, "_mt_context", self._context)
      object.__setattr__(leaf, "_mt_stack", by_attr)
      self.task_variables.update({v.name.replace(":0", ""): v
                                  for v in by_attr.values()})
    self._model = common.Untracked(model)
    self.model_variables = {k: v for k, v in common.named_variables(
        model, encoder).items() if not any(v is t for t in model.trainable_variables)}
    self.preprocessor = AdapterTextPreprocessor(
        pretrained.vocab_file, pretrained.do_lower_case, self.max_seq_length)
    labels = [(c.get("labels") or []) if not r else []
              for r, c in zip(self.is_regression, configs)]
    self._labels = [l + [""] * (max_classes - len(l)) for l in labels]
    self._table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(names), tf.range(len(names), dtype=tf.int32)), -1)

  def task_ids(self, task):
    ids = self._table.lookup(task)
    known = ", ".join(self.task_names)
    check = tf.debugging.Assert(
        tf.reduce_all(ids >= 0),
        ["unknown task name(s):", tf.boolean_mask(task, ids < 0),
         f"known tasks: {known}"], summarize=10)
    with tf.control_dependencies([check]):
      return tf.identity(ids)

  def _outputs(self, ids, word_ids, mask, type_ids, trunk_output=None,
               group_ids=None):
    inputs = dict(input_word_ids=word_ids, input_mask=mask,
                  input_type_ids=type_ids)
    if trunk_output is not None:
      inputs["trunk_output"] = trunk_output
    self._context.task_ids, self._context.group_ids = ids, group_ids
    try:
      logits = self._model.value(inputs, training=False)
    finally:
      self._context.task_ids = self._context.group_ids = None
    is_reg = tf.gather(tf.constant(self.is_regression), ids)
    num_classes = tf.gather(tf.constant(self.num_classes, tf.int32), ids)
    valid = tf.range(tf.shape(logits)[1])[None, :] < num_classes[:, None]
    masked = tf.where(valid, logits, tf.constant(-float("inf")))
    probabilities = tf.where(is_reg[:, None], logits,
                             tf.where(valid, tf.nn.softmax(masked), 0.))
    index = tf.argmax(masked, axis=-1, output_type=tf.int32)
    class_label = tf.gather_nd(tf.constant(self._labels),
                               tf.stack([ids, index], 1))
    score = tf.where(is_reg, logits[:, 0],
                     tf.reduce_max(probabilities, axis=-1))
    label = tf.where(is_reg, tf.strings.as_string(logits[:, 0], precision=6),
                     class_label)
    return dict(logits=logits, probabilities=probabilities, label=label,
                score=score, num_classes=num_classes)

  def serve_text(self, task, text_a, text_b):
    task, text_a, text_b = common.rank_checked(task, text_a, text_b)
    checks = [tf.debugging.assert_equal(
        tf.size(task), tf.size(text_a),
        message="task and text_a must have the same batch size"),
              tf.debugging.assert_equal(
                  tf.size(task), tf.size(text_b),
                  message="task and text_b must have the same batch size")]
    with tf.control_dependencies(checks):
      ids = self.task_ids(task)
    one = self.preprocessor(text_a)
    two = self.preprocessor(text_a, text_b)
    pair = tf.gather(tf.constant(self.is_pair), ids)[:, None]
    packed = [tf.where(pair, two[k], one[k]) for k in IDS]
    return self._outputs(ids, *packed)

  def serve_fanout(self, tasks, text_a, text_b):
    """Every task of `tasks` [N] on every text [B]: outputs [B, N, ...].
    The shared trunk runs once per text (per packing: single texts and
    pairs), the upper blocks once per (text, task)."""
    tasks, text_a, text_b = common.rank_checked(tasks, text_a, text_b)
    check = tf.debugging.assert_equal(
        tf.size(text_a), tf.size(text_b),
        message="text_a and text_b must have the same batch size")
    with tf.control_dependencies([check]):
      ids = self.task_ids(tasks)
    pair = tf.gather(tf.constant(self.is_pair), ids)
    packed = [self._packed_if(tf.reduce_any(tf.equal(pair, is_pair)), text_a,
                              text_b if is_pair else None)
              for is_pair in (False, True)]
    rows = tf.repeat(pair, tf.size(text_a))  # task-major: [N * B]
    tile = lambda t: tf.tile(t, tf.concat(
        [[tf.size(ids)], tf.ones([tf.rank(t) - 1], tf.int32)], 0))
    pick = lambda key: tf.where(
        tf.reshape(rows, [-1] + [1] * (packed[0][key].shape.rank - 1)),
        tile(packed[1][key]), tile(packed[0][key]))
    outputs = self._outputs(tf.repeat(ids, tf.size(text_a)),
                            *[pick(k) for k in IDS],
                            trunk_output=pick("trunk_output"), group_ids=ids)
    return {k: _text_major(v, tf.size(ids), tf.size(text_a))
            for k, v in outputs.items()}

  def _packed_if(self, needed, text_a, text_b):
    """The token ids of the texts (pairs when `text_b` is given) and the
    trunk's output on them if `needed`, else zeros of their shapes."""
    encoder = self._model.value.encoder
    width = encoder.get_config()["hidden_size"]

    def packed():
      inputs = self.preprocessor(text_a, text_b)
      return dict(inputs, trunk_output=encoder.trunk(inputs))

    def zeros():
      shape = tf.stack([tf.size(text_a), self.max_seq_length])
      return dict({k: tf.zeros(shape, tf.int32) for k in IDS},
                  trunk_output=tf.zeros(tf.concat([shape, [width]], 0)))

    return tf.cond(needed, packed, zeros)

  def serve_ids(self, task, input_word_ids, input_mask, input_type_ids):
    task, = common.rank_checked(task)
    check = tf.debugging.assert_equal(
        tf.size(task), tf.shape(input_word_ids)[0],
        message="task and input_word_ids must have the same batch size")
    with tf.control_dependencies([check]):
      ids = self.task_ids(task)
    return self._outputs(ids, *common.check_ids(
        input_word_ids, input_mask, input_type_ids, self.vocab_size,
        self.max_positions))

  def signatures(self, include_text=True):
    text = tf.TensorSpec([None], tf.string)
    ids = tf.TensorSpec([None, None], tf.int32)
    self.ids_fn = tf.function(
        lambda task, input_word_ids, input_mask, input_type_ids:
        self.serve_ids(task, input_word_ids, input_mask, input_type_ids),
        input_signature=[text, ids, ids, ids])
    result = {"serving_ids": self.ids_fn.get_concrete_function()}
    if include_text:
      self.text_fn = tf.function(
          lambda task, text_a, text_b: self.serve_text(task, text_a, text_b),
          input_signature=[text, text, text])
      result["serving_default"] = self.text_fn.get_concrete_function()
    else:
      result["serving_default"] = result["serving_ids"]
    if include_text and self.trunk_depth:
      self.fanout_fn = tf.function(
          lambda tasks, text_a, text_b: self.serve_fanout(tasks, text_a,
                                                          text_b),
          input_signature=[text, text, text])
      result["serving_fanout"] = self.fanout_fn.get_concrete_function()
    return result


def _text_major(values, num_tasks, num_texts):
  """[N * B, ...] task-major rows as [B, N, ...]."""
  shape = tf.concat([[num_tasks, num_texts], tf.shape(values)[1:]], 0)
  grouped = tf.reshape(values, shape)
  order = tf.concat([[1, 0], tf.range(2, tf.rank(grouped))], 0)
  return tf.transpose(grouped, order)


def export_multitask(packs, export_dir, pretrained=None, max_seq_length=None,
                     include_text=True, is_pair=None, task_names=None,
                     **load_kwargs):
  """Exports one SavedModel serving every pack in `packs` on one backbone.

  Args:
    packs: adapter_pack.npz paths (adapter mode, one backbone, distinct
      task names: each the name its task was trained with, e.g.
      `from_preset(..., name="spam")`, else its GLUE task's).
    export_dir: new directory.
    pretrained: the backbone (`load_pretrained(**load_kwargs)` by default).
    max_seq_length: default: the largest of the packs'.
    include_text: False writes the token-id signature only (plain TF ops).
    is_pair: per pack, whether it takes text pairs (default: what each
      pack records).
    task_names: per pack, the name requests use for its task (default:
      what each pack records).
  Returns: export_dir.
  """
  if pretrained is None:
    from keras_adapters.loaders.pretrained import load_pretrained  # pylint: disable=g-import-not-at-top
    pretrained = load_pretrained(**load_kwargs)
  server = MultiTaskServer(list(packs), pretrained, max_seq_length, is_pair,
                           task_names)
  return common.save(server, export_dir, server.signatures(include_text))
