"""Guard of the one transaction idiom (docs/architecture.md, "One unit of work"):
services commit through ``idp.store.unit_of_work.atomic()``; repositories and other
modules only stage. An AST scan of every module under ``idp/`` fails on any
``.commit`` outside the unit of work and the short allowlist below, and on any claim
(``unit_of_work.claim``, a commit made inside a repository on purpose) outside the
functions listed in :data:`CLAIMS`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "idp"

# Modules that may call ``.commit()`` themselves, each with its reason.
ALLOWED_COMMITS: dict[str, str] = {
    "idp.store.unit_of_work": "the unit of work: atomic() and claim() commit",
    "idp.store.ephemeral_sql": (
        "the SQL ephemeral store runs each statement on its own pooled DB-API connection "
        "and commits it at once (get/take/incr are atomic claims; no session involved)"
    ),
}

# The claims committed on their own (module, function): a conditional write that only
# one concurrent caller wins and that must be durable before the caller acts on it.
CLAIMS: dict[tuple[str, str], str] = {
    ("idp.store.leases", "claim"): (
        "lease one outbox message or webhook delivery before the SMTP or HTTP hand-over"
    ),
    ("idp.store.leases", "claim_due"): (
        "lease due outbox messages or webhook deliveries before the hand-over"
    ),
    ("idp.store.totp_repo", "claim_step"): "accept a TOTP time step at most once",
    ("idp.store.grants_repo", "claim_refresh"): "redeem a refresh token at most once",
    ("idp.store.saml_repo", "remember_participant"): (
        "insert-or-update of the (session, SP) pair, retried after a parallel insert"
    ),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> list[Path]:
    """Every module of the ``idp`` package (Alembic's scripts are loaded by path and
    run inside Alembic's own transaction)."""
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def commits(tree: ast.AST) -> list[int]:
    """Lines that reach a ``commit`` attribute (``x.commit()``, or passing
    ``session.commit`` around to call later)."""
    return sorted(
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "commit"
    )


def claims(tree: ast.AST) -> list[tuple[str, int]]:
    """(enclosing function, line) of every use of ``unit_of_work.claim`` and of every
    ``from idp.store.unit_of_work import claim``."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = function
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = child.name if not function else f"{function}.{child.name}"
            if (
                isinstance(child, ast.Attribute)
                and child.attr == "claim"
                and isinstance(child.value, ast.Name)
                and child.value.id == "unit_of_work"
            ):
                found.append((function, child.lineno))
            if isinstance(child, ast.ImportFrom) and (child.module or "").endswith(
                "unit_of_work"
            ):
                found.extend(("<import>", child.lineno) for a in child.names if a.name == "claim")
            visit(child, name)

    visit(tree, "")
    return found


def test_only_the_unit_of_work_and_the_allowlist_commit() -> None:
    offenders = []
    for path in modules():
        name = module_name(path)
        if name in ALLOWED_COMMITS:
            continue
        offenders += [f"{name}:{line}" for line in commits(ast.parse(path.read_text()))]
    assert not offenders, (
        "commit outside idp.store.unit_of_work: stage in the repository and let the "
        f"service commit with `with atomic():` -- {offenders}"
    )


def test_the_allowlist_is_not_stale() -> None:
    """A listed module that no longer commits must leave the list (so it stays short)."""
    by_name = {module_name(p): p for p in modules()}
    stale = [
        name
        for name in ALLOWED_COMMITS
        if name not in by_name or not commits(ast.parse(by_name[name].read_text()))
    ]
    assert not stale, f"remove from ALLOWED_COMMITS: {stale}"


def test_claims_only_where_listed() -> None:
    used: set[tuple[str, str]] = set()
    offenders = []
    for path in modules():
        name = module_name(path)
        if name == "idp.store.unit_of_work":
            continue
        for function, line in claims(ast.parse(path.read_text())):
            if (name, function) in CLAIMS:
                used.add((name, function))
            else:
                offenders.append(f"{name}:{line} ({function or 'module level'})")
    assert not offenders, f"unit_of_work.claim outside the listed claims: {offenders}"
    assert used == set(CLAIMS), f"listed claims that no longer claim: {set(CLAIMS) - used}"


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("def f():\n    db.session.commit()\n", [2]),
        ("def f(conn):\n    conn.commit()\n", [2]),
        ("run = partial(db.session.commit)\n", [1]),
        ("with atomic():\n    repo.stage(row)\n", []),
    ],
)
def test_the_scan_sees_commits(source: str, found: list[int]) -> None:
    assert commits(ast.parse(source)) == found


def test_the_scan_sees_claims() -> None:
    source = (
        "from idp.store import unit_of_work\n"
        "def claim_step():\n    with unit_of_work.claim():\n        pass\n"
        "def other():\n    def inner():\n        with unit_of_work.claim():\n            pass\n"
    )
    assert claims(ast.parse(source)) == [("claim_step", 3), ("other.inner", 7)]
    assert claims(ast.parse("from idp.store.unit_of_work import claim\n")) == [("<import>", 1)]
