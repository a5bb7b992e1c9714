"""Collection of the package's doctests (``--doctest-modules``), as scikit-learn
keeps its own in ``sklearn/conftest.py``."""

from importlib.util import find_spec

# sklearn_lstm.onnx needs the optional skl2onnx and onnx (the "onnx" extra):
# without them, --doctest-modules must not import it (tests/test_onnx.py skips).
collect_ignore = (
    [] if find_spec("skl2onnx") and find_spec("onnx") else ["onnx.py"]
)
