"""A real OpenLDAP ``slapd`` for the LDAP tests and the sync benchmark.

:class:`Slapd` runs the Debian ``slapd`` binary as a child process on free loopback
ports (plain ``ldap://`` with StartTLS, and ``ldaps://``), with a throw-away
``slapd.conf`` and MDB database in a temporary folder. The directory looks like a
small Active Directory:

* users are ``inetOrgPerson`` entries plus the auxiliary class ``adUser`` of a tiny
  test schema that defines the real AD attributes ``sAMAccountName``,
  ``userAccountControl`` (bit 2 = disabled), ``objectGUID`` (16 bytes),
  ``department`` and ``userPrincipalName`` under Microsoft's own OIDs;
* groups are ``groupOfNames``; the ``memberof`` overlay maintains ``memberOf`` on the
  users like AD does;
* a non-root service account ``cn=unitgate-sync,ou=service,<suffix>`` reads the
  tree; like AD's MaxPageSize, a search without the paged-results control stops
  after 500 entries, while paged searches may read everything.

Data is bulk-loaded with ``slapadd`` (fast enough for the 10,000-entry benchmark);
changes during a test go through :meth:`Slapd.admin` (so the overlay sees them).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")

SUFFIX = "dc=acme,dc=example"
MAIL_DOMAIN = "acme.example"  # every user's mail and userPrincipalName
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "admin-secret"
SYNC_DN = f"cn=unitgate-sync,ou=service,{SUFFIX}"
SYNC_PASSWORD = "sync-secret"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
SERVER_PAGE_LIMIT = 500
GUID_NAMESPACE = uuid.UUID("6d3c1a4e-2f0b-4d7c-9a51-0c3e8b7f1a22")

# Real AD attribute names and OIDs (see /etc/ldap/schema/msuser.schema); the auxiliary
# class uses the IANA example enterprise number 32473 (RFC 5612).
AD_SCHEMA = """\
attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.2 NAME 'objectGUID'
  EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.2.141 NAME 'department'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.656 NAME 'userPrincipalName'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.32473.1.1 NAME 'adUser' SUP top AUXILIARY
  MAY ( sAMAccountName $ userAccountControl $ objectGUID $ department
        $ userPrincipalName ) )
