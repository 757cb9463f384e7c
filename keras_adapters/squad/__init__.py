"""Extractive question answering (SQuAD v1.1 / v2.0) with adapters.

* `data`: reads and validates SQuAD JSON, then builds doc_stride windows with
  the original-token <-> wordpiece alignment (Model Garden's `squad_lib`), and
  turns span logits back into answer texts (n-best, null odds for v2.0);
* `model`: `build_span_labeler`, Model Garden's `BertSpanLabeler` on an
  (adapter) encoder, in any fine-tune mode of `keras_adapters.models.tuning`;
* `evaluate`: exact match / F1 as the official SQuAD v1.1 and v2.0 scripts
  compute them (`python -m keras_adapters.squad.evaluate DATA PREDICTIONS`);
* `split`: a deterministic by-article train/eval split of a SQuAD file
  (`python -m keras_adapters.squad.split ...`).

The driver is `run_squad.py` at the top of the repository.
"""
