"""What an adapter model is, as data: the enumerations the flags offer and
`AdapterConfig`. Free of TensorFlow, so flags and packs can be checked
before TensorFlow loads."""

# What each mode trains: keras_adapters/models/tuning.py.
FINE_TUNE_MODES = ("adapter", "full", "top_k", "layer_norm", "head", "fusion")
# Where the adapters go in each Transformer block
# (layers/adapter_transformer_block.py).
ADAPTER_TYPES = ("houlsby", "pfeiffer", "parallel")
