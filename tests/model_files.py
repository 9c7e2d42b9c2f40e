"""Model versions for tests, built from the session's trained one."""
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import RobustScaler

from housing_api.formats import dump_skops
from housing_api.store import DEMOGRAPHICS, METADATA, ModelStore, open_store

DATA_DIR = Path(__file__).resolve().parent.parent / "data"


def payload(store: ModelStore, version: str | None = None) -> tuple[dict, dict]:
    """Return (files, metadata) that publish a copy of a stored version."""
    folder = store.path(version or store.current())
    metadata = json.loads((folder / METADATA).read_text())
    del metadata["version"], metadata["demographics_sha256"]
    artifact = {k: v for k, v in metadata["artifact"].items() if k != "sha256"}
    metadata["artifact"] = artifact
    files = {artifact["file"]: (folder / artifact["file"]).read_bytes(),
             DEMOGRAPHICS: (folder / DEMOGRAPHICS).read_bytes()}
    return files, metadata


def publish_copy(store: ModelStore, version: str | None = None) -> str:
    """Publish a copy of the active version under a new name."""
    files, metadata = payload(store)
    if version:
        metadata["version"] = version
    return store.publish(files, metadata)


def small_model(n_features: int, price: float = 500_000.0):
    """A fitted reference-type pipeline that predicts about ``price``."""
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 10, size=(60, n_features))
    y = price * rng.uniform(0.9, 1.1, size=60)
    return make_pipeline(RobustScaler(), KNeighborsRegressor()).fit(X, y)


def with_artifact(files: dict, metadata: dict, data: bytes) -> dict:
    """Return ``files`` with the artifact's bytes replaced by ``data``."""
    return {**files, metadata["artifact"]["file"]: data}


def skops_bytes(estimator) -> bytes:
    return dump_skops(estimator)


def tamper(path: Path) -> None:
    """Flip one byte in the middle of ``path``."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def boosted_payload(rows: int = 3000, rounds: int = 10) -> tuple[dict, dict]:
    """(files, metadata) of a small boosted version, with its neighbours.npz."""
    from housing_api.inference.demographics import Demographics
    from housing_api.training import boosting
    from housing_api.training.data import DEMOGRAPHICS_CSV, Sales
    from housing_api.training.train import fit_lightgbm

    sales = Sales.read(DATA_DIR)
    demographics = Demographics.from_csv(DATA_DIR / DEMOGRAPHICS_CSV)
    fit = fit_lightgbm(sales, demographics, np.arange(rows), params={
        **boosting.DEFAULT_PARAMS, "num_boost_round": rounds}, companion=False)
    files = {**fit.files,
             DEMOGRAPHICS: (DATA_DIR / DEMOGRAPHICS_CSV).read_bytes()}
    return files, fit.metadata


#: For a test of how the folder store uses its files: on it alone.
folder_only = pytest.mark.parametrize("any_store", ["folder"], indirect=True)
#: For a check a version fails before either store writes anything (the
#: same code, base.VersionStore.publish): run once, on the folder store.
checked_before_storing = folder_only


def reopened(store):
    """Another store object on the same storage: another process's, or
    another replica's, view of it (an object store's with its own cache)."""
    if isinstance(store, ModelStore):
        return ModelStore(store.root)
    return open_store(store.location, Path(tempfile.mkdtemp()))


def stored_state(store) -> bytes:
    """The bytes of everything a store keeps besides its versions."""
    if isinstance(store, ModelStore):
        return b"|".join(p.read_bytes() if p.exists() else b"-" for p in (
            store.pointer, store.history_file, store.rollout_file,
            store.ended_rollout_file))
    found = store.bucket.get(store.bucket.key("pointer.json"))
    return found[0] if found else b"-"
