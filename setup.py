"""keras_adapters: adapter tuning (Houlsby et al., 2019) for TF2 Model Garden."""

from setuptools import find_packages
from setuptools import setup

setup(
    name="keras_adapters",
    version="0.1.0",
    description="Parameter-efficient adapter tuning of BERT in TF2/Keras "
                "(Model Garden)",
    packages=find_packages(include=["keras_adapters", "keras_adapters.*"]),
    # The drivers and the exporter as commands; the repository root keeps
    # run_classifier.py / run_squad.py as shims for Google BERT's habits.
    entry_points={"console_scripts": [
        "keras-adapters-classifier="
        "keras_adapters.cli.run_classifier:entry_point",
        "keras-adapters-squad=keras_adapters.cli.run_squad:entry_point",
        "keras-adapters-export=keras_adapters.serving.export:entry_point",
    ]},
    # The ranges below resolve on 3.9-3.12; setup.sh's pinned stack
    # (constraints.txt: scipy 1.17, scikit-learn 1.9) needs 3.11 or 3.12.
    python_requires=">=3.9,<3.13",
    # Compatible ranges, so that `pip install .` fits beside a user's own TF 2.x
    # stack. tf-models-official X.Y needs tensorflow~=X.Y.0 and
    # tensorflow-text~=X.Y.0, and tf-keras X.Y needs tensorflow X.Y.*, so the
    # four move together by minor version; there is no tf-models-official 2.21
    # yet, hence <2.21. The exact stack that setup.sh and CI install is pinned
    # in constraints.txt:
    #   pip install -c constraints.txt ".[test]"
    install_requires=[
        "tensorflow>=2.16,<2.21",
        "tf-models-official>=2.16,<2.21",
        "tf-keras>=2.16,<2.21",
        "tensorflow-text>=2.16,<2.21",
        "tensorflow-hub>=0.16,<1",
        "tensorflow-datasets>=4.9,<5",
        "importlib_resources>=6.0,<8",
        "safetensors>=0.4,<1",
        "PyYAML>=6.0,<7",  # tpu_configs/launch.py
        "scipy>=1.10,<2",
        "scikit-learn>=1.3,<2",
        "matplotlib>=3.8,<4",  # training-curve plots (notebooks/)
    ],
    extras_require={"test": [
        "pytest>=8.0,<10",
        "pytest-xdist>=3.5,<4",  # -n 2: both cores (README's test command)
        # notebooks/ is executed top to bottom by a real Jupyter kernel.
        "nbclient>=0.10,<1",
        "ipykernel>=6.29,<8",
        "nbformat>=5.10,<6",
    ]},
)
