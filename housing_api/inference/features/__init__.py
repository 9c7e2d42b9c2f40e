"""Feature sets: from client columns and demographics to the model's matrix.

Training and serving both go through :meth:`FeatureSet.transform`, so the two
cannot drift apart. A model version's metadata names its feature set; this
module is the one place that registers them.
"""
from .base import FeatureSet, UnknownFeatureSetError
from .engineered import EngineeredFeatures
from .minimal import MinimalFeatures
from .reference import ReferenceFeatures

__all__ = ["FEATURE_SETS", "FeatureSet", "UnknownFeatureSetError",
           "get_feature_set"]

#: Every feature set this code knows, by name.
FEATURE_SETS: dict[str, FeatureSet] = {
    fs.name: fs for fs in (ReferenceFeatures(), EngineeredFeatures(),
                           MinimalFeatures())
}


def get_feature_set(name: str) -> FeatureSet:
    """Return the feature set called ``name``."""
    try:
        return FEATURE_SETS[name]
    except KeyError:
        raise UnknownFeatureSetError(f"unknown feature set {name!r}") from None
