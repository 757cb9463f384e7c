"""The one module through which keras_adapters reaches private (`_`-named or
internal) parts of Model Garden, tf_keras and TensorFlow.

Each function reaches one private thing and says why. A name that an
upgrade removed or renamed raises `UpstreamAPIError`: one line naming the
attribute, the installed version and the version this module was written
against; nothing here falls back silently. `PRIVATE_NAMES` lists every such name by
the object that holds it; tests/test_compat.py checks each on real objects
of the installed versions.

TensorFlow, tf_keras and Model Garden are imported inside the functions, so
importing this module stays cheap.
"""

import importlib

# The versions this module was written and tested against (constraints.txt).
TESTED_VERSIONS = {"tf-models-official": "2.20.0", "tf_keras": "2.20.1",
                   "tensorflow": "2.20.0"}

# owner -> (distribution, private names of it that this module reaches).
PRIVATE_NAMES = {
    "BertEncoderV2": ("tf-models-official", (
        "_transformer_layers", "_config", "_type_embedding_layer",
        "_position_embedding_layer", "_embedding_norm_layer",
        "_get_embeddings", "_embedding_dropout", "_embedding_projection")),
    "PositionEmbedding": ("tf-models-official", ("_position_embeddings",)),
    "TransformerEncoderBlock": ("tf-models-official", (
        "_attention_layer", "_attention_layer_norm", "_attention_dropout",
        "_intermediate_dense", "_output_dense", "_output_dropout",
        "_output_layer_norm", "_norm_first", "_linformer_dim")),
    "BertClassifier": ("tf-models-official", ("_network",)),
    "squad_evaluate_v1_1": ("tf-models-official", (
        "_normalize_answer", "_exact_match_score", "_f1_score")),
    "MultiHeadAttention": ("tf_keras", (
        "_query_dense", "_key_dense", "_value_dense", "_output_dense",
        "_built_from_signature", "_build_from_signature", "_compute_attention",
        "_masked_softmax", "_dropout_layer", "_key_dim", "_attention_axes")),
    "Layer": ("tf_keras", ("_flatten_layers",)),
    "Model": ("tf_keras", ("_is_compiled",)),
    "BaseRandomLayer": ("tf_keras", ("_random_generator",)),
    "RandomGenerator": ("tf_keras", ("_generator",)),
    "OptimizerV2": ("tf_keras", ("_create_all_weights",)),
    "functional_saver": ("tensorflow", ("gen_io_ops",)),
}

# The sub-layers of a TransformerEncoderBlock that its call() runs and that
# keras_adapters reads (weight loading) or wraps (adapter placement).
BLOCK_PARTS = ("attention_layer", "attention_layer_norm", "attention_dropout",
               "intermediate_dense", "output_dense", "output_dropout",
               "output_layer_norm")
# BertEncoderV2's attribute holding its blocks: also its checkpoint key
# (`encoder/_transformer_layers/<i>/...`).
TRANSFORMER_LAYERS_ATTR = "_transformer_layers"
# The keyword tf_keras' Model.fit passes to evaluate() for validation.
FIT_EVAL_KWARG = "_use_cached_eval_dataset"
# Where TensorFlow's checkpoint saver gets its merge op (test-only faults).
FUNCTIONAL_SAVER = "tensorflow.python.checkpoint.functional_saver"
# The parameters of MultiHeadAttention._compute_attention after `self`, which
# MatmulAttention overrides.
ATTENTION_HOOK_PARAMS = ("query", "key", "value", "attention_mask",
                         "training")


class UpstreamAPIError(RuntimeError):
  """A private upstream name keras_adapters relies on is missing."""


def installed_version(distribution):
  """The installed version of `distribution`, or "not installed"."""
  from importlib import metadata  # pylint: disable=g-import-not-at-top
  try:
    return metadata.version(distribution)
  except metadata.PackageNotFoundError:
    return "not installed"


