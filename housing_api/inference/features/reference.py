"""Sound Realty's reference features: 7 sales columns and the zipcode's demographics."""
import numpy as np

from ..columns import SALES_FEATURES
from .base import NEIGHBOURHOOD, FeatureSet


class ReferenceFeatures(FeatureSet):
    """Sound Realty's reference features: 7 sales columns + demographics."""

    name = "reference"
    inputs = SALES_FEATURES + ("zipcode",)

    def names(self, demographics):
        return [*SALES_FEATURES, *demographics.columns]

    def transform(self, columns, demographics, context=None):
        demo = demographics.rows(columns["zipcode"])
        out = np.empty((len(demo), len(SALES_FEATURES) + demo.shape[1]))
        for j, name in enumerate(SALES_FEATURES):
            out[:, j] = columns[name]
        out[:, len(SALES_FEATURES):] = demo
        return out

    def sources(self, demographics):
        return {**{name: (name,) for name in SALES_FEATURES},
                **{name: (NEIGHBOURHOOD,) for name in demographics.columns}}
