"""The rollout state beside CURRENT: one at a time, atomic, ended by activations."""
import os

import pytest

from housing_api.store import (
    ActiveVersionError, ModelStoreError, RolloutError,
    VersionNotFoundError,
)
from model_files import folder_only, publish_copy, reopened, stored_state


@pytest.fixture
def store(any_store):
    """Every test here holds for the folder store and the object store."""
    return any_store


@pytest.fixture
def versions(store):
    """The trained version A (active) and a copy B, stored but inactive."""
    return store.current(), publish_copy(store)


def test_a_rollout_is_seen_by_every_store_on_the_folder(store, versions):
    a, b = versions
    started = store.start_rollout(b, "canary", 0.1)
    assert (started.challenger, started.champion, started.mode, started.share) \
        == (b, a, "canary", 0.1)
    # Another master (another replica) on the same store:
    assert reopened(store).rollout() == started
    assert store.current() == a


def test_a_shadow_tries_the_challenger_on_every_estimate(store, versions):
    _, b = versions
    assert store.start_rollout(b, "shadow").share == 1.0


@pytest.mark.parametrize("mode, share, message", [
    ("blue-green", 0.1, "mode must be one of shadow, canary"),
    ("canary", None, "share must be above 0"),
    ("canary", 0.0, "share must be above 0"),
    ("canary", 1.5, "share must be above 0"),
])
def test_a_bad_rollout_is_refused_and_nothing_is_written(store, versions, mode,
                                                         share, message):
    _, b = versions
    before = stored_state(store)
    with pytest.raises(RolloutError, match=message):
        store.start_rollout(b, mode, share)
    assert store.rollout() is None
    assert stored_state(store) == before


def test_the_active_version_and_unknown_ones_cannot_be_rolled_out(store,
                                                                  versions):
    a, _ = versions
    with pytest.raises(RolloutError, match="already the active version"):
        store.start_rollout(a, "canary", 0.5)
    with pytest.raises(VersionNotFoundError):
        store.start_rollout("no-such-version", "canary", 0.5)
    assert store.rollout() is None


def test_one_rollout_at_a_time(store, versions):
    _, b = versions
    c = publish_copy(store)
    first = store.start_rollout(b, "shadow")
    with pytest.raises(RolloutError, match=f"a shadow of {b} is in progress"):
        store.start_rollout(c, "canary", 0.2)
    assert store.rollout() == first


def test_promote_activates_the_challenger_and_ends_the_rollout(store, versions):
    a, b = versions
    store.start_rollout(b, "canary", 0.1)
    assert store.promote_rollout().challenger == b
    assert store.current() == b
    # None as written too, not only over (a stale rollout is over as well):
    assert store.rollout() is None and store._pointer().rollout is None
    # Promotion is an activation like any other: exactly one rollback away.
    assert store.rollback() == a


def test_abort_ends_the_rollout_and_keeps_the_champion(store, versions):
    a, b = versions
    store.start_rollout(b, "shadow")
    store.abort_rollout()
    assert store.current() == a and store.rollout() is None
    with pytest.raises(RolloutError, match="no rollout is in progress"):
        store.abort_rollout()
    with pytest.raises(RolloutError, match="no rollout is in progress"):
        store.promote_rollout()


def test_any_activation_ends_the_rollout(store, versions):
    a, b = versions
    c = publish_copy(store)
    store.start_rollout(b, "canary", 0.3)
    store.activate(c)
    assert store.rollout() is None
    assert store.current() == c


@folder_only
def test_a_rollout_left_behind_by_a_crash_is_over(store, versions):
    a, b = versions
    c = publish_copy(store)
    started = store.start_rollout(b, "canary", 0.3)
    saved = store.rollout_file.read_bytes()
    store.activate(c)
    # A crash between CURRENT's write and the rollout file's removal:
    store.rollout_file.write_bytes(saved)
    assert store.rollout() is None
    assert started.champion == a


def test_the_challenger_of_a_rollout_cannot_be_deleted(store, versions):
    _, b = versions
    store.start_rollout(b, "canary", 0.3)
    with pytest.raises(ActiveVersionError, match="in a canary; abort it first"):
        store.delete(b)
    store.abort_rollout()
    store.delete(b)


@folder_only
def test_a_corrupt_rollout_file_is_reported_not_guessed(store, versions):
    store.rollout_file.write_bytes(b"{not json")
    with pytest.raises(ModelStoreError, match="ROLLOUT is unreadable"):
        store.rollout()


@folder_only
def test_the_rollout_file_is_replaced_atomically(store, versions, monkeypatch):
    _, b = versions
    calls = []
    real = os.replace

    def spy(src, dst):
        calls.append((os.path.basename(src), os.path.basename(dst)))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    store.start_rollout(b, "shadow")
    assert (".ROLLOUT.tmp", "ROLLOUT") in calls


def test_a_canarys_share_changes_and_its_clients_stay_in(store, versions):
    _, b = versions
    started = store.start_rollout(b, "canary", 0.1)
    clients = [f"address:10.2.0.{i}" for i in range(200)]
    inside = {c for c in clients if started.in_canary(c)}
    wider = store.set_rollout_share(0.4)
    assert (wider.id, wider.share) == (started.id, 0.4)
    assert reopened(store).rollout() == wider
    assert inside <= {c for c in clients if wider.in_canary(c)}
    with pytest.raises(RolloutError, match="share must be above 0"):
        store.set_rollout_share(0)
    assert store.rollout() == wider


def test_a_shadow_has_no_share_to_change(store, versions):
    _, b = versions
    store.start_rollout(b, "shadow")
    with pytest.raises(RolloutError, match="only a canary"):
        store.set_rollout_share(0.5)


@pytest.mark.parametrize("end, outcome", [
    ("promote", "promoted"), ("abort", "aborted"), ("activate", "superseded")])
def test_the_last_rollout_to_end_is_kept_with_how_it_ended(store, versions, end,
                                                           outcome):
    a, b = versions
    assert store.ended_rollout() is None
    started = store.start_rollout(b, "canary", 0.2)
    if end == "promote":
        store.promote_rollout()
    elif end == "abort":
        store.abort_rollout()
    else:
        store.activate(publish_copy(store))
    ended = reopened(store).ended_rollout()
    assert ended.rollout == started and ended.outcome == outcome
    assert ended.ended_at >= started.started_at
    assert (ended.reason is None) == (end != "activate")


def test_an_abort_meant_for_another_rollout_changes_nothing(store, versions):
    _, b = versions
    first = store.start_rollout(b, "canary", 0.2)
    store.abort_rollout()
    second = store.start_rollout(b, "canary", 0.2)
    with pytest.raises(RolloutError, match="changed meanwhile"):
        store.abort_rollout(expected=first, reason="worse")
    assert store.rollout() == second
    # A share change is the same rollout: an abort meant for it ends it.
    store.set_rollout_share(0.5)
    store.abort_rollout(expected=second, reason="worse by 3 points")
    ended = store.ended_rollout()
    assert store.rollout() is None
    assert (ended.outcome, ended.reason) == ("aborted automatically",
                                             "worse by 3 points")