def missing(owner, name, problem=None):
  """The one-line error for a private name `owner.name` that is gone (or,
  with `problem`, changed)."""
  distribution = PRIVATE_NAMES[owner][0]
  tested = TESTED_VERSIONS[distribution]
  problem = problem or f"{owner} has no attribute {name!r}"
  return UpstreamAPIError(
      f"{problem}: {distribution} {installed_version(distribution)} is "
      f"installed and keras_adapters.compat was written for {tested}, so an "
      f"upgrade of {distribution} likely renamed or changed {name}; install "
      f"{distribution}=={tested} (constraints.txt) or update "
      "keras_adapters/compat.py")


def _get(obj, owner, name):
  if name not in PRIVATE_NAMES[owner][1]:
    raise KeyError(f"compat: {owner}.{name} is not in PRIVATE_NAMES")
  try:
    return getattr(obj, name)
  except AttributeError:
    raise missing(owner, name) from None


def _set(obj, owner, name, value):
  """Replaces an existing private attribute (a new one would go unused)."""
  _get(obj, owner, name)
  setattr(obj, name, value)


# --- Model Garden: BertEncoderV2 -------------------------------------------

def transformer_layers(encoder):
  """BertEncoderV2._transformer_layers, the blocks (public `transformer_layers`
  reads it): read here to check the name that keys its checkpoint."""
  return _get(encoder, "BertEncoderV2", TRANSFORMER_LAYERS_ATTR)


def set_transformer_layers(encoder, blocks):
  """Sets BertEncoderV2._transformer_layers, the blocks its call() runs."""
  _set(encoder, "BertEncoderV2", TRANSFORMER_LAYERS_ATTR, blocks)


def encoder_config(encoder):
  """BertEncoderV2._config: the dict its get_config() returns (a subclass
  adds its own keys there)."""
  return _get(encoder, "BertEncoderV2", "_config")


def type_embedding_layer(encoder):
  """BertEncoderV2._type_embedding_layer (no public getter): for loading
  Google BERT's token-type embeddings."""
  return _get(encoder, "BertEncoderV2", "_type_embedding_layer")


def position_embedding_table(encoder):
  """BertEncoderV2._position_embedding_layer._position_embeddings: the
  position-embedding variable (no public getter), for weight loading."""
  layer = _get(encoder, "BertEncoderV2", "_position_embedding_layer")
  return _get(layer, "PositionEmbedding", "_position_embeddings")


def embedding_norm_layer(encoder):
  """BertEncoderV2._embedding_norm_layer: the embeddings' LayerNorm (no
  public getter), for weight loading."""
  return _get(encoder, "BertEncoderV2", "_embedding_norm_layer")


def encoder_embeddings(encoder, inputs, training=None):
  """What BertEncoderV2.call feeds its first block: the word, position and
  type embeddings of `inputs` (ids, mask, type ids), normalized, dropped out
  per `training` and projected, as its call computes them (its
  _get_embeddings, _embedding_dropout and _embedding_projection have no
  public form): for running the blocks apart (a frozen trunk)."""
  word_ids = inputs["input_word_ids"]
  embed = _get(encoder, "BertEncoderV2", "_get_embeddings")
  embeddings = embed(word_ids, inputs["input_type_ids"],
                     encoder.get_embedding_layer()(word_ids), None, None)
  embeddings = embedding_norm_layer(encoder)(embeddings)
  embeddings = _get(encoder, "BertEncoderV2", "_embedding_dropout")(
      embeddings, training=training)
  projection = _get(encoder, "BertEncoderV2", "_embedding_projection")
  return embeddings if projection is None else projection(embeddings)


# --- Model Garden: TransformerEncoderBlock ---------------------------------

def _block_attribute(part):
  if part not in BLOCK_PARTS:
    raise KeyError(f"compat: {part!r} is not one of BLOCK_PARTS")
  return "_" + part


def block_part(block, part):
  """TransformerEncoderBlock._<part> (BLOCK_PARTS), a sub-layer its call()
  runs (no public getters): for weight loading and adapter placement."""
  return _get(block, "TransformerEncoderBlock", _block_attribute(part))


