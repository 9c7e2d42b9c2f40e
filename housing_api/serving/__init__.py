"""Serving: the model version a process serves, and how it is swapped.

``ModelState`` holds the loaded predictor; ``PointerWatcher`` tells a
Gunicorn master when the store's pointer has moved. Imports ``store``; no
Flask.
"""
from .state import ModelState
from .watcher import PointerWatcher

__all__ = ["ModelState", "PointerWatcher"]
