"""The `grok-video` command.

    grok-video run MANIFEST [--output DEST] ...   make every video of a manifest (Prefect flow)
    grok-video validate MANIFEST                 check every row, submit nothing
    grok-video demo [--output DIR]               run the bundled examples against a local emulator
    grok-video emulator [--port N] ...           serve the local API emulator

Each subcommand is a `_add_<name>` function that declares its parser and a `_cmd_<name>`
function that runs it and returns an exit code (0: every row succeeded, 1: a row did not,
2: the manifest or the command line is wrong). Heavy imports, Prefect above all, happen inside
the commands that need them, so `--help`, `validate` and `emulator` stay light. What the
terminal shows while a run goes is `prefect_grok_video.console`; the account printed after it,
`prefect_grok_video.report_text`.

Longer than most modules (about 650 lines): every subcommand's parser is beside the function
that runs it, so the command line is read in one file; what a command shows or prints lives
elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from prefect_grok_video.console import prepare_prefect, progress_listener, progress_mode, ui_hint
from prefect_grok_video.report_text import format_report
from prefect_grok_video.settings import DEFAULT_MAX_CONCURRENCY

__all__ = ["build_parser", "copy_examples", "entry", "main"]


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


_EMULATOR_DESCRIPTION = """\
Serve a local emulator of the Grok video API on 127.0.0.1 until Ctrl-C.

routes, under /grok/v1 (bearer auth):
  POST videos/generations   generate a video from a prompt, and optionally a still (image)
  POST videos/edits         edit a video (the output matches the input)
  POST videos/extensions    extend a video (the output is the input and the new seconds)
  GET  videos/{request_id}  poll a job of any of them
  GET  _emulator/stats      counters and every accepted submission; POST _emulator/reset
results: GET /files/<request_id>.mp4?token=... (no auth; valid for --url-ttl seconds)

video and image are taken as a string or as {"url": ...}; what each operation accepts comes
from prefect_grok_video.operations. Prompt directives: #moderated, #expired, #fail=<code>,
#fail-first=<code>, #latency=<seconds>."""


def _add_emulator(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "emulator",
        help="serve a local emulator of the Grok video API on 127.0.0.1",
        description=_EMULATOR_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free one)")
    parser.add_argument("--config", metavar="FILE.json", help="JSON object of EmulatorConfig knobs")
    for flag, kind, text in _EMULATOR_KNOBS:
        parser.add_argument(flag, type=kind, default=None, help=text)
    parser.add_argument(
        "--no-rate-limit", action="store_true", help="accept submissions at any rate"
    )
    parser.add_argument(
        "--pictures", choices=("drawn", "flat"), default=None,
        help="results drawn to look like what was asked (default), or flat grey frames made "
        "without an encoder, for load tests",
    )  # fmt: skip
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
    if args.pictures:
        changes["pictures"] = args.pictures
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
    rate = "unlimited" if config.submit_rate is None else f"{config.submit_rate:g}/s"
    print(f"Grok video API emulator listening on {server.base_url}", flush=True)
    print(f"  latency {config.latency:g} s, submit rate {rate}, seed {config.seed}")
    _serve_until_stopped(server)
    return 0


