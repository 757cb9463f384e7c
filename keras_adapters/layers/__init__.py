"""Adapter layers: the bottleneck adapter, AdapterFusion and the Transformer
block that holds them (where they go: keras_adapters.config.ADAPTER_TYPES)."""
