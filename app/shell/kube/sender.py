"""A bounded queue of requests to the API server, sent one at a time after the answers that
asked for them: what the Event sink and the RayJob janitor share."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    import httpx  # at run time only where a request is made (idle memory: docs/operations.md)


Item = TypeVar("Item")
# How long shutting down waits for what is queued to be sent.
STOP_SECONDS = 5.0


class ApiSender(Generic[Item]):
    """Sends each queued item with ``send``; an error never ends the loop (``failed`` hears of
    it). Items still queued at ``stop`` are counted by ``dropped``."""

    name = "metaray-sender"

    def __init__(self, client: Callable[[], httpx.AsyncClient], queue_size: int) -> None:
        self.client = client
        self.queue_size = queue_size
        self.queue: asyncio.Queue[Item] | None = None
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the sender on the running loop (the app's lifespan)."""
        self.queue = asyncio.Queue(self.queue_size)
        self.task = asyncio.create_task(self._run(self.queue), name=self.name)

    async def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Send what is queued for at most ``timeout`` seconds, then give up the rest."""
        if self.task is None or self.queue is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), timeout)
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self.dropped(self.queue.qsize())
        self.task = self.queue = None

    def offer(self, item: Item) -> bool:
        """Queue ``item`` without waiting; False when there is no room (or no sender)."""
        if self.queue is None:
            return False
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            return False
        return True

    async def _run(self, queue: asyncio.Queue[Item]) -> None:
        async with self.client() as client:
            while True:
                item = await queue.get()
                try:
                    await self.send(client, item)
                except Exception as error:  # a transport error, or a bug: never kill the loop
                    self.failed(item, error)
                finally:
                    self.finished(item)
                    queue.task_done()

    async def send(self, client: httpx.AsyncClient, item: Item) -> None:
        raise NotImplementedError

    def failed(self, item: Item, error: Exception) -> None:
        raise NotImplementedError

    def finished(self, item: Item) -> None:
        """After ``item`` was sent or failed."""

    def dropped(self, count: int) -> None:
        raise NotImplementedError
