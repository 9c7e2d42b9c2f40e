"""What every feature set is: a named recipe from client columns to a matrix."""
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..demographics import Demographics


class UnknownFeatureSetError(LookupError):
    """Raised when metadata names a feature set this code does not have."""


class FeatureSet:
    """A named recipe from client columns and demographics to features.

    ``inputs`` are the client columns the recipe reads: the contract of the
    minimal prediction endpoint.
    """

    name: str
    inputs: tuple[str, ...]
    #: File in the version folder holding fitted state the features need.
    context_file: str | None = None

    def names(self, demographics: Demographics) -> list[str]:
        """Return the feature names, in the matrix's column order."""
        raise NotImplementedError

    def transform(
        self, columns: Mapping[str, np.ndarray], demographics: Demographics,
        context=None,
    ) -> np.ndarray:
        """Return the float64 feature matrix, one row per home."""
        raise NotImplementedError

    def load_context(self, path: Path):
        """Load the fitted state stored in ``context_file``."""
        return None
