"""A rollout: a challenger version tried beside the active one.

The state is one small JSON file beside ``CURRENT`` (``ROLLOUT``), written
under the store's lock with the same atomic replace, so every master that
watches the store sees the same rollout, and a rolling reload keeps it.
The last rollout to end is kept in ``ROLLOUT.ended``, with how it ended.
A rollout names the champion it started against: once ``CURRENT`` names
another version (an activation, a rollback, a promotion), it is over, even
if a crash left its file behind.
"""
import hashlib
import json
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone

from .errors import ModelStoreError

MODES = ("shadow", "canary")


class RolloutError(ModelStoreError):
    """A rollout cannot start, change or end as asked; nothing changed."""


@dataclass(frozen=True)
class Rollout:
    """``challenger`` tried beside ``champion``: in ``shadow`` (every estimate
    computed by both, clients see the champion's) or ``canary`` (``share`` of
    the clients get the challenger's)."""

    id: str
    challenger: str
    champion: str
    mode: str
    share: float
    started_at: str

    @classmethod
    def new(cls, challenger: str, champion: str, mode: str,
            share: float | None) -> "Rollout":
        """A rollout starting now; ``RolloutError`` for a bad mode or share."""
        if mode not in MODES:
            raise RolloutError(f"mode must be one of {', '.join(MODES)}")
        if mode == "shadow":
            share = 1.0 if share is None else share
        if share is None or not 0.0 < float(share) <= 1.0:
            raise RolloutError("share must be above 0 and at most 1")
        if challenger == champion:
            raise RolloutError(f"{challenger} is already the active version")
        return cls(uuid.uuid4().hex, challenger, champion, mode, float(share),
                   datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def key(self) -> tuple[str, float]:
        """Changes when the rollout does: a new one, or a new share."""
        return self.id, self.share

    def with_share(self, share: float) -> "Rollout":
        """This canary with another share; its clients stay in a larger one."""
        if self.mode != "canary":
            raise RolloutError("only a canary has a share to change")
        if not 0.0 < float(share) <= 1.0:
            raise RolloutError("share must be above 0 and at most 1")
        return replace(self, share=float(share))

    def in_canary(self, client: str) -> bool:
        """Whether ``client`` (an API key's id, or else an address) is among
        the canary's share: a stable hash, so a client keeps its version for
        the whole rollout, and a larger share only adds clients."""
        digest = hashlib.sha256(f"{self.id}/{client}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.share

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "Rollout":
        fields = json.loads(data)
        return cls(**{name: fields[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class EndedRollout:
    """The last rollout that ended (``ROLLOUT.ended``): when, and how
    (promoted, aborted, aborted automatically, or superseded by an
    activation), with the reason of an automatic abort."""

    rollout: Rollout
    ended_at: str
    outcome: str
    reason: str | None = None

    @classmethod
    def now(cls, rollout: Rollout, outcome: str,
            reason: str | None = None) -> "EndedRollout":
        return cls(rollout, datetime.now(timezone.utc).isoformat(
            timespec="seconds"), outcome, reason)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "EndedRollout":
        fields = json.loads(data)
        return cls(Rollout.from_json(json.dumps(fields["rollout"]).encode()),
                   fields["ended_at"], fields["outcome"], fields.get("reason"))
