"""Pretrained BERT encoders from any supported source (pretrained.py picks
the loader), and the named presets."""
