"""From client columns to the model's feature matrix, with numpy only.

Training and serving both go through :meth:`FeatureSet.transform`, so the
two cannot drift apart. A feature set is chosen by the name stored in a
model version's metadata.
"""
import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

#: The 18 columns a client sends (``future_unseen_examples.csv``), in order.
CLIENT_COLUMNS = (
    "bedrooms", "bathrooms", "sqft_living", "sqft_lot", "floors", "waterfront",
    "view", "condition", "grade", "sqft_above", "sqft_basement", "yr_built",
    "yr_renovated", "zipcode", "lat", "long", "sqft_living15", "sqft_lot15",
)
NUMERIC_COLUMNS = tuple(c for c in CLIENT_COLUMNS if c != "zipcode")

#: The sales columns Sound Realty's reference model uses.
SALES_FEATURES = (
    "bedrooms", "bathrooms", "sqft_living", "sqft_lot", "floors",
    "sqft_above", "sqft_basement",
)


class UnknownZipcodeError(LookupError):
    """Raised for zipcodes that have no demographics row."""

    def __init__(self, zipcodes):
        self.zipcodes = sorted(set(zipcodes))
        super().__init__(f"unknown zipcode(s): {', '.join(self.zipcodes)}")


class UnknownFeatureSetError(LookupError):
    """Raised when metadata names a feature set this code does not have."""


class Demographics:
    """Zipcode demographics as one float matrix and a zipcode -> row index."""

    def __init__(self, zipcodes: Sequence[str], columns: Sequence[str], values):
        self.zipcodes = tuple(zipcodes)
        self.columns = tuple(columns)
        self.values = np.asarray(values, dtype=np.float64)
        self.index = {z: i for i, z in enumerate(self.zipcodes)}

    @classmethod
    def from_csv(cls, path: Path) -> "Demographics":
        """Read ``zipcode_demographics.csv``, keeping its column order."""
        with open(path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader)
            rows = list(reader)
        z = header.index("zipcode")
        columns = [c for i, c in enumerate(header) if i != z]
        values = [[float(v) for i, v in enumerate(r) if i != z] for r in rows]
        return cls([r[z] for r in rows], columns, values)

    def __contains__(self, zipcode) -> bool:
        return zipcode in self.index

    def rows(self, zipcodes: Sequence[str]) -> np.ndarray:
        """Return the demographics rows of ``zipcodes``, one per home."""
        index = self.index
        try:
            return self.values[[index[z] for z in zipcodes]]
        except KeyError:
            raise UnknownZipcodeError(z for z in zipcodes if z not in index)


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


def feature_sets() -> dict[str, FeatureSet]:
    """Every feature set this code knows, by name."""
    from .engineered import EngineeredFeatures

    return {fs.name: fs for fs in (ReferenceFeatures(), EngineeredFeatures())}


def get_feature_set(name: str) -> FeatureSet:
    """Return the feature set called ``name``."""
    try:
        return feature_sets()[name]
    except KeyError:
        raise UnknownFeatureSetError(f"unknown feature set {name!r}") from None


def records_to_columns(records: Sequence[Mapping]) -> dict[str, np.ndarray]:
    """Turn validated homes (dicts) into one array per client column."""
    names = [name for name in NUMERIC_COLUMNS if name in records[0]]
    # One conversion for all columns; each column is then a contiguous row.
    values = np.array([[r[name] for name in names] for r in records],
                      dtype=np.float64).reshape(len(records), len(names)).T.copy()
    columns = dict(zip(names, values))
    columns["zipcode"] = [r["zipcode"] for r in records]
    return columns
