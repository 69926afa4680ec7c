"""Per-app services (settings, ephemeral store, key ring, hashers), built once in
``create_app`` and reached through the accessors below from request or CLI code."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from idp.crypto.keyring import KeyRing
from idp.crypto.primitives import Hasher, Sealer
from idp.ephemeral import EphemeralStore
from idp.settings import Settings


@dataclass
class Services:
    settings: Settings
    ephemeral: EphemeralStore
    keyring: KeyRing
    hasher: Hasher
    sealer: Sealer


def attach(app: Flask, services: Services) -> None:
    app.extensions["unitgate"] = services


def services() -> Services:
    return current_app.extensions["unitgate"]


def settings() -> Settings:
    return services().settings


def ephemeral() -> EphemeralStore:
    return services().ephemeral


def keyring() -> KeyRing:
    return services().keyring


def hasher() -> Hasher:
    return services().hasher
