"""Per-process caches of database answers that stateless nodes can live with.

Several nodes share one database, so a cached answer is only allowed to be a little
old, never wrong for long. A :class:`ProcessCache`:

* keeps an entry at most :data:`CACHE_SECONDS` (2 s): a change made by another
  process or node counts everywhere within 2 seconds;
* is emptied at once by any commit in this process that adds, changes or deletes an
  instance of its ``watched`` models (one hook in :mod:`idp.store.commit_hooks`, not
  a call in every writer), so the next lookup here sees the change;
* stores nothing from a load that overlapped such a commit (its answer may be
  older), and reads through without storing while the current session holds
  uncommitted changes to those models (a rollback would make the copy a lie);
* never stores ``None`` (callers use it for answers that must not be cached, such as
  an unknown token), and only immutable values should be stored: entries are shared
  by every request and thread of the process;
* is kept per app (``app.extensions``), so two apps in one process (tests) do not
  share entries, and holds at most ``max_entries`` (expired ones go first, then the
  oldest).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from flask import current_app, has_app_context

from idp.observability import metrics
from idp.store import commit_hooks

CACHE_SECONDS = 2.0
_clock = time.monotonic  # the TTL clock (tests move it instead of sleeping)

V = TypeVar("V")


class _Entries(Generic[V]):
    """One app's entries: key -> (expiry on :data:`_clock`, value)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.generation = 0
        self.items: dict[Hashable, tuple[float, V]] = {}


class ProcessCache(Generic[V]):
    """A named cache of values of type ``V`` (see the module docstring)."""

    def __init__(self, name: str, watched: tuple[type, ...], max_entries: int = 1024) -> None:
        self.name = name
        self.watched = watched
        self.max_entries = max_entries
        self._extension = f"unitgate.cache.{name}"
        self._hits = metrics.LazyChild(metrics.CACHE, name, "hit")
        self._misses = metrics.LazyChild(metrics.CACHE, name, "miss")
        commit_hooks.on_commit(watched, self.invalidate)

    def _entries(self) -> _Entries[V]:
        ext = current_app.extensions
        found = ext.get(self._extension)
        return found if found is not None else ext.setdefault(self._extension, _Entries())

    def get_or_load(self, key: Hashable, load: Callable[[], V | None]) -> V | None:
        """The fresh cached value of ``key``, else ``load()`` (stored unless None)."""
        if self.watched and commit_hooks.uncommitted(self.watched):
            return load()  # read our own changes; cache nothing a rollback may undo
        entries = self._entries()
        hit = entries.items.get(key)
        if hit is not None and hit[0] > _clock():
            self._hits.inc()
            return hit[1]
        self._misses.inc()
        generation = entries.generation
        value = load()
        if value is not None:
            self.store(key, value, generation)
        return value

    def generation(self) -> int:
        """Changes with every invalidation; pass it to :meth:`store`."""
        return self._entries().generation

    def store(self, key: Hashable, value: V, generation: int) -> None:
        """Keep ``value`` for :data:`CACHE_SECONDS`, unless an invalidation happened
        since ``generation`` was read (the value may predate that change)."""
        entries = self._entries()
        with entries.lock:
            if generation != entries.generation:
                return
            items = entries.items
            if len(items) >= self.max_entries:
                now = _clock()
                for old in [k for k, (expires, _) in items.items() if expires <= now]:
                    del items[old]
                while len(items) >= self.max_entries:
                    del items[next(iter(items))]  # the oldest
            items[key] = (_clock() + CACHE_SECONDS, value)

    def replace(self, key: Hashable, before: V, value: V) -> None:
        """Put ``value`` in place of ``before`` (same expiry), unless the entry was
        changed or dropped (an invalidation) meanwhile."""
        entries = self._entries()
        with entries.lock:
            found = entries.items.get(key)
            if found is not None and found[1] is before:
                entries.items[key] = (found[0], value)

    def peek(self, key: Hashable) -> V | None:
        """The stored value of ``key`` whether fresh or not (tests)."""
        found = self._entries().items.get(key)
        return None if found is None else found[1]

    def invalidate(self) -> None:
        """Forget this app's entries in this process (other processes forget within
        :data:`CACHE_SECONDS`). Commits of the watched models call it."""
        if has_app_context():
            found = current_app.extensions.get(self._extension)
            if found is not None:
                with found.lock:
                    found.generation += 1
                    found.items.clear()
