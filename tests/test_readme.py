"""The README's Python examples run as written (those that need an optional
dependency, PyTorch, Keras, the ONNX export, skops or Dask, when it is
installed, like the gold tests)."""

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
# What a block importing an optional module needs installed.
OPTIONAL = {
    "torch": "torch",
    "keras": "keras",
    "sklearn_lstm.onnx": "skl2onnx",
    "onnxruntime": "onnxruntime",
    "skops": "skops",
    "dask": "dask",
    "distributed": "distributed",
}
# Keras 3 runs on PyTorch here (no TensorFlow), as the README's Keras example sets.
os.environ.setdefault("KERAS_BACKEND", "torch")
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_examples():
    assert BLOCKS


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(block):
    for name in re.findall(r"^(?:import|from) ([\w.]+)", block, flags=re.M):
        if name in OPTIONAL:
            pytest.importorskip(OPTIONAL[name])
    exec(compile(block, str(README), "exec"), {"__name__": "__readme__"})
