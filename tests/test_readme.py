"""The README's Python examples run as written (those that use PyTorch, skops or
Dask when it is installed, like the gold tests)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_examples():
    assert BLOCKS


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(block):
    if re.search(r"^import torch", block, flags=re.M):
        pytest.importorskip("torch")
    for extra in re.findall(r"^(?:import|from) (skops|distributed)\b", block, re.M):
        pytest.importorskip(extra)
    exec(compile(block, str(README), "exec"), {"__name__": "__readme__"})
