"""The Keras task API: a preprocessor and a classifier over adapter BERT,
and the fine-tuning modes (tuning.py)."""
