"""A sentence(-pair) classifier or regressor on an (adapter) BERT encoder."""


def build_classifier(pretrained_encoder, num_classes, fine_tune_mode="adapter",
                     adapter_size=64, adapter_init_scale=1e-3, top_k_layers=1,
                     dropout_rate=0.1, adapter_type="houlsby",
                     fused_adapter_sizes=()):
  """Returns (model, encoder): an `AdapterTextClassifier` without a
  preprocessor (it takes token ids), i.e. Model Garden's `BertClassifier`
  (pooled output, dropout, dense; `num_classes=1` for regression) with the
  mode's variables set trainable. Pass the *pretrained* encoder: adapters
  are added here, for `fine_tune_mode="adapter"`."""
  from keras_adapters.models.text_classifier import AdapterTextClassifier  # pylint: disable=g-import-not-at-top
  model = AdapterTextClassifier(
      pretrained_encoder, None, num_classes=num_classes,
      regression=num_classes == 1, fine_tune_mode=fine_tune_mode,
      adapter_size=adapter_size, adapter_init_scale=adapter_init_scale,
      top_k_layers=top_k_layers, dropout_rate=dropout_rate,
      adapter_type=adapter_type, fused_adapter_sizes=fused_adapter_sizes)
  return model, model.encoder