def set_block_part(block, part, layer):
  """Replaces TransformerEncoderBlock._<part>, so that the parent's call()
  runs `layer` there: how adapters ride on the unchanged call()."""
  _set(block, "TransformerEncoderBlock", _block_attribute(part), layer)


def self_attention(block):
  """TransformerEncoderBlock._attention_layer; for another block class, its
  `_attention_layer` if it has one, else None (such blocks are left alone)."""
  from official.nlp.modeling import layers  # pylint: disable=g-import-not-at-top
  if isinstance(block, layers.TransformerEncoderBlock):
    return block_part(block, "attention_layer")
  return getattr(block, "_attention_layer", None)


def block_norm_first(block):
  """TransformerEncoderBlock._norm_first: pre- (True) or post-LayerNorm."""
  return _get(block, "TransformerEncoderBlock", "_norm_first")


def block_linformer_dim(block):
  """TransformerEncoderBlock._linformer_dim: set when the block projects
  keys/values (Linformer) and so builds its attention itself."""
  return _get(block, "TransformerEncoderBlock", "_linformer_dim")


def classifier_encoder(classifier):
  """BertClassifier._network: the encoder it wraps (no public getter)."""
  return _get(classifier, "BertClassifier", "_network")


# --- tf_keras: MultiHeadAttention ------------------------------------------

def attention_dense(attention, part):
  """MultiHeadAttention._<part>_dense (query, key, value or output): the
  projection layers, for weight loading."""
  if part not in ("query", "key", "value", "output"):
    raise KeyError(f"compat: no attention dense {part!r}")
  return _get(attention, "MultiHeadAttention", f"_{part}_dense")


def attention_needs_build(attention):
  """True if a tf_keras MultiHeadAttention has not yet created its weights
  (_built_from_signature False); other attention classes: only if they have
  that flag and it is False."""
  import tf_keras  # pylint: disable=g-import-not-at-top
  if isinstance(attention, tf_keras.layers.MultiHeadAttention):
    return not _get(attention, "MultiHeadAttention", "_built_from_signature")
  return getattr(attention, "_built_from_signature", True) is False


def build_attention(attention, query_shape, value_shape):
  """MultiHeadAttention._build_from_signature: creates its weights now, not
  on the first call (a SavedModel restores only weights made in build())."""
  _get(attention, "MultiHeadAttention", "_build_from_signature")(
      query=query_shape, value=value_shape)


def attention_axes(attention):
  """MultiHeadAttention._attention_axes: the axes attention runs over."""
  return _get(attention, "MultiHeadAttention", "_attention_axes")


def attention_key_dim(attention):
  """MultiHeadAttention._key_dim: the per-head query/key size."""
  return _get(attention, "MultiHeadAttention", "_key_dim")


def masked_softmax(attention, scores, attention_mask):
  """MultiHeadAttention._masked_softmax: the parent's masked softmax."""
  return _get(attention, "MultiHeadAttention", "_masked_softmax")(
      scores, attention_mask)


def attention_scores_dropout(attention):
  """MultiHeadAttention._dropout_layer: the dropout on attention scores."""
  return _get(attention, "MultiHeadAttention", "_dropout_layer")


def einsum_attention(attention, query, key, value, attention_mask=None,
                     training=None):
  """MultiHeadAttention._compute_attention (the parent's einsum version),
  called on `attention` for the layouts MatmulAttention does not handle."""
  import tf_keras  # pylint: disable=g-import-not-at-top
  compute = _get(tf_keras.layers.MultiHeadAttention, "MultiHeadAttention",
                 "_compute_attention")
  return compute(attention, query, key, value, attention_mask, training)


