"""The training data: King County sales and the future examples, as client columns."""
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from ..inference.columns import NUMERIC_COLUMNS

SALES_CSV = "kc_house_data.csv"
DEMOGRAPHICS_CSV = "zipcode_demographics.csv"
EXAMPLES_CSV = "future_unseen_examples.csv"
#: Sound Realty's split: 25% holdout, this seed.
SPLIT_SEED = 42


@dataclass
class Sales:
    """King County sales as client columns plus what training needs."""

    frame: pd.DataFrame
    columns: dict
    price: np.ndarray
    sha256: str

    @classmethod
    def read(cls, data_dir: Path) -> "Sales":
        path = Path(data_dir) / SALES_CSV
        frame = pd.read_csv(path, dtype={"zipcode": str})
        return cls(frame, frame_columns(frame), frame["price"].to_numpy(float),
                   hashlib.sha256(path.read_bytes()).hexdigest())

    def split(self):
        """Return (train, holdout) row indices of Sound Realty's split."""
        return train_test_split(np.arange(len(self.price)), random_state=SPLIT_SEED)


def frame_columns(frame: pd.DataFrame) -> dict:
    """Return the client columns of ``frame`` as numpy arrays."""
    columns = {c: frame[c].to_numpy(np.float64) for c in NUMERIC_COLUMNS if c in frame}
    columns["zipcode"] = frame["zipcode"].astype(str).tolist()
    return columns


def take(columns: dict, rows: np.ndarray) -> dict:
    """Return the ``rows`` of every column."""
    return {
        name: (np.asarray(values)[rows] if name != "zipcode"
               else [values[i] for i in rows])
        for name, values in columns.items()
    }


def read_examples(data_dir: Path) -> dict:
    """Return the future examples as client columns."""
    frame = pd.read_csv(Path(data_dir) / EXAMPLES_CSV, dtype={"zipcode": str})
    return frame_columns(frame)
