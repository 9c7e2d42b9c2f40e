"""Exact, low-overhead inference: the libraries' predictions, bit for bit.

``make_lean`` wraps a loaded estimator in its lean twin (``LeanKNN`` for
Sound Realty's RobustScaler+KNN pipeline, ``LeanBooster`` for LightGBM), one
module per model family. Imports the artifact formats only.
"""
from ...formats import LightGBMRegressor
from .booster import LeanBooster
from .knn import LeanKNN, UnsupportedModel

__all__ = ["LeanKNN", "LeanBooster", "UnsupportedModel", "make_lean"]


def make_lean(estimator):
    """Return the lean equivalent of a loaded estimator.

    Raises :class:`UnsupportedModel` when there is none; the caller then
    keeps the library's own ``predict``.
    """
    if isinstance(estimator, LightGBMRegressor):
        # One thread, like every worker.
        return LeanBooster(estimator.booster, num_threads=1)
    return LeanKNN(estimator)
