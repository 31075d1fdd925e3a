"""The submitter script's runs: follow the Ray job's logs, submit and follow it, or stop it; and
``main``. The last part of the one script ``app.submitter.source()`` joins: the imports of
``app.submitter.config`` and ``app.submitter.dashboard_client`` are globals of that script."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from typing import Any

from app.submitter.config import (
    ERROR_EXIT,
    LOG_DRAIN_SECONDS,
    MAX_CONSECUTIVE_ERRORS,
    NOT_FOUND_EXIT,
    POLL_SECONDS,
    STOP_WAIT_DEFAULT_SECONDS,
    SUBMIT_TIMEOUT_SECONDS,
    TERMINAL_EXITS,
    Config,
    SubmitterError,
    _now,
    _sleep,
    read_config,
    say,
    termination_message,
    write_termination_log,
)
from app.submitter.dashboard_client import (
    bounded,
    is_duplicate,
    is_not_found,
    is_unreachable,
    make_client,
    short_error,
    status_name,
    wait_for_dashboard,
)

# ---------------------------------------------------------------------------------------------
# Logs


class LogSink:
    """Writes streamed log chunks to stdout and counts them, until closed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.written = 0
        self.closed = False
        self.error: BaseException | None = None

    def write(self, chunk: str) -> None:
        with self.lock:
            if self.closed:
                return
            sys.stdout.write(chunk)
            sys.stdout.flush()
            self.written += len(chunk)

    def close(self) -> None:
        with self.lock:
            self.closed = True


def start_log_tail(client: Any, submission_id: str, sink: LogSink) -> threading.Thread:
    """Follow the job's logs (Ray's websocket tail) to `sink` in a daemon thread."""

    async def follow() -> None:
        async for chunk in client.tail_job_logs(submission_id):
            sink.write(chunk)

    def run() -> None:
        try:
            asyncio.run(follow())
        except BaseException as error:
            sink.error = error

    tail = threading.Thread(target=run, daemon=True)
    tail.start()
    return tail


def finish_logs(
    client: Any, submission_id: str, sink: LogSink, tail: threading.Thread | None
) -> None:
    """Give the stream LOG_DRAIN_SECONDS to end, then print from the job's full log whatever it
    did not show: Ray's stream lingers for seconds after the job ended, sends nothing for a job
    that was over when first seen (then there is no stream at all), and may break."""
    if tail is not None:
        tail.join(LOG_DRAIN_SECONDS)
    sink.close()
    if sink.error is not None:
        say(f"the log stream broke ({short_error(sink.error)}); printing the rest of the log")
    if tail is not None and not tail.is_alive() and sink.error is None and sink.written:
        return
    try:
        logs = str(bounded(client.get_job_logs, submission_id) or "")
    except Exception as error:
        say(f"could not read the job's log: {short_error(error)}")
        return
    sys.stdout.write(logs[sink.written :])
    sys.stdout.flush()


def _pause(tail: threading.Thread | None) -> None:
    """Wait POLL_SECONDS, or less when the log stream ends (the job is likely over then)."""
    if tail is not None and tail.is_alive():
        tail.join(POLL_SECONDS)
    else:
        _sleep(POLL_SECONDS)


# ---------------------------------------------------------------------------------------------
# Modes


def _finish(config: Config, code: int, status: str, message: str, info: Any = None) -> int:
    start = getattr(info, "start_time", None)
    end = getattr(info, "end_time", None)
    write_termination_log(config.termination_log, termination_message(status, message, start, end))
    return code


def submit_if_absent(config: Config, client: Any) -> None:
    """Status first; submit only when the dashboard does not know the submission ID."""
    try:
        info = bounded(client.get_job_info, config.submission_id)
    except Exception as error:
        if not is_not_found(error):
            raise
    else:
        say(
            f"job {config.submission_id} already exists ({status_name(info.status)}): "
            "following it, not submitting it again"
        )
        return
    say(f"submitting job {config.submission_id}")
    try:
        bounded(
            lambda: client.submit_job(
                entrypoint=config.entrypoint,
                submission_id=config.submission_id,
                runtime_env=config.runtime_env,
                metadata=config.metadata,
                entrypoint_num_cpus=config.num_cpus,
                entrypoint_num_gpus=config.num_gpus,
                entrypoint_resources=config.resources,
            ),
            timeout=SUBMIT_TIMEOUT_SECONDS,
        )
    except Exception as error:
        if is_duplicate(error):
            say(f"job {config.submission_id} was submitted meanwhile (a race): following it")
            return
        # An answer lost on the way back may hide a submission that did happen: look again.
        try:
            bounded(client.get_job_info, config.submission_id)
        except Exception:
            raise error from None
        say(f"job {config.submission_id} exists although its submission failed: following it")


