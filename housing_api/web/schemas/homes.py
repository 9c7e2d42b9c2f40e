"""The homes a client sends: one, minimal or a batch; a fast path for valid ones."""
import numpy as np
from marshmallow import (
    RAISE, Schema, ValidationError, fields, validate, validates_schema,
)

from .fields import (
    MIN_YEAR, Number, WholeNumber, Year, Zipcode, max_year, ranged, year_field,
)

_INF = float("inf")


class HomeSchema(Schema):
    """A home about to be sold: the 18 columns of future_unseen_examples.csv."""

    class Meta:
        unknown = RAISE
        ordered = True

    bedrooms = ranged(WholeNumber, 0, 50, "Number of bedrooms.", 4)
    bathrooms = ranged(Number, 0, 25, "Bathrooms (0.25 steps: 0.75 = 3/4 bath).",
                       1.0)
    sqft_living = ranged(WholeNumber, 1, 1_000_000,
                         "Interior living area, sq ft (above + basement).", 1680)
    sqft_lot = ranged(WholeNumber, 1, 100_000_000, "Lot area, sq ft.", 5043)
    floors = ranged(Number, 1, 10, "Number of floors (0.5 steps).", 1.5)
    waterfront = ranged(WholeNumber, 0, 1, "1 if on the waterfront, else 0.", 0)
    view = ranged(WholeNumber, 0, 4, "Quality of the view, 0 (none) to 4.", 0)
    condition = ranged(WholeNumber, 1, 5, "Condition, 1 (poor) to 5.", 4)
    grade = ranged(WholeNumber, 1, 13,
                   "King County building grade, 1 (poor) to 13.", 6)
    sqft_above = ranged(WholeNumber, 1, 1_000_000,
                        "Living area above ground, sq ft.", 1680)
    sqft_basement = ranged(WholeNumber, 0, 1_000_000,
                           "Living area below ground, sq ft.", 0)
    yr_built = year_field(f"Year built ({MIN_YEAR} to next year).", 1911, MIN_YEAR)
    yr_renovated = year_field("Year of the last renovation: 0 if never, else not "
                              "before yr_built.", 0, 0)
    zipcode = Zipcode(
        required=True,
        metadata={"description": "5-digit zipcode, one of GET /v1/zipcodes "
                                 "(an integer such as 98118 is accepted too).",
                  "example": "98118"},
    )
    lat = ranged(Number, -90, 90, "Latitude, degrees.", 47.5354)
    long = ranged(Number, -180, 180, "Longitude, degrees.", -122.273)
    sqft_living15 = ranged(WholeNumber, 1, 1_000_000,
                           "Living area of the 15 nearest neighbours, sq ft.", 1560)
    sqft_lot15 = ranged(WholeNumber, 1, 100_000_000,
                        "Lot area of the 15 nearest neighbours, sq ft.", 5765)

    @validates_schema
    def check_areas(self, data, **kwargs):
        parts = ("sqft_above", "sqft_basement", "sqft_living")
        if all(p in data for p in parts) and (
            data["sqft_above"] + data["sqft_basement"] != data["sqft_living"]
        ):
            raise ValidationError(
                "sqft_above + sqft_basement must equal sqft_living.", "sqft_living"
            )

    @validates_schema
    def check_years(self, data, **kwargs):
        built, renovated = data.get("yr_built"), data.get("yr_renovated")
        if built is not None and built < MIN_YEAR:
            raise ValidationError(f"Must be at least {MIN_YEAR}.", "yr_built")
        if built is not None and renovated and renovated < built:
            raise ValidationError(
                "Must be 0 (never renovated) or not before yr_built.", "yr_renovated"
            )

    def fast_load(self, data, partial=False, rules=None):
        """Return what ``load(data)`` returns when ``data`` is valid, else None.

        The hot path: a handful of type and range checks per field instead of
        marshmallow's machinery (about 20x faster). Anything it does not
        accept goes through ``load`` for the detailed errors; a property test
        holds the two to the same results. ``fast_load_many`` passes ``rules``
        once for all its homes.
        """
        if type(data) is not dict:
            return None
        if rules is None:
            rules = self._fast_rules()
        if not partial and len(data) != len(rules):
            return None
        out = {}
        for name, value in data.items():
            rule = rules.get(name)
            if rule is None:
                return None
            kind, lo, hi = rule
            vtype = type(value)
            if kind == "zipcode":
                if vtype is int and 0 <= value <= 99999:
                    value = f"{value:05d}"
                elif not (vtype is str and len(value) == 5 and value.isascii()
                          and value.isdigit()):
                    return None
            elif vtype is int or vtype is float:
                if kind == "int":
                    if vtype is float:
                        if not value.is_integer():
                            return None
                        value = int(value)
                elif vtype is int:
                    value = float(value)
                elif value != value or value in (_INF, -_INF):
                    return None
                if not lo <= value <= hi:
                    return None
            else:
                return None
            out[name] = value
        built = out.get("yr_built")
        if built is not None and built < MIN_YEAR:
            return None
        renovated = out.get("yr_renovated")
        if built is not None and renovated and renovated < built:
            return None
        if "sqft_living" in out and "sqft_above" in out and "sqft_basement" in out:
            if out["sqft_above"] + out["sqft_basement"] != out["sqft_living"]:
                return None
        return out

    def fast_mask(self, columns) -> np.ndarray:
        """``fast_load``'s verdict on whole columns at once: True for each
        home it would accept, with the values the columns hold.

        ``columns`` maps every field to an array of one kind: numbers as
        float64 (NaN where a cell is not a number), the zipcode as strings.
        A home marked False may still be valid (``load`` is the final word);
        one marked True is valid. For files of any size (``housing-api
        score``), where checking home by home would cost as much as the
        estimate.
        """
        rules = self._fast_rules()
        n = len(columns["zipcode"])
        ok = np.ones(n, dtype=bool)
        for name, (kind, lo, hi) in rules.items():
            values = columns[name]
            if kind == "zipcode":
                values = np.asarray(values, dtype=object)
                ok &= np.fromiter((type(v) is str and len(v) == 5 and v.isascii()
                                   and v.isdigit() for v in values), bool, n)
                continue
            with np.errstate(invalid="ignore"):
                ok &= np.isfinite(values) & (values >= lo) & (values <= hi)
                if kind == "int":
                    ok &= np.floor(values) == values
        if "yr_built" in rules:
            built, renovated = columns["yr_built"], columns["yr_renovated"]
            with np.errstate(invalid="ignore"):
                ok &= built >= MIN_YEAR
                ok &= (renovated == 0) | (renovated >= built)
                ok &= (columns["sqft_above"] + columns["sqft_basement"]
                       == columns["sqft_living"])
        return ok

    def fast_load_many(self, rows) -> list | None:
        """``fast_load`` of every row, or None as soon as one is refused."""
        rules = self._fast_rules()
        homes = []
        for row in rows:
            home = self.fast_load(row, rules=rules)
            if home is None:
                return None
            homes.append(home)
        return homes

    def _fast_rules(self) -> dict:
        """(kind, min, max) per field, from the fields' own validators."""
        year = max_year()
        if getattr(self, "_rules_year", None) != year:
            rules = {}
            for name, field in self.fields.items():
                if isinstance(field, Zipcode):
                    rules[name] = ("zipcode", None, None)
                elif isinstance(field, Year):
                    rules[name] = ("int", 0, year)
                else:
                    [bounds] = [v for v in field.validators
                                if isinstance(v, validate.Range)]
                    kind = "int" if isinstance(field, WholeNumber) else "float"
                    rules[name] = (kind, bounds.min, bounds.max)
            self._rules, self._rules_year = rules, year
        return self._rules


class MinimalHomeSchema(HomeSchema):
    """Only the columns the active model reads (see GET /v1/features)."""

    class Meta(HomeSchema.Meta):
        pass


class BatchSchema(Schema):
    """Many homes in one request, predicted together."""

    class Meta:
        unknown = RAISE

    instances = fields.List(
        fields.Nested(HomeSchema),
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "The homes, up to the configured batch limit "
                                 "(10,000 by default)."},
    )
