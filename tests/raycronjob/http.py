"""The RayCronJob stand-in driven over HTTP: the loop's clock is the app's clock."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from app.shell.http.app import create_app
from app.shell.settings import Settings
from tests.http.client import HookClient
from tests.raycronjob.loop import START, CronLoop

HEADERS = {"Content-Type": "application/json"}
PATH = "/raycronjob/sync"


class Hook:
    """The app with a clock the test sets (Events off: there is no API server)."""

    def __init__(self) -> None:
        self.now = START
        self.client = HookClient(create_app(Settings(events="off"), clock=lambda: self.now))

    def post(self, body: dict[str, Any] | bytes) -> Any:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.client.post(PATH, content=content, headers=HEADERS)

    def decide(self, body: dict[str, Any], now: datetime) -> dict[str, Any]:
        self.now = now
        response = self.post(body)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer


def over_http(parent: dict[str, Any], hook: Hook | None = None) -> CronLoop:
    return CronLoop(parent, decide=(hook or Hook()).decide)
