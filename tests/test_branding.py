"""Branding (issue 16 item 5): logo uploads checked by their bytes, size and sides;
logos served with a strict type, nosniff, a CSP and content-hash caching; a
merchant's name, logo and colours on its own sign-in pages only; colours refused
below WCAG AA; a company's logo on its people's dashboard; the footer links."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from idp.accounts import accesses
from idp.branding import colours, images, service
from idp.cli import main
from idp.mail.outbox import courier
from idp.rights import SYSTEM, Actor, NotPermitted
from idp.store.db import db
from idp.store.models import Account, AuditEvent
from idp.store.unit_of_work import atomic
from idp.units import registry as units
from tests.support import oidc, saml_flow
from tests.support.api import api_for, assert_problem
from tests.support.images import GIF, SVG, jpeg_header, png, webp_header
from tests.support.login import follow_to_page, path_of, sign_in_to_dashboard
from tests.support.merchants import merchant_id

OCTETS = {"Content-Type": "application/octet-stream"}


@pytest.fixture
def web(app: Flask, client: FlaskClient) -> Iterator[FlaskClient]:
    yield client
    courier(app).drain()


def _login_page(app: Flask, client: FlaskClient, rp: oidc.RP) -> str:
    oidc.ensure_login_endpoint(app)
    resp = client.get("/authorize", query_string=oidc.auth_params(rp))
    assert resp.status_code in (302, 303), resp.get_data(as_text=True)
    page = client.get(path_of(resp), follow_redirects=True)
    assert page.status_code == 200
    # the page's CSP stays strict: no inline styles allowed, so none are needed
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp
    return page.get_data(as_text=True)


def _stylesheet(html: str) -> str | None:
    m = re.search(r'href="(/branding/merchants/[^"]+\.css)"', html)
    return m.group(1) if m else None


# --- the checks, as a service ------------------------------------------------------


def test_logos_are_recognised_by_their_magic_bytes_with_their_sides() -> None:
    assert images.check(png(40, 20), 10_000).media_type == "image/png"
    logo = images.check(jpeg_header(64, 32), 10_000)
    assert (logo.media_type, logo.width, logo.height) == ("image/jpeg", 64, 32)
    logo = images.check(webp_header(48, 40), 10_000)
    assert (logo.media_type, logo.width, logo.height) == ("image/webp", 48, 40)
    for data, code in [(SVG, "unsupported_type"), (GIF, "unsupported_type"),
                       (b"", "unsupported_type"), (b"\x89PNG\r\n\x1a\n", "malformed_image"),
                       (png(8, 8), "bad_dimensions"), (png(4000, 20), "bad_dimensions"),
                       (png(400, 20), "bad_dimensions"), (png(pad=2000), "too_large")]:
        with pytest.raises(images.LogoRefused) as refused:
            images.check(data, 1_500)
        assert refused.value.code == code, (data[:8], refused.value.code)


def test_colours_are_hex_and_readable_or_refused() -> None:
    assert colours.check("#0B5394", None) == colours.Colours("#0b5394", None)
    assert colours.check(None, "#FFFFFF").background == "#ffffff"
    assert colours.contrast("#000000", "#ffffff") == pytest.approx(21)
    for primary, background, code in [("red", None, "invalid_colour"),
                                      ("#12345", None, "invalid_colour"),
                                      ("#ffcc00", None, "low_contrast"),  # white on yellow
                                      (None, "#333333", "low_contrast"),  # text on dark
                                      ("#0b5394", "#9fc5e8", "low_contrast")]:
        with pytest.raises(colours.ColourRefused) as refused:
            colours.check(primary, background)
        assert refused.value.code == code


# --- uploads -----------------------------------------------------------------------


def test_a_company_admin_uploads_a_logo_and_another_units_admin_gets_404(
    app: Flask, client: FlaskClient
) -> None:
    with app.app_context():
        acme = units.create("ACME", slug="acme").id
        globex = units.create("Globex", slug="globex").id
    own, foreign = api_for(app, client, "acme"), api_for(app, client, "globex")
    data = png(64, 32)
    resp = own.call("PUT", f"/units/{acme}/logo", data=data, headers=OCTETS)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    sha = hashlib.sha256(data).hexdigest()
    assert body == {"url": f"/branding/logos/{sha}.png", "media_type": "image/png",
                    "width": 64, "height": 32}
    assert own.get(f"/units/{acme}/logo").get_json() == body
    # another unit's admin neither sees nor changes it
    assert_problem(foreign.call("PUT", f"/units/{acme}/logo", data=png(), headers=OCTETS), 404)
    assert_problem(foreign.get(f"/units/{acme}/logo"), 404)
    assert_problem(foreign.delete(f"/units/{acme}/logo"), 404)
    assert own.get(f"/units/{acme}/logo").get_json() == body
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "unit.logo"))
        assert [(e.unit_id, e.details["logo"]) for e in events] == [(acme, sha)]
        with pytest.raises(NotPermitted):
            service.set_unit_logo(Actor.client("nobody"), globex, png())
    assert own.delete(f"/units/{acme}/logo").status_code == 204
    assert own.get(f"/units/{acme}/logo").get_json()["url"] is None


def test_uploads_are_refused_by_size_type_and_sides(app: Flask, client: FlaskClient) -> None:
    app.config["TESTING"] = True
    with app.app_context():
        acme = units.create("ACME", slug="acme").id
    api = api_for(app, client, "acme")
    path = f"/units/{acme}/logo"
    limit = 262_144
    assert_problem(api.call("PUT", path, data=png(pad=limit), headers=OCTETS), 413)
    assert_problem(api.call("PUT", path, data=SVG, headers=OCTETS), 422, "unsupported_type")
    assert_problem(api.call("PUT", path, data=GIF, headers=OCTETS), 422, "unsupported_type")
    assert_problem(api.call("PUT", path, data=png(10, 10), headers=OCTETS), 422,
                   "bad_dimensions")
    # the declared type does not count: only the bytes do
    assert_problem(api.call("PUT", path, data=png(), headers={"Content-Type": "image/svg+xml"}),
                   415)
    assert api.get(path).get_json()["url"] is None


@pytest.mark.parametrize("settings_overrides", [{"logo_max_bytes": 2_000}])
def test_the_size_limit_is_a_setting(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        acme = units.create("ACME", slug="acme").id
    api = api_for(app, client, "acme")
    assert_problem(api.call("PUT", f"/units/{acme}/logo", data=png(pad=2_500), headers=OCTETS),
                   413)
    assert api.call("PUT", f"/units/{acme}/logo", data=png(), headers=OCTETS).status_code == 200


def test_the_cli_refuses_a_spoofed_extension_and_sets_a_merchants_branding(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    rp = oidc.register(app, name="Paper Co")
    spoofed = tmp_path / "logo.png"
    spoofed.write_bytes(SVG)
    res = runner.invoke(main, ["clients", "branding", rp.client_id, "--logo", str(spoofed),
                              "--json"])
    assert res.exit_code == 1 and '"unsupported_type"' in res.output
    gif = tmp_path / "logo.jpg"
    gif.write_bytes(GIF)
    res = runner.invoke(main, ["units", "create", "--name", "ACME", "--slug", "acme"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["units", "logo", "acme", str(gif), "--json"])
    assert res.exit_code == 1 and '"unsupported_type"' in res.output
    good = tmp_path / "logo.gif"  # a PNG under a wrong name is still a PNG
    good.write_bytes(png())
    res = runner.invoke(main, ["clients", "branding", rp.client_id, "--logo", str(good),
                              "--primary-color", "#0b5394", "--json"])
    assert res.exit_code == 0, res.output
    assert '"logo_type": "image/png"' in res.output and '"#0b5394"' in res.output
    res = runner.invoke(main, ["clients", "branding", rp.client_id, "--primary-color",
                              "#ffee00", "--json"])
    assert res.exit_code == 1 and '"low_contrast"' in res.output


def test_merchant_branding_is_the_operators(app: Flask, client: FlaskClient) -> None:
    rp = oidc.register(app, name="Paper Co")
    mid = merchant_id(app, rp.client_id)
    with app.app_context():
        units.create("ACME", slug="acme")
    operator, company = api_for(app, client), api_for(app, client, "acme")
    assert_problem(company.call("PUT", f"/merchants/{mid}/logo", data=png(), headers=OCTETS),
                   404)
    assert_problem(company.call("PUT", f"/merchants/{mid}/colours",
                                json={"primary_color": "#0b5394"}), 404)
    resp = operator.call("PUT", f"/merchants/{mid}/logo", data=png(), headers=OCTETS)
    assert resp.status_code == 200 and resp.get_json()["logo"]["media_type"] == "image/png"
    body = assert_problem(operator.call("PUT", f"/merchants/{mid}/colours",
                                        json={"primary_color": "#ffcc00"}), 422, "low_contrast")
    assert body["errors"][0]["pointer"] == "/body/primary_color"
    resp = operator.call("PUT", f"/merchants/{mid}/colours",
                         json={"primary_color": "#0B5394", "background_color": "#ffffff"})
    assert resp.get_json()["primary_color"] == "#0b5394"
    assert_problem(operator.get("/merchants/nope/branding"), 404)


# --- serving -------------------------------------------------------------------------


def test_a_logo_is_served_strictly_and_cached_by_its_hash(app: Flask, client: FlaskClient) -> None:
    data = png(50, 25)
    with app.app_context():
        acme = units.create("ACME", slug="acme").id
        ref = service.logo_ref(service.set_unit_logo(SYSTEM, acme, data))
    assert ref is not None
    url = f"/branding/logos/{ref.file_name}"
    resp = client.get(url)
    assert resp.status_code == 200 and resp.data == data
    assert resp.headers["Content-Type"] == "image/png"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Content-Security-Policy"] == "default-src 'none'"
    assert resp.headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert "immutable" in resp.headers["Cache-Control"]
    assert "public" in resp.headers["Cache-Control"]
    again = client.get(url, headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    # another extension, an unknown hash, anything else: 404
    assert client.get(url.replace(".png", ".svg")).status_code == 404
    assert client.get("/branding/logos/" + "0" * 64 + ".png").status_code == 404
    assert client.get("/branding/logos/../unitgate.css").status_code == 404


def test_the_default_logo_is_built_in(app: Flask, client: FlaskClient) -> None:
    html = client.get("/").get_data(as_text=True)
    src = re.search(r'<img class="ug-logo" src="([^"]+)"', html)
    assert src is not None
    resp = client.get(src.group(1))
    assert resp.status_code == 200 and resp.mimetype == "image/svg+xml"
    assert resp.headers["Content-Security-Policy"] == "default-src 'none'"


def test_a_configured_default_logo_must_be_an_image(
    migrated, tmp_path: Path
) -> None:
    from idp.app import create_app
    from tests.support.apps import make_settings

    path = tmp_path / "default.png"
    path.write_bytes(png(30, 30, (0, 90, 0)))
    app = create_app(make_settings(migrated, default_logo=str(path)))
    with app.test_client() as http:
        html = http.get("/").get_data(as_text=True)
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        assert f"/branding/logos/{sha}.png" in html
        assert http.get(f"/branding/logos/{sha}.png").data == path.read_bytes()
    path.write_bytes(SVG)
    with pytest.raises(images.LogoRefused):
        create_app(make_settings(migrated, default_logo=str(path)))


# --- pages ---------------------------------------------------------------------------


def test_the_merchants_name_logo_and_colours_are_on_its_sign_in_page_only(
    app: Flask, client: FlaskClient
) -> None:
    branded = oidc.register(app, name="Paper Co")
    other = oidc.register(app, name="Ink Ltd")
    data = png(60, 30, (10, 80, 160))
    with app.app_context():
        mid = merchant_id(app, branded.client_id)
        service.set_merchant_logo(SYSTEM, mid, data)
        service.set_merchant_colours(SYSTEM, mid, "#0b5394", "#ffffff")
    sha = hashlib.sha256(data).hexdigest()
    html = _login_page(app, client, branded)
    assert f'src="/branding/logos/{sha}.png"' in html
    assert '<span class="ug-merchant-name">Paper Co</span>' in html
    sheet = _stylesheet(html)
    assert sheet is not None
    css = client.get(sheet)
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert "--accent: #0b5394;" in css.get_data(as_text=True)
    assert "--bg: #ffffff;" in css.get_data(as_text=True)
    assert "immutable" in css.headers["Cache-Control"]
    # no style attribute or inline style: the page's CSP (default-src 'self') holds
    assert " style=" not in html and "<style" not in html

    client.delete_cookie("ug_ix")
    html = _login_page(app, client, other)
    assert sha not in html and "Paper Co" not in html and _stylesheet(html) is None
    assert '<span class="ug-merchant-name">Ink Ltd</span>' in html
    assert "/branding/logos/" in html  # the default logo


def test_the_company_logo_is_on_the_dashboard(app: Flask, web: FlaskClient) -> None:
    data = png(40, 40, (0, 120, 60))
    with app.app_context():
        account = Account(email="ann@acme.example", email_verified=True, given_name="Ann",
                          family_name="Example")
        db.session.add(account)
        db.session.commit()
        acme = units.create("ACME", slug="acme")
        sales = units.create("ACME Sales", parent="acme", slug="acme-sales")
        globex = units.create("Globex", slug="globex")
        with atomic():
            accesses.create(account.id, sales.id, ["employee"], "test", event=None)
        service.set_unit_logo(SYSTEM, acme.id, data)
        service.set_unit_logo(SYSTEM, globex.id, png(20, 20, (1, 2, 3)))
    page = sign_in_to_dashboard(app, web, "ann@acme.example").get_data(as_text=True)
    sha = hashlib.sha256(data).hexdigest()
    # the sub-unit shows its company's logo; another company's is not there
    assert f'<img class="ug-company-logo" src="/branding/logos/{sha}.png"' in page
    assert hashlib.sha256(png(20, 20, (1, 2, 3))).hexdigest() not in page


@pytest.mark.parametrize("settings_overrides", [{
    "privacy_url": "https://operator.example/privacy", "help_url": "https://operator.example/help",
}])
def test_the_footer_links_to_privacy_and_help_in_the_page_language(client: FlaskClient) -> None:
    html = client.get("/", headers={"Accept-Language": "de"}).get_data(as_text=True)
    footer = html[html.index('<footer class="ug-footer">'):]
    assert '<a href="https://operator.example/privacy" rel="noopener">Datenschutz</a>' in footer
    assert '<a href="https://operator.example/help" rel="noopener">Hilfe</a>' in footer
    html = client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert ">Privacy</a>" in html and ">Help</a>" in html


def test_without_the_settings_the_footer_has_no_links(client: FlaskClient) -> None:
    html = client.get("/").get_data(as_text=True)
    footer = html[html.index('<footer class="ug-footer">'):html.index("</footer>")]
    assert "<a " not in footer


def test_footer_urls_must_be_http() -> None:
    from idp.settings import Settings

    with pytest.raises(ValueError):
        Settings(privacy_url="javascript:alert(1)")
    assert Settings(help_url="").help_url is None


def test_a_saml_service_providers_branding_is_on_its_sign_in_page(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    sp = saml_flow.make_sp(app, client)
    logo = tmp_path / "sp.webp"
    logo.write_bytes(webp_header(64, 32))
    res = runner.invoke(main, ["saml", "branding", sp.entity_id, "--logo", str(logo),
                               "--background-color", "#fffdf5", "--json"])
    assert res.exit_code == 0, res.output
    assert '"logo_type": "image/webp"' in res.output
    resp, _ = saml_flow.start(client, sp)
    assert resp.status_code == 303
    html = client.get(path_of(resp), follow_redirects=True).get_data(as_text=True)
    sha = hashlib.sha256(logo.read_bytes()).hexdigest()
    assert f'src="/branding/logos/{sha}.webp" alt="" width="64" height="32"' in html
    sheet = _stylesheet(html)
    assert sheet is not None and "--bg: #fffdf5;" in client.get(sheet).get_data(as_text=True)
    res = runner.invoke(main, ["saml", "branding", "https://unknown.example", "--json"])
    assert res.exit_code == 1 and '"not_found"' in res.output


def test_the_company_logo_and_name_are_on_the_wallet_of_a_sign_in(
    app: Flask, client: FlaskClient
) -> None:
    """Inside a merchant's sign-in the header is the merchant's; the wallet form names
    the company whose wallet it is, with that company's logo."""
    from tests.support.login import add_protocol_stand_in

    add_protocol_stand_in(app)
    ann = oidc.make_account(app, given_name="", family_name="")  # the wallet form is due
    data = png(40, 40, (10, 80, 160))
    with app.app_context():
        acme = units.create("ACME Wallet GmbH", slug="acme-wallet")
        with atomic():
            accesses.create(ann, acme.id, ["employee"], "test", event=None)
        service.set_unit_logo(SYSTEM, acme.id, data)
    oidc.start_session(app, client, ann)
    resp = client.get("/_test/start", query_string={"scope": "openid wallet"})
    login, page = follow_to_page(client, resp.headers["Location"])
    assert login.endswith("/profile"), login
    html = page.get_data(as_text=True)
    sha = hashlib.sha256(data).hexdigest()
    assert f'<img class="ug-company-logo" src="/branding/logos/{sha}.png"' in html
    assert "<strong>ACME Wallet GmbH</strong>" in html
