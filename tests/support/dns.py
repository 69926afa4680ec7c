"""A real authoritative DNS server for the domain-verification tests.

:class:`DnsServer` answers over UDP and TCP on one free loopback port, built with
dnspython's message API in two threads. Tests publish TXT records with
:meth:`DnsServer.set_txt` and remove them with :meth:`DnsServer.remove`; every other
name gets NXDOMAIN, other types of a known name an empty NOERROR answer. Over UDP an
answer larger than 512 bytes (without EDNS) is sent truncated (TC), so the resolver
retries over TCP as a real one must. :attr:`DnsServer.mode` simulates outages:
``"servfail"`` answers SERVFAIL, ``"drop"`` never answers (a timeout).

Unitgate reaches it through ``IDP_DNS_RESOLVER=127.0.0.1:<port>``.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset
import pytest


def _chunks(value: str) -> list[bytes]:
    raw = value.encode()
    return [raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""]


class DnsServer:
    """An in-process authoritative DNS server on ``127.0.0.1:<port>`` (UDP and TCP)."""

    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.mode = "answer"
        self.queries: list[tuple[str, str, str]] = []  # (transport, name, type)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.udp, self.tcp = self._bind()
        self.port = int(self.udp.getsockname()[1])
        self._threads = [
            threading.Thread(target=self._serve_udp, daemon=True),
            threading.Thread(target=self._serve_tcp, daemon=True),
        ]
        for t in self._threads:
            t.start()

    @staticmethod
    def _bind() -> tuple[socket.socket, socket.socket]:
        for _ in range(50):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind(("127.0.0.1", udp.getsockname()[1]))
            except OSError:
                udp.close()
                tcp.close()
                continue
            tcp.listen(16)
            udp.settimeout(0.2)
            tcp.settimeout(0.2)
            return udp, tcp
        raise RuntimeError("no free port for the test DNS server")

    @property
    def address(self) -> str:
        """``host:port`` for ``IDP_DNS_RESOLVER``."""
        return f"127.0.0.1:{self.port}"

    def set_txt(self, name: str, *values: str) -> None:
        """Publish ``name`` with one TXT record per value (replacing earlier ones)."""
        with self._lock:
            self.records[name.lower().rstrip(".")] = list(values)

    def remove(self, name: str) -> None:
        """Delete ``name``: it answers NXDOMAIN again."""
        with self._lock:
            self.records.pop(name.lower().rstrip("."), None)

    def reset(self) -> None:
        """No records, normal answers, empty query log."""
        with self._lock:
            self.records.clear()
            self.queries.clear()
            self.mode = "answer"

    def answer(self, wire: bytes, transport: str) -> bytes | None:
        """The wire answer to the query ``wire`` (None: stay silent)."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if not query.question:
            return None
        question = query.question[0]
        qname = question.name.to_text(omit_final_dot=True).lower()
        with self._lock:
            self.queries.append((transport, qname, dns.rdatatype.to_text(question.rdtype)))
            mode = self.mode
            values = list(self.records.get(qname, [])) if qname in self.records else None
        if mode == "drop":
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if mode == "servfail":
            response.set_rcode(dns.rcode.SERVFAIL)
        elif values is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.TXT and values:
            rrset = dns.rrset.RRset(question.name, dns.rdataclass.IN, dns.rdatatype.TXT)
            for value in values:
                rdata = dns.rdtypes.ANY.TXT.TXT(
                    dns.rdataclass.IN, dns.rdatatype.TXT, _chunks(value)
                )
                rrset.add(rdata, ttl=60)
            response.answer.append(rrset)
        if transport == "udp":
            limit = query.payload if query.edns >= 0 else 512
            try:
                return response.to_wire(max_size=max(512, limit))
            except dns.exception.TooBig:
                truncated = dns.message.make_response(query)
                truncated.flags |= dns.flags.AA | dns.flags.TC
                return truncated.to_wire()
        return response.to_wire()

    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.udp.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            reply = self.answer(data, "udp")
            if reply is not None:
                with contextlib.suppress(OSError):
                    self.udp.sendto(reply, peer)

    def _serve_tcp(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    size = struct.unpack("!H", self._read(conn, 2))[0]
                    reply = self.answer(self._read(conn, size), "tcp")
                    if reply is not None:
                        conn.sendall(struct.pack("!H", len(reply)) + reply)
                except (OSError, struct.error):
                    continue

    @staticmethod
    def _read(conn: socket.socket, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise OSError("connection closed")
            buf += chunk
        return buf

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2)
        self.udp.close()
        self.tcp.close()


@pytest.fixture(scope="session")
def dns_server_session() -> Iterator[DnsServer]:
    server = DnsServer()
    yield server
    server.close()


@pytest.fixture
def dns_server(dns_server_session: DnsServer) -> DnsServer:
    """The test DNS server, emptied for this test."""
    dns_server_session.reset()
    return dns_server_session
