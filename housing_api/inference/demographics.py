"""Zipcode demographics, looked up by array index (never a pandas merge)."""
import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np


class UnknownZipcodeError(LookupError):
    """Raised for zipcodes that have no demographics row."""

    def __init__(self, zipcodes):
        self.zipcodes = sorted(set(zipcodes))
        super().__init__(f"unknown zipcode(s): {', '.join(self.zipcodes)}")


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