"""

GIVEN = ["Anna", "Ben", "Clara", "David", "Eva", "Felix", "Greta", "Jürgen", "Lena", "Mia"]
FAMILY = ["Becker", "Fischer", "Hoffmann", "Klein", "Müller", "Schulz", "Wagner", "Weber"]

Entry = dict[str, Any]


def available() -> str | None:
    """None when slapd and slapadd are installed, else the reason they are not."""
    for tool in (SLAPD, SLAPADD):
        if not Path(tool).exists():
            return f"{tool} not installed (Debian package slapd)"
    if not (MODULE_DIR / "back_mdb.so").exists():
        return f"{MODULE_DIR}/back_mdb.so missing"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ssha(password: str) -> str:
    """An RFC 2307 ``{SSHA}`` userPassword value."""
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def guid_bytes(n: int) -> bytes:
    """The 16-byte objectGUID of user ``n`` (AD stores GUIDs little-endian)."""
    return uuid.uuid5(GUID_NAMESPACE, str(n)).bytes_le


def guid_text(n: int) -> str:
    """The AD string form of :func:`guid_bytes`, as Unitgate stores external ids."""
    return str(uuid.uuid5(GUID_NAMESPACE, str(n)))


def uid(n: int) -> str:
    return f"user{n:05d}"


def user_dn(n: int) -> str:
    return f"cn={uid(n)},{PEOPLE}"


def group_dn(name: str) -> str:
    return f"cn={name},{GROUPS}"


def password_of(n: int) -> str:
    return f"pw-{uid(n)}"


@dataclass
class Population:
    """Who is in the generated directory and which groups they belong to."""

    count: int
    disabled_every: int = 100  # userAccountControl 514 for every n-th user
    groups: dict[str, list[int]] = field(default_factory=dict)
    passwords: bool = True

    def disabled(self, n: int) -> bool:
        return self.disabled_every > 0 and n % self.disabled_every == 0

    def groups_of(self, n: int) -> list[str]:
        return [name for name, members in self.groups.items() if n in members]


def default_population(count: int = 1200) -> Population:
    """``count`` users; every third a buyer, every 50th an approver, every 100th disabled."""
    numbers = range(1, count + 1)
    return Population(
        count=count,
        groups={
            "buyers": [n for n in numbers if n % 3 == 0],
            "approvers": [n for n in numbers if n % 50 == 0],
            "staff": list(numbers),
        },
    )


def person(n: int, population: Population) -> Entry:
    """The LDAP entry of user ``n``."""
    given = GIVEN[n % len(GIVEN)]
    family = FAMILY[n % len(FAMILY)]
    entry: Entry = {
        "dn": user_dn(n),
        "objectClass": ["top", "person", "organizationalPerson", "inetOrgPerson", "adUser"],
        "cn": uid(n),
        "uid": uid(n),
        "sAMAccountName": uid(n),
        "userPrincipalName": f"{uid(n)}@{MAIL_DOMAIN}",
        "givenName": given,
        "sn": family,
        "displayName": f"{given} {family}",
        "mail": f"{uid(n)}@{MAIL_DOMAIN}",
        "employeeNumber": f"E{n:05d}",
        "departmentNumber": f"CC-{n % 20:03d}",
        "department": f"Department {n % 7}",
        "telephoneNumber": f"+49 30 {1000000 + n}",
        "userAccountControl": "514" if population.disabled(n) else "512",
        "objectGUID": guid_bytes(n),
    }
    if population.passwords:
        entry["userPassword"] = ssha(password_of(n))
    memberships = [group_dn(g) for g in population.groups_of(n)]
    if memberships:
        entry["memberOf"] = memberships
    return entry


def skeleton() -> list[Entry]:
    return [
        {"dn": SUFFIX, "objectClass": ["top", "dcObject", "organization"], "dc": "acme",
         "o": "ACME Example"},
        {"dn": PEOPLE, "objectClass": ["organizationalUnit"], "ou": "people"},
        {"dn": GROUPS, "objectClass": ["organizationalUnit"], "ou": "groups"},
        {"dn": f"ou=service,{SUFFIX}", "objectClass": ["organizationalUnit"], "ou": "service"},
        {"dn": SYNC_DN, "objectClass": ["organizationalRole", "simpleSecurityObject"],
         "cn": "unitgate-sync", "userPassword": ssha(SYNC_PASSWORD)},
    ]


def population_entries(population: Population) -> Iterator[Entry]:
    """Skeleton, users and groups (with members and memberOf kept consistent)."""
    yield from skeleton()
    for n in range(1, population.count + 1):
        yield person(n, population)
    for name, members in population.groups.items():
        if members:
            yield {
                "dn": group_dn(name),
                "objectClass": ["groupOfNames"],
                "cn": name,
                "member": [user_dn(n) for n in members],
            }


def _ldif_value(attr: str, value: Any) -> str:
    if isinstance(value, bytes):
        return f"{attr}:: {base64.b64encode(value).decode()}"
    text = str(value)
    safe = text.isascii() and text == text.strip() and not text.startswith((":", "<"))
    if safe and "\n" not in text:
        return f"{attr}: {text}"
    return f"{attr}:: {base64.b64encode(text.encode()).decode()}"


def to_ldif(entries: Iterable[Entry]) -> str:
    """RFC 2849 LDIF of ``entries`` (binary and non-ASCII values base64-encoded)."""
    out: list[str] = []
    for entry in entries:
        out.append(_ldif_value("dn", entry["dn"]))
        for attr, values in entry.items():
            if attr == "dn":
                continue
            for value in values if isinstance(values, list) else [values]:
                out.append(_ldif_value(attr, value))
        out.append("")
    return "\n".join(out) + "\n"


def make_tls_files(folder: Path, names: list[str]) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for ``names`` (DNS names or IPs)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Unitgate test LDAP CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


class Slapd:
    """One slapd process with its own config and database under ``folder``."""

    def __init__(self, folder: Path, tls_names: list[str] | None = None) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self.tls_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.ca_path, self.cert_path, self.key_path = make_tls_files(
            folder, tls_names or ["127.0.0.1", "localhost"]
        )
        (folder / "ad.schema").write_text(AD_SCHEMA)
        self.conf = folder / "slapd.conf"
        self.conf.write_text(self._config())
        self.dirty = False

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    @property
    def ca_pem(self) -> str:
        return self.ca_path.read_text()

    def _config(self) -> str:
        f = self.folder
        return f"""\
