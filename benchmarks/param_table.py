"""Trained parameters per task for every --fine_tune_mode (README table).

Usage: python -m benchmarks.param_table > benchmarks/results/param_table.md
"""

import argparse


def report_line(name, model, encoder):
  from keras_adapters.models.tuning import parameter_report  # pylint: disable=g-import-not-at-top
  report = parameter_report(model, encoder)
  return (f"| {name} | {report['trainable_params']:,} | "
          f"{report['trainable_percent']:.2f} |")


def main():
  argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args()
  from keras_adapters.models.text_classifier import build_classifier  # pylint: disable=g-import-not-at-top
  from keras_adapters.loaders.pretrained import load_pretrained  # pylint: disable=g-import-not-at-top
  pretrained = load_pretrained()
  print(f"{pretrained.description}, 2 classes, adapter_size 64\n")
  print("| mode | trained params per task | % of backbone |")
  print("|---|---|---|")
  for mode, top_k in [("adapter", 1), ("full", 1), ("top_k", 1), ("top_k", 2),
                      ("layer_norm", 1), ("head", 1)]:
    model, encoder = build_classifier(pretrained.encoder, 2, mode,
                                      adapter_size=64, top_k_layers=top_k)
    name = f"top_k (k={top_k})" if mode == "top_k" else mode
    print(report_line(name, model, encoder))
  # AdapterFusion of four Pfeiffer packs (m = 64), as plan block 16 trains.
  model, encoder = build_classifier(pretrained.encoder, 2, "fusion",
                                    adapter_type="pfeiffer",
                                    fused_adapter_sizes=[64] * 4)
  print(report_line("fusion (4 Pfeiffer packs, m=64)", model, encoder))


if __name__ == "__main__":
  main()
