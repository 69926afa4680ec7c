"""The ldap3 connector against a real slapd: transport rules, TLS, paging, binds."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from connectors import ldap as conn_ldap
from tests.support import slapd as ldap_test


def config(server: ldap_test.Slapd, **overrides: object) -> conn_ldap.LdapConfig:
    values: dict[str, object] = {
        "url": server.url,
        "bind_dn": ldap_test.SYNC_DN,
        "bind_password": ldap_test.SYNC_PASSWORD,
    }
    values.update(overrides)
    return conn_ldap.LdapConfig(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "start_tls", "message"),
    [
        ("http://dc1.acme.example", False, "scheme must be ldap"),
        ("ldap://dc1.acme.example", False, "refusing plain-text LDAP"),
        ("ldaps://dc1.acme.example", True, "StartTLS is for ldap://"),
        ("ldaps://admin:pw@dc1.acme.example", False, "give only scheme, host and port"),
        ("ldaps://dc1.acme.example/dc=acme", False, "give only scheme, host and port"),
        ("ldaps://dc1.acme.example:99999", False, "invalid LDAP URL"),
        ("ldaps://", False, "no host"),
    ],
)
def test_url_rules(url: str, start_tls: bool, message: str) -> None:
    with pytest.raises(conn_ldap.LdapError, match=message):
        conn_ldap.parse_url(url, start_tls)


def test_allowed_urls() -> None:
    assert conn_ldap.parse_url("ldaps://dc1.acme.example") == conn_ldap.ServerAddress(
        "dc1.acme.example", 636, True
    )
    assert conn_ldap.parse_url("ldap://dc1.acme.example:3268", start_tls=True).port == 3268
    assert conn_ldap.parse_url("ldap://127.0.0.1:1389").use_ssl is False  # loopback only
    assert conn_ldap.parse_url("ldap://[::1]:1389").host == "::1"


def test_filters_are_validated() -> None:
    assert conn_ldap.validate_filter("objectClass=user") == "(objectClass=user)"
    assert conn_ldap.validate_filter("(&(objectClass=user)(!(cn=x\\2a)))")
    for bad in ("(a=b", "(|)", "((a=b))", ")("):
        with pytest.raises(conn_ldap.LdapError, match="invalid LDAP filter"):
            conn_ldap.validate_filter(bad)


def test_service_bind_and_paged_search_reads_past_the_server_limit(
    directory_server: ldap_test.Slapd,
) -> None:
    c = conn_ldap.connect(config(directory_server))
    try:
        # Without paging the server stops at its limit, like AD's MaxPageSize ...
        c.search(ldap_test.PEOPLE, "(objectClass=inetOrgPerson)", attributes=["uid"])
        assert len(c.response) == ldap_test.SERVER_PAGE_LIMIT
        # ... with the paged-results control every entry arrives, page by page.
        pages = list(
            conn_ldap.paged_entries(
                c, ldap_test.PEOPLE, "(objectClass=inetOrgPerson)", ["uid", "objectGUID"], 400
            )
        )
    finally:
        c.unbind()
    assert [len(p) for p in pages] == [400, 400, 400]
    uids = {e.first("uid") for p in pages for e in p}
    assert len(uids) == 1200


def test_search_failure_is_an_error_not_an_empty_directory(
    directory_server: ldap_test.Slapd,
) -> None:
    c = conn_ldap.connect(config(directory_server))
    try:
        with pytest.raises(conn_ldap.LdapError, match="search under"):
            list(conn_ldap.paged_entries(c, "ou=nowhere,dc=acme,dc=example", "(uid=*)", [], 100))
    finally:
        c.unbind()


def test_wrong_service_password_is_a_clear_error(directory_server: ldap_test.Slapd) -> None:
    with pytest.raises(conn_ldap.LdapError, match="invalid credentials"):
        conn_ldap.connect(config(directory_server, bind_password="wrong"))
    with pytest.raises(conn_ldap.LdapError, match="bind password is empty"):
        conn_ldap.connect(config(directory_server, bind_password=""))


def test_unreachable_server_is_a_clear_error() -> None:
    cfg = conn_ldap.LdapConfig(
        url=f"ldap://127.0.0.1:{ldap_test.free_port()}", bind_dn="cn=x", bind_password="y"
    )
    with pytest.raises(conn_ldap.LdapError, match="cannot reach LDAP server"):
        conn_ldap.connect(cfg)


def test_start_tls_and_ldaps_verify_the_certificate(directory_server: ldap_test.Slapd) -> None:
    ca = directory_server.ca_pem
    for cfg in (
        config(directory_server, start_tls=True, ca_pem=ca),
        config(directory_server, url=directory_server.ldaps_url, ca_pem=ca),
    ):
        c = conn_ldap.connect(cfg)
        try:
            assert c.bound
            assert c.tls_started or c.server.ssl
        finally:
            c.unbind()
    # The system CAs do not know the test CA: both transports refuse.
    with pytest.raises(conn_ldap.LdapError, match="TLS"):
        conn_ldap.connect(config(directory_server, start_tls=True))
    with pytest.raises(conn_ldap.LdapError):
        conn_ldap.connect(config(directory_server, url=directory_server.ldaps_url))


@pytest.fixture(scope="module")
def wrong_name_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ldap_test.Slapd]:
    """A slapd whose certificate (from a CA we trust) names another host."""
    reason = ldap_test.available()
    if reason:
        from tests.support.backends import missing

        missing(reason)
    server = ldap_test.Slapd(tmp_path_factory.mktemp("slapd-wrong-name"), ["ldap.other.example"])
    server.load(ldap_test.skeleton())
    yield server
    server.stop()


def test_certificate_for_another_host_is_refused(wrong_name_server: ldap_test.Slapd) -> None:
    ca = wrong_name_server.ca_pem
    with pytest.raises(conn_ldap.LdapError, match="TLS"):
        conn_ldap.connect(config(wrong_name_server, start_tls=True, ca_pem=ca))
    with pytest.raises(conn_ldap.LdapError):
        conn_ldap.connect(config(wrong_name_server, url=wrong_name_server.ldaps_url, ca_pem=ca))


def test_check_password(directory_server: ldap_test.Slapd) -> None:
    cfg = config(directory_server, start_tls=True, ca_pem=directory_server.ca_pem)
    dn = ldap_test.user_dn(9)
    assert conn_ldap.check_password(cfg, dn, ldap_test.password_of(9)) is True
    assert conn_ldap.check_password(cfg, dn, "wrong") is False
    assert conn_ldap.check_password(cfg, dn, "") is False
    assert conn_ldap.check_password(cfg, dn, "x" * 2000) is False
    assert conn_ldap.check_password(cfg, "not a dn", "whatever") is False


def test_slapd_would_accept_an_unauthenticated_bind(directory_server: ldap_test.Slapd) -> None:
    """Why check_password refuses empty passwords itself (RFC 4513 section 5.1.2):
    the server answers a DN with an empty password as an anonymous success."""
    import shutil
    import subprocess

    tool = shutil.which("ldapwhoami")
    if tool is None:
        pytest.skip("ldapwhoami (Debian package ldap-utils) not installed")
    done = subprocess.run(
        [tool, "-x", "-H", directory_server.url, "-D", ldap_test.user_dn(9), "-w", ""],
        capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "anonymous"


def test_entry_ids_and_disabled_flag() -> None:
    guid = uuid.UUID("6d3c1a4e-2f0b-4d7c-9a51-0c3e8b7f1a22")
    e = conn_ldap.LdapEntry(
        "cn=x", {"objectGUID": [guid.bytes_le], "entryUUID": ["ABC"], "userAccountControl": ["514"]}
    )
    assert conn_ldap.entry_id(e, "auto") == str(guid)
    assert conn_ldap.entry_id(e, "objectGUID") == str(guid)
    assert conn_ldap.entry_id(e, "entryUUID") == "abc"
    assert conn_ldap.entry_id(e, "employeeNumber") is None
    assert conn_ldap.is_disabled(e)
    assert not conn_ldap.is_disabled(conn_ldap.LdapEntry("cn=y", {"userAccountControl": ["512"]}))
    assert not conn_ldap.is_disabled(conn_ldap.LdapEntry("cn=z", {}))
    assert conn_ldap.is_disabled(
        conn_ldap.LdapEntry("cn=w", {"useraccountcontrol": ["66050"]})  # 0x10202
    )


def test_filter_escaping() -> None:
    assert conn_ldap.escape("a*b(c)\\") == "a\\2ab\\28c\\29\\5c"
