"""Running the hook on uvicorn without a timer: an idle hook uses no CPU.

uvicorn's ``Server.main_loop`` wakes ten times a second to refresh the ``Date`` header and to
look whether a signal asked it to stop. On the 2-core development machine that tick costs
~2.5 ms of CPU per second, ~9 CPU seconds an hour: more than 600 resyncs of an idle 11-pod
cluster (bench/idle.py). ``QuietServer`` sleeps until a signal wakes it instead; its responses
carry no ``Date`` header (it would freeze at start-up without the tick), which nothing metaray
serves reads. Several workers (``--workers``) run under uvicorn's own supervisor and keep its
tick: scale with replicas rather than workers where idle cost matters.
"""

from __future__ import annotations

import asyncio
from types import FrameType

from app.faces.uvicorn_server import Config, Server

APP = "app.shell.http.app:create_app"
STARTUP_FAILURE = 3  # uvicorn's exit code when the server could not start


class QuietServer(Server):
    """A uvicorn Server whose main loop sleeps until it is asked to stop."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        # on_tick does what uvicorn's tick does (headers, should_exit, the request limit).
        counter = 0
        while not await self.on_tick(counter):
            counter = 1  # only the first tick sets the default headers (no Date to refresh)
            if self.should_exit:
                continue  # set between on_tick and here (not by a signal): see it at once
            await self._stop.wait()
            self._stop.clear()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """uvicorn's signal handler (SIGINT, SIGTERM), which also wakes the main loop."""
        super().handle_exit(sig, frame)
        self.wake()

    def wake(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)


def serve(
    *,
    host: str,
    port: int,
    workers: int,
    log_level: str,
    ssl_certfile: str | None,
    ssl_keyfile: str | None,
) -> int:
    """Serve the hook until a signal stops it; 3 when it could not start (as uvicorn.run
    exits). No access log: every hook answer already logs a line of its own
    (``app/shell/observability/logs.py``), and probes need none."""
    options = {
        "factory": True,
        "host": host,
        "port": port,
        "log_level": log_level,
        "ssl_certfile": ssl_certfile,
        "ssl_keyfile": ssl_keyfile,
        "access_log": False,
    }
    if workers > 1:
        from uvicorn.main import run  # uvicorn's supervisor; click comes with it

        run(APP, workers=workers, **options)  # type: ignore[arg-type]
        return 0
    server = QuietServer(Config(APP, date_header=False, **options))  # type: ignore[arg-type]
    server.run()
    return 0 if server.started else STARTUP_FAILURE
