"""Master-key rotation: re-seal every value of :data:`SEALED_FIELDS` under a new key.

Re-sealing runs in batches of rows, each batch one transaction (rows locked while it
runs), in primary-key order. It is idempotent: a value already sealed under the target
key is left as it is, so a rotation that stopped half-way (a crash, ``max_batches``)
is finished by running it again. Nodes keep serving throughout, because every node
accepts the keys of ``IDP_MASTER_KEY_PREVIOUS`` for opening (procedure:
``docs/operations.md``, "Master-key rotation").

The key of the keyed hashes (client secrets, refresh tokens, session ids, codes) cannot
change with the master key -- a hash cannot be re-computed without the secret it
hides -- so it is kept as an instance secret, sealed like any other value: first derived
from the master key of the installation, then carried over by every rotation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from idp.crypto.primitives import MasterKeyError, Sealer, derive_key
from idp.crypto.sealed_fields import SEALED_FIELDS, SealedField, instance_secret_context
from idp.store import sealed_repo
from idp.store.unit_of_work import Conflict, atomic

KEYED_HASH = "keyed-hash"
KEYED_HASH_PURPOSE = "unitgate/keyed-hash/v1"


def keyed_hash_key(sealer: Sealer, master: bytes) -> bytes:
    """The key of the keyed hashes: the stored instance secret when there is one (after a
    first rotation), else derived from ``master`` (as every release before did)."""
    sealed = sealed_repo.instance_secret(KEYED_HASH)
    if sealed is None:
        return derive_key(master, KEYED_HASH_PURPOSE)
    return sealer.open(sealed, instance_secret_context(KEYED_HASH))


def ensure_keyed_hash_secret(sealer: Sealer, master: bytes) -> bool:
    """Store the keyed-hash key derived from ``master`` (the key the nodes use now)
    sealed, unless it is stored already. True when this call stored it."""
    if sealed_repo.instance_secret(KEYED_HASH) is not None:
        return False
    value = sealer.seal(derive_key(master, KEYED_HASH_PURPOSE), instance_secret_context(KEYED_HASH))
    try:
        with atomic():
            sealed_repo.add_instance_secret(KEYED_HASH, value)
    except Conflict:
        return False  # another process stored it first: the same derivation
    return True


@dataclass
class FieldCount:
    """What one sealed field holds: values ``resealed`` by this run, ``current`` already
    under the target key, ``stale`` still under another key (a dry run re-seals none)."""

    resealed: int = 0
    current: int = 0
    stale: int = 0


@dataclass
class Report:
    fields: dict[str, FieldCount] = field(default_factory=dict)
    complete: bool = True

    @property
    def stale(self) -> int:
        return sum(c.stale for c in self.fields.values())

    @property
    def resealed(self) -> int:
        return sum(c.resealed for c in self.fields.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "complete": self.complete,
            "resealed": self.resealed,
            "stale": self.stale,
            "fields": {name: vars(c) for name, c in self.fields.items()},
        }


def rotate(
    target: Sealer,
    *,
    dry_run: bool = False,
    batch_size: int = 200,
    max_batches: int | None = None,
    fields: tuple[SealedField, ...] = SEALED_FIELDS,
    progress: Callable[[str, FieldCount], None] | None = None,
) -> Report:
    """Re-seal every value of ``fields`` under ``target``'s current key. ``target`` must
    open every value (its previous keys include the key in use), else
    :class:`MasterKeyError` names the first value it cannot open, after the batches
    before it committed. ``dry_run`` changes nothing and counts; ``max_batches`` stops
    after that many batches (``complete`` False) -- a rerun goes on."""
    report = Report()
    batches = 0
    for f in fields:
        count = report.fields.setdefault(f.name, FieldCount())
        after: str | None = None
        while True:
            if max_batches is not None and batches >= max_batches:
                report.complete = False
                return report
            with atomic():
                rows = sealed_repo.batch(f.model, after, batch_size)
                for row in rows:
                    sealed = f.get(row)
                    if not sealed:
                        continue
                    try:
                        if target.is_current(sealed, f.context(row)):
                            count.current += 1
                            continue
                    except MasterKeyError as exc:
                        raise MasterKeyError(
                            f"{f.name} of {sealed_repo.primary_key(row)} opens under none "
                            "of the given keys (is IDP_MASTER_KEY_PREVIOUS complete?)"
                        ) from exc
                    if dry_run:
                        count.stale += 1
                    else:
                        f.put(row, target.seal(target.open(sealed, f.context(row)), f.context(row)))
                        count.resealed += 1
            batches += 1
            if progress:
                progress(f.name, count)
            if len(rows) < batch_size:
                break
            after = sealed_repo.primary_key(rows[-1])
    return report


def keyed_hash_stored() -> bool:
    """Whether the keyed-hash key is stored as an instance secret."""
    return sealed_repo.instance_secret(KEYED_HASH) is not None
