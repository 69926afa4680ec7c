"""The ``idp`` command line: a plain click group with Unitgate's commands only.

Every command that creates something accepts ``--json`` and then prints one JSON object.
Each command group lives in its own module and is added to :data:`main` below.

The app is built only when a command needs it (Flask's ``with_appcontext`` asks
the :class:`~flask.cli.ScriptInfo` that :class:`UnitgateGroup` provides), so
``idp --help`` and ``idp --version`` work without any configuration, and Flask's
own options (``--app``, ``--debug``, ``--env-file``) are not offered.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

import click
from flask import Flask
from flask.cli import ScriptInfo


def _create_app() -> Flask:
    from idp.app import create_app
    from idp.crypto.primitives import MasterKeyError

    try:
        return create_app()
    except MasterKeyError as exc:  # a configuration error, not a crash: no traceback
        raise click.ClickException(str(exc)) from exc


def unitgate_version() -> str:
    """The installed Unitgate's version (package metadata), "unknown" outside one."""
    try:
        return metadata.version("unitgate")
    except metadata.PackageNotFoundError:
        return "unknown"


class UnitgateGroup(click.Group):
    """A click group whose commands find the app through a :class:`ScriptInfo`
    that builds it on first use (a test runner passes its own)."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        extra.setdefault("obj", ScriptInfo(create_app=_create_app, set_debug_flag=False))
        return super().make_context(info_name, args, parent=parent, **extra)


@click.group(cls=UnitgateGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    version=unitgate_version(), prog_name="Unitgate", message="%(prog)s %(version)s"
)
def main() -> None:
    """Unitgate identity provider."""


# Command groups register here, one line each:
from idp.cli.init import init_command  # noqa: E402

main.add_command(init_command)
from idp.cli.serve import serve_command  # noqa: E402

main.add_command(serve_command)
from idp.cli.keys import keys_group  # noqa: E402

main.add_command(keys_group)
from idp.cli.accounts import accounts_group  # noqa: E402

main.add_command(accounts_group)
from idp.cli.ldap import ldap_group  # noqa: E402

main.add_command(ldap_group)
from idp.cli.demo import demo_command  # noqa: E402

main.add_command(demo_command)
from idp.cli.clients import clients_group  # noqa: E402

main.add_command(clients_group)
from idp.cli.connectors import connectors_group  # noqa: E402

main.add_command(connectors_group)
from idp.cli.units import units_group  # noqa: E402

main.add_command(units_group)
from idp.cli.domains import domains_group  # noqa: E402

main.add_command(domains_group)
from idp.cli.scim import group_roles_group, scim_tokens_group  # noqa: E402

main.add_command(scim_tokens_group)
main.add_command(group_roles_group)
from idp.cli.saml import saml_group  # noqa: E402

main.add_command(saml_group)
from idp.cli.apply import apply_command, export_command  # noqa: E402

main.add_command(apply_command)
main.add_command(export_command)
from idp.cli.rights import groups_group, rights_group, staff_group  # noqa: E402

main.add_command(rights_group)
main.add_command(groups_group)
main.add_command(staff_group)

from idp.cli.audit import audit_group  # noqa: E402

main.add_command(audit_group)
from idp.cli.admin_clients import admin_clients_group  # noqa: E402

main.add_command(admin_clients_group)
from idp.cli.invitations import contacts_group, invitations_group  # noqa: E402

main.add_command(contacts_group)
main.add_command(invitations_group)

from idp.cli.customers import customers_group  # noqa: E402

main.add_command(customers_group)

from idp.cli.accesses import accesses_group  # noqa: E402

main.add_command(accesses_group)

from idp.cli.migrate import migrate_command  # noqa: E402

main.add_command(migrate_command)

from idp.cli.webhooks import exports_group, webhooks_group  # noqa: E402

main.add_command(webhooks_group)
main.add_command(exports_group)
from idp.cli.master_key import master_key_group  # noqa: E402

main.add_command(master_key_group)
from idp.cli.budgets import budgets_group  # noqa: E402

main.add_command(budgets_group)
from idp.cli.payment_methods import payment_methods_group  # noqa: E402

main.add_command(payment_methods_group)
from idp.cli.purchases import purchases_group  # noqa: E402

main.add_command(purchases_group)
from idp.cli.approvals import approvals_group  # noqa: E402

main.add_command(approvals_group)
from idp.cli.branding import (  # noqa: E402 - issue 16 item 5: branding
    client_branding_command,
    saml_branding_command,
    unit_logo_command,
)

clients_group.add_command(client_branding_command)
saml_group.add_command(saml_branding_command)
units_group.add_command(unit_logo_command)
