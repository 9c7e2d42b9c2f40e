"""What every feature set is: a named recipe from client columns to a matrix."""
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..columns import CLIENT_COLUMNS
from ..demographics import Demographics

#: The effect group of every feature taken from the zipcode's demographics.
NEIGHBOURHOOD = "neighbourhood"


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

    def sources(self, demographics: Demographics) -> dict[str, tuple[str, ...]]:
        """For each feature, the client inputs it is computed from.

        The zipcode's demographics are one source, :data:`NEIGHBOURHOOD`.
        """
        raise NotImplementedError

    def folding(self, demographics: Demographics):
        """``(groups, fold)`` for explanations.

        ``fold(values, columns)`` turns one value per feature and home (its
        TreeSHAP value, say) into one per group: the client inputs, then
        ``neighbourhood``. A feature computed from several inputs is shared
        equally among them.
        """
        names = self.names(demographics)
        groups, matrix = fold_matrix(names, self.sources(demographics))
        return groups, lambda values, columns: np.asarray(values) @ matrix


def fold_matrix(names: Sequence[str], sources: Mapping[str, Sequence[str]]):
    """The groups of ``sources`` in client-column order, and a feature x
    group matrix sharing each feature equally among its sources."""
    used = {s for name in names for s in sources[name]}
    groups = tuple(c for c in CLIENT_COLUMNS if c in used)
    if NEIGHBOURHOOD in used:
        groups += (NEIGHBOURHOOD,)
    matrix = np.zeros((len(names), len(groups)))
    for j, name in enumerate(names):
        for source in sources[name]:
            matrix[j, groups.index(source)] = 1.0 / len(sources[name])
    return groups, matrix
