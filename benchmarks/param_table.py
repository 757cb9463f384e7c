"""Trained parameters per task for every --fine_tune_mode (README table).

Usage: python benchmarks/param_table.py > benchmarks/results/param_table.md
"""

from keras_adapters.models.text_classifier import build_classifier
from keras_adapters.loaders.pretrained import load_pretrained
from keras_adapters.models.tuning import parameter_report

pretrained = load_pretrained()
print(f"{pretrained.description}, 2 classes, adapter_size 64\n")
print("| mode | trained params per task | % of backbone |")
print("|---|---|---|")
for mode, top_k in [("adapter", 1), ("full", 1), ("top_k", 1), ("top_k", 2),
                    ("layer_norm", 1), ("head", 1)]:
  model, encoder = build_classifier(pretrained.encoder, 2, mode,
                                    adapter_size=64, top_k_layers=top_k)
  report = parameter_report(model, encoder)
  name = f"top_k (k={top_k})" if mode == "top_k" else mode
  print(f"| {name} | {report['trainable_params']:,} | "
        f"{report['trainable_percent']:.2f} |")
# AdapterFusion of four Pfeiffer packs (m = 64), as plan block 16 trains.
model, encoder = build_classifier(pretrained.encoder, 2, "fusion",
                                  adapter_type="pfeiffer",
                                  fused_adapter_sizes=[64] * 4)
report = parameter_report(model, encoder)
print(f"| fusion (4 Pfeiffer packs, m=64) | {report['trainable_params']:,} | "
      f"{report['trainable_percent']:.2f} |")
