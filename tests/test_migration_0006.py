"""Migration 0006 (merchants behind clients and SAML SPs; consents, sign-ins and
grants by foreign key) on a database that revision 0005 (accesses) created and filled
like the code at that revision writes it (an account with an access holding employer
facts, sign-ins through it), on SQLite and PostgreSQL: every client and SP gets its active
merchant, every consent, sign-in and grant its merchant; a deleted client's history
(strings that match nothing) gets a removed merchant carrying the old string;
refresh tokens and SLO participants survive the table rebuilds; downgrade restores
the strings."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from idp.store import migrate

PREVIOUS = "0005"  # accesses, the revision 0006 follows
THIS = "0006"
NOW = "2026-11-30 10:00:00+00:00"
LATER = "2026-12-01 10:00:00+00:00"
ENTITY = "https://sp.example/saml"
GONE = "deleted-client-0001"  # a client deleted before the upgrade
GONE_SP = "urn:example:gone-sp"  # a SAML SP deleted before the upgrade


def _run(conn: sa.Connection, sql: str, **params: object) -> None:
    conn.execute(sa.text(sql), {"now": NOW, **params})


def fill_like_previous(url: str) -> None:
    """Two clients, one SP, an account with an access to a unit (employer facts on
    it) and consents, sign-ins and grants at them, a refresh token, a SAML session
    participant, and the history of a deleted client and a deleted SP (strings that
    match no registration)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        _run(conn, "INSERT INTO accounts (id, email, email_verified, given_name, family_name,"
             " field_owners, status, failed_code_attempts, version, created_at,"
             " updated_at) VALUES ('a1', 'ann@acme.example', true, 'Ann', 'A', '{}',"
             " 'active', 0, 1, :now, :now)")
        _run(conn, "INSERT INTO units (id, name, slug, kind, require_totp, created_at)"
             " VALUES ('u1', 'Acme', 'acme', 'company', false, :now)")
        _run(conn, "INSERT INTO accesses (id, account_id, unit_id, roles, status, created_at,"
             " created_by_kind, created_by_id, ends_at, last_signin_at, cost_centre,"
             " personnel_number, department, extra, field_owners) VALUES ('x1', 'a1', 'u1',"
             " '[\"employee\"]', 'active', :now, 'scim', 'acme', NULL, :now, 'CC-1', 'P-7',"
             " NULL, '{}', '{\"cost_centre\": \"scim\"}')")
        for cid, name in (("shop-1", "Shop One"), ("shop-2", "Shop Two")):
            _run(conn, "INSERT INTO clients (id, client_id, secret_hash, name, redirect_uris,"
                 " post_logout_redirect_uris, scope, grant_types, token_endpoint_auth_method,"
                 " jwks, id_token_signed_response_alg, created_at) VALUES (:id, :cid, NULL,"
                 " :name, '[]', '[]', 'openid', '[]', 'none', NULL, 'ES256', :now)",
                 id=f"row-{cid}", cid=cid, name=name)
        _run(conn, "INSERT INTO saml_service_providers (id, entity_id, name, metadata_xml,"
             " acs_endpoints, slo_endpoints, signing_certificates, encryption_certificates,"
             " encryption_method, nameid_format, sign_assertion, sign_response,"
             " require_signed_requests, idp_initiated, attributes, created_at, updated_at)"
             " VALUES ('sp1', :entity, 'Travel SP', '<md/>', '[]', '[]', '[]', '[]', NULL,"
             " 'persistent', true, true, false, false, '[]', :now, :now)", entity=ENTITY)
        _run(conn, "INSERT INTO sessions (id_hash, account_id, auth_time, amr, acr, created_at,"
             " last_seen_at, expires_at) VALUES ('s1', 'a1', :now, '[]', NULL, :now, :now,"
             " :now)")
        _run(conn, "INSERT INTO saml_session_participants (id, session_id_hash, sp_id, name_id,"
             " name_id_format, session_index, created_at) VALUES ('p1', 's1', 'sp1', 'n',"
             " 'persistent', '_x', :now)")
        for cid in ("shop-1", ENTITY, GONE, GONE_SP):
            _run(conn, "INSERT INTO consents (id, account_id, client_id, scopes, claims,"
                 " granted_at, updated_at) VALUES (:id, 'a1', :cid, '[\"openid\"]', '[]',"
                 " :now, :now)", id=f"c-{cid}"[:32], cid=cid)
        signins = [("si1", "shop-1", "oidc"), ("si2", ENTITY, "saml"), ("si3", GONE, "oidc"),
                   ("si4", GONE, "oidc"), ("si5", GONE_SP, "saml")]
        for sid, cid, protocol in signins:
            _run(conn, "INSERT INTO sign_ins (id, account_id, client_id, unit_id, protocol,"
                 " released, at) VALUES (:id, 'a1', :cid, 'u1', :p, '[\"email\"]', :now)",
                 id=sid, cid=cid, p=protocol)
        for gid, cid in (("g1", "shop-1"), ("g2", "shop-2"), ("g3", GONE)):
            _run(conn, "INSERT INTO grants (id, account_id, client_id, unit_id, scope,"
                 " session_id, auth_time, acr, amr, created_at, expires_at, revoked_at)"
                 " VALUES (:id, 'a1', :cid, NULL, 'openid', 's1', :now, NULL, '[]', :now,"
                 " :later, NULL)", id=gid, cid=cid, later=LATER)
        _run(conn, "INSERT INTO refresh_tokens (id, token_hash, grant_id, created_at, used_at)"
             " VALUES ('r1', 'hash-1', 'g1', :now, NULL)")
    engine.dispose()


