"""The `grok-video` command.

    grok-video emulator [--port N] [--latency S] ...   serve the local API emulator

Each subcommand is a `_add_<name>` function that declares its parser and a `_cmd_<name>`
function that runs it and returns an exit code; add later ones (`run`, `validate`, `demo`) to
`_SUBCOMMANDS`. Heavy imports happen inside the commands so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["build_parser", "main"]


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a probability is from 0 to 1, got {text}")
    return value


def _key_value(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected KNOB=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw  # a bare string
    return name.strip().replace("-", "_"), value


# -- grok-video emulator --------------------------------------------------------------------

#: Flags that map one-to-one onto `EmulatorConfig` fields: (flag, type, help).
_EMULATOR_KNOBS: tuple[tuple[str, Callable[[str], Any], str], ...] = (
    ("--api-key", str, "bearer token to accept (default: emulator-key)"),
    ("--latency", float, "seconds a job stays pending (default: 3)"),
    ("--latency-jitter", float, "latency varies by up to this fraction (default: 0)"),
    ("--seed", int, "seed of the fault generator (default: 0)"),
    ("--submit-rate", float, "submissions per second before 429 (default: 1)"),
    ("--submit-burst", int, "burst size of the submit rate limit (default: 1)"),
    ("--url-ttl", float, "seconds a result URL stays valid (default: 86400)"),
    ("--p-submit-5xx", _probability, "probability of a 5xx answer to a submit"),
    ("--p-poll-5xx", _probability, "probability of a 5xx answer to a poll"),
    ("--p-submit-429", _probability, "probability of a spurious 429 on submit"),
    ("--p-poll-429", _probability, "probability of a spurious 429 on poll"),
    ("--p-drop-after-accept", _probability, "probability of cutting a submit answer off"),
    ("--p-first-attempt-unavailable", _probability, "first attempts end service_unavailable"),
    ("--p-slow", _probability, "probability of a slow answer"),
    ("--slow-response-seconds", float, "delay of a slow answer"),
)


def _add_emulator(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "emulator",
        help="serve a local emulator of the Grok video API on 127.0.0.1",
        description="Serve a local emulator of the Grok video extension API on 127.0.0.1 until "
        "Ctrl-C. Prompt directives: #moderated, #expired, #fail=<code>, #fail-first=<code>, "
        "#latency=<seconds>.",
    )
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free one)")
    parser.add_argument("--config", metavar="FILE.json", help="JSON object of EmulatorConfig knobs")
    for flag, kind, text in _EMULATOR_KNOBS:
        parser.add_argument(flag, type=kind, default=None, help=text)
    parser.add_argument(
        "--no-rate-limit", action="store_true", help="accept submissions at any rate"
    )
    parser.add_argument(
        "--fractional-retry-after",
        action="store_true",
        default=None,
        help="send Retry-After in decimal seconds",
    )
    parser.add_argument(
        "--set",
        dest="knobs",
        metavar="KNOB=VALUE",
        type=_key_value,
        action="append",
        default=[],
        help="any other EmulatorConfig knob, VALUE as JSON (repeatable), e.g. --set job_ttl=60",
    )
    parser.add_argument("--access-log", action="store_true", help="log every request")
    parser.set_defaults(handler=_cmd_emulator)


def _emulator_config(args: argparse.Namespace) -> Any:
    """The EmulatorConfig from --config, then the flags, then --set."""
    from prefect_grok_video.emulator import EmulatorConfig

    config = EmulatorConfig.from_file(args.config) if args.config else EmulatorConfig()
    changes: dict[str, Any] = {}
    for flag, _, _ in _EMULATOR_KNOBS:
        name = flag[2:].replace("-", "_")
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.fractional_retry_after:
        changes["fractional_retry_after"] = True
    if args.no_rate_limit:
        changes["submit_rate"] = None
    changes.update(dict(args.knobs))
    return config.replace(**changes) if changes else config


def _cmd_emulator(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from prefect_grok_video.emulator import EmulatorServer

    try:
        config = _emulator_config(args)
    except (ValidationError, OSError, ValueError) as exc:
        print(f"grok-video emulator: invalid configuration: {exc}", file=sys.stderr)
        return 2
    log_level = "info" if args.access_log else "warning"
    server = EmulatorServer(config, port=args.port, access_log=args.access_log, log_level=log_level)
    try:
        server.start()
    except OSError as exc:
        print(f"grok-video emulator: cannot listen on port {args.port}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:  # SIGTERM stops as cleanly as Ctrl-C
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    rate = "unlimited" if config.submit_rate is None else f"{config.submit_rate:g}/s"
    print(f"Grok video API emulator listening on {server.base_url}", flush=True)
    print(f"  latency {config.latency:g} s, submit rate {rate}, seed {config.seed}")
    print("Use it with:")
    print(f"  export GROK_VIDEO_BASE_URL={server.base_url} GROK_VIDEO_API_KEY={server.api_key}")
    print("Press Ctrl-C to stop.", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
        server.stop()
    print("emulator stopped", flush=True)
    return 0


# -- entry point ----------------------------------------------------------------------------

_SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (_add_emulator,)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `grok-video` with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="grok-video",
        description="Extend videos with the Grok (xAI) video API, orchestrated by Prefect.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `grok-video` with `argv` (default: the process's arguments); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    return int(handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
