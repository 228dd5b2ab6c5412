"""The small helper every runbook tool shares: flags, the live-key guard, output, and exit codes.

Tools are dry-run by default (`--execute` to act), print either human text or exactly one JSON document, and
never show an operator a traceback: `run_tool` turns every failure into one line on stderr and an exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from lifecycle.db import DEFAULT_DB_PATH

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3

LIVE_ACK_ENV = "I_UNDERSTAND_LIVE"


class ToolError(Exception):
    """A failure the operator can act on; its message is the whole story (one line, no secrets)."""

    exit_code = EXIT_PROBLEMS


class ProblemsFound(ToolError):
    exit_code = EXIT_PROBLEMS


class UsageError(ToolError):
    exit_code = EXIT_USAGE


class Refused(ToolError):
    exit_code = EXIT_REFUSED


def make_parser(prog: str, description: str, *, modifies_state: bool = False) -> argparse.ArgumentParser:
    """The common flags: `--db`, `--json`, and `--execute` for tools that change state (dry-run without it)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        "--db",
        type=Path,
        default=DEFAULT_DB_PATH,
        metavar="PATH",
        help=f"registry database (default: {DEFAULT_DB_PATH})",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    if modifies_state:
        parser.add_argument(
            "--execute", action="store_true", help="act for real (default: dry-run, print what would be done)"
        )
    return parser


def require_live_ack(live: bool, execute: bool, env: Mapping[str, str] | None = None) -> None:
    """Refuse to act on a live account unless the operator said so explicitly.

    `live` is decided by the calling tool (from its settings); dry-runs and paper accounts always pass.
    """
    if not (live and execute):
        return
    environ = os.environ if env is None else env
    if environ.get(LIVE_ACK_ENV) != "1":
        raise Refused(
            f"live API keys are configured and --execute was given: refusing. Set {LIVE_ACK_ENV}=1 to act on the"
            " live account, or drop --execute for a dry-run"
        )


def dry_run_prefix(execute: bool) -> str:
    return "" if execute else "[dry-run] would "


def write_json(document: Mapping[str, Any], stream: IO[str] | None = None) -> None:
    """Exactly one JSON document (Decimals and paths as strings)."""
    out = stream or sys.stdout
    out.write(json.dumps(document, default=str, indent=2) + "\n")


def write_text(lines: Iterable[str], stream: IO[str] | None = None) -> None:
    out = stream or sys.stdout
    for line in lines:
        out.write(line + "\n")


def redact(message: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            message = message.replace(secret, "***")
    return message


def one_line(message: str) -> str:
    return " ".join(message.split())


def run_tool(
    main: Callable[[Sequence[str]], int],
    argv: Sequence[str] | None = None,
    *,
    secrets: Iterable[str] = (),
    stderr: IO[str] | None = None,
) -> int:
    """Run `main(argv)` and return its exit code; failures become one line on stderr, never a traceback.

    `secrets` are values (API keys, tokens) scrubbed from any message that reaches the operator.
    """
    err = stderr or sys.stderr
    args = list(sys.argv[1:] if argv is None else argv)
    secret_values = [s for s in secrets if s]
    try:
        return main(args)
    except ToolError as exc:
        err.write(f"error: {one_line(redact(str(exc), secret_values))}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        err.write("error: interrupted\n")
        return EXIT_REFUSED
    except SystemExit as exc:  # argparse: it has already printed the usage line
        code = exc.code
        return code if isinstance(code, int) else EXIT_USAGE
    except Exception as exc:
        # An unexpected failure still gets one line; the type tells a developer where to look.
        err.write(f"error: unexpected {type(exc).__name__}: {one_line(redact(str(exc), secret_values))}\n")
        return EXIT_PROBLEMS