def _serve_until_stopped(server: Any) -> None:
    """Tell how to use a started emulator, serve until Ctrl-C or SIGTERM, then stop it."""
    stop = threading.Event()
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:  # SIGTERM stops as cleanly as Ctrl-C
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:  # a Ctrl-C that comes while the lines below print must stop the server too
        print("Use it with:")
        print(f"  export GROK_VIDEO_BASE_URL={server.base_url} GROK_VIDEO_API_KEY={server.api_key}")
        print("Press Ctrl-C to stop.", flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
        server.stop()
    print("emulator stopped", flush=True)


# -- shared by run, validate and demo -------------------------------------------------------


class _UsageError(Exception):
    """A problem with the command line, the manifest or the credentials: exit code 2."""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"a whole number of at least 0, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"a number above 0, got {text}")
    return value


def _check_readable(manifest: str) -> None:
    """Raise `_UsageError` unless the manifest can be read as a whole (rows are checked later)."""
    from prefect_grok_video.errors import ManifestError
    from prefect_grok_video.manifest import read_rows

    try:
        read_rows(manifest)
    except ManifestError as exc:
        raise _UsageError(str(exc)) from None


async def _run_flow(
    manifest: str, *, credentials: Any, credentials_name: str | None, listener: Any,
    options: dict[str, Any],
) -> Any:  # fmt: skip
    """Run `make_videos` in this process; return its RunReport (or raise `_RunFailed`)."""
    from prefect_grok_video.blocks import GrokVideoCredentials
    from prefect_grok_video.errors import RunFailedError
    from prefect_grok_video.flows import make_videos, run_listener
    from prefect_grok_video.report import RunReport

    if credentials_name is not None:
        try:
            credentials = await GrokVideoCredentials.aload(credentials_name)
        except Exception as exc:  # not found, wrong type, no API: all say the same to the user
            raise _UsageError(
                f"cannot load the GrokVideoCredentials block {credentials_name!r}: {exc}"
            ) from None
    run_listener.set(listener)
    state = await make_videos(manifest, credentials=credentials, **options, return_state=True)
    # A run where a row did not succeed ends Failed with a RunFailedError carrying the report;
    # aresult(raise_on_failure=False) returns that error (or the exception of a run that
    # crashed) instead of raising it.
    result = await state.aresult(raise_on_failure=False)
    if isinstance(result, RunFailedError):
        result = result.result
    if not isinstance(result, RunReport):
        raise _RunFailed(f"the run ended {state.type.value} without a report: {result}")
    return result


class _RunFailed(Exception):
    """The flow ended without a report (it crashed, or was cancelled)."""


def _check_options(options: dict[str, Any]) -> None:
    """Check option values against the flow's own parameter types and bounds."""
    # Before Prefect starts: Prefect would refuse them only after starting its server, with
    # an ERROR log of every parameter.
    import typing

    from pydantic import TypeAdapter, ValidationError

    from prefect_grok_video.flows import make_videos

    hints = typing.get_type_hints(make_videos.fn, include_extras=True)
    problems = []
    for name, value in options.items():
        try:
            TypeAdapter(hints[name]).validate_python(value)
        except ValidationError as exc:
            problems.append(f"--{name.replace('_', '-')}: {exc.errors()[0]['msg']}")
    if problems:
        raise _UsageError("; ".join(problems))


def _write_report(report: Any, destination: str) -> None:
    from prefect_grok_video.outputs import write_whole

    write_whole(destination, report.json_bytes(), b"\n")


def _execute(
    command: str, manifest: str, *, credentials: Any, credentials_name: str | None,
    options: dict[str, Any], no_progress: bool, report_path: str | None,
) -> int:  # fmt: skip
    """Run the flow with progress, print the account of it, and return the exit code."""
    try:
        with progress_listener(progress_mode(no_progress)) as listener:
            report = asyncio.run(
                _run_flow(manifest, credentials=credentials, credentials_name=credentials_name,
                          listener=listener, options=options)
            )  # fmt: skip
    except KeyboardInterrupt:
        print(
            f"grok-video {command}: interrupted. Run the same command again to resume: rows "
            "already submitted are not paid for again.",
            file=sys.stderr,
        )
        return 130
    except _RunFailed as exc:
        print(f"grok-video {command}: {exc}", file=sys.stderr)
        return 1
    print()
    for line in format_report(report):
        print(line)
    code = 0 if report.all_succeeded else 1
    if report_path is not None:
        try:
            _write_report(report, report_path)
        except (OSError, ValueError) as exc:
            print(f"grok-video {command}: cannot write the report to {report_path}: {exc}",
                  file=sys.stderr)  # fmt: skip
            code = code or 1
        else:
            print(f"Report: {report_path}")
    for line in ui_hint(report.flow_run_id):
        print(line)
    return code


# -- grok-video run -------------------------------------------------------------------------


def _add_run(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="make every video of a manifest (generate, edit, extend) and download them",
        description="Make the video of every row of MANIFEST (CSV, JSON, JSONL or YAML; a path "
        "or a storage URL) with the Grok video API in a Prefect flow, and download the results. "
        "Rows already submitted by an earlier run are not paid for again. Credentials come from "
        "GROK_VIDEO_API_KEY (and GROK_VIDEO_BASE_URL, ...) unless --credentials names a saved "
        "block. Exit code: 0 every row succeeded, 1 a row did not, 2 a usage or manifest error.",
        epilog="Prefect's console shows warnings and errors only; set "
        "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL=INFO to see every log line (the Prefect UI "
        "always has them all).",
    )
    parser.add_argument("manifest", metavar="MANIFEST", help="the manifest file or URL")
    parser.add_argument(
        "--output", metavar="DEST",
        help="folder or storage URL for the videos (default: ./grok-video-output)",
    )  # fmt: skip
    parser.add_argument(
        "--credentials", metavar="BLOCK_NAME",
        help="name of a saved GrokVideoCredentials block (default: GROK_VIDEO_* variables)",
    )  # fmt: skip
    parser.add_argument(
        "--max-concurrency", type=_positive_int, default=DEFAULT_MAX_CONCURRENCY, metavar="N",
        help=f"most rows in flight at once (default: {DEFAULT_MAX_CONCURRENCY}; keep it above "
        "the submit rate x the jobs' latency in seconds)",
    )  # fmt: skip
    parser.add_argument(
        "--submit-rate", type=_positive_float, default=1.0, metavar="R",
        help="most submissions per second (default: 1, the service's limit)",
    )  # fmt: skip
    parser.add_argument(
        "--wait-timeout", type=_positive_float, default=1800.0, metavar="S",
        help="seconds to wait for one job before giving up (default: 1800)",
    )  # fmt: skip
    parser.add_argument(
        "--max-resubmits", type=_non_negative_int, default=2, metavar="N",
        help="new submissions after service_unavailable/internal_error (default: 2)",
    )  # fmt: skip
    parser.add_argument(
        "--refresh", action="store_true",
        help="submit every row again, even one an earlier run already paid for",
    )  # fmt: skip
    parser.add_argument(
        "--max-cost", type=_positive_float, metavar="USD",
        help="stop submitting once what the service reported for finished jobs plus estimates "
        "of jobs in flight would pass USD; rows not submitted end skipped (default: no cap)",
    )  # fmt: skip
    parser.add_argument("--report", metavar="FILE", help="write the run report as JSON to FILE")
    parser.add_argument("--no-progress", action="store_true", help="print no progress")
    parser.set_defaults(handler=_cmd_run)


_NO_KEY = (
    "no API key: set GROK_VIDEO_API_KEY (and GROK_VIDEO_BASE_URL for another endpoint than "
    "the default), or pass --credentials BLOCK_NAME to use a saved GrokVideoCredentials block"
)


def _environment_settings() -> Any:
    """The `GROK_VIDEO_*` settings of this command, read once; `_UsageError` if one is bad."""
    from prefect_grok_video.errors import ConfigurationError
    from prefect_grok_video.settings import GrokVideoSettings

    try:
        return GrokVideoSettings.from_env()
    except ConfigurationError as exc:
        raise _UsageError(str(exc)) from None


def _environment_credentials(settings: Any) -> Any:
    """A `GrokVideoCredentials` from the settings; `_UsageError` without a key."""
    if settings.api_key is None or not settings.api_key.get_secret_value().strip():
        raise _UsageError(_NO_KEY)
    prepare_prefect()
    from prefect_grok_video.blocks import GrokVideoCredentials

    return GrokVideoCredentials.from_settings(settings)


def _cmd_run(args: argparse.Namespace) -> int:
    try:
        _check_readable(args.manifest)
        if args.report is not None and Path(args.report).is_dir():
            raise _UsageError(f"--report {args.report} is a folder: give a file name")
        settings = _environment_settings()
        credentials = None if args.credentials else _environment_credentials(settings)
        prepare_prefect()
        from prefect_grok_video.flows.engine.options import DEFAULT_OUTPUT

        options = {
            "output": args.output or DEFAULT_OUTPUT,
            "max_concurrency": args.max_concurrency,
            "submit_rate": args.submit_rate,
            "wait_timeout": args.wait_timeout,
            "max_resubmits": args.max_resubmits,
            "refresh": args.refresh,
            "fail_on_item_error": True,
            "max_cost": args.max_cost,
            "prices": settings.prices,
        }
        _check_options(options)
        return _execute(
            "run", args.manifest, credentials=credentials, credentials_name=args.credentials,
            options=options, no_progress=args.no_progress, report_path=args.report,
        )  # fmt: skip
    except _UsageError as exc:
        print(f"grok-video run: {exc}", file=sys.stderr)
        return 2


# -- grok-video validate --------------------------------------------------------------------


def _add_validate(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check every row of a manifest without submitting anything",
        description="Read MANIFEST and check every row as `run` would before paying for it "
        "(fields, ids, and each local or storage clip: MP4, H.264/H.265/AV1, 2-15 s). Nothing "
        "is submitted and Prefect is not started. Exit code: 0 every row is valid, 1 a row is "
        "not, 2 the manifest cannot be read.",
    )
    parser.add_argument("manifest", metavar="MANIFEST", help="the manifest file or URL")
    parser.set_defaults(handler=_cmd_validate)


def _cmd_validate(args: argparse.Namespace) -> int:
    from prefect_grok_video.errors import ConfigurationError, ManifestError
    from prefect_grok_video.manifest import load_manifest
    from prefect_grok_video.pricing import PriceList
    from prefect_grok_video.settings import GrokVideoSettings

    try:
        settings = GrokVideoSettings.from_env()
    except ConfigurationError:  # a bad GROK_VIDEO_* variable is run's business, not validate's
        settings = GrokVideoSettings.model_construct()
    try:
        manifest = load_manifest(
            args.manifest, default_model=settings.model, max_upload_bytes=settings.max_upload_bytes
        )
    except ManifestError as exc:
        print(f"grok-video validate: {exc}", file=sys.stderr)
        return 2
    for row in manifest.invalid:
        print(row.message)
    blocked = manifest.blocked_by()
    for valid in manifest.valid:
        if valid.row in blocked:
            above = blocked[valid.row]
            print(f"row {valid.row} (id {valid.id!r}): video: waits for row {above.row} "
                  f"(id {above.id!r}), which is invalid: it will not run")  # fmt: skip
    total, invalid = len(manifest.rows), len(manifest.invalid)
    waiting = f", {len(blocked)} waiting on an invalid row" if blocked else ""
    print(f"{manifest.source}: {total} row{'s' * (total != 1)}, {total - invalid} valid, "
          f"{invalid} invalid{waiting}")  # fmt: skip
    runnable = [row for row in manifest.valid if row.row not in blocked]
    estimate = PriceList.with_overrides(settings.prices).rows(runnable)
    print(f"Estimated cost: {estimate.describe()} (estimates from public prices, not a quote: "
          "set GROK_VIDEO_PRICES to yours)")  # fmt: skip
    return 1 if invalid or blocked else 0


# -- grok-video demo ------------------------------------------------------------------------

DEMO_OUTPUT = "./grok-video-demo"


def _add_demo(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the bundled example manifest against a local emulator",
        description="Start the local API emulator (3 s jobs, the real 1 submission/s limit), "
        "run the bundled example manifest through the Prefect flow (5 rows: an extension, an "
        "edit, a generation from a still, a generation from a prompt and an extension of that "
        "generation's result), and download the videos. No API key and no network needed.",
    )
    parser.add_argument(
        "--output", metavar="DIR", default=DEMO_OUTPUT,
        help=f"folder for the inputs, the videos and report.json (default: {DEMO_OUTPUT})",
    )  # fmt: skip
    parser.add_argument(
        "--keep-emulator", action="store_true",
        help="keep the emulator serving after the demo, until Ctrl-C",
    )  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="print no progress")
    parser.set_defaults(handler=_cmd_demo)