include {SCHEMA_DIR}/core.schema
include {SCHEMA_DIR}/cosine.schema
include {SCHEMA_DIR}/inetorgperson.schema
include {f}/ad.schema
modulepath {MODULE_DIR}
moduleload back_mdb
moduleload memberof
pidfile {f}/slapd.pid
argsfile {f}/slapd.args
TLSCACertificateFile {self.ca_path}
TLSCertificateFile {self.cert_path}
TLSCertificateKeyFile {self.key_path}
sizelimit {SERVER_PAGE_LIMIT}
# Like Active Directory (unless hardened), accept a DN with an empty password as an
# unauthenticated bind (RFC 4513 section 5.1.2); Unitgate must never rely on such a bind.
allow bind_anon_dn

database mdb
maxsize 2147483648
suffix "{SUFFIX}"
rootdn "{ADMIN_DN}"
rootpw {ssha(ADMIN_PASSWORD)}
directory {self.data}
index objectClass eq
index uid,mail,sAMAccountName,entryUUID eq
limits dn.exact="{SYNC_DN}" size.soft={SERVER_PAGE_LIMIT} size.hard={SERVER_PAGE_LIMIT} \
size.pr={SERVER_PAGE_LIMIT} size.prtotal=unlimited
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint true
"""

    def load(self, entries: Iterable[Entry]) -> None:
        """Replace the whole directory with ``entries`` (stops and restarts slapd)."""
        self.stop()
        shutil.rmtree(self.data, ignore_errors=True)
        self.data.mkdir(parents=True)
        ldif = self.folder / "data.ldif"
        ldif.write_text(to_ldif(entries))
        done = subprocess.run(
            [SLAPADD, "-q", "-f", str(self.conf), "-l", str(ldif)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"slapadd failed: {done.stderr.strip()[-2000:]}")
        self.start()
        self.dirty = False

    def start(self) -> None:
        """Start slapd and wait until it accepts an authenticated search."""
        log = (self.folder / "slapd.log").open("ab")
        self.process = subprocess.Popen(
            [
                SLAPD,
                "-f", str(self.conf),
                "-h", f"{self.url}/ {self.ldaps_url}/",
                "-d", "0",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                tail = (self.folder / "slapd.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"slapd exited with {self.process.returncode}: {tail}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                with socket.create_connection(("127.0.0.1", self.tls_port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("slapd did not open its ports within 30 s") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    @contextmanager
    def admin(self) -> Iterator[Any]:
        """An ldap3 connection bound as the root DN; marks the directory as changed."""
        import ldap3

        conn = ldap3.Connection(
            ldap3.Server(self.url, get_info=ldap3.NONE),
            ADMIN_DN,
            ADMIN_PASSWORD,
            auto_bind=True,
            raise_exceptions=True,
        )
        self.dirty = True
        try:
            yield conn
        finally:
            conn.unbind()

    def disable(self, n: int) -> None:
        """Set AD's ACCOUNTDISABLE bit (userAccountControl 514) on user ``n``."""
        import ldap3

        with self.admin() as conn:
            conn.modify(user_dn(n), {"userAccountControl": [(ldap3.MODIFY_REPLACE, ["514"])]})

    def enable(self, n: int) -> None:
        import ldap3

        with self.admin() as conn:
            conn.modify(user_dn(n), {"userAccountControl": [(ldap3.MODIFY_REPLACE, ["512"])]})

    def delete(self, n: int) -> None:
        with self.admin() as conn:
            conn.delete(user_dn(n))

    def replace(self, n: int, attr: str, values: list[Any]) -> None:
        import ldap3

        with self.admin() as conn:
            conn.modify(user_dn(n), {attr: [(ldap3.MODIFY_REPLACE, values)]})

    def add_member(self, group: str, n: int) -> None:
        import ldap3

        with self.admin() as conn:
            conn.modify(group_dn(group), {"member": [(ldap3.MODIFY_ADD, [user_dn(n)])]})

    def remove_member(self, group: str, n: int) -> None:
        import ldap3

        with self.admin() as conn:
            conn.modify(group_dn(group), {"member": [(ldap3.MODIFY_DELETE, [user_dn(n)])]})
