"""Adapter layers. ADAPTER_TYPES lives here, free of TensorFlow, so that the
drivers' flags can offer it without importing TensorFlow."""

# Where the adapters go in each Transformer block (adapter_transformer_block).
ADAPTER_TYPES = ("houlsby", "pfeiffer", "parallel")
