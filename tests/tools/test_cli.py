"""The shared CLI helper: dry-run by default, the live-key guard, one-line errors and exit codes."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from tools._cli import (
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_REFUSED,
    EXIT_USAGE,
    ProblemsFound,
    Refused,
    UsageError,
    dry_run_prefix,
    make_parser,
    require_live_ack,
    run_tool,
    write_json,
)


def test_parser_defaults_are_safe() -> None:
    args = make_parser("t", "d", modifies_state=True).parse_args([])
    assert args.execute is False and args.json is False and args.db == Path("position_registry.db")
    assert dry_run_prefix(args.execute) == "[dry-run] would "
    args = make_parser("t", "d", modifies_state=True).parse_args(["--execute", "--db", "x.db", "--json"])
    assert args.execute is True and args.json is True and args.db == Path("x.db")
    assert dry_run_prefix(args.execute) == ""


def test_read_only_tools_have_no_execute_flag() -> None:
    parser = make_parser("t", "d")
    assert not hasattr(parser.parse_args([]), "execute")
    with pytest.raises(SystemExit):
        parser.parse_args(["--execute"])


@pytest.mark.parametrize(
    ("live", "execute", "env", "refused"),
    [
        (True, True, {}, True),
        (True, True, {"I_UNDERSTAND_LIVE": "0"}, True),
        (True, True, {"I_UNDERSTAND_LIVE": "yes"}, True),
        (True, True, {"I_UNDERSTAND_LIVE": "1"}, False),
        (True, False, {}, False),
        (False, True, {}, False),
        (False, False, {}, False),
    ],
)
def test_live_guard(live: bool, execute: bool, env: dict[str, str], refused: bool) -> None:
    if refused:
        with pytest.raises(Refused, match="I_UNDERSTAND_LIVE=1"):
            require_live_ack(live, execute, env)
    else:
        require_live_ack(live, execute, env)


def test_live_guard_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("I_UNDERSTAND_LIVE", raising=False)
    with pytest.raises(Refused):
        require_live_ack(True, True)
    monkeypatch.setenv("I_UNDERSTAND_LIVE", "1")
    require_live_ack(True, True)


def _tool(behaviour: str) -> tuple[int, str]:
    """A tiny tool that uses the helper end to end; returns (exit code, stderr)."""

    def main(argv: Sequence[str]) -> int:
        args = make_parser("demo", "demo", modifies_state=True).parse_args(argv)
        require_live_ack(live=True, execute=args.execute, env={})
        if behaviour == "problems":
            raise ProblemsFound("2 positions have no stop-loss: run recover_sl_order_ids")
        if behaviour == "usage":
            raise UsageError("--symbol is required")
        if behaviour == "crash":
            raise KeyError("api_secret=s3cr3t-VALUE leaked\nsecond line")
        return EXIT_OK

    err = io.StringIO()
    argv = ["--execute"] if behaviour == "execute" else []
    code = run_tool(main, argv, secrets=["s3cr3t-VALUE"], stderr=err)
    return code, err.getvalue()


def test_run_tool_exit_codes_and_one_line_messages() -> None:
    assert _tool("ok") == (EXIT_OK, "")
    code, err = _tool("problems")
    assert code == EXIT_PROBLEMS and err == "error: 2 positions have no stop-loss: run recover_sl_order_ids\n"
    code, err = _tool("usage")
    assert code == EXIT_USAGE and err.startswith("error: --symbol")
    code, err = _tool("execute")
    assert code == EXIT_REFUSED and "refusing" in err and err.count("\n") == 1


def test_unexpected_errors_are_one_line_and_scrubbed() -> None:
    code, err = _tool("crash")
    assert code == EXIT_PROBLEMS
    assert err.count("\n") == 1 and "KeyError" in err and "Traceback" not in err
    assert "s3cr3t-VALUE" not in err and "***" in err


def test_bad_arguments_give_usage_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    def main(argv: Sequence[str]) -> int:
        make_parser("demo", "demo").parse_args(argv)
        return EXIT_OK

    assert run_tool(main, ["--bogus"]) == EXIT_USAGE
    assert "Traceback" not in capsys.readouterr().err


def test_write_json_is_one_document() -> None:
    out = io.StringIO()
    write_json({"ok": True, "file": Path("a.db")}, out)
    assert json.loads(out.getvalue()) == {"ok": True, "file": "a.db"}
