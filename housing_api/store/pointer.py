"""A store's pointer: the one small part of it that changes.

The active version, the activations before it, the rollout in progress
and the last one that ended, read and replaced as a whole; each change is
a pure function from one pointer to the next (``base.VersionStore``
applies them).
"""
from dataclasses import dataclass, replace

from .errors import ModelStoreError
from .rollouts import EndedRollout, Rollout

#: Activations kept in the history: how far back rollbacks can walk.
HISTORY_LIMIT = 1000


@dataclass(frozen=True)
class Pointer:
    """The changing part of a store, read and replaced as a whole."""

    current: str | None = None
    #: Activations, oldest first, ending at ``current``.
    history: tuple[str, ...] = ()
    #: The rollout as written: over once ``current`` is not its champion.
    rollout: Rollout | None = None
    ended: EndedRollout | None = None
    #: Why the stored rollout cannot be read (reported, never guessed).
    damage: str | None = None
    #: Versions deleted (an object store's; a folder's are simply gone):
    #: never stored, nor activated, again.
    deleted: tuple[str, ...] = ()

    @property
    def live_rollout(self) -> Rollout | None:
        """The rollout in progress; ``ModelStoreError`` if it is unreadable."""
        if self.damage:
            raise ModelStoreError(self.damage)
        rollout = self.rollout
        return rollout if rollout and rollout.champion == self.current else None

    def activated(self, version: str) -> "Pointer":
        """``version`` active; any rollout is over (promoted if it was its)."""
        ended = self.ended
        if self.rollout is not None:
            promoted = self.rollout.challenger == version \
                and self.rollout.champion == self.current
            ended = EndedRollout.now(
                self.rollout, "promoted" if promoted else "superseded",
                None if promoted else f"{version} was activated")
        return replace(self, current=version,
                       history=(*self.history, version)[-HISTORY_LIMIT:],
                       rollout=None, ended=ended, damage=None)

    def rewound(self, version: str, history: tuple[str, ...]) -> "Pointer":
        """Back to ``version``, ``history`` ending at it."""
        return replace(self.activated(version), history=history)

    def ending(self, outcome: str, reason: str | None = None) -> "Pointer":
        """The rollout in progress over, kept as the last one that ended."""
        return replace(self, rollout=None, damage=None,
                       ended=EndedRollout.now(self.rollout, outcome, reason))
