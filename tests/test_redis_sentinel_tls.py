"""The ephemeral store through Redis Sentinel (a real master, replica and sentinel
on loopback, with a failover) and over TLS (a real ``redis-server`` with a TLS port and
a certificate of a CA made here)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from idp.ephemeral import EphemeralUnavailable, RedisOptions, create_store, parse_sentinels
from idp.settings import Settings
from tests.support.backends import missing
from tests.support.processes import free_port
from tests.support.tls import make_ca_and_server_cert

pytestmark = pytest.mark.slow


def redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        missing("redis-server binary not installed")
    return str(binary)


class Proc:
    """A child process started on loopback and killed at the end of the test."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.log = log
        self.out = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, stdout=self.out, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()


def wait_until(check: object, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except Exception as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"condition not met in {seconds}s (last error: {last!r})")


def start_redis(tmp: Path, name: str, port: int, *extra: str) -> Proc:
    work = tmp / name
    work.mkdir()
    return Proc(
        [redis_binary(), "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", str(work), *extra],
        tmp / f"{name}.log",
    )


@pytest.fixture
def sentinel_setup(tmp_path: Path) -> Iterator[tuple[int, int, int]]:
    """A master, its replica and one sentinel (quorum 1) watching ``unitgate``."""
    master_port, replica_port, sentinel_port = free_port(), free_port(), free_port()
    procs = [start_redis(tmp_path, "master", master_port)]
    procs.append(start_redis(tmp_path, "replica", replica_port,
                             "--replicaof", "127.0.0.1", str(master_port)))
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"bind 127.0.0.1\nport {sentinel_port}\ndir {tmp_path}\n"
        f"sentinel monitor unitgate 127.0.0.1 {master_port} 1\n"
        "sentinel down-after-milliseconds unitgate 1000\n"
        "sentinel failover-timeout unitgate 5000\n"
    )
    try:
        replica = redis.Redis(port=replica_port)
        wait_until(lambda: replica.info("replication")["master_link_status"] == "up")
        procs.append(Proc([redis_binary(), str(conf), "--sentinel"], tmp_path / "sentinel.log"))
        sentinel = redis.Redis(port=sentinel_port)
        wait_until(lambda: int(sentinel.sentinel_master("unitgate")["num-slaves"]) == 1)
        yield master_port, replica_port, sentinel_port
    finally:
        for proc in reversed(procs):
            proc.stop()


def test_sentinel_store_follows_a_failover(sentinel_setup: tuple[int, int, int]) -> None:
    master_port, replica_port, sentinel_port = sentinel_setup
    options = RedisOptions(
        sentinels=parse_sentinels(f"127.0.0.1:{sentinel_port}"), sentinel_master="unitgate"
    )
    store = create_store(None, None, "ugsentinel:", options)
    store.ping()
    store.put("code", {"n": 1}, 60)
    assert store.get("code") == {"n": 1}
    assert redis.Redis(port=master_port).get("ugsentinel:code") is not None

    # The replica has it too before the switch (WAIT for the write to arrive).
    redis.Redis(port=master_port).wait(1, 5000)
    sentinel = redis.Redis(port=sentinel_port)
    # The sentinel refuses (NOGOODSLAVE) until it has fresh news of the replica.
    wait_until(lambda: sentinel.execute_command("SENTINEL", "FAILOVER", "unitgate"), 30)
    wait_until(lambda: int(sentinel.sentinel_master("unitgate")["port"]) == replica_port)
    wait_until(lambda: redis.Redis(port=replica_port).info("replication")["role"] == "master")

    # The old master is told to follow the new one (Sentinel does it shortly after).
    wait_until(lambda: redis.Redis(port=master_port).info("replication")["role"] == "slave")

    # The same store object now writes to the new master: a command cut off by the
    # switch (or refused by the demoted master as READONLY) fails closed, and the
    # next one goes through.
    new_master = redis.Redis(port=replica_port)

    def works() -> bool:
        try:
            store.put("after", "failover", 60)
        except EphemeralUnavailable:
            return False
        return new_master.get("ugsentinel:after") == b'"failover"'

    wait_until(works)
    assert store.incr("tries", 60) == 1 and store.incr("tries", 60) == 2
    assert store.take("code") == {"n": 1} and store.take("code") is None


def test_settings_build_sentinel_options() -> None:
    settings = Settings(
        redis_sentinels="10.0.0.1:26379, [::1]:26380,redis-sentinel",
        redis_sentinel_master="prod", redis_tls_ca_file="/etc/ca.pem",
    )
    options = RedisOptions.from_settings(settings)
    assert options.sentinels == (("10.0.0.1", 26379), ("::1", 26380), ("redis-sentinel", 26379))
    assert options.sentinel_master == "prod" and options.tls_ca_file == "/etc/ca.pem"
    with pytest.raises(ValueError, match="IDP_REDIS_SENTINELS"):
        parse_sentinels("host:notaport")


# -- TLS ----------------------------------------------------------------------------


def test_rediss_store_verifies_the_server_against_the_ca_file(tmp_path: Path) -> None:
    ca, cert, key = make_ca_and_server_cert(tmp_path)
    tls_port = free_port()
    server = start_redis(
        tmp_path, "tls", 0, "--tls-port", str(tls_port), "--tls-cert-file", str(cert),
        "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no",
    )
    try:
        url = f"rediss://127.0.0.1:{tls_port}/0"
        store = create_store(url, None, "ugtls:", RedisOptions(tls_ca_file=str(ca)))
        wait_until(lambda: store.ping() is None)
        store.put("k", [1, 2], 60)
        assert store.get("k") == [1, 2]
        # Without the CA the certificate is not trusted: fail closed, never unverified.
        untrusted = create_store(url, None, "ugtls:", RedisOptions())
        with pytest.raises(EphemeralUnavailable):
            untrusted.get("k")
        # Plain text to the TLS port is no way around it either.
        plain = create_store(f"redis://127.0.0.1:{tls_port}/0", None, "ugtls:")
        with pytest.raises(EphemeralUnavailable):
            plain.get("k")
    finally:
        server.stop()
    assert "Traceback" not in server.log.read_text(errors="replace")
