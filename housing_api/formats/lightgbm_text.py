"""LightGBM models in LightGBM's text format (``model_to_string``): data, no code."""
from pathlib import Path

from .errors import ArtifactError

#: LightGBM objectives whose predictions are prices (not classes or ranks).
LIGHTGBM_OBJECTIVES = ("regression", "regression_l1", "huber", "fair", "quantile",
                       "mape", "gamma", "tweedie", "poisson")


class LightGBMRegressor:
    """A LightGBM booster behind the ``predict(X)`` the predictor calls."""

    def __init__(self, booster):
        self.booster = booster
        self.n_features_in_ = booster.num_feature()

    def predict(self, X):
        # One thread: the Gunicorn workers are the parallelism.
        return self.booster.predict(X, num_threads=1)

    def contributions(self, X):
        """TreeSHAP values per feature, then the expected value (per row)."""
        return self.booster.predict(X, num_threads=1, pred_contrib=True)


def dump_lightgbm(booster) -> bytes:
    """Serialize a LightGBM booster (or fitted LGBMRegressor) to its text format."""
    return getattr(booster, "booster_", booster).model_to_string().encode()


def load_lightgbm(path: Path, n_features: int):
    """Load a LightGBM text model (``model_to_string``): data, never code."""
    import lightgbm

    try:
        text = path.read_text()
        objective = next((line.split("=", 1)[1].split()[0]
                          for line in text.splitlines()
                          if line.startswith("objective=")), None)
        if objective not in LIGHTGBM_OBJECTIVES:
            raise ArtifactError(f"LightGBM objective {objective!r} does not "
                                f"predict prices")
        booster = lightgbm.Booster(model_str=text)
    except ArtifactError:
        raise
    except Exception as exc:
        raise ArtifactError(f"cannot load LightGBM model: {exc}") from exc
    if booster.num_feature() != n_features:
        raise ArtifactError(f"artifact expects {booster.num_feature()} features, "
                            f"metadata lists {n_features}")
    return LightGBMRegressor(booster)
