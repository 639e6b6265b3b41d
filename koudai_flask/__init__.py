"""koudai_flask: the back office of a multichannel mobile shop for an existing Flask site."""

from __future__ import annotations

from koudai_flask import errors
from koudai_flask.extension import Koudai

__version__ = "0.1.0"

__all__ = ["Koudai", "errors", "__version__"]