def copy_examples(destination: str | os.PathLike[str]) -> Path:
    """Copy the bundled example manifest, clips and still into `destination`; return the
    manifest."""
    from importlib.resources import files

    source = files("prefect_grok_video.examples")
    folder = Path(destination)
    for kind, suffix in (("clips", ".mp4"), ("stills", ".png")):
        (folder / kind).mkdir(parents=True, exist_ok=True)
        for item in (source / kind).iterdir():
            if item.name.endswith(suffix):
                (folder / kind / item.name).write_bytes(item.read_bytes())
    manifest = folder / "manifest.csv"
    manifest.write_bytes((source / "manifest.csv").read_bytes())
    return manifest


def _cmd_demo(args: argparse.Namespace) -> int:
    output = Path(args.output).expanduser().resolve()
    try:
        manifest = copy_examples(output / "input")
    except OSError as exc:
        print(f"grok-video demo: cannot prepare {output}: {exc}", file=sys.stderr)
        return 2
    prepare_prefect()
    from prefect_grok_video.blocks import GrokVideoCredentials
    from prefect_grok_video.emulator import EmulatorConfig, EmulatorServer

    server = EmulatorServer(EmulatorConfig()).start()
    keep = False
    try:
        print(f"Demo: the Grok video API emulator is serving on {server.base_url}")
        print(f"Demo: running the rows of {manifest} into {output}", flush=True)
        # Unsaved credentials passed to the flow: nothing lands in the environment.
        credentials = GrokVideoCredentials(
            api_key=SecretStr(server.api_key), base_url=server.base_url
        )
        options = {
            "output": str(output),
            "submit_rate": 1.0,
            "wait_timeout": 300.0,
            # The emulator forgets its jobs when it stops: request_ids cached by an earlier
            # demo point at jobs that no longer exist, so submit every row anew.
            "refresh": True,
            "fail_on_item_error": True,
        }
        code = _execute(
            "demo", str(manifest), credentials=credentials, credentials_name=None,
            options=options, no_progress=args.no_progress,
            report_path=str(output / "report.json"),
        )  # fmt: skip
        keep = args.keep_emulator and code != 130
    finally:
        if not keep:
            server.stop()
    if keep:
        print()
        print(f"The emulator keeps serving on {server.base_url}.")
        _serve_until_stopped(server)
    return code


# -- entry point ----------------------------------------------------------------------------

_SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None], ...] = (
    _add_run,
    _add_validate,
    _add_demo,
    _add_emulator,
)


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


#: The exit code `entry()` ends with, once `main()` has returned one.
_exit_code: int | None = None


def entry() -> None:
    """The `grok-video` command: `main()` on the process's arguments, then a quick exit.

    Once every exit handler has run (Prefect's log and event workers drained, a temporary
    server stopped), Python would still free, one by one, the many objects Prefect and pydantic
    built: 0.3-0.5 s a user waits for and nothing needs (benchmarks/NOTES.md). The last exit
    handler ends the process instead. A command that raised exits the usual way.
    """
    global _exit_code
    atexit.register(_end_process)  # registered before the command's handlers: runs after them
    _exit_code = main()
    sys.exit(_exit_code)


def _end_process() -> None:
    if _exit_code is None:
        return
    logging.shutdown()  # its own exit handler was registered earlier, so it would run later
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to write
            stream.flush()
    os._exit(_exit_code)


if __name__ == "__main__":
    entry()
