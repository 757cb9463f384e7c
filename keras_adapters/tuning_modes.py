"""The fine-tuning modes (what each trains: keras_adapters/tuning.py). They
live here, free of TensorFlow, so that the drivers' flags can offer them
without importing TensorFlow."""

FINE_TUNE_MODES = ("adapter", "full", "top_k", "layer_norm", "head", "fusion")
