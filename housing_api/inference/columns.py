"""The columns a client sends, and validated homes turned into one array per column."""
from collections.abc import Mapping, Sequence

import numpy as np

#: The 18 columns a client sends (``future_unseen_examples.csv``), in order.
CLIENT_COLUMNS = (
    "bedrooms", "bathrooms", "sqft_living", "sqft_lot", "floors", "waterfront",
    "view", "condition", "grade", "sqft_above", "sqft_basement", "yr_built",
    "yr_renovated", "zipcode", "lat", "long", "sqft_living15", "sqft_lot15",
)
NUMERIC_COLUMNS = tuple(c for c in CLIENT_COLUMNS if c != "zipcode")
#: The numeric columns that are not whole numbers.
FRACTIONAL_COLUMNS = ("bathrooms", "floors", "lat", "long")

#: The sales columns Sound Realty's reference model uses.
SALES_FEATURES = (
    "bedrooms", "bathrooms", "sqft_living", "sqft_lot", "floors",
    "sqft_above", "sqft_basement",
)


def records_to_columns(records: Sequence[Mapping]) -> dict[str, np.ndarray]:
    """Turn validated homes (dicts) into one array per client column."""
    names = [name for name in NUMERIC_COLUMNS if name in records[0]]
    # One conversion for all columns; each column is then a contiguous row.
    values = np.array([[r[name] for name in names] for r in records],
                      dtype=np.float64).reshape(len(records), len(names)).T.copy()
    columns = dict(zip(names, values))
    columns["zipcode"] = [r["zipcode"] for r in records]
    return columns