def _all(engine: sa.Engine, sql: str) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def test_upgrade_links_everything_keeps_orphans_and_downgrade_restores(fresh_url: str) -> None:
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, PREVIOUS)
    fill_like_previous(fresh_url)

    command.upgrade(config, THIS)
    engine = sa.create_engine(fresh_url)
    try:
        merchants = {r[0]: r[1:] for r in _all(
            engine, "SELECT identifier, name, protocol, status FROM merchants")}
        assert merchants == {
            "shop-1": ("Shop One", "oidc", "active"),
            "shop-2": ("Shop Two", "oidc", "active"),
            ENTITY: ("Travel SP", "saml", "active"),
            GONE: (GONE, "oidc", "removed"),
            GONE_SP: (GONE_SP, "saml", "removed"),
        }
        by_id = dict(_all(engine, "SELECT id, identifier FROM merchants"))
        assert {by_id[m]: c for c, m in _all(
            engine, "SELECT client_id, merchant_id FROM clients")} == {
            "shop-1": "shop-1", "shop-2": "shop-2"}
        assert [by_id[m] for (m,) in _all(
            engine, "SELECT merchant_id FROM saml_service_providers")] == [ENTITY]
        assert sorted(by_id[m] for (m,) in _all(engine, "SELECT merchant_id FROM consents")) \
            == sorted(["shop-1", ENTITY, GONE, GONE_SP])
        assert {i: by_id[m] for i, m in _all(engine, "SELECT id, merchant_id FROM sign_ins")} \
            == {"si1": "shop-1", "si2": ENTITY, "si3": GONE, "si4": GONE, "si5": GONE_SP}
        assert {i: (c, by_id[m]) for i, c, m in _all(
            engine, "SELECT id, client_id, merchant_id FROM grants")} == {
            "g1": ("shop-1", "shop-1"), "g2": ("shop-2", "shop-2"), "g3": (GONE, GONE)}
        # the rebuilt tables took nothing with them; the access and its facts stay
        assert _all(engine, "SELECT account_id, unit_id, cost_centre, personnel_number"
                    " FROM accesses") == [("a1", "u1", "CC-1", "P-7")]
        assert _all(engine, "SELECT DISTINCT unit_id FROM sign_ins") == [("u1",)]
        assert _all(engine, "SELECT id, grant_id FROM refresh_tokens") == [("r1", "g1")]
        assert _all(engine, "SELECT id, sp_id FROM saml_session_participants") == [("p1", "sp1")]
        # the foreign keys hold: a consent for an unknown merchant is refused
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            _run(conn, "INSERT INTO consents (id, account_id, merchant_id, scopes, claims,"
                 " granted_at, updated_at) VALUES ('cx', 'a1', 'nope', '[]', '[]', :now, :now)")

        command.downgrade(config, PREVIOUS)
        assert sorted(_all(engine, "SELECT client_id FROM consents")) == sorted(
            [("shop-1",), (ENTITY,), (GONE,), (GONE_SP,)])
        assert dict(_all(engine, "SELECT id, client_id FROM sign_ins")) == {
            "si1": "shop-1", "si2": ENTITY, "si3": GONE, "si4": GONE, "si5": GONE_SP}
        assert dict(_all(engine, "SELECT id, client_id FROM grants")) == {
            "g1": "shop-1", "g2": "shop-2", "g3": GONE}
        assert _all(engine, "SELECT id FROM refresh_tokens") == [("r1",)]
        assert _all(engine, "SELECT id FROM saml_session_participants") == [("p1",)]
        assert "merchants" not in sa.inspect(engine).get_table_names()
        assert _all(engine, "SELECT cost_centre FROM accesses") == [("CC-1",)]

        command.upgrade(config, "head")  # and up again
        assert len(_all(engine, "SELECT id FROM merchants")) == 5
    finally:
        engine.dispose()


