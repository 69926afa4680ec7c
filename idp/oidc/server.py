"""The authlib ``AuthorizationServer``, built per app in :func:`build_server`.

Requests reach authlib through :meth:`UnitgateServer.create_oauth2_request`, which
accepts either the current Flask request or explicit parameters: the authorization
endpoint validates a request it re-builds from the stored interaction on resume, never
from the browser's query string.
"""

from __future__ import annotations

from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import OAuth2Error, OAuth2Request
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from flask import Flask, current_app
from flask import request as flask_request
from werkzeug.datastructures import MultiDict

from idp.oidc import client_auth, grants, tokens
from idp.oidc.models import OAuthClient
from idp.release import clients
from idp.services import settings

EXTENSION_KEY = "unitgate.oidc"


class ParamsPayload(BasicOAuth2Payload):
    """An OAuth payload from explicit parameters, keeping repeated values visible so
    duplicates are refused (RFC 6749 §3.1)."""

    def __init__(self, params: MultiDict[str, str]) -> None:
        super().__init__(params.to_dict(flat=True))
        self._datalist = {k: params.getlist(k) for k in params}


class ParamsRequest(OAuth2Request):
    """An ``OAuth2Request`` whose parameters come from ``params``, not from the wire."""

    def __init__(self, method: str, uri: str, headers: Any, params: MultiDict[str, str]) -> None:
        super().__init__(method=method, uri=uri, headers=headers)
        self.payload = ParamsPayload(params)
        self._params = params

    @property
    def args(self) -> MultiDict[str, str]:
        return self._params

    @property
    def form(self) -> MultiDict[str, str]:
        return self._params


class DPoPRequiredError(OAuth2Error):
    """RFC 9449 §5.2: this client's token requests must carry a DPoP proof."""

    error = "invalid_dpop_proof"
    description = "This client must send a DPoP proof."


class UnitgateServer(AuthorizationServer):
    """authlib's Flask server with Unitgate's storage, clients and error shapes."""

    def query_client(self, client_id: Any) -> OAuthClient | None:
        info = clients.lookup(client_id)
        return None if info is None else OAuthClient(info)

    def authenticate_client(
        self, request: OAuth2Request, methods: list[str], endpoint: str = "token"
    ) -> OAuthClient:
        """The authenticated client, for every grant at ``/token`` and for
        ``/introspect`` and ``/revoke``; a request with two authentication mechanisms
        is ``invalid_request`` first (:func:`client_auth.refuse_mixed`). A client
        registered with ``dpop_bound_access_tokens`` gets no token without a DPoP
        proof."""
        client_auth.refuse_mixed(request)
        client: OAuthClient = super().authenticate_client(request, methods, endpoint)
        if endpoint == "token" and client.info.dpop_bound and tokens.dpop_jkt() is None:
            raise DPoPRequiredError()  # RFC 9449 §5.2: dpop_bound_access_tokens
        return client

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        """The current request as authlib sees it; ``request`` may instead be a
        prepared :class:`ParamsRequest`. The URI is built from the issuer, so the
        transport check follows the configured public URL, not the Host header."""
        if isinstance(request, OAuth2Request):
            return request
        uri = settings().issuer + flask_request.path
        return ParamsRequest(
            flask_request.method, uri, flask_request.headers, wire_params()
        )


def wire_params() -> MultiDict[str, str]:
    """Query parameters for GET; form body for POST (RFC 6749 §3.1, §3.2)."""
    if flask_request.method == "POST":
        return MultiDict(flask_request.form.items(multi=True))
    return MultiDict(flask_request.args.items(multi=True))


def params_request(params: MultiDict[str, str], method: str = "GET") -> ParamsRequest:
    """An authlib request carrying ``params`` (used to resume a stored request)."""
    uri = settings().issuer + flask_request.path
    return ParamsRequest(method, uri, flask_request.headers, params)


def build_server(app: Flask) -> UnitgateServer:
    """A new, fully configured authorization server for ``app``."""
    server = UnitgateServer()
    server.init_app(app, save_token=grants.save_token)
    server.register_token_generator("default", tokens.generate)
    server.register_client_auth_method("client_secret_basic", client_auth.client_secret_basic)
    server.register_client_auth_method("client_secret_post", client_auth.client_secret_post)
    server.register_client_auth_method("none", client_auth.none)
    server.register_client_auth_method("private_key_jwt", client_auth.PrivateKeyJWT())
    server.register_grant(
        grants.AuthorizationCodeGrant,
        [grants.S256CodeChallenge(required=True), grants.IDTokenIssuer()],
    )
    server.register_grant(grants.RefreshTokenGrant, [grants.IDTokenIssuer()])
    server.register_grant(grants.ClientCredentialsGrant)
    from idp.oidc.introspection import Introspection
    from idp.oidc.revocation import Revocation

    server.register_endpoint(Introspection)
    server.register_endpoint(Revocation)
    app.extensions[EXTENSION_KEY] = server
    return server


def server() -> UnitgateServer:
    """The current app's authorization server."""
    return current_app.extensions[EXTENSION_KEY]
