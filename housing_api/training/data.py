"""The training data: King County sales and the future examples, as client columns."""
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from ..inference.columns import CLIENT_COLUMNS, NUMERIC_COLUMNS

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

    def with_reported(self, reported: dict) -> tuple["Sales", np.ndarray, dict]:
        """These sales plus the ones reported back, without duplicates.

        ``reported`` holds client columns, ``price`` and ``sale_date``, one
        entry per reported sale. A reported sale equal to one of these (all
        18 inputs and the price) or to an earlier reported one is dropped.
        Returns the sales, the row indices of the added ones, and counts.
        """
        added = pd.DataFrame({name: reported["columns"][name]
                              for name in CLIENT_COLUMNS})
        added["price"] = np.asarray(reported["price"], dtype=np.float64)
        added["date"] = [str(d) for d in reported["sale_date"]]
        key = [*CLIENT_COLUMNS, "price"]
        known = pd.concat([self.frame[key].astype({"zipcode": str}),
                           added[key]], ignore_index=True)
        duplicate = known.duplicated(keep="first").to_numpy()[len(self.frame):]
        added = added[~duplicate].reset_index(drop=True)
        # Ids no King County sale has: repeat-sale grouping keeps them apart.
        added["id"] = -(np.arange(len(added)) + 1)
        frame = pd.concat([self.frame, added], ignore_index=True)
        digest = hashlib.sha256(self.sha256.encode())
        digest.update(added.to_csv(index=False).encode())
        sales = Sales(frame, frame_columns(frame), frame["price"].to_numpy(float),
                      digest.hexdigest())
        counts = {"reported": int(len(duplicate)), "added": int(len(added)),
                  "duplicates": int(duplicate.sum()),
                  "last_sale": max(added["date"]) if len(added) else None}
        return sales, np.arange(len(self.frame), len(frame)), counts


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
