"""The ``metaray`` command: ``serve`` runs the hook, ``render`` previews a cluster offline."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from app.render import RenderError, render, to_yaml
from app.settings import Settings


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
    render_cmd = commands.add_parser(
        "render", help="print the children and status metaray would answer for a manifest"
    )
    render_cmd.add_argument("manifest", type=Path, help="a RayCluster manifest (YAML or JSON)")
    render_cmd.add_argument(
        "--observed",
        type=Path,
        help="a YAML/JSON file of observed pods and services (a list, or a List object)",
    )
    return parser


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
    )
    return 0


def _render(args: argparse.Namespace) -> int:
    try:
        output = render(args.manifest, args.observed, Settings.from_env().options)
    except RenderError as error:
        print(f"metaray render: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(to_yaml(output))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
