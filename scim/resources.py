"""The SCIM operations on Users and Groups (RFC 7644 §3.3-3.6), independent of HTTP
plumbing so that ``/Bulk`` runs exactly the same code as single requests.

Every handler takes the caller's :class:`Context` (its unit, audit actor, base URL)
and returns a :class:`Result`; domain errors become :class:`~scim.errors.ScimError`.
A unit only ever reaches its own users and groups: any other id is a 404.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from idp.provisioning import service as provisioning
from idp.provisioning import unit_groups
from idp.provisioning.service import Actor, DirectoryUser
from idp.provisioning.unit_groups import DirectoryGroup
from scim import casting, patch
from scim.errors import ScimError, from_domain
from scim.projection import project
from scim.schema import GROUP_SCHEMA, ResourceSchema, user_schema

T = TypeVar("T")


@dataclass
class Context:
    unit_id: str
    actor: Actor
    base: str
    extra_names: list[str]

    @property
    def user_schema(self) -> ResourceSchema:
        return user_schema(self.extra_names)


@dataclass
class Result:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Selection:
    """``attributes`` / ``excludedAttributes`` of a request."""

    attributes: list[str] | None = None
    excluded: list[str] | None = None

    def excludes(self, name: str) -> bool:
        lowered = name.lower()
        if self.attributes:
            return all(a.lower().split(".")[0] != lowered for a in self.attributes)
        return any(e.lower() == lowered for e in self.excluded or [])


def domain(call: Callable[[], T]) -> T:
    """Run a domain call, translating its errors to SCIM errors."""
    try:
        return call()
    except provisioning.ProvisioningError as exc:
        raise from_domain(exc) from None


def _resource(doc: dict[str, Any], schema: ResourceSchema, sel: Selection, status: int) -> Result:
    headers = {"ETag": doc["meta"]["version"], "Location": doc["meta"]["location"]}
    body = project(doc, schema, sel.attributes, sel.excluded)
    return Result(status, body, headers)


# -- users ---------------------------------------------------------------------------


def user_doc(ctx: Context, user: DirectoryUser) -> dict[str, Any]:
    return casting.user_document(user, ctx.base, ctx.extra_names)


def create_user(ctx: Context, body: Any, sel: Selection) -> Result:
    desired = casting.user_from_document(body, ctx.user_schema)
    user = domain(lambda: provisioning.create_user(ctx.unit_id, desired, ctx.actor))
    return _resource(user_doc(ctx, user), ctx.user_schema, sel, 201)


def get_user(ctx: Context, user_id: str, sel: Selection) -> Result:
    user = domain(lambda: provisioning.get_user(ctx.unit_id, user_id))
    return _resource(user_doc(ctx, user), ctx.user_schema, sel, 200)


def replace_user(
    ctx: Context, user_id: str, body: Any, if_match: int | None, sel: Selection
) -> Result:
    desired = casting.user_from_document(body, ctx.user_schema)

    def change(current: DirectoryUser) -> DirectoryUser:
        return desired

    user = domain(
        lambda: provisioning.update_user(
            ctx.unit_id, user_id, change, ctx.actor, if_match, replace=True
        )
    )
    return _resource(user_doc(ctx, user), ctx.user_schema, sel, 200)


def patch_user(
    ctx: Context, user_id: str, body: Any, if_match: int | None, sel: Selection
) -> Result:
    ops = patch.parse_operations(body)
    schema = ctx.user_schema

    def change(current: DirectoryUser) -> DirectoryUser:
        patched = patch.apply(user_doc(ctx, current), ops, schema)
        return casting.user_from_document(patched, schema)

    user = domain(
        lambda: provisioning.update_user(ctx.unit_id, user_id, change, ctx.actor, if_match)
    )
    return _resource(user_doc(ctx, user), schema, sel, 200)


def delete_user(ctx: Context, user_id: str, if_match: int | None) -> Result:
    domain(lambda: provisioning.delete_user(ctx.unit_id, user_id, ctx.actor, if_match))
    return Result(204)


# -- groups --------------------------------------------------------------------------


def group_doc(ctx: Context, group: DirectoryGroup) -> dict[str, Any]:
    return casting.group_document(group, ctx.base)


def create_group(ctx: Context, body: Any, sel: Selection) -> Result:
    desired = casting.group_from_document(body, GROUP_SCHEMA)
    group = domain(lambda: unit_groups.create_group(ctx.unit_id, desired, ctx.actor))
    return _resource(group_doc(ctx, group), GROUP_SCHEMA, sel, 201)


def get_group(ctx: Context, group_id: str, sel: Selection) -> Result:
    with_members = not sel.excludes("members")
    group = domain(lambda: unit_groups.get_group(ctx.unit_id, group_id, with_members))
    return _resource(group_doc(ctx, group), GROUP_SCHEMA, sel, 200)


def replace_group(
    ctx: Context, group_id: str, body: Any, if_match: int | None, sel: Selection
) -> Result:
    desired = casting.group_from_document(body, GROUP_SCHEMA)

    def change(current: DirectoryGroup) -> DirectoryGroup:
        return desired

    group = domain(
        lambda: unit_groups.update_group(
            ctx.unit_id, group_id, change, ctx.actor, if_match, not sel.excludes("members")
        )
    )
    return _resource(group_doc(ctx, group), GROUP_SCHEMA, sel, 200)


def patch_group(
    ctx: Context, group_id: str, body: Any, if_match: int | None, sel: Selection
) -> Result:
    """Apply a PatchOp; 204 unless the client asked for attributes (RFC 7644 §3.5.2)."""
    ops = patch.parse_operations(body)

    def change(current: DirectoryGroup) -> DirectoryGroup:
        patched = patch.apply(group_doc(ctx, current), ops, GROUP_SCHEMA)
        return casting.group_from_document(patched, GROUP_SCHEMA)

    wants_body = bool(sel.attributes)
    group = domain(
        lambda: unit_groups.update_group(
            ctx.unit_id, group_id, change, ctx.actor, if_match,
            wants_body and not sel.excludes("members"),
        )
    )
    doc = group_doc(ctx, group)
    if not wants_body:
        return Result(204, None, {"ETag": doc["meta"]["version"]})
    return _resource(doc, GROUP_SCHEMA, sel, 200)


def delete_group(ctx: Context, group_id: str, if_match: int | None) -> Result:
    domain(lambda: unit_groups.delete_group(ctx.unit_id, group_id, ctx.actor, if_match))
    return Result(204)


# -- dispatch (single requests and /Bulk) --------------------------------------------


def dispatch(
    ctx: Context,
    method: str,
    kind: str,
    resource_id: str | None,
    body: Any,
    if_match: int | None,
    sel: Selection,
) -> Result:
    """Run one operation on ``/Users[/id]`` or ``/Groups[/id]`` (not searches)."""
    users = kind == "Users"
    if resource_id is None:
        if method != "POST":
            raise ScimError(405, f"{method} is not allowed on /{kind}")
        return create_user(ctx, body, sel) if users else create_group(ctx, body, sel)
    if method == "GET":
        return get_user(ctx, resource_id, sel) if users else get_group(ctx, resource_id, sel)
    if method == "PUT":
        handler = replace_user if users else replace_group
        return handler(ctx, resource_id, body, if_match, sel)
    if method == "PATCH":
        handler = patch_user if users else patch_group
        return handler(ctx, resource_id, body, if_match, sel)
    if method == "DELETE":
        remove = delete_user if users else delete_group
        return remove(ctx, resource_id, if_match)
    raise ScimError(405, f"{method} is not allowed on /{kind}/{{id}}")
