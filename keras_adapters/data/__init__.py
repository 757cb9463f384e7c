"""Data: GLUE/generic readers (glue.py) and BERT input pipelines (features.py)."""
