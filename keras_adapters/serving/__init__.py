"""SavedModel export for TF Serving: one task per model, or many tasks on one
shared backbone. See docs/serving.md.

CLI: python -m keras_adapters.serving.export --help
"""

__all__ = ["export_classifier", "export_pack",
           "export_multitask"]


def __getattr__(name):
  # Lazy, so `python -m keras_adapters.serving.export` runs its module once.
  if name == "export_multitask":
    from keras_adapters.serving.multitask import export_multitask  # pylint: disable=g-import-not-at-top
    return export_multitask
  if name == "export_classifier":
    from keras_adapters.serving.classifier_server import export_classifier  # pylint: disable=g-import-not-at-top
    return export_classifier
  if name in __all__:
    from keras_adapters.serving import export  # pylint: disable=g-import-not-at-top
    return getattr(export, name)
  raise AttributeError(name)
