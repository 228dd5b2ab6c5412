"""The simulator over HTTP under Kraken Futures' own paths, so the real ccxt client can be pointed at it.

Standard library only: a `ThreadingHTTPServer` in a daemon thread. Private calls are authenticated exactly as
Kraken does (APIKey + Authent over the raw query, or the raw body for batchorder). Injected faults
(`sim.faults`) are applied here, around the endpoint logic in `routes.py`.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from simulator import payloads as P
from simulator.auth import check_secret, verify
from simulator.engine import Simulator, SimulatorError
from simulator.faults import TRANSFORMS, Fault, FaultKind
from simulator.models import RequestRecord
from simulator.ratelimit import Bucket, cost
from simulator.routes import ORDER_ENDPOINTS, Request, Response, fail, reject_order, resolve
from simulator.ws import FeedHub, is_upgrade, serve_ws

REQUEST_KINDS = frozenset(FaultKind) - {FaultKind.CANCEL_STOP}
HISTORY_UNAUTHORIZED = {"reason": "You are not authorized to access this endpoint.", "status": "unauthorized"}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: SimulatorServer


class SimulatorServer:
    """`with SimulatorServer(sim, api_key="k", api_secret=b64) as srv:` serves on `srv.base_url`.

    With `api_secret=None` every private call is accepted (handy for manual exploration with curl)."""

    def __init__(
        self,
        sim: Simulator,
        *,
        api_key: str | None = None,
        api_secret: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if api_secret is not None:
            check_secret(api_secret)
        self.sim = sim
        self.api_key = api_key
        self._secret = api_secret
        self._host = host
        self._port = port
        self._stop = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.ws = FeedHub(sim, api_key=api_key, api_secret=api_secret)  # Kraken's websocket feeds, /ws/v1

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> SimulatorServer:
        httpd = _HTTPServer((self._host, self._port), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._stop.clear()
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="kraken-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # wakes any handler sleeping in an injected timeout
        self.ws.close()  # ends every websocket connection (their handler threads return)
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("SimulatorServer is not running; call start() or use it as a context manager")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def ccxt_urls(self) -> dict[str, str]:
        """The entries of ccxt's `urls['api']` to override (update, do not replace, the dict)."""
        base = self.base_url
        return {
            "public": f"{base}/derivatives/api/",
            "private": f"{base}/derivatives/api/",
            "charts": f"{base}/api/charts/",
            "history": f"{base}/api/history/",
        }

    # ------------------------------------------------------------------ request handling
    def authorized(self, path: str, query: str, body: str, headers: Any) -> bool:
        if self._secret is None:
            return True
        if headers.get("APIKey") != self.api_key:
            return False
        post_data = body if path.endswith("/batchorder") or (body and not query) else query
        return verify(post_data, path, self._secret, headers.get("Authent", ""), headers.get("Nonce", ""))

    def sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def handle(self, method: str, raw_path: str, body: str, headers: Any) -> tuple[Response, RequestRecord]:
        split = urlsplit(raw_path)
        path, query = split.path, split.query
        sim = self.sim
        record = RequestRecord(method, path, query, sim.now(), body=body)
        with sim.lock:
            sim.request_log.append(record)
            limit = sim.config.request_log_limit
            if limit is not None and len(sim.request_log) > 2 * limit:
                del sim.request_log[:-limit]  # trimmed in batches so appends stay O(1) amortised
        resolved = resolve(method, path)
        if resolved is None:
            return Response(404, "Not Found", "text/plain"), record
        if resolved == "method":
            return Response(405, "Method Not Allowed", "text/plain"), record
        assert not isinstance(resolved, str)
        route, match = resolved
        fired = sim.faults.draw(method, path, sim.now(), REQUEST_KINDS)
        endpoint = path.rsplit("/", 1)[-1]
        if endpoint not in ORDER_ENDPOINTS or endpoint == "batchorder":
            fired = [f for f in fired if f.kind is not FaultKind.REJECT]
        answer = next((f for f in fired if f.kind not in TRANSFORMS), None)
        if answer is not None:
            record.fault = answer.kind.value
        if answer is not None and not answer.executes:
            return self._fault_response(answer, method, path, query), record
        if route.private and not self.authorized(path, query, body, headers):
            if route.history:
                return Response(401, HISTORY_UNAUTHORIZED), record
            return fail(sim, "authenticationError", 401), record
        if route.private:
            refused = self._charge(method, path, query, body, record)
            if refused is not None:
                return refused, record
        req = Request(method, path, query, body)
        req.match = match
        for fault in fired:
            if fault.kind is FaultKind.STALE_SNAPSHOT:
                req.stale_lag = fault.lag_seconds
            elif fault.kind is FaultKind.LOWERCASE_SYMBOL:
                req.lowercase = True
            elif fault.kind is FaultKind.FILL_ON_CANCEL and endpoint == "cancelorder":
                target = req.get("order_id")
                if target is not None:
                    sim.fill_now(target)
        with sim.lock:
            try:
                response = route.handler(sim, req)
            except SimulatorError as exc:
                response = fail(sim, exc.code)
        response = self._transform(response, fired)
        if answer is not None:
            if answer.kind in (FaultKind.TIMEOUT, FaultKind.TIMEOUT_AFTER_ACCEPT):
                self.sleep(answer.delay)  # the client has given up by now; its order stands
            else:
                response = self._fault_response(answer, method, path, query)
        return response, record

    def _charge(self, method: str, path: str, query: str, body: str, record: RequestRecord) -> Response | None:
        """Kraken's rate budgets: the request's cost is taken from its bucket, or it is refused as Kraken does."""
        sim = self.sim
        found = cost(method, path, query, body)
        if found is not None:
            record.extra["bucket"], record.extra["cost"] = found[0].value, str(found[1])
        with sim.lock:
            over = sim.budget.charge(method, path, query, body, sim.now())
        if over is None:
            return None
        bucket, _, reset = over
        record.extra["rate_limited"] = bucket.value
        if bucket is Bucket.HISTORY:
            return Response(429, "Rate limited.", "text/plain", headers={"rate-limit-reset": str(reset)})
        return fail(sim, "apiLimitExceeded")

    def _fault_response(self, fault: Fault, method: str, path: str, query: str) -> Response:
        sim = self.sim
        kind = fault.kind
        if kind is FaultKind.HTTP_500:
            return Response(500, {"error": "Server Error"})
        if kind is FaultKind.HTTP_502:
            return Response(502, "<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
        if kind is FaultKind.HTTP_503:
            return Response(503, "Service Unavailable", "text/plain")
        if kind is FaultKind.RATE_LIMIT_429:
            return Response(429, P.error(sim, "apiLimitExceeded"))
        if kind is FaultKind.API_LIMIT_EXCEEDED:
            return fail(sim, "apiLimitExceeded")
        if kind is FaultKind.GARBAGE_BODY:
            return Response(200, "<html>\x00garbage{", "text/plain")
        if kind is FaultKind.EMPTY_BODY:
            return Response(200, "", "application/json")
        if kind in (FaultKind.TIMEOUT, FaultKind.TIMEOUT_AFTER_ACCEPT):
            self.sleep(fault.delay)
            return Response(504, "Gateway Timeout", "text/plain")
        if kind is FaultKind.REJECT:
            req = Request(method, path, query)
            with sim.lock:
                return reject_order(sim, req, fault.status)
        raise AssertionError(f"unhandled fault kind {kind}")

    def _transform(self, response: Response, fired: list[Fault]) -> Response:
        if not isinstance(response.body, dict):
            return response
        if any(f.kind is FaultKind.NO_SERVER_TIME for f in fired):
            body = {k: v for k, v in response.body.items() if k != "serverTime"}
            response = Response(response.status, body, response.content_type, response.headers)
        if not isinstance(response.body, dict) or "fills" not in response.body:
            return response
        items = list(response.body["fills"])
        for fault in fired:
            if fault.kind is FaultKind.DUPLICATE_FILLS:
                items = [x for item in items for x in (item, item)]
            elif fault.kind is FaultKind.REORDER_FILLS:
                shuffled: list[object] = list(items)
                self.sim.faults.shuffle(shuffled)
                items = shuffled
        return Response(response.status, {**response.body, "fills": items}, response.content_type, response.headers)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one segment: split writes meet delayed ACKs and cost ~40 ms per request.
    wbufsize = -1
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        # The request log lives in `sim.request_log`; stderr stays quiet (and never shows Authent headers).
        return

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        response, record = self.server.owner.handle(self.command, self.path, body, self.headers)
        record.status = response.status
        if isinstance(response.body, str):
            payload = response.body.encode()
        else:
            payload = json.dumps(response.body, separators=(",", ":")).encode()
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and left (an injected timeout); the venue's side is done

    def do_GET(self) -> None:
        if is_upgrade(self.path, self.headers):
            serve_ws(self, self.server.owner.ws)
            return
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()
