"""Benchmarks, the paper reproduction (paper/) and the comparison with
AdapterHub (adapterhub/). Every script runs from the repository root as a
module, e.g. `python -m benchmarks.speed --help`; benchmarks/README.md lists
which script makes each table and figure of the docs, and its results file.

Standard library only at import: adapterhub/ imports this package from the
AdapterHub venv, which has no TensorFlow."""
