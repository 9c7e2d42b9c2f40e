"""Engineered features for the boosted model: one function for training and serving.

Everything a client sends (the 18 columns) plus zipcode demographics, turned
into sizes, ages, ratios, projected coordinates, and neighbourhood prices:
summaries of the log price per square foot of the nearest *training* homes.
At training time those are computed out of fold (see ``boosting``); at
serving time from every training home, stored with the version as plain
arrays (``neighbours.npz``, loaded without pickle).
"""
import math
from collections.abc import Mapping, Sequence

import numpy as np

from ..columns import CLIENT_COLUMNS
from .base import FeatureSet
from .engineered_one import engineer_one
from .engineered_spec import (
    DEMOGRAPHIC_NAMES, FEATURE_NAMES, LANDMARKS_KM, REFERENCE_YEAR,
    ROTATION_DEGREES, feature_sources, to_km,
)
from .neighbours import NeighbourContext, neighbour_features


def _column(columns: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    if name not in columns:
        raise KeyError(f"missing client column {name!r}")
    return np.asarray(columns[name], dtype=np.float64)


def engineer(
    columns: Mapping[str, np.ndarray],
    demographics: np.ndarray,
    demographic_names: Sequence[str],
    context: NeighbourContext | None,
) -> np.ndarray:
    """Build the float64 feature matrix (order ``FEATURE_NAMES``).

    ``columns`` maps the 18 client column names to equal-length arrays
    (``zipcode`` may be str). ``demographics`` holds, row for row, the zipcode
    demographics of each home with columns named by ``demographic_names``.
    ``context`` holds the reference homes for the neighbourhood features.
    A single home takes a faster path with bit-identical output.
    """
    if context is None:
        raise ValueError("a NeighbourContext is required for neighbour features")
    one = engineer_one(columns, demographics, demographic_names, context)
    if one is not None:
        return one
    c = {n: _column(columns, n) for n in CLIENT_COLUMNS if n != "zipcode"}
    if "zipcode" not in columns:
        raise KeyError("missing client column 'zipcode'")
    zipcode = np.asarray(columns["zipcode"]).astype(str).astype(np.float64)
    n_rows = len(zipcode)
    if any(len(v) != n_rows for v in c.values()):
        raise ValueError("client columns differ in length")

    built = np.maximum(c["yr_built"], c["yr_renovated"])
    bedrooms = np.maximum(c["bedrooms"], 1.0)
    xy = to_km(c["lat"], c["long"])
    base = [c[n] if n != "zipcode" else zipcode for n in CLIENT_COLUMNS]
    base += [
        REFERENCE_YEAR - c["yr_built"],
        (c["yr_renovated"] > 0).astype(np.float64),
        REFERENCE_YEAR - built,
        np.log(c["sqft_living"]),
        np.log(c["sqft_lot"]),
        np.log(c["sqft_above"]),
        np.log(c["sqft_living15"]),
        np.log(c["sqft_lot15"]),
        c["sqft_living"] / c["sqft_living15"],
        c["sqft_lot"] / c["sqft_lot15"],
        c["sqft_living"] / c["sqft_lot"],
        c["sqft_basement"] / c["sqft_living"],
        c["sqft_living"] / bedrooms,
        c["bathrooms"] / bedrooms,
        xy[:, 0],
        xy[:, 1],
    ]
    for degrees in ROTATION_DEGREES:
        theta = math.radians(degrees)
        base.append(xy[:, 0] * math.cos(theta) + xy[:, 1] * math.sin(theta))
    for landmark in LANDMARKS_KM.values():
        offset = xy - landmark
        base.append(np.hypot(offset[:, 0], offset[:, 1]))
    offset = xy - LANDMARKS_KM["seattle"]
    base.append(np.arctan2(offset[:, 1], offset[:, 0]))

    demographics = np.asarray(demographics, dtype=np.float64)
    if demographics.shape != (n_rows, len(demographic_names)):
        raise ValueError("demographics must have one row per home")
    position = {name: i for i, name in enumerate(demographic_names)}
    missing = [n for n in DEMOGRAPHIC_NAMES if n not in position]
    if missing:
        raise KeyError(f"missing demographic columns {missing}")
    demo = demographics[:, [position[n] for n in DEMOGRAPHIC_NAMES]]

    return np.column_stack(
        [np.column_stack(base), demo, neighbour_features(xy, context)]
    )


class EngineeredFeatures(FeatureSet):
    """The boosted model's features; needs the version's neighbour context."""

    name = "engineered-v1"
    inputs = CLIENT_COLUMNS
    context_file = "neighbours.npz"

    def names(self, demographics):
        return list(FEATURE_NAMES)

    def transform(self, columns, demographics, context=None):
        return engineer(columns, demographics.rows(columns["zipcode"]),
                        demographics.columns, context)

    def load_context(self, path):
        context = NeighbourContext.from_npz(path)
        # Built here, where a version is loaded (Gunicorn's master, before it
        # forks), so that the workers share it instead of each building one.
        context.one_home()
        return context

    def sources(self, demographics):
        return feature_sources()

    def folding(self, demographics):
        groups, shared = super().folding(demographics)
        update = FEATURE_NAMES.index("years_since_update")
        built, renovated = groups.index("yr_built"), groups.index("yr_renovated")

        def fold(values, columns):
            # Shared equally, then moved wholly to the later of the two years.
            folded = shared(values, columns)
            half = np.asarray(values)[:, update] / 2
            later = (np.asarray(columns["yr_renovated"], dtype=np.float64)
                     > np.asarray(columns["yr_built"], dtype=np.float64))
            moved = np.where(later, half, -half)
            folded[:, built] -= moved
            folded[:, renovated] += moved
            return folded

        return groups, fold
