"""``idp.release.clients.update``: a merchant client changed in place, validated like a
registration, writing nothing when refused, with the secret kept, replaced or
removed as the authentication method requires."""

from __future__ import annotations

import pytest
from flask import Flask

from idp.release import clients
from idp.release.clients import ClientRegistrationError

CB = "https://shop.example/cb"


def test_changes_only_the_given_fields_and_keeps_the_secret(app: Flask) -> None:
    with app.app_context():
        row, secret = clients.register("Shop", [CB], scope="openid email", actor="test")
        assert secret is not None
        assert clients.lookup(row.client_id).scopes == ("openid", "email")  # now cached
        updated, new_secret = clients.update(row.client_id, scope="openid email org",
                                             redirect_uris=[CB, "https://shop.example/b"],
                                             actor="test")
        assert new_secret is None
        assert updated.client_id == row.client_id and updated.name == "Shop"
        info = clients.lookup(row.client_id)
        assert info is not None
        assert info.scopes == ("openid", "email", "org")  # the cached copy was dropped
        assert info.redirect_uris == (CB, "https://shop.example/b")
        assert info.check_secret(secret)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"redirect_uris": ["http://shop.example/cb"]}, "plain http"),
        ({"redirect_uris": []}, "at least one"),
        ({"scope": "openid admin"}, "unsupported admin"),
        ({"grant_types": ["password"]}, "grant_types"),
        ({"auth_method": "magic"}, "auth_method"),
        ({"auth_method": "private_key_jwt"}, "jwks"),
        ({"name": ""}, "name"),
        ({"name": 5}, "name"),
        ({"redirect_uris": "https://shop.example/cb"}, "lists"),
        ({"id_token_alg": "none"}, "id_token_alg"),
        ({"client_id": "other"}, "cannot change client_id"),
        ({"secret_hash": "x"}, "cannot change secret_hash"),
    ],
)
def test_invalid_changes_write_nothing(app: Flask, fields: dict[str, object],
                                       message: str) -> None:
    with app.app_context():
        row, _ = clients.register("Shop", [CB], actor="test")
        before = clients.describe(row)
        with pytest.raises(ClientRegistrationError) as err:
            clients.update(row.client_id, **fields, actor="test")
        assert message in str(err.value)
        with pytest.raises(ClientRegistrationError):
            clients.validate_update(row.client_id, **fields)
        assert clients.describe(clients.get(row.client_id)) == before


def test_unknown_client(app: Flask) -> None:
    with app.app_context(), pytest.raises(LookupError):
        clients.update("no-such-client", name="x", actor="test")


def test_auth_method_changes_drop_or_create_the_secret(app: Flask) -> None:
    with app.app_context():
        row, secret = clients.register("Shop", [CB], actor="test")
        assert secret is not None
        public, none = clients.update(row.client_id, auth_method="none", actor="test")
        assert none is None and public.secret_hash is None
        assert clients.lookup(row.client_id).is_public
        assert not clients.lookup(row.client_id).check_secret(secret)
        _, fresh = clients.update(row.client_id, auth_method="client_secret_post", actor="test")
        assert fresh is not None and fresh != secret
        info = clients.lookup(row.client_id)
        assert info.auth_method == "client_secret_post" and info.check_secret(fresh)
        assert not info.check_secret(secret)
        with pytest.raises(ClientRegistrationError):  # public clients: no client_credentials
            clients.update(row.client_id, auth_method="none",
                           grant_types=["client_credentials"], actor="test")
        assert clients.lookup(row.client_id).check_secret(fresh)


def test_a_client_id_never_starts_with_a_dash(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A leading ``-`` would make ``idp clients ... CLIENT_ID`` read it as options
    (``-...h...`` as ``--help``): such a draw is drawn again."""
    import secrets

    from click.testing import CliRunner

    from idp.cli import main

    # the client's secret, then a client id with a leading dash, then another
    draws = iter(["s" * 43, "-Ab0h1" + "x" * 18, "Zz9" + "y" * 21])
    monkeypatch.setattr(secrets, "token_urlsafe", lambda _n: next(draws))
    with app.app_context():
        row, _secret = clients.register("Dash Shop", [CB], scope="openid email", actor="test")
        monkeypatch.undo()
        assert row.client_id == "Zz9" + "y" * 21
        result = CliRunner().invoke(main, ["clients", "logout-channels", row.client_id, "--json"])
    assert result.exit_code == 0 and result.output.lstrip().startswith("{"), result.output


def test_moving_the_redirect_uris_away_from_the_front_channel_origin_is_refused(
    app: Flask,
) -> None:
    """``idp clients update --redirect-uri`` on another origin while a front-channel
    logout URI stays on the old one: refused with a message, nothing changed (the
    browser would keep framing the abandoned origin with ``iss`` and ``sid``)."""
    from click.testing import CliRunner

    from idp.cli import main

    with app.app_context():
        row, _secret = clients.register("Shop", [CB], actor="test")
        runner = CliRunner()
        done = runner.invoke(main, ["clients", "logout-channels", row.client_id,
                                    "--frontchannel-uri", "https://shop.example/fc"])
        assert done.exit_code == 0, done.output
        before = clients.describe(clients.get(row.client_id))
        moved = runner.invoke(main, ["clients", "update", row.client_id,
                                     "--redirect-uri", "https://other.example/cb"])
        assert moved.exit_code == 2 and "frontchannel_logout_uri" in moved.output, moved.output
        assert "Traceback" not in moved.output
        assert clients.describe(clients.get(row.client_id)) == before
        same_origin = runner.invoke(main, ["clients", "update", row.client_id,
                                           "--redirect-uri", "https://shop.example/b"])
        assert same_origin.exit_code == 0, same_origin.output
