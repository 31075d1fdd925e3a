"""The ``metaray`` command: ``serve`` runs the hook, ``render`` previews a cluster offline."""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from app.core.time import parse_time
from app.shell.observability import logs
from app.shell.settings import Settings


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return _render(args)


def _parser() -> argparse.ArgumentParser:
    defaults = Settings.from_env()
    parser = argparse.ArgumentParser(prog="metaray", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the Metacontroller sync hook over HTTP")
    serve.add_argument("--host", default=defaults.host, help="address to bind (%(default)s)")
    serve.add_argument("--port", type=int, default=defaults.port, help="port (%(default)s)")
    serve.add_argument("--log-level", default=defaults.log_level, help="(%(default)s)")
    serve.add_argument(
        "--workers",
        type=int,
        default=defaults.workers,
        help="uvicorn worker processes (%(default)s); more than one needs PROMETHEUS_MULTIPROC_DIR",
    )
    serve.add_argument(
        "--tls-cert-file",
        default=defaults.tls_cert_file,
        help="serve HTTPS with this certificate (PEM); with --tls-key-file",
    )
    serve.add_argument("--tls-key-file", default=defaults.tls_key_file, help="its private key")
    render_cmd = commands.add_parser(
        "render", help="print the children and status metaray would answer for a manifest"
    )
    render_cmd.add_argument(
        "manifest",
        type=Path,
        help="a RayCluster, RayJob, RayCronJob or RayService manifest (YAML or JSON)",
    )
    render_cmd.add_argument(
        "--observed",
        type=Path,
        help="a YAML/JSON file of observed pods and services (a list, or a List object)",
    )
    render_cmd.add_argument(
        "--now",
        type=_moment,
        help="the time to render at, RFC 3339 (default: now); a RayCronJob shows the run due then",
    )
    return parser


def _moment(text: str) -> datetime:
    moment = parse_time(text)
    if moment is None:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time: {text!r}")
    return moment


def _serve(args: argparse.Namespace) -> int:
    from app.faces.serve import serve

    logs.configure(args.log_level)
    directory = Settings.from_env().metrics_dir
    if args.workers > 1 and directory is None:
        print("metaray serve: --workers > 1 needs PROMETHEUS_MULTIPROC_DIR", file=sys.stderr)
        return 2
    if directory is not None:
        _clear_metrics(Path(directory))
    if (args.tls_cert_file is None) != (args.tls_key_file is None):
        print("metaray serve: --tls-cert-file and --tls-key-file go together", file=sys.stderr)
        return 2
    return serve(
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        ssl_certfile=args.tls_cert_file,
        ssl_keyfile=args.tls_key_file,
    )


def _clear_metrics(directory: Path) -> None:
    """Counters of a previous run would otherwise be added to this run's (prometheus_client's
    multiprocess rule: wipe the directory before the workers start)."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in directory.iterdir():
        if path.suffix in (".db", ".json", ".tmp"):
            path.unlink(missing_ok=True)


def _render(args: argparse.Namespace) -> int:
    # Here, not at the top: ``serve`` never renders, and the cores, PyYAML and the spec models
    # would cost the serving process memory (docs/operations.md, "The hook's memory").
    from app.faces.render import RenderError, render, to_yaml
    from app.raycluster.options import TOKEN_BYTES

    try:
        settings = Settings.from_env()
        entropy = secrets.token_bytes(TOKEN_BYTES)  # a token Secret gets a real random token
        output = render(
            args.manifest,
            args.observed,
            settings.options,
            settings.rayjob_options,
            now=args.now or datetime.now(UTC),
            entropy=entropy,
        )
    except RenderError as error:
        print(f"metaray render: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(to_yaml(output))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
