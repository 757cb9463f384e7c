"""SavedModel export for TF Serving: one task per model, or many tasks on one
shared backbone. See docs/serving.md."""

from keras_adapters.serving.export import export_classifier
from keras_adapters.serving.export import export_pack
from keras_adapters.serving.export import model_from_pack
from keras_adapters.serving.multitask import export_multitask

__all__ = ["export_classifier", "export_pack", "model_from_pack",
           "export_multitask"]