def check_attention_hook():
  """Errors unless MultiHeadAttention._compute_attention(query, key, value,
  attention_mask, training) exists: MatmulAttention's override would
  otherwise never run."""
  import inspect  # pylint: disable=g-import-not-at-top
  import tf_keras  # pylint: disable=g-import-not-at-top
  compute = _get(tf_keras.layers.MultiHeadAttention, "MultiHeadAttention",
                 "_compute_attention")
  params = tuple(inspect.signature(compute).parameters)[1:]
  if params != ATTENTION_HOOK_PARAMS:
    raise missing("MultiHeadAttention", "_compute_attention",
                  f"MultiHeadAttention._compute_attention takes {params}, "
                  f"not {ATTENTION_HOOK_PARAMS} as MatmulAttention's "
                  "override does")


# --- tf_keras: layers, models, optimizers ----------------------------------

def flatten_layers(layer, include_self=True):
  """Layer._flatten_layers: every layer nested in `layer`, deduplicated, in
  tracking order (no public equivalent for a Layer that is not a Model)."""
  return _get(layer, "Layer", "_flatten_layers")(include_self=include_self)


def is_compiled(model):
  """Model._is_compiled: whether compile() has run."""
  return _get(model, "Model", "_is_compiled")


def is_fit_validation(evaluate_kwargs):
  """Whether evaluate() was called by fit() for its validation data (fit
  passes the private keyword FIT_EVAL_KWARG)."""
  return FIT_EVAL_KWARG in evaluate_kwargs


def dropout_generator(layer):
  """BaseRandomLayer._random_generator._generator: the tf.random.Generator
  a dropout layer draws from (tf random generators enabled and layer built),
  else None; checkpointed so that a resumed run draws the same masks."""
  import tf_keras  # pylint: disable=g-import-not-at-top
  if not isinstance(layer, tf_keras.__internal__.layers.BaseRandomLayer):
    # Not a tf_keras random layer: read it as before, if it looks like one.
    return getattr(getattr(layer, "_random_generator", None), "_generator",
                   None)
  generator = _get(layer, "BaseRandomLayer", "_random_generator")
  if not layer.built:  # the generator is made when the layer builds
    return getattr(generator, "_generator", None)
  return _get(generator, "RandomGenerator", "_generator")


def create_optimizer_slots(optimizer, variables):
  """Creates the optimizer's slot variables for `variables` now: a legacy
  OptimizerV2 (Model Garden's AdamW) by its _create_all_weights, a Keras 2
  optimizer by its public build()."""
  import tf_keras  # pylint: disable=g-import-not-at-top
  if isinstance(optimizer, tf_keras.optimizers.legacy.Optimizer):
    _get(optimizer, "OptimizerV2", "_create_all_weights")(variables)
  else:
    optimizer.build(variables)


# --- TensorFlow -------------------------------------------------------------

def checkpoint_io_ops():
  """functional_saver.gen_io_ops (TensorFlow internals): the module whose
  merge_v2_checkpoints the checkpoint saver calls; test-only fault points
  hook it."""
  try:
    module = importlib.import_module(FUNCTIONAL_SAVER)
  except ImportError:
    raise missing("functional_saver", FUNCTIONAL_SAVER,
                  f"no module {FUNCTIONAL_SAVER}") from None
  return _get(module, "functional_saver", "gen_io_ops")


# --- Model Garden: SQuAD v1.1 metrics --------------------------------------

def _squad_v1(name):
  from official.nlp.tools import squad_evaluate_v1_1  # pylint: disable=g-import-not-at-top
  return _get(squad_evaluate_v1_1, "squad_evaluate_v1_1", name)


def squad_normalize_answer(text):
  """squad_evaluate_v1_1._normalize_answer: the official script's answer
  normalization (lower case, no punctuation, articles or extra spaces)."""
  return _squad_v1("_normalize_answer")(text)


def squad_exact_match(prediction, ground_truth):
  """squad_evaluate_v1_1._exact_match_score: the official exact match."""
  return _squad_v1("_exact_match_score")(prediction, ground_truth)


def squad_f1(prediction, ground_truth):
  """squad_evaluate_v1_1._f1_score: the official token-bag F1."""
  return _squad_v1("_f1_score")(prediction, ground_truth)
