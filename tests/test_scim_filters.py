"""The SCIM filter grammar (RFC 7644 §3.4.2.2): parsing, precedence, errors,
compilation to predicates and evaluation against JSON elements. No database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from idp.store import predicates as p
from scim.errors import ScimError
from scim.filter_compiler import Compiler
from scim.filters import (
    And,
    AttrPath,
    Cmp,
    Not,
    Or,
    Pr,
    ValuePath,
    compare,
    matches,
    parse,
)
from scim.schema import GROUP_SCHEMA, user_schema

SCHEMA = user_schema(["ship_to"])


def compiled(text: str) -> p.Predicate:
    return Compiler(SCHEMA).compile(parse(text))


def test_every_operator_parses() -> None:
    for op in ("eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"):
        assert parse(f'title {op} "x"') == Cmp(AttrPath(None, "title"), op, "x")
    assert parse("title pr") == Pr(AttrPath(None, "title"))


def test_keywords_and_operators_are_case_insensitive() -> None:
    assert parse('userName EQ "a" AND NOT (title Pr)') == And(
        Cmp(AttrPath(None, "userName"), "eq", "a"), Not(Pr(AttrPath(None, "title")))
    )


def test_precedence_not_and_or() -> None:
    a, b, c = (Cmp(AttrPath(None, n), "eq", 1) for n in ("a", "b", "c"))
    assert parse("a eq 1 or b eq 1 and c eq 1") == Or(a, And(b, c))
    assert parse("(a eq 1 or b eq 1) and c eq 1") == And(Or(a, b), c)
    assert parse("a eq 1 and b eq 1 or c eq 1") == Or(And(a, b), c)


def test_values() -> None:
    assert parse('title eq "a \\"quoted\\" \\u00e4"').value == 'a "quoted" ä'
    assert parse("active eq true").value is True
    assert parse("active eq FALSE").value is False
    assert parse("title eq null").value is None
    assert parse("x eq 42").value == 42 and parse("x eq -1.5e2").value == -150.0
    # Entra writes unquoted values.
    assert parse("externalId eq jyoung").value == "jyoung"
    assert parse("externalId eq 0a21f0f2-8d2a").value == "0a21f0f2-8d2a"


def test_paths_with_urns_and_value_filters() -> None:
    urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    assert parse(f'{urn}:employeeNumber eq "1"').path == AttrPath(urn, "employeeNumber")
    assert parse(f'{urn}:manager.value eq "m"').path == AttrPath(urn, "manager", "value")
    node = parse('emails[type eq "work" and value co "@acme"]')
    assert isinstance(node, ValuePath) and node.path == AttrPath(None, "emails")
    node = parse('emails[type eq "work"].value eq "a@b.c"')
    assert node == ValuePath(AttrPath(None, "emails"), And(
        Cmp(AttrPath(None, "type"), "eq", "work"), Cmp(AttrPath(None, "value"), "eq", "a@b.c")))


@pytest.mark.parametrize("bad", [
    "", "   ", "userName", 'userName eq', 'userName xx "a"', '(userName eq "a"',
    'userName eq "a")', 'userName eq "a" and', 'emails[type eq "work"', '"a" eq userName',
    'userName eq "unterminated', "name.a.b eq 1", "a eq 1 or or b eq 1",
    "not userName eq 1", "x" * 5000,
])
def test_malformed_filters_are_invalid_filter(bad: str) -> None:
    with pytest.raises(ScimError) as err:
        compiled(bad)
    assert err.value.status == 400 and err.value.scim_type == "invalidFilter"


def test_deep_nesting_is_refused_not_crashing() -> None:
    with pytest.raises(ScimError):
        parse("(" * 200 + 'title eq "x"' + ")" * 200)


def test_compile_maps_to_domain_fields() -> None:
    assert compiled('USERNAME eq "A@B.C"') == p.Compare("user_name", "eq", "A@B.C", False)
    assert compiled('externalId eq "X"') == p.Compare("external_id", "eq", "X", True)
    assert compiled('name.givenName sw "An"') == p.Compare("given_name", "sw", "An", False)
    assert compiled("active eq true") == p.Compare("active", "eq", True, False)
    assert compiled('ship_to co "Berl"') == p.Compare("extra.ship_to", "co", "Berl", False)
    urn = "urn:unitgate:params:scim:schemas:extension:unit:2.0:User"
    assert compiled(f'{urn}:SHIP_TO pr') == p.Present("extra.ship_to")
    when = compiled('meta.lastModified gt "2024-01-02T03:04:05Z"')
    assert when == p.Compare("updated_at", "gt", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))


def test_virtual_email_elements_fold_constants() -> None:
    assert compiled('emails[type eq "work"].value eq "a@b.c"') == p.AllOf((
        p.Present("email"),
        p.AllOf((p.Constant(True), p.Compare("email", "eq", "a@b.c", False))),
    ))
    assert compiled('emails[type eq "home"]') == p.AllOf((p.Present("email"), p.Constant(False)))
    assert compiled('emails eq "a@b.c"') == p.AllOf(
        (p.Present("email"), p.Compare("email", "eq", "a@b.c", False)))


def test_group_relations() -> None:
    expected = p.Related("groups", p.Compare("id", "eq", "g1", True))
    assert compiled('groups.value eq "g1"') == expected
    group = Compiler(GROUP_SCHEMA).compile(parse('id eq "g" and members[value eq "u"]'))
    assert group == p.AllOf((p.Compare("id", "eq", "g", True),
                             p.Related("members", p.Compare("id", "eq", "u", True))))


@pytest.mark.parametrize("bad", [
    'nickName eq "x"', 'name.middleName eq "x"', 'active gt true', 'active eq "yes"',
    'meta.created gt "yesterday"', 'title eq true', 'title gt null', 'name.formatted eq "x"',
    'emails[nope eq "x"]', 'userName[value eq "x"]',
])
def test_unfilterable_is_invalid_filter(bad: str) -> None:
    with pytest.raises(ScimError) as err:
        compiled(bad)
    assert err.value.scim_type == "invalidFilter"


def test_lenient_compiler_for_root_search() -> None:
    assert Compiler(GROUP_SCHEMA, lenient=True).compile(parse('userName eq "a"')) == p.Constant(
        False)


def test_evaluation_against_elements() -> None:
    members = [{"value": "u1", "display": "Ann"}, {"value": "U2", "display": "bob"}]
    f = parse('value eq "u2"')
    assert [matches(f, m) for m in members] == [False, True]
    assert [matches(f, m, {"value"}) for m in members] == [False, False]
    assert matches(parse('display sw "B" and not (value eq "u1")'), members[1])
    assert matches(parse("primary eq true"), {"primary": "True"})
    assert not matches(parse("type pr"), {"type": ""})
    assert compare(5, "gt", 3) and not compare("b", "lt", "a")
    assert not compare(None, "gt", 1) and compare(None, "eq", None)
