"""google.api.http path templates: parsing, matching, specificity."""

from __future__ import annotations

import pytest

from modelplane.gateway.path_template import TemplateSyntaxError, parse_template


def test_simple_variable_matches_one_segment_and_decodes_it() -> None:
    t = parse_template("/v1/models/{name}")
    assert t.match("/v1/models/fraud%20v2") == {"name": "fraud v2"}
    assert t.match("/v1/models/a/b") is None
    assert t.match("/v1/models/") is None
    assert t.openapi_path == "/v1/models/{name}"


def test_variable_with_segments_captures_the_resource_name() -> None:
    t = parse_template("/v1/{name=shelves/*/widgets/*}")
    assert t.match("/v1/shelves/s1/widgets/w1") == {"name": "shelves/s1/widgets/w1"}
    assert t.match("/v1/shelves/s1/things/w1") is None
    assert t.variables[0].multi_segment


def test_double_star_spans_segments() -> None:
    t = parse_template("/v1/files/{path=**}")
    assert t.match("/v1/files/a/b/c.txt") == {"path": "a/b/c.txt"}
    assert t.match("/v1/files/") is None


def test_custom_verb_and_nested_field_path() -> None:
    t = parse_template("/v1/{deployment.name=deployments/*}:setTrafficSplit")
    assert t.verb == "setTrafficSplit"
    assert t.match("/v1/deployments/d1:setTrafficSplit") == {"deployment.name": "deployments/d1"}
    assert t.match("/v1/deployments/d1") is None
    assert t.openapi_path == "/v1/{deployment_name}:setTrafficSplit"


def test_verb_on_literal_collection() -> None:
    t = parse_template("/v1/models:resolve")
    assert t.verb == "resolve" and t.match("/v1/models:resolve") == {}
    assert t.match("/v1/models") is None


def test_templates_with_a_verb_sort_first() -> None:
    plain = parse_template("/v1/models/{name}")
    verb = parse_template("/v1/models/{name}:resolve")
    assert min([plain, verb], key=lambda t: t.specificity) is verb


@pytest.mark.parametrize("bad", ["v1/models", "/v1/{name", "/v1/name}", "/v1/{na-me}",
                                 "/v1/models:", "/v1//x", "/v1/{name=}"])
def test_malformed_templates_are_rejected(bad: str) -> None:
    with pytest.raises(TemplateSyntaxError):
        parse_template(bad)
