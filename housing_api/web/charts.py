"""The pages' charts as geometry: numbers in, SVG coordinates out.

The templates draw these with plain SVG elements (no script, nothing from
another origin); every chart also has its numbers in a table or a CSV.
"""
import math

from ..inference.features.engineered_spec import to_km

#: Every chart's drawing width in SVG units; heights follow their rows.
WIDTH = 600
ROW = 22


def _scale(lo: float, hi: float, left: float, right: float):
    span = (hi - lo) or 1.0
    return lambda v: left + (v - lo) / span * (right - left)


def interval_bar(lower: float, price: float, upper: float) -> dict:
    """The 80% interval as a bar, the estimate a mark on it."""
    pad = (upper - lower) * 0.15 or price * 0.1
    x = _scale(lower - pad, upper + pad, 10, WIDTH - 10)
    return {"width": WIDTH, "height": 46, "lower": x(lower), "upper": x(upper),
            "price": x(price)}


def effect_bars(explanation: dict) -> dict:
    """A waterfall: the baseline, each effect from where the last one ended."""
    if explanation["method"] == "tree-shap":
        parts = [(e["input"], e["effect"]) for e in explanation["effects"]]
        start = explanation["baseline"]
    else:
        parts = [(f"{n.get('date', 'sale')} (${n['price']:,.0f})", n["effect"])
                 for n in explanation["neighbours"]]
        start = 0.0
    levels = [start]
    for _, amount in parts:
        levels.append(levels[-1] + amount)
    lo, hi = min(levels), max(levels)
    label_width = 190
    x = _scale(lo, hi, label_width, WIDTH - 80)
    rows = []
    level = start
    for i, (name, amount) in enumerate(parts):
        a, b = x(level), x(level + amount)
        rows.append({"label": name, "amount": amount, "y": (i + 1) * ROW,
                     "x": min(a, b), "width": max(abs(b - a), 1.0),
                     "up": amount >= 0})
        level += amount
    return {"width": WIDTH, "height": (len(rows) + 2) * ROW,
            "label_width": label_width, "baseline": start, "baseline_x": x(start),
            "end_x": x(level), "end_y": (len(rows) + 1) * ROW, "total": level,
            "rows": rows}


def _km(lat, long) -> tuple[float, float]:
    x, y = to_km([lat], [long])[0]
    return float(x), float(y)


def positions(home: dict, comparables: list[dict]) -> dict | None:
    """The comparable sales around the home, in km, the home in the middle
    (without lat and long, the middle of the sales)."""
    if not comparables:
        return None
    sales = [_km(c["lat"], c["long"]) for c in comparables]
    has_home = home.get("lat") is not None and home.get("long") is not None
    if has_home:
        centre = _km(home["lat"], home["long"])
    else:
        centre = (sum(s[0] for s in sales) / len(sales),
                  sum(s[1] for s in sales) / len(sales))
    reach = max(max(abs(x - centre[0]), abs(y - centre[1])) for x, y in sales)
    reach = max(reach * 1.2, 0.2)  # km from the centre to the edge
    size = 260
    half = size / 2
    points = [{"n": i + 1, "x": half + (x - centre[0]) / reach * (half - 14),
               "y": half - (y - centre[1]) / reach * (half - 14)}
              for i, (x, y) in enumerate(sales)]
    return {"size": size, "half": half, "points": points, "reach_km": reach,
            "has_home": has_home}


def estimate_charts(home: dict, result: dict) -> dict:
    return {"interval": interval_bar(result["interval"]["lower"],
                                     result["prediction"],
                                     result["interval"]["upper"]),
            "effects": effect_bars(result["explanation"]),
            "positions": positions(home, result.get("comparables") or [])}


def weekly_bars(weeks: list[dict]) -> dict | None:
    """Live MAPE per week of sale, one bar each, with its n."""
    rows = [w for w in weeks if w.get("mape") is not None]
    if not rows:
        return None
    top = max(w["mape"] for w in rows) or 1.0
    step = (WIDTH - 60) / len(rows)
    height = 160
    bars = [{"x": 40 + i * step + step * 0.15, "width": step * 0.7,
             "height": w["mape"] / top * (height - 40),
             "y": height - 20 - w["mape"] / top * (height - 40),
             "label": str(w.get("group")), "mape": w["mape"], "n": w["n"]}
            for i, w in enumerate(rows)]
    return {"width": WIDTH, "height": height, "bars": bars, "top": top}


def drift_bars(features: list[dict]) -> dict | None:
    """The population stability index of each input, against 0.1 and 0.25."""
    rows = [f for f in features if f.get("psi") is not None]
    if not rows:
        return None
    top = max(0.3, max(f["psi"] for f in rows))
    label_width = 130
    x = _scale(0.0, top, label_width, WIDTH - 60)
    return {"width": WIDTH, "height": (len(rows) + 1) * ROW,
            "label_width": label_width, "moderate_x": x(0.1), "major_x": x(0.25),
            "rows": [{"label": f["name"], "psi": f["psi"],
                      "verdict": f.get("verdict"), "y": (i + 0.5) * ROW,
                      "width": max(x(f["psi"]) - label_width, 1.0)}
                     for i, f in enumerate(rows)]}


def model_charts(weeks: list[dict], features: list[dict]) -> dict:
    return {"weeks": weekly_bars(weeks), "drift": drift_bars(features)}


def money(amount: float) -> str:
    """$327,129 (whole dollars), with its sign when asked."""
    return f"${amount:,.0f}" if math.isfinite(amount) else "n/a"
