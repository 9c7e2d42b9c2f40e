"""What only the object store does: manifests, compare-and-swap on the
pointer, the checked cache, outages. (What both stores do is tested on both
in test_model_store and test_rollouts.) Against moto in server mode."""
import json
import os
import threading

import pytest

from buckets import Gate, endpoint_address, s3_client
from housing_api.serving import ModelState, PointerWatcher
from housing_api.store import (
    InvalidModelError, ModelStore, ModelStoreError, StoreConflictError,
    StoreUnavailableError, VersionNotFoundError, open_store,
)
from housing_api.store import objects
from housing_api.store.copying import copy_versions
from model_files import publish_copy, reopened


@pytest.fixture
def versions(s3_store):
    """The trained version A (active) and a copy B, stored but inactive."""
    return s3_store.current(), publish_copy(s3_store)


def bucket_of(store):
    return s3_client(os.environ["AWS_ENDPOINT_URL"]), store.bucket.name


def keys(store, version):
    client, bucket = bucket_of(store)
    listed = client.list_objects_v2(Bucket=bucket,
                                    Prefix=f"{store.bucket.prefix}/versions/{version}/")
    return [obj["Key"] for obj in listed.get("Contents", [])]


def file_key(store, version, name):
    return next(k for k in keys(store, version) if k.endswith(f"/{name}")
                and not k.endswith("manifest.json"))


def test_a_version_is_its_files_then_its_manifest(s3_store, versions):
    _, b = versions
    stored = keys(s3_store, b)
    manifest = json.loads(s3_store.bucket.get(
        s3_store.bucket.key("versions", b, "manifest.json"))[0])
    upload = manifest["upload"]
    assert sorted(stored) == sorted(
        [f"{s3_store.bucket.prefix}/versions/{b}/manifest.json"]
        + [f"{s3_store.bucket.prefix}/versions/{b}/{upload}/{name}"
           for name in manifest["files"]])
    assert "metadata.json" in manifest["files"]
    for name, entry in manifest["files"].items():
        data = (reopened(s3_store).path(b) / name).read_bytes()
        assert len(data) == entry["size"]


def test_a_version_without_its_manifest_does_not_exist(s3_store, versions):
    a, b = versions
    client, bucket = bucket_of(s3_store)
    client.delete_object(Bucket=bucket,
                         Key=f"{s3_store.bucket.prefix}/versions/{b}/manifest.json")
    other = reopened(s3_store)
    assert other.list_versions() == [a]
    assert not other.exists(b)
    with pytest.raises(VersionNotFoundError):
        other.activate(b)
    with pytest.raises(VersionNotFoundError):
        other.load(b)


@pytest.mark.parametrize("spoil, reason", [
    ("flip", "model.skops does not match its sha256 in the manifest"),
    ("remove", "model.skops is missing"),
    ("manifest", "the manifest of .* is unreadable"),
])
def test_a_damaged_version_is_refused_and_the_old_one_serves(
        s3_store, versions, spoil, reason):
    a, b = versions
    client, bucket = bucket_of(s3_store)
    if spoil == "manifest":
        client.put_object(Bucket=bucket, Body=b'{"version": "x"}',
                          Key=f"{s3_store.bucket.prefix}/versions/{b}/manifest.json")
    else:
        key = file_key(s3_store, b, "model.skops")
        data = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        if spoil == "flip":
            client.put_object(Bucket=bucket, Key=key,
                              Body=data[:-1] + bytes([data[-1] ^ 1]))
        else:
            client.delete_object(Bucket=bucket, Key=key)
    # Another machine, with nothing cached, is serving A ...
    state = ModelState(reopened(s3_store))
    state.reload()
    # ... when the pointer moves to B (by a machine that still has B cached).
    s3_store.activate(b)
    with pytest.raises(InvalidModelError, match=reason):
        state.reload()
    assert state.version == a and not state.store_unreachable
    assert not (state.store.versions_dir / b).exists()  # nothing half-cached
    with pytest.raises(InvalidModelError, match=reason):
        reopened(s3_store).activate(b)


def test_a_lost_race_is_decided_again_on_the_winners_pointer(
        s3_store, versions, monkeypatch):
    a, b = versions
    c = publish_copy(s3_store)
    rival = reopened(s3_store)
    real = s3_store.bucket.put
    raced = []

    def put(key, data, create=False, etag=None):
        if key.endswith("pointer.json") and not raced:
            raced.append(rival.activate(c))  # lands between our read and write
        return real(key, data, create, etag)

    monkeypatch.setattr(s3_store.bucket, "put", put)
    s3_store.activate(b)
    assert raced
    assert s3_store.history() == [a, c, b]
    assert rival.rollback() == c


