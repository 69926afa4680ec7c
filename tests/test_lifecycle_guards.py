"""Guards of the one account lifecycle (an AST scan of ``idp/``, no app needed):

* only :mod:`idp.accounts.lifecycle` constructs an :class:`~idp.store.models.Account`, so no
  path creates an account around the lifecycle's rules (ownership, audit), and only
  :mod:`idp.accounts.accesses` (its access half) constructs an :class:`~idp.store.models.Access`;
* no module compares or assigns an account status as a string literal: the values are
  :class:`~idp.store.models.AccountStatus` (the enum's own definition aside);
* the repositories the lifecycle writes through only stage: they never commit.
"""

from __future__ import annotations

import ast
from pathlib import Path

IDP = Path(__file__).resolve().parent.parent / "idp"
LIFECYCLE = IDP / "accounts" / "lifecycle.py"
ACCESSES = IDP / "accounts" / "accesses.py"
STATUS_VALUES = {"active", "blocked", "deactivated", "deleted"}
STAGING_REPOSITORIES = (
    "store/accounts_repo.py",
    "store/accesses_repo.py",
    "store/upstream_identities_repo.py",
)


def modules() -> list[Path]:
    return sorted(p for p in IDP.rglob("*.py") if "migrations" not in p.parts)


def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def constructs(node: ast.AST, model: str) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Name) and func.id == model) or (
        isinstance(func, ast.Attribute) and func.attr == model
    )


def constructs_account(node: ast.AST) -> bool:
    return constructs(node, "Account")


def test_only_the_lifecycle_constructs_an_account() -> None:
    found = [
        f"{path.relative_to(IDP.parent)}:{node.lineno}"
        for path in modules()
        for node in ast.walk(tree(path))
        if constructs_account(node)
    ]
    assert found == [f"idp/accounts/lifecycle.py:{line}" for line in _lifecycle_lines()]
    assert len(found) == 1, found


def test_only_the_accesses_module_constructs_an_access() -> None:
    found = [
        f"{path.relative_to(IDP.parent)}:{node.lineno}"
        for path in modules()
        for node in ast.walk(tree(path))
        if constructs(node, "Access")
    ]
    lines = [n.lineno for n in ast.walk(tree(ACCESSES)) if constructs(n, "Access")]
    assert found == [f"idp/accounts/accesses.py:{line}" for line in lines]
    assert len(found) == 1, found


def _lifecycle_lines() -> list[int]:
    return [n.lineno for n in ast.walk(tree(LIFECYCLE)) if constructs_account(n)]


def test_the_scan_sees_a_construction() -> None:
    """The scan is not blind: it finds both spellings."""
    sample = ast.parse("a = Account(email='x')\nb = models.Account()\nc = Accounts()")
    assert [constructs_account(n) for n in ast.walk(sample)].count(True) == 2


def _status_literal(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value in STATUS_VALUES


def _is_status(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "status") or (
        isinstance(node, ast.Name) and node.id == "status"
    )


def status_literals(module: ast.Module) -> list[int]:
    """Lines where an account-like ``status`` is compared with, or set to, a literal
    status value (``x.status == "active"``, ``x.status = "blocked"``)."""
    lines = []
    for node in ast.walk(module):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_is_status(s) for s in sides) and any(_status_literal(s) for s in sides):
                lines.append(node.lineno)
        elif (
            isinstance(node, ast.Assign)
            and any(_is_status(t) for t in node.targets)
            and _status_literal(node.value)
        ):
            lines.append(node.lineno)
    return lines


def test_no_status_string_literals_outside_the_enum() -> None:
    found = [
        f"{path.relative_to(IDP.parent)}:{line}"
        for path in modules()
        for line in status_literals(tree(path))
    ]
    assert found == []


def test_the_status_scan_sees_a_literal() -> None:
    sample = ast.parse("if a.status == 'active': a.status = 'blocked'\nok = a.state == 'active'")
    assert status_literals(sample) == [1, 1]


def test_the_staging_repositories_never_commit() -> None:
    for name in STAGING_REPOSITORIES:
        calls = [
            node.lineno
            for node in ast.walk(tree(IDP / name))
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "commit"
        ]
        assert calls == [], f"{name} commits at lines {calls}"
