"""SAML service providers in ``idp apply`` / ``idp export`` (the ``saml_sps`` list).

The SAML registry (:mod:`idp.saml.registry`) sits in the views layer, above this
one, so it registers itself here when the app sets up SAML (:func:`use`), the way
:mod:`idp.saml.soap_logout` registers its sender with :mod:`idp.interaction.rp_logout`.
An SP is matched by ``entity_id``; ``metadata`` (an https URL, a file path or the XML
itself) is required to register one and, given for a registered one, replaces its
endpoints, certificates and requested attributes when it differs. The options are
those of ``idp saml sps add``; a key left out keeps the SP's value.
"""

from __future__ import annotations

from typing import Any, Protocol

from idp.config.schema import SamlSpSpec

OPTIONS = (
    "name", "nameid_format", "sign_assertion", "sign_response", "require_signed_requests",
    "idp_initiated",
)


class SpApplyError(Exception):
    """The SAML registry refused a change while applying (the message says why)."""


class SpRegistry(Protocol):
    """What :mod:`idp.saml.registry` offers to ``idp apply``."""

    def load_metadata(self, source: str) -> bytes: ...

    def find(self, entity_id: str) -> Any: ...

    def listing(self) -> list[Any]: ...

    def export(self, sp: Any) -> dict[str, Any]: ...

    def validate_registration(
        self, metadata: bytes, entity_id: str | None = None, **options: Any
    ) -> None: ...

    def changes(
        self, entity_id: str, metadata: bytes | None = None, **options: Any
    ) -> dict[str, Any]: ...

    def register(
        self,
        metadata: bytes,
        *,
        name: str | None = ...,
        nameid_format: str = ...,
        sign_assertion: bool | None = ...,
        sign_response: bool | None = ...,
        require_signed_requests: bool = ...,
        idp_initiated: bool = ...,
        actor: str,
    ) -> Any: ...

    def update(
        self, entity_id: str, metadata: bytes | None = None, *, actor: str, **options: Any
    ) -> Any: ...


_REGISTRY: list[SpRegistry] = []


def use(registry: SpRegistry) -> None:
    """Make ``registry`` the one ``idp apply`` and ``idp export`` use (idempotent)."""
    _REGISTRY[:] = [registry]


def registry() -> SpRegistry | None:
    """The SAML registry, once the app set up SAML; else None."""
    return _REGISTRY[0] if _REGISTRY else None


def options(spec: SamlSpSpec) -> dict[str, Any]:
    """The options the file wrote (a key left out is not there)."""
    return {k: getattr(spec, k) for k in OPTIONS if getattr(spec, k) is not None}


def read_metadata(reg: SpRegistry, source: str | None) -> bytes | None:
    """The metadata ``source`` names: the XML itself, or an https URL or file path
    (:func:`idp.saml.registry.load_metadata`); None when the file gave none."""
    if source is None:
        return None
    if source.lstrip().startswith("<"):
        return source.encode("utf-8")
    return reg.load_metadata(source)


def create(metadata: bytes, opts: dict[str, Any], actor: str) -> Any:
    """Register the SP (a change of the plan); :class:`SpApplyError` when refused."""
    reg = registry()
    assert reg is not None
    try:
        return reg.register(metadata, actor=actor, **opts)
    except ValueError as exc:
        raise SpApplyError(str(exc)) from exc


def update(entity_id: str, metadata: bytes | None, opts: dict[str, Any], actor: str) -> Any:
    """Change the SP in place (a change of the plan); :class:`SpApplyError` when refused."""
    reg = registry()
    assert reg is not None
    try:
        return reg.update(entity_id, metadata, actor=actor, **opts)
    except ValueError as exc:
        raise SpApplyError(str(exc)) from exc


def export() -> list[dict[str, Any]]:
    """Every registered SP as a ``saml_sps`` entry (none before SAML is set up)."""
    reg = registry()
    return [] if reg is None else [reg.export(sp) for sp in reg.listing()]
