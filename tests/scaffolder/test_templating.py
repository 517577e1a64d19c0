"""Template expressions: Backstage's syntax and filters, in a sandbox that lets nothing out."""

from __future__ import annotations

import pytest

from scaffolder.templating import Templater, TemplatingError, parse_repo_url, project_slug

CONTEXT = {
    "parameters": {
        "name": "fraud-scorer",
        "owner": "group:default/fraud",
        "tags": ["ml", "tabular"],
        "repoUrl": "github.com?owner=acme&repo=fraud-scorer",
        "replicas": 2,
    },
    "steps": {"fetch": {"output": {"path": "skeleton"}}},
    "user": {"entity": {"metadata": {"name": "ada"}}},
}


@pytest.fixture
def templater() -> Templater:
    return Templater()


def test_expressions_are_filled_in_and_a_lone_expression_keeps_its_type(
    templater: Templater,
) -> None:
    rendered = templater.render_value(
        {
            "title": "${{ parameters.name }} by ${{ user.entity.metadata.name }}",
            "tags": "${{ parameters.tags }}",
            "replicas": "${{ parameters.replicas }}",
            "from": "${{ steps.fetch.output.path }}",
            "nested": ["${{ parameters.name | upper }}", 3],
        },
        CONTEXT,
    )

    assert rendered == {
        "title": "fraud-scorer by ada",
        "tags": ["ml", "tabular"],
        "replicas": 2,
        "from": "skeleton",
        "nested": ["FRAUD-SCORER", 3],
    }


def test_something_missing_renders_as_nothing_as_in_backstage(templater: Templater) -> None:
    assert templater.render_value("${{ parameters.missing.deeper }}", CONTEXT) is None
    assert templater.render_value("[${{ parameters.missing }}]", CONTEXT) == "[]"


def test_backstages_filters(templater: Templater) -> None:
    assert templater.render_value("${{ parameters.repoUrl | parseRepoUrl }}", CONTEXT) == {
        "host": "github.com",
        "owner": "acme",
        "repo": "fraud-scorer",
    }
    assert templater.render_value("${{ parameters.repoUrl | projectSlug }}", CONTEXT) == (
        "acme/fraud-scorer"
    )
    owner = templater.render_value("${{ parameters.owner | parseEntityRef }}", CONTEXT)
    assert owner == {"kind": "group", "namespace": "default", "name": "fraud"}
    assert (
        templater.render_value(
            "${{ 'fraud' | parseEntityRef({'defaultKind': 'group', 'defaultNamespace': 'ml'})"
            " | pick('namespace') }}",
            CONTEXT,
        )
        == "ml"
    )
    assert templater.render_value("${{ parameters.tags | dump }}", CONTEXT) == '["ml", "tabular"]'


def test_content_files_use_values(templater: Templater) -> None:
    text = "# ${{ values.name }}\n\nOwned by ${{ values.owner }}.\n"
    assert templater.render_text(text, {"values": {"name": "scorer", "owner": "fraud"}}) == (
        "# scorer\n\nOwned by fraud.\n"
    )


@pytest.mark.parametrize(
    "escape",
    [
        "${{ ''.__class__.__mro__[1].__subclasses__() }}",
        "${{ parameters.__class__ }}",
        "${{ self._TemplateReference__context }}",
        "${{ parameters.name.format.__globals__ }}",
    ],
)
def test_a_sandbox_escape_is_refused(templater: Templater, escape: str) -> None:
    with pytest.raises(TemplatingError, match="out of a template's reach") as refused:
        templater.render_value({"message": escape}, CONTEXT)
    assert str(refused.value).startswith("input.message")
    assert [problem.field for problem in refused.value.errors] == ["input.message"]


@pytest.mark.parametrize(
    "greedy",
    [
        "${{ 'x' * 10000000 }}",
        "${{ [1] * 2000000 }}",
        "${{ 10 ** 100000 }}",
        "${{ steps.update({'fetch': {'output': {'path': '/etc'}}}) }}",
        "${{ parameters.tags.append('root') }}",
    ],
)
def test_an_expression_may_neither_exhaust_the_portal_nor_change_what_it_is_given(
    templater: Templater, greedy: str
) -> None:
    given = {"parameters": {"tags": ["ml"]}, "steps": {"fetch": {"output": {"path": "s"}}}}

    with pytest.raises(TemplatingError, match=r"out of a template's reach|unsafe|not safely"):
        templater.render_value({"message": greedy}, given)

    assert given == {"parameters": {"tags": ["ml"]}, "steps": {"fetch": {"output": {"path": "s"}}}}
    assert templater.render_value("${{ 'ab' * 3 }} ${{ 2 ** 10 }}", CONTEXT) == "ababab 1024"


def test_nothing_outside_what_it_is_given_is_reachable(templater: Templater) -> None:
    for name in ("open", "os", "config", "request", "cycler", "lipsum", "namespace", "joiner"):
        found = templater.render_value("${{ " + name + " }}", CONTEXT)
        assert found in (None, ""), name


def test_a_syntax_error_names_its_line(templater: Templater) -> None:
    with pytest.raises(TemplatingError) as refused:
        templater.render_text("line one\nline two ${{ parameters.name | }}\n", CONTEXT)
    assert refused.value.line == 2
    assert "line 2" in str(refused.value)
    assert refused.value.errors[0].field == "template"
    assert refused.value.errors[0].message.endswith("(line 2)")


def test_a_repository_location_must_name_a_host_and_a_repo() -> None:
    assert parse_repo_url("gitlab.example.com?organization=ml&repo=x") == {
        "host": "gitlab.example.com",
        "repo": "x",
        "organization": "ml",
    }
    assert project_slug("gitlab.example.com?organization=ml&repo=x") == "ml/x"
    for bad in ("github.com", "?repo=x", "github.com?owner=acme"):
        with pytest.raises(ValueError, match="expected host"):
            parse_repo_url(bad)