def test_racing_publishers_exactly_one_wins_each_round(s3_store, versions):
    a, _ = versions
    publishers = [s3_store, reopened(s3_store)]
    mine = [[publish_copy(p) for _ in range(10)] for p in publishers]
    winners = []
    for round_ in range(10):
        seen = s3_store.current()
        start, results = threading.Barrier(2), [None, None]

        def publish(i):
            start.wait()
            try:
                publishers[i].activate(mine[i][round_], expected=seen)
                results[i] = "won"
            except StoreConflictError:
                results[i] = "lost"

        threads = [threading.Thread(target=publish, args=(i,)) for i in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(results) == ["lost", "won"], results
        winners.append(mine[results.index("won")][round_])
        assert s3_store.current() == winners[-1]
    assert s3_store.history() == [a, *winners]


def test_concurrent_activations_are_all_kept_in_order(s3_store, versions):
    a, _ = versions
    stores = [s3_store] + [reopened(s3_store) for _ in range(3)]
    mine = [publish_copy(s) for s in stores]
    start = threading.Barrier(len(stores))

    def activate(i):
        start.wait()
        stores[i].activate(mine[i])

    threads = [threading.Thread(target=activate, args=(i,))
               for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    history = s3_store.history()
    assert history[0] == a and sorted(history[1:]) == sorted(mine)


def test_a_deleted_name_never_comes_back(s3_store, versions):
    a, b = versions
    s3_store.delete(b)
    assert keys(s3_store, b) == []
    assert not (s3_store.versions_dir / b).exists()
    with pytest.raises(InvalidModelError, match="already exists"):
        publish_copy(s3_store, version=b)
    with pytest.raises(VersionNotFoundError):
        reopened(s3_store).activate(b)


def test_a_corrupt_pointer_is_reported_not_guessed(s3_store, versions):
    a, b = versions
    client, bucket = bucket_of(s3_store)
    client.put_object(Bucket=bucket, Key=f"{s3_store.bucket.prefix}/pointer.json",
                      Body=b"{not json")
    with pytest.raises(ModelStoreError, match="pointer.json is unreadable"):
        s3_store.current()
    with pytest.raises(ModelStoreError, match="pointer.json is unreadable"):
        s3_store.activate(b)


def test_the_files_of_a_crashed_publish_are_swept(s3_store, versions,
                                                  monkeypatch):
    client, bucket = bucket_of(s3_store)
    orphan = f"{s3_store.bucket.prefix}/versions/20260101-crashed/abc123/model.skops"
    client.put_object(Bucket=bucket, Key=orphan, Body=b"half")
    publish_copy(s3_store)
    assert keys(s3_store, "20260101-crashed") == [orphan]  # it may be a live one
    monkeypatch.setattr(objects, "STALE_UPLOAD_SECONDS", -1)
    publish_copy(s3_store)
    assert keys(s3_store, "20260101-crashed") == []


@pytest.fixture
def gate(s3_endpoint, monkeypatch):
    """A gate between this process and the bucket: ``close()`` cuts it off."""
    gate = Gate(endpoint_address(s3_endpoint))
    monkeypatch.setenv("AWS_ENDPOINT_URL", gate.url)
    yield gate
    gate.stop()


@pytest.fixture
def machine(s3_store, versions, gate, tmp_path):
    """Another machine serving the active version, through the gate."""
    state = ModelState(open_store(s3_store.location, tmp_path / "machine",
                                  timeout=2))
    state.reload()
    return state, PointerWatcher(state)


def test_a_cached_version_serves_through_an_outage(s3_store, versions, gate,
                                                   machine):
    a, b = versions
    state, watcher = machine
    assert state.version == a and (state.store.versions_dir / a).is_dir()
    gate.close()
    # The bucket out of reach: the loaded version goes on serving, the
    # watcher waits, the API's writes are refused with nothing changed.
    with pytest.raises(StoreUnavailableError, match="unreachable"):
        state.store.current()
    assert watcher.poll() is False
    s3_store.activate(b)  # elsewhere, where the bucket is reachable
    with pytest.raises(StoreUnavailableError):
        state.reload()
    assert state.version == a and state.store_unreachable
    assert [watcher.poll() for _ in range(3)] == [False] * 3
    gate.open()
    assert [watcher.poll(), watcher.poll()] == [False, True]
    state.reload()
    assert state.version == b and not state.store_unreachable


def test_an_outage_during_a_reload_is_tried_again(s3_store, versions, gate,
                                                  machine):
    a, b = versions
    state, watcher = machine
    s3_store.activate(b)
    assert [watcher.poll(), watcher.poll()] == [False, True]
    gate.close()  # the download of B fails
    with pytest.raises(StoreUnavailableError):
        state.reload()
    gate.open()
    # Signalled once already, but not for a broken version: again.
    assert watcher.poll() is True
    state.reload()
    assert state.version == b


def test_versions_copy_between_a_folder_and_a_bucket(trained_store, bucket_url,
                                                     tmp_path):
    folder = ModelStore(trained_store)
    bucket = open_store(bucket_url, tmp_path / "cache")
    assert copy_versions(folder, bucket) == folder.list_versions()
    assert copy_versions(folder, bucket) == []  # already there
    back = ModelStore(tmp_path / "back")
    assert copy_versions(open_store(bucket_url, tmp_path / "other"), back) \
        == folder.list_versions()
    version = folder.current()
    for path in folder.path(version).iterdir():
        assert (back.path(version) / path.name).read_bytes() == path.read_bytes()
    assert bucket.current() is None  # pointers are not copied


def test_a_forked_worker_uses_the_bucket_on_its_own_connections(s3_store,
                                                                versions):
    a, b = versions
    s3_store.current()  # the parent's client, made before the fork
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's result is its exit status
        try:
            s3_store.activate(b)
            os._exit(0 if s3_store.current() == b else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert s3_store.current() == b and s3_store.history() == [a, b]


def test_an_idle_poll_asks_only_whether_the_pointer_changed(s3_store, versions):
    """What a master's watcher asks the bucket each poll while nothing
    changes: the pointer, once, read conditionally (304, no body); the
    served version is not looked up again. A change is seen at once."""
    a, b = versions
    state = ModelState(s3_store)
    state.reload()
    watcher = PointerWatcher(state)
    assert not watcher.poll()
    calls = []
    s3_store.bucket.client.meta.events.register(
        "after-call.s3", lambda http_response, model, **_: calls.append(
            (model.name, http_response.status_code)))
    assert not watcher.poll()
    assert calls == [("GetObject", 304)]
    # Another master activates B: the next read has it.
    reopened(s3_store).activate(b)
    del calls[:]
    assert s3_store.current() == b
    assert calls == [("GetObject", 200)]
