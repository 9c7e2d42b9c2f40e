"""What a process serves during a rollout: the champion and its challenger."""
import pytest

from housing_api.serving import ModelState, PointerWatcher
from model_files import publish_copy, tamper


@pytest.fixture
def state(store):
    state = ModelState(store)
    state.reload()
    return state


@pytest.fixture
def challenger(store):
    return publish_copy(store)


def test_a_rollout_loads_its_challenger_beside_the_champion(state, store,
                                                            challenger):
    champion = state.version
    rollout = store.start_rollout(challenger, "canary", 0.25)
    assert state.reload() is True
    assert state.rollout == rollout
    assert state.challenger.version == challenger
    assert state.version == champion
    assert state.reload() is False  # loaded once


def test_abort_and_promote_reach_the_process(state, store, challenger):
    store.start_rollout(challenger, "shadow")
    state.reload()
    store.abort_rollout()
    assert state.reload() is True
    assert state.rollout is None and state.challenger is None
    store.start_rollout(challenger, "canary", 0.5)
    state.reload()
    store.promote_rollout()
    assert state.reload() is True
    assert state.version == challenger
    assert state.rollout is None and state.challenger is None


def test_a_challenger_that_does_not_load_leaves_the_champion_alone(
        state, store, challenger, caplog):
    champion = state.version
    store.start_rollout(challenger, "canary", 0.5)
    tamper(store.path(challenger) / store.metadata(challenger)["artifact"]["file"])
    state.reload()
    assert state.version == champion
    assert state.rollout is None and state.challenger is None
    assert f"the challenger {challenger} does not load" in caplog.text


def test_a_corrupt_rollout_file_leaves_the_champion_alone(state, store,
                                                          caplog):
    champion = state.version
    store.rollout_file.write_bytes(b"{not json")
    state.reload()
    assert state.version == champion and state.rollout is None
    assert "rollout ignored" in caplog.text


def test_the_watcher_rolls_the_workers_onto_a_rollout(state, store, challenger):
    watcher = PointerWatcher(state)
    assert watcher.poll() is False
    store.start_rollout(challenger, "canary", 0.1)
    # One poll to see it, the next to ask (the admin API's HUP comes first).
    assert watcher.poll() is False
    assert watcher.poll() is True
    state.reload()
    assert watcher.poll() is False
    store.abort_rollout()
    assert [watcher.poll(), watcher.poll()] == [False, True]


def test_the_watcher_asks_once_for_a_challenger_that_does_not_load(
        state, store, challenger):
    watcher = PointerWatcher(state)
    store.start_rollout(challenger, "canary", 0.1)
    tamper(store.path(challenger) / store.metadata(challenger)["artifact"]["file"])
    assert [watcher.poll(), watcher.poll()] == [False, True]
    state.reload()  # refused: the challenger's file does not match
    assert [watcher.poll(), watcher.poll(), watcher.poll()] == [False] * 3


def test_the_watcher_rolls_the_workers_onto_a_new_share(state, store, challenger):
    watcher = PointerWatcher(state)
    store.start_rollout(challenger, "canary", 0.1)
    state.reload()
    loaded = state.challenger
    assert watcher.poll() is False
    store.set_rollout_share(0.5)
    assert [watcher.poll(), watcher.poll()] == [False, True]
    assert state.reload() is True
    assert state.rollout.share == 0.5
    assert state.challenger is loaded  # the same version, not loaded again
