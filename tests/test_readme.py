"""The README's Python examples run as written (those that use PyTorch, or the
ONNX export, when it is installed, like the gold tests)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
# Blocks matching a pattern need the module, an optional dependency.
OPTIONAL = [
    (r"^import torch", "torch"),
    (r"^from sklearn_lstm\.onnx import", "skl2onnx"),
    (r"^import onnxruntime", "onnxruntime"),
]
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_examples():
    assert BLOCKS


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(block):
    for pattern, module in OPTIONAL:
        if re.search(pattern, block, flags=re.M):
            pytest.importorskip(module)
    exec(compile(block, str(README), "exec"), {"__name__": "__readme__"})
