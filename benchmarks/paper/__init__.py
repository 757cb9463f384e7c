"""The paper reproduction: the plan of run_classifier.py runs (plan.py), its
resumable runner (run_plan.py), Table 1/2 (table.py) and the analyses built
on its results (protocol.py, reproduce.py, ablation.py, linear_probe.py).
See benchmarks/paper/README.md."""
