"""keras_adapters: adapter tuning (Houlsby et al., 2019) for TF2 Model Garden."""

from setuptools import find_packages
from setuptools import setup

setup(
    name="keras_adapters",
    version="0.1.0",
    description="Parameter-efficient adapter tuning of BERT in TF2/Keras "
                "(Model Garden)",
    packages=find_packages(include=["keras_adapters", "keras_adapters.*"]),
    py_modules=["run_classifier", "run_squad"],
    python_requires=">=3.9,<3.13",
    # Exact pins: the stack known to install and run together.
    install_requires=[
        "tensorflow==2.20.0",
        "tf-models-official==2.20.0",
        "tf-keras==2.20.1",
        "tensorflow-text==2.20.1",
        "tensorflow-hub==0.16.1",
        "tensorflow-datasets==4.9.10",
        "importlib_resources==7.1.0",
        "safetensors==0.8.0",
        "PyYAML==6.0.3",  # tpu_configs/launch.py
        "scipy==1.17.1",
        "scikit-learn==1.9.1",
    ],
    extras_require={"test": ["pytest==9.2.0"]},
)
