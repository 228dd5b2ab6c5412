"""The small helper every runbook tool shares: flags, the live-key guard, output, and exit codes.

Tools are dry-run by default (`--execute` to act), print either human text or exactly one JSON document, and
never show an operator a traceback: `run_tool` turns every failure into one line on stderr and an exit code.

Secrets: `run_tool` routes everything the tool prints (its report, its stderr lines, library warnings, the final
`error:` line) through one redactor. Values reach it through `register_secrets`, which the settings loader of
the tools (`tools._venue.load`) calls as soon as settings are known, so a tool cannot forget it; the raw value
and its common encodings (URL-quoted, base64, JSON/repr-escaped) are replaced by `***`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, NoReturn, TypeVar

from lifecycle.redaction import Redactor
from store.db import DEFAULT_DB_PATH
from store.writer_lock import WriterLock, WriterLockError, acquire

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3

LIVE_ACK_ENV = "I_UNDERSTAND_LIVE"

N = TypeVar("N", int, float, Decimal)


class ToolError(Exception):
    """A failure the operator can act on; its message is the whole story (one line, no secrets)."""

    exit_code = EXIT_PROBLEMS


class ProblemsFound(ToolError):
    exit_code = EXIT_PROBLEMS


class UsageError(ToolError):
    exit_code = EXIT_USAGE


class Refused(ToolError):
    exit_code = EXIT_REFUSED


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one `error:` line like every other failure (the usage is one --help away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {one_line(message)} (see {self.prog} --help)\n")


def _number(text: str, parse: Callable[[str], N], lo: N, hi: N, *, lo_open: bool) -> N:
    below = "above" if lo_open else "at least"
    expected = f"expected a number {below} {lo} and at most {hi}"
    try:
        value = parse(text.strip())
    except (ValueError, ArithmeticError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; {expected}") from None
    if value != value or not (lo < value if lo_open else lo <= value) or not value <= hi:  # NaN fails every test
        raise argparse.ArgumentTypeError(f"{text!r} is out of range; {expected}")
    return value


def bounded_int(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse `type`: an integer within [lo, hi], or a usage error saying which range."""
    return lambda text: _number(text, int, lo, hi, lo_open=False)


def bounded_float(lo: float, hi: float, *, lo_open: bool = False) -> Callable[[str], float]:
    """An argparse `type`: a finite float within [lo, hi] (or (lo, hi] with `lo_open`); never NaN or inf."""
    return lambda text: _number(text, float, lo, hi, lo_open=lo_open)


def bounded_decimal(lo: Decimal, hi: Decimal, *, lo_open: bool = False) -> Callable[[str], Decimal]:
    """An argparse `type`: a finite Decimal within [lo, hi] (or (lo, hi] with `lo_open`)."""
    return lambda text: _number(text, Decimal, lo, hi, lo_open=lo_open)


def make_parser(prog: str, description: str, *, modifies_state: bool = False) -> argparse.ArgumentParser:
    """The common flags: `--db`, `--json`, and `--execute` for tools that change state (dry-run without it)."""
    parser = _OneLineParser(prog=prog, description=description)
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


# One per process: a tool run is one process, and whatever registered a secret must cover all later output.
_TOOL_REDACTOR = Redactor()


def register_secrets(values: Iterable[str]) -> None:
    """Scrub these values (and their encodings) from everything the running tool prints from now on."""
    for value in values:
        if value:
            _TOOL_REDACTOR.register(value)


def scrub(text: str) -> str:
    return _TOOL_REDACTOR(text)


class _ScrubbingStream(io.TextIOBase):
    """A stdout/stderr stand-in that redacts whole lines, so a secret split across two writes is still caught."""

    def __init__(self, target: IO[str]) -> None:
        super().__init__()
        self._target = target
        self._pending = ""

    @property  # some libraries read sys.stdout.encoding; TextIOBase's default is None
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._target, "encoding", None) or "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._target.isatty()

    def write(self, text: str) -> int:
        self._pending += text
        complete, newline, self._pending = self._pending.rpartition("\n")
        if newline:
            self._target.write(scrub(complete + newline))
        return len(text)

    def flush(self) -> None:
        # A partial line stays held back: flushing it now could cut a secret in two.
        self._target.flush()

    def drain(self) -> None:
        if self._pending:
            self._target.write(scrub(self._pending))
            self._pending = ""
        self._target.flush()


@contextlib.contextmanager
def _scrubbed_stdio() -> Iterator[None]:
    out, err = _ScrubbingStream(sys.stdout), _ScrubbingStream(sys.stderr)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield
    finally:
        out.drain()
        err.drain()


def one_line(message: str) -> str:
    return " ".join(message.split())


_WRITER_LOCKS: list[WriterLock] = []


def hold_writer_lock(registry: Path, role: str) -> None:
    """Make this run the registry's one writer until it ends (`store.writer_lock`): a tool with --execute
    refuses while the daemon, or another tool, writes the same file."""
    try:
        _WRITER_LOCKS.append(acquire(registry, role))
    except WriterLockError as exc:
        raise ProblemsFound(f"{exc}; nothing was changed") from None


def _release_writer_locks() -> None:
    while _WRITER_LOCKS:
        _WRITER_LOCKS.pop().release()


def run_tool(
    main: Callable[[Sequence[str]], int],
    argv: Sequence[str] | None = None,
    *,
    secrets: Iterable[str] = (),
    stderr: IO[str] | None = None,
) -> int:
    """Run `main(argv)` and return its exit code; failures become one line on stderr, never a traceback.

    Everything printed while `main` runs, and the failure line, is scrubbed of the registered secrets: those
    given here (`secrets`) and those registered later, once the tool has loaded its settings.
    """
    err = stderr or sys.stderr
    args = list(sys.argv[1:] if argv is None else argv)
    _TOOL_REDACTOR.clear()  # a run starts from its own secrets (matters when tests run several tools in-process)
    register_secrets(secrets)
    try:
        with _scrubbed_stdio():
            return main(args)
    except ToolError as exc:
        err.write(f"error: {one_line(scrub(str(exc)))}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        err.write("error: interrupted\n")
        return EXIT_REFUSED
    except SystemExit as exc:  # argparse: it has already printed the usage line
        code = exc.code
        return code if isinstance(code, int) else EXIT_USAGE
    except Exception as exc:
        # An unexpected failure still gets one line; the type tells a developer where to look.
        err.write(f"error: unexpected {type(exc).__name__}: {one_line(scrub(str(exc)))}\n")
        return EXIT_PROBLEMS
    finally:
        _release_writer_locks()
