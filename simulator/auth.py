"""Kraken Futures request signing (kraken-futures.md §3), used by the server to check `Authent`."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac


def sign(post_data: str, endpoint_path: str, secret_b64: str, nonce: str = "") -> str:
    """base64(HMAC-SHA512(base64decode(secret), SHA256(postData + nonce + endpointPath)))."""
    digest = hashlib.sha256((post_data + nonce + endpoint_path).encode()).digest()
    mac = hmac.new(base64.b64decode(secret_b64), digest, hashlib.sha512).digest()
    return base64.b64encode(mac).decode()


def endpoint_path(url_path: str) -> str:
    """The signed path: the URL path without a leading `/derivatives` (history paths are signed as they are)."""
    return url_path.removeprefix("/derivatives")


def verify(post_data: str, url_path: str, secret_b64: str, authent: str, nonce: str = "") -> bool:
    try:
        want = sign(post_data, endpoint_path(url_path), secret_b64, nonce)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(want.encode(), authent.encode())


def check_secret(secret_b64: str) -> None:
    """Fail fast on a secret ccxt could not use either (it base64-decodes it on the first private call)."""
    try:
        base64.b64decode(secret_b64, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            "api_secret must be base64 (ccxt decodes it); generate one with "
            "python -c 'import base64,os; print(base64.b64encode(os.urandom(64)).decode())'"
        ) from None
