"""Contract tests every ephemeral backend must pass (Redis and SQL)."""

from __future__ import annotations

import threading
import time

from flask import Flask

from idp.services import ephemeral


def test_put_get_overwrite(app: Flask) -> None:
    with app.app_context():
        store = ephemeral()
        store.put("a", {"x": 1}, 60)
        assert store.get("a") == {"x": 1}
        store.put("a", [1, 2], 60)
        assert store.get("a") == [1, 2]
        assert store.get("missing") is None


def test_expiry(app: Flask) -> None:
    with app.app_context():
        store = ephemeral()
        store.put("short", "v", 1)
        time.sleep(1.2)
        assert store.get("short") is None
        assert store.take("short") is None


def test_take_is_single_use(app: Flask) -> None:
    with app.app_context():
        store = ephemeral()
        store.put("t", "value", 60)
        assert store.take("t") == "value"
        assert store.take("t") is None
        assert store.get("t") is None


def test_add_only_when_absent(app: Flask) -> None:
    with app.app_context():
        store = ephemeral()
        assert store.add("n", 1, 60) is True
        assert store.add("n", 2, 60) is False
        assert store.get("n") == 1
        store.put("old", 1, 1)
        time.sleep(1.2)
        assert store.add("old", 2, 60) is True


def test_incr_counts_within_window(app: Flask) -> None:
    with app.app_context():
        store = ephemeral()
        assert [store.incr("c", 60) for _ in range(3)] == [1, 2, 3]
        store.incr("w", 1)
        time.sleep(1.2)
        assert store.incr("w", 60) == 1


def test_delete(app: Flask) -> None:
    with app.app_context():
        store = ephemeral()
        store.put("d", 1, 60)
        store.delete("d")
        assert store.get("d") is None


def test_parallel_take_has_one_winner(app: Flask) -> None:
    """Of many concurrent takers of one key exactly one gets the value."""
    for round_ in range(5):
        with app.app_context():
            ephemeral().put(f"race{round_}", "prize", 60)
        results: list[object] = []
        barrier = threading.Barrier(8)

        def taker(
            key: str = f"race{round_}",
            barrier: threading.Barrier = barrier,
            results: list[object] = results,
        ) -> None:
            with app.app_context():
                barrier.wait()
                results.append(ephemeral().take(key))

        threads = [threading.Thread(target=taker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results.count("prize") == 1
        assert results.count(None) == 7


def test_parallel_incr_loses_no_count(app: Flask) -> None:
    def bump() -> None:
        with app.app_context():
            for _ in range(10):
                ephemeral().incr("many", 60)

    threads = [threading.Thread(target=bump) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with app.app_context():
        assert ephemeral().incr("many", 60) == 61
