"""The daemon's side of the control socket (operations.control): a thread serving `<registry>.control`, mode 0600,
running each operation under the job lock so it never interleaves with a job."""

from __future__ import annotations

import contextlib
import json
import logging
import socketserver
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from operations import sync
from operations.context import DaemonContext
from operations.control import MAX_MESSAGE, OPS, socket_path

log = logging.getLogger(__name__)

RunUnderLock = Callable[[str, Callable[[], object]], bool]


def handle(ctx: DaemonContext, run: RunUnderLock, op: str, args: dict[str, object]) -> tuple[int, list[str]]:
    if op == "ping":
        return 0, ["daemon running"]
    result: list[sync.Outcome] = []
    if op == "sync_positions":
        wait = float(str(args.get("confirm_wait_s", 2.0)))

        def work() -> None:
            rec = sync.confirmed_diff(ctx, wait)
            if not rec.report.complete:
                result.append(sync.Outcome(failed=[f"venue snapshot incomplete ({rec.report.reason}); retry later"]))
                return
            result.append(sync.sync(ctx, rec.actions, cause="sync_positions via the daemon"))

    elif op == "recover_sl_order_ids":

        def work() -> None:
            result.append(sync.relink_stops(ctx))

    else:
        return 2, [f"unknown operation {op!r}; known: {', '.join(OPS)}"]
    if not run(f"control:{op}", work) or not result:
        return 1, [f"{op} failed inside the daemon: see its JOB_FAILED line"]
    outcome = result[0]
    return outcome.code, outcome.lines() or ["nothing to do"]


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        raw = self.rfile.readline(MAX_MESSAGE)
        try:
            doc = json.loads(raw.decode())
            code, lines = handle(self.server.ctx, self.server.run, str(doc["op"]), dict(doc.get("args") or {}))
        except (ValueError, KeyError, TypeError) as exc:
            code, lines = 2, [f"malformed control request: {exc}"]
        self.wfile.write((json.dumps({"code": code, "lines": lines}) + "\n").encode())


class _Server(socketserver.UnixStreamServer):
    def __init__(self, path: str, ctx: DaemonContext, run: RunUnderLock) -> None:
        self.ctx = ctx
        self.run = run
        super().__init__(path, _Handler)


@contextmanager
def serving(db_path: Path | str, ctx: DaemonContext, run: RunUnderLock) -> Iterator[Path | None]:
    """Serve the control socket for the daemon's lifetime. An in-memory registry has no socket."""
    database = str(db_path)
    if not database or database.startswith(":memory:") or database.startswith("file:"):
        yield None
        return
    path = socket_path(database)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a socket left by a daemon that died; the writer lock proves no other daemon runs
    try:
        server = _Server(str(path), ctx, run)
        # Connecting needs write permission on the socket: 0600 leaves it to the registry's owner alone.
        path.chmod(0o600)
    except OSError as exc:
        log.warning("control socket %s not served (%s): --execute tools must wait for the daemon to stop", path, exc)
        yield None
        return
    thread = threading.Thread(target=server.serve_forever, name="control-socket", daemon=True)
    thread.start()
    try:
        yield path
    finally:
        server.shutdown()
        server.server_close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
