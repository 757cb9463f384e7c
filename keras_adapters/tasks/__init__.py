"""Tasks: build_model / build_inputs / metrics per kind of task."""