def test_history_older_than_a_registration_stays_with_the_earlier_one(fresh_url: str) -> None:
    """An SP deleted and registered again under its entity ID: a consent and a sign-in
    from before the new registration belonged to the old SP. They go to a removed
    merchant of that identifier, so the new party inherits no one's consent."""
    earlier = "2026-10-01 10:00:00+00:00"
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, PREVIOUS)
    fill_like_previous(fresh_url)
    engine = sa.create_engine(fresh_url)
    try:
        with engine.begin() as conn:
            _run(conn, "INSERT INTO accounts (id, email, email_verified, given_name,"
                 " family_name, field_owners, status, failed_code_attempts, version,"
                 " created_at, updated_at) VALUES ('a2', 'bob@acme.example', true, 'Bob', 'B',"
                 " '{}', 'active', 0, 1, :then, :then)", then=earlier)
            _run(conn, "INSERT INTO consents (id, account_id, client_id, scopes, claims,"
                 " granted_at, updated_at) VALUES ('c-old', 'a2', :cid, '[\"openid\"]', '[]',"
                 " :then, :then)", cid=ENTITY, then=earlier)
            _run(conn, "INSERT INTO sign_ins (id, account_id, client_id, unit_id, protocol,"
                 " released, at) VALUES ('si-old', 'a2', :cid, NULL, 'saml', '[]', :then)",
                 cid=ENTITY, then=earlier)

        command.upgrade(config, THIS)
        status = {m: s for m, s in _all(
            engine, f"SELECT id, status FROM merchants WHERE identifier = '{ENTITY}'")}
        assert sorted(status.values()) == ["active", "removed"]
        consents = dict(_all(engine, "SELECT account_id, merchant_id FROM consents"
                             f" WHERE merchant_id IN ({','.join(repr(m) for m in status)})"))
        assert status[consents["a1"]] == "active"  # given after the registration
        assert status[consents["a2"]] == "removed"  # given to the SP deleted before it
        signins = dict(_all(engine, "SELECT id, merchant_id FROM sign_ins"
                            " WHERE id IN ('si2', 'si-old')"))
        assert (status[signins["si2"]], status[signins["si-old"]]) == ("active", "removed")
    finally:
        engine.dispose()