def follow(config: Config, client: Any) -> int:
    """Stream the job's logs and poll its status until it is terminal or gone."""
    sink = LogSink()
    tail: threading.Thread | None = None  # started once the job is seen not to be over
    errors = 0
    last = ""
    while True:
        try:
            info = bounded(client.get_job_info, config.submission_id)
        except Exception as error:
            if is_not_found(error):
                sink.close()
                message = (
                    f"Ray job {config.submission_id} is not found any more (last seen "
                    f"{last or 'submitted'}): the Ray head may have restarted and lost it"
                )
                say(message)
                return _finish(config, NOT_FOUND_EXIT, "", message)
            errors += 1
            if errors >= MAX_CONSECUTIVE_ERRORS:
                raise
            say(f"could not read the job's status ({short_error(error, config)}); retrying")
            if not is_unreachable(error):
                _pause(tail)
            elif not wait_for_dashboard(config, config.wait_seconds):
                raise SubmitterError("the Ray dashboard did not come back") from error
            continue
        errors = 0
        status = status_name(info.status)
        if status != last:
            say(f"job {config.submission_id} is {status}")
            last = status
        if status in TERMINAL_EXITS:
            finish_logs(client, config.submission_id, sink, tail)
            message = str(getattr(info, "message", None) or "")
            return _finish(config, TERMINAL_EXITS[status], status, message, info)
        if tail is None:
            tail = start_log_tail(client, config.submission_id, sink)
        _pause(tail)


def run_submit(config: Config) -> int:
    if not wait_for_dashboard(config, config.wait_seconds):
        raise SubmitterError(f"the Ray dashboard at {config.address} did not become healthy")
    client = make_client(config)
    submit_if_absent(config, client)
    return follow(config, client)


def run_stop(config: Config) -> int:
    seconds = STOP_WAIT_DEFAULT_SECONDS if config.wait_seconds is None else config.wait_seconds
    deadline = _now() + seconds
    if not wait_for_dashboard(config, seconds):
        raise SubmitterError(f"the Ray dashboard at {config.address} did not become healthy")
    client = make_client(config)
    try:
        stopped = bounded(client.stop_job, config.submission_id)
    except Exception as error:
        if not is_not_found(error):
            raise
        say(f"job {config.submission_id} is not known to the cluster: nothing to stop")
        return _finish(config, 0, "", f"Ray job {config.submission_id} not found")
    say(f"asked job {config.submission_id} to stop" if stopped else "the job was not running")
    while True:
        try:
            info = bounded(client.get_job_info, config.submission_id)
        except Exception as error:
            if not is_not_found(error):
                raise
            return _finish(config, 0, "", f"Ray job {config.submission_id} not found")
        status = status_name(info.status)
        if status in TERMINAL_EXITS:
            say(f"job {config.submission_id} is {status}")
            message = str(getattr(info, "message", None) or "")
            return _finish(config, 0, status, message, info)
        if _now() >= deadline:
            raise SubmitterError(
                f"job {config.submission_id} is still {status} after {seconds:g} s"
            )
        _sleep(POLL_SECONDS)


def main(environ: dict[str, str] | None = None) -> int:
    environ = dict(os.environ if environ is None else environ)
    config: Config | None = None
    try:
        config = read_config(environ)
        say(f"{config.mode} job {config.submission_id} at {config.address}")
        return run_stop(config) if config.mode == "stop" else run_submit(config)
    except Exception as error:
        text = short_error(error, config)
        say("error: " + text)
        path = config.termination_log if config else environ.get("METARAY_TERMINATION_LOG")
        write_termination_log(path or "/dev/termination-log", termination_message("", text))
        return ERROR_EXIT


if __name__ == "__main__":
    exit_code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Not sys.exit: a log stream or a request that still hangs in a daemon thread must neither
    # hold the exit nor write while the interpreter shuts down.
    os._exit(exit_code)
