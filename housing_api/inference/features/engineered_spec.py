"""The boosted model's feature list, and the constants and projection behind it.

Shared by the batch and the one-home code (``engineered``, ``engineered_one``)
and by the neighbour context, so none of them imports another's internals.
"""
import math

import numpy as np

from ..columns import CLIENT_COLUMNS

DEMOGRAPHIC_NAMES = (
    "ppltn_qty", "urbn_ppltn_qty", "sbrbn_ppltn_qty", "farm_ppltn_qty",
    "non_farm_qty", "medn_hshld_incm_amt", "medn_incm_per_prsn_amt",
    "hous_val_amt", "edctn_less_than_9_qty", "edctn_9_12_qty",
    "edctn_high_schl_qty", "edctn_some_clg_qty", "edctn_assoc_dgre_qty",
    "edctn_bchlr_dgre_qty", "edctn_prfsnl_qty", "per_urbn", "per_sbrbn",
    "per_farm", "per_non_farm", "per_less_than_9", "per_9_to_12", "per_hsd",
    "per_some_clg", "per_assoc", "per_bchlr", "per_prfsnl",
)

# The data cover sales from May 2014 to May 2015.
REFERENCE_YEAR = 2015
# Local equirectangular projection around the county centre, in kilometres.
LAT0, LON0 = 47.56, -122.21
KM_PER_DEG_LAT = 111.13
KM_PER_DEG_LON = 111.32 * math.cos(math.radians(LAT0))
LANDMARKS = {
    "seattle": (47.6062, -122.3321),
    "bellevue": (47.6101, -122.2015),
}
ROTATION_DEGREES = (15, 30, 45, 60, 75, 105, 120, 135, 150, 165)
NEIGHBOUR_KS = (5, 15, 50)
KERNEL_BANDWIDTHS_KM = (0.5, 2.0)


def _base_feature_names() -> list[str]:
    names = list(CLIENT_COLUMNS)
    names += [
        "age", "renovated", "years_since_update", "log_sqft_living",
        "log_sqft_lot", "log_sqft_above", "log_sqft_living15", "log_sqft_lot15",
        "living_over_living15", "lot_over_lot15", "living_over_lot",
        "basement_fraction", "sqft_per_bedroom", "bathrooms_per_bedroom",
        "x_km", "y_km",
    ]
    names += [f"rot_{d}" for d in ROTATION_DEGREES]
    names += [f"dist_{name}_km" for name in LANDMARKS]
    names += ["bearing_seattle"]
    return names


def _neighbour_feature_names() -> list[str]:
    names = []
    for k in NEIGHBOUR_KS:
        names += [f"nb{k}_ppsf_median", f"nb{k}_ppsf_mean", f"nb{k}_log_dist"]
    names += [f"nb_kernel{b}_ppsf" for b in KERNEL_BANDWIDTHS_KM]
    names += ["nb15_ppsf_std", "nb15_price_median", "nb15_log_sqft_mean"]
    return names


def feature_names() -> list[str]:
    """Return the fixed column order of the matrix built by ``engineer``."""
    return (
        _base_feature_names() + list(DEMOGRAPHIC_NAMES) + _neighbour_feature_names()
    )


FEATURE_NAMES = tuple(feature_names())

_LOCATION = ("lat", "long")


def feature_sources() -> dict[str, tuple[str, ...]]:
    """For each feature, the client columns it is computed from.

    The demographics come from the zipcode: one ``neighbourhood`` source.
    The neighbourhood prices summarise the training sales nearest to the
    home's lat and long. ``years_since_update`` counts from the later of
    ``yr_built`` and ``yr_renovated``: it is listed with both, and
    explanations give it to the one that is later.
    """
    sources = {name: (name,) for name in CLIENT_COLUMNS}
    sources.update({
        "age": ("yr_built",),
        "renovated": ("yr_renovated",),
        "years_since_update": ("yr_built", "yr_renovated"),
        "log_sqft_living": ("sqft_living",),
        "log_sqft_lot": ("sqft_lot",),
        "log_sqft_above": ("sqft_above",),
        "log_sqft_living15": ("sqft_living15",),
        "log_sqft_lot15": ("sqft_lot15",),
        "living_over_living15": ("sqft_living", "sqft_living15"),
        "lot_over_lot15": ("sqft_lot", "sqft_lot15"),
        "living_over_lot": ("sqft_living", "sqft_lot"),
        "basement_fraction": ("sqft_basement", "sqft_living"),
        "sqft_per_bedroom": ("sqft_living", "bedrooms"),
        "bathrooms_per_bedroom": ("bathrooms", "bedrooms"),
        "x_km": ("long",),
        "y_km": ("lat",),
    })
    for name in FEATURE_NAMES:
        if name.startswith(("rot_", "dist_", "bearing_", "nb")):
            sources[name] = _LOCATION
    sources.update({name: ("neighbourhood",) for name in DEMOGRAPHIC_NAMES})
    return sources


def to_km(lat: np.ndarray, long: np.ndarray) -> np.ndarray:
    x = (np.asarray(long, dtype=np.float64) - LON0) * KM_PER_DEG_LON
    y = (np.asarray(lat, dtype=np.float64) - LAT0) * KM_PER_DEG_LAT
    return np.column_stack([x, y])


LANDMARKS_KM = {
    name: to_km(np.array([lat]), np.array([long]))[0]
    for name, (lat, long) in LANDMARKS.items()
}
