"""Load the submitter script the way a pod sees it (one text, run outside the `app` package) and
fake the parts of Ray's JobSubmissionClient that it uses."""

from __future__ import annotations

import itertools
import sys
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import app.submitter

_serial = itertools.count()


def load_script() -> ModuleType:
    """A fresh module object built from the script's text, ``app.submitter.source()``: a
    module of its own, so that it sees none of the parts' imports of each other."""
    name = f"metaray_submitter_under_test_{next(_serial)}"
    module = ModuleType(name)
    module.__file__ = f"<{name}>"
    sys.modules[name] = module  # dataclasses look their module up there
    exec(compile(app.submitter.source(), module.__file__, "exec"), module.__dict__)
    return module


def not_found(job: str = "job-1") -> RuntimeError:
    """What Ray's client raises for an unknown job."""
    return RuntimeError(f"Request failed with status code 404: Job {job} does not exist.")


def duplicate(job: str = "job-1") -> RuntimeError:
    """What Ray 2.60's client raises when the submission ID already exists (a 500 wrapping
    the job agent's 400, both with tracebacks)."""
    return RuntimeError(
        "Request failed with status code 500: Traceback (most recent call last):\n"
        '  File "job_head.py", line 419, in submit_job\n'
        "RuntimeError: Request failed with status code 400: Traceback (most recent call last):\n"
        f"ValueError: Job with submission_id {job} already exists. "
        "Please use a different submission_id.\n.\n."
    )


@dataclass
class Info:
    """The fields of ray.job_submission.JobDetails that the submitter reads."""

    status: str
    message: str = ""
    start_time: int | None = None
    end_time: int | None = None


START_MS = 1_796_184_728_812  # 2026-12-02T04:12:08.812Z
END_MS = 1_796_184_730_262  # 2026-12-02T04:12:10.262Z


def info(status: str, message: str = "") -> Info:
    terminal = status in ("SUCCEEDED", "FAILED", "STOPPED")
    started = status != "PENDING"
    return Info(
        status,
        message or f"Job is {status.lower()}.",
        START_MS if started else None,
        END_MS if terminal else None,
    )


class FakeClient:
    """Answers get_job_info from a script: each call takes the next answer (an Info, a status
    name, or an exception to raise); the last answer repeats."""

    def __init__(
        self,
        answers: Iterable[Info | str | BaseException],
        logs: Iterable[str] = ("line one\n", "line two\n"),
        submit_error: BaseException | None = None,
        stop_answer: bool | BaseException = True,
        tail_error: BaseException | None = None,
        full_logs: str | None = None,
    ) -> None:
        self.answers = [info(a) if isinstance(a, str) else a for a in answers]
        self.logs = list(logs)
        self.submit_error = submit_error
        self.stop_answer = stop_answer
        self.tail_error = tail_error
        self.full_logs = "".join(self.logs) if full_logs is None else full_logs
        self.submitted: list[dict[str, Any]] = []
        self.stopped: list[str] = []
        self.info_calls = 0
        self.tails = 0

    def get_job_info(self, job_id: str) -> Info:
        answer = self.answers[min(self.info_calls, len(self.answers) - 1)]
        self.info_calls += 1
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def submit_job(self, **kwargs: Any) -> str:
        self.submitted.append(kwargs)
        if self.submit_error is not None:
            raise self.submit_error
        return str(kwargs["submission_id"])

    def stop_job(self, job_id: str) -> bool:
        self.stopped.append(job_id)
        if isinstance(self.stop_answer, BaseException):
            raise self.stop_answer
        return self.stop_answer

    async def tail_job_logs(self, job_id: str) -> AsyncIterator[str]:
        self.tails += 1
        for chunk in self.logs:
            yield chunk
        if self.tail_error is not None:
            raise self.tail_error

    def get_job_logs(self, job_id: str) -> str:
        return self.full_logs
