"""keras_adapters/training/: the train step is traced once.

Keras creates the optimizer slots and the metric trackers inside the first
train step; a tf.function whose first call creates variables traces twice.
`compile_adamw` creates them up front (`training.create_step_variables`),
so fit creates no variable and traces its step once.
"""

import tensorflow as tf

import harness


def test_compile_adamw_leaves_fit_no_variable_to_create(tmp_path):
  from keras_adapters.data import glue  # pylint: disable=g-import-not-at-top
  from keras_adapters.models.text_classifier import AdapterTextClassifier  # pylint: disable=g-import-not-at-top
  from keras_adapters.models.text_preprocessor import AdapterTextPreprocessor  # pylint: disable=g-import-not-at-top
  mrpc = harness.glue_subset(tmp_path / "mrpc", dict(train=16))
  examples = glue.get_processor("mrpc").get_examples(str(mrpc), "train")
  texts = ([e.text_a for e in examples], [e.text_b for e in examples])
  model = AdapterTextClassifier(
      harness.tiny_encoder(vocab_size=30522, hidden_size=8, num_layers=1,
                           inner_dim=8, max_sequence_length=16),
      AdapterTextPreprocessor(str(harness.DATA / "bert_vocab" / "vocab.txt"),
                              True, 16), task_name="MRPC", seed=3)
  model.compile_adamw(num_train_steps=2)
  created = []

  def record(next_creator, **kwargs):
    created.append(kwargs.get("name"))
    return next_creator(**kwargs)
  with tf.variable_creator_scope(record):
    model.fit(texts, [e.label for e in examples], batch_size=8, verbose=0)
  assert model.optimizer.iterations.numpy() == 2
  assert not created, created
  assert model.train_function.experimental_get_tracing_count() == 1
