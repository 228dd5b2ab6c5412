"""Secrets out of text: the registered values and the encodings of them that logs, URLs and bodies carry.

One redactor type serves every exit a secret could take: the root logging filter and formatter
(`scheduler.logsetup`), the runbook tools' stdout/stderr (`tools._cli`), and the venue adapter's exception
messages (`exchange.ccxt_venue`), which are built from raw venue text and can reach an operator in any of those.
Besides the values themselves it rewrites the request headers that carry credentials (`APIKey`, `Authent`,
`Authorization`) and Telegram bot tokens in URLs, whatever their value.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import urllib.parse

REDACTED = "***"
MIN_SECRET_LEN = 6  # shorter strings would shred ordinary words in the log
_HEADER_RE = re.compile(r"""(?i)(['"]?\b(?:Authent|APIKey|Authorization)\b['"]?\s*[:=]\s*['"]?)([^'",\s}]+)""")
_BOT_TOKEN_RE = re.compile(r"bot\d+(?::|%3A)[A-Za-z0-9_-]+")


class Redactor:
    """The registered secrets and every encoding of them a log line is likely to contain."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._needles: tuple[str, ...] = ()

    def register(self, secret: str) -> None:
        if len(secret) < MIN_SECRET_LEN:
            return
        forms = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}
        raw = secret.encode()
        forms |= {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
        forms |= {f.rstrip("=") for f in list(forms)}
        forms |= {json.dumps(secret)[1:-1], repr(secret)[1:-1]}
        with self._lock:
            # Longest first, so a secret that contains another is replaced whole.
            self._needles = tuple(sorted(set(self._needles) | forms, key=len, reverse=True))

    def clear(self) -> None:
        with self._lock:
            self._needles = ()

    def __call__(self, text: str) -> str:
        for needle in self._needles:
            if needle in text:
                text = text.replace(needle, REDACTED)
        text = _HEADER_RE.sub(lambda m: m.group(1) + REDACTED, text)
        return _BOT_TOKEN_RE.sub("bot" + REDACTED, text)
