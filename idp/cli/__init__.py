"""The ``idp`` command line (Flask's click integration).

Every command that creates something accepts ``--json`` and then prints one JSON object.
Each command group lives in its own module and is added to :data:`main` below.
"""

from __future__ import annotations

import click
from flask.cli import FlaskGroup


def _create_app():  # type: ignore[no-untyped-def]
    from idp.app import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False)
def main() -> None:
    """Unitgate identity provider."""


# Command groups register here, one line each:
