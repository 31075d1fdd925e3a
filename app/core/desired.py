"""What a core answers for one parent: the desired children, the status, and the intents the
shell carries out after the answer (Events, a request to an outside system, deleting the
parent). Every controller's hooks answer one of these."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from app.core.events import Event
from app.core.observed import Child


@dataclass(frozen=True, slots=True)
class Removal:
    """A child the answer leaves out on purpose, and why (reported in logs and Events)."""

    name: str
    group: str | None  # None for the head
    why: str


class PodPlan(Protocol):
    """What a core decided about pods, as far as the shell reports it."""

    @property
    def remove(self) -> Sequence[Removal]: ...


@dataclass(frozen=True, slots=True)
class Desired:
    """The complete desired children, the parent's status, and the events to report.

    ``finalized`` is None for a sync answer (Metacontroller must never see it there), and says
    whether the finalizer may go for a finalize answer. ``resync_after`` asks for another sync
    after that many seconds (a deadline); ``delete_parent`` is an intent for the shell: the
    parent itself is due for deletion (a RayJob's ``DeleteSelf`` policy). ``intents`` are
    requests to outside systems (a Ray dashboard's submit or stop) the shell carries out.
    """

    children: list[Child]
    status: dict[str, Any]
    events: tuple[Event, ...] = ()
    plan: PodPlan | None = None
    finalized: bool | None = None
    resync_after: float | None = None
    delete_parent: bool = False
    # What the shell should ask of outside systems (a RayJob's dashboard), after the answer.
    intents: tuple[Any, ...] = ()
