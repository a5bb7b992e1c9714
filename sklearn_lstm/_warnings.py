"""Warnings that point at the user's line, wherever in the package they are raised."""

import os
import sys
import warnings

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
# scikit-learn's wrapper of fit methods (_fit_context) sits between the user's
# call and ours.
_SKLEARN_BASE = os.path.join("sklearn", "base.py")


def _inside(filename):
    return filename.startswith(_PACKAGE_DIR) or filename.endswith(_SKLEARN_BASE)


def warn_user(message, category=UserWarning):
    """``warnings.warn`` attributed to the first caller outside this package."""
    frame, level = sys._getframe(1), 2  # level 2 is the caller of warn_user
    while frame is not None and _inside(os.path.abspath(frame.f_code.co_filename)):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
