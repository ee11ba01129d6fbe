"""espnet_dynenc: one Conformer-CTC supernet, encoders of several sizes, inside ESPnet."""
from setuptools import find_packages, setup

setup(
    name="espnet_dynenc",
    version="0.1.0",
    description="Dynamic encoder size, layer pruning on demand and DMAO for ESPnet Conformer-CTC",
    packages=find_packages(include=["espnet_dynenc", "espnet_dynenc.*"]),
    python_requires=">=3.10",
    install_requires=[
        "espnet==202511",
        "torch==2.11.0",
        "torchaudio==2.11.0",
        "sentencepiece",
        "kaldiio",
        "numpy",
        "pyyaml",
        "tensorboard",
        "matplotlib",
        "espeakng-loader==0.2.4",
        "soundfile",
        "soxr",
        # deployment: ONNX export (the exporter of torch 2.11 needs onnxscript) and runtime
        "onnx==1.23.2",
        "onnxscript==0.7.2",
        "onnxruntime==1.32.0",
    ],
    extras_require={"test": ["pytest", "pytest-timeout", "pytest-xdist", "filelock"]},
    entry_points={"console_scripts": ["dynenc-python=espnet_dynenc.bin.python:main"]},
)
