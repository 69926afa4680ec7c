"""A real relying party's back-channel logout endpoint for tests: a server thread on
127.0.0.1 that takes ``POST application/x-www-form-urlencoded logout_token=…`` and
validates it as OpenID Connect Back-Channel Logout 1.0 §2.6 says, against the
issuer's published JWKS (fetched by the test through ``jwks``): signature, ``typ``,
``iss``, ``aud``, ``iat`` and ``exp``, ``jti`` not seen before, the ``events``
member, ``sub`` and/or ``sid``, and no ``nonce``. Valid tokens answer 200 and land
in ``got``; invalid ones answer 400 and land in ``rejected``; while ``down`` it
answers 503."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from tests.support.webhook_receiver import QuietHandler, serve, shut

EVENT = "http://schemas.openid.net/event/backchannel-logout"


@dataclass
class LogoutReceiver:
    port: int
    issuer: str
    client_id: str
    jwks: Callable[[], KeySet]
    down: bool = False
    got: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    seen_jti: set[str] = field(default_factory=set)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/backchannel-logout"

    def validate(self, token: str, content_type: str) -> dict[str, Any]:
        """The claims of a valid logout token, else ValueError naming the check."""
        if not content_type.startswith("application/x-www-form-urlencoded"):
            raise ValueError(f"content type {content_type}")
        header = jws.extract_compact(token.encode()).protected
        if header.get("typ") != "logout+jwt":
            raise ValueError("typ")
        try:
            decoded = jwt.decode(token, self.jwks(), algorithms=["ES256", "RS256"])
        except JoseError as exc:
            raise ValueError(f"signature: {exc}") from exc
        claims = decoded.claims
        now = time.time()
        if claims.get("iss") != self.issuer:
            raise ValueError("iss")
        aud = claims.get("aud")
        if self.client_id not in (aud if isinstance(aud, list) else [aud]):
            raise ValueError("aud")
        if not isinstance(claims.get("iat"), int) or abs(now - claims["iat"]) > 300:
            raise ValueError("iat")
        if not isinstance(claims.get("exp"), int) or claims["exp"] < now:
            raise ValueError("exp")
        if "sub" not in claims and "sid" not in claims:
            raise ValueError("sub/sid")
        events = claims.get("events")
        if not isinstance(events, dict) or events.get(EVENT) != {}:
            raise ValueError("events")
        if "nonce" in claims:
            raise ValueError("nonce")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or jti in self.seen_jti:
            raise ValueError("jti")
        self.seen_jti.add(jti)
        return claims

    def start(self) -> LogoutReceiver:
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.body_unless_down(receiver.down)
                if body is None:
                    return
                form = parse_qs(body.decode())
                try:
                    tokens = form.get("logout_token") or []
                    if len(tokens) != 1:
                        raise ValueError("logout_token missing")
                    claims = receiver.validate(tokens[0],
                                               self.headers.get("content-type", ""))
                except ValueError as exc:
                    receiver.rejected.append(str(exc))
                    self.send_response(400)
                    self.send_header("content-type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"error": "invalid_request"}')
                    return
                receiver.got.append(claims)
                self.send_response(200)
                self.send_header("cache-control", "no-store")
                self.end_headers()

        self.server = serve(self.port, Handler)
        return self

    def stop(self) -> None:
        shut(self.server)
        self.server = None
