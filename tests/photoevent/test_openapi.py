"""The OpenAPI document: valid, complete (every /api/ route), errors described, docs page self-hosted."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.validation import validate_schema

# The schema and its page describe the API; they are not part of it.
NOT_DESCRIBED = {"api-schema", "api-docs"}
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def api_routes() -> Iterator[tuple[str, URLPattern]]:
    """Every route of the URLconf under /api/, as an OpenAPI path, with its pattern."""

    def walk(patterns: list, prefix: str) -> Iterator[tuple[str, URLPattern]]:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, route)
            elif route.startswith("api/"):
                yield "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route), pattern

    yield from walk(get_resolver().url_patterns, "")


@pytest.fixture
def schema(db: None) -> dict:
    response = Client().get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def test_the_schema_is_valid_openapi_3(schema: dict) -> None:
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")


def test_the_yaml_schema_is_served_too(db: None) -> None:
    response = Client().get("/api/schema/")
    assert response.status_code == 200
    assert b"openapi: 3" in response.content


def test_every_api_route_and_method_is_in_the_schema(schema: dict) -> None:
    routes = [(path, p) for path, p in api_routes() if p.name not in NOT_DESCRIBED]
    assert len(routes) > 15, "the URLconf walk found the API"
    missing = []
    for path, pattern in routes:
        view_class = getattr(pattern.callback, "view_class", None) or getattr(pattern.callback, "cls", None)
        methods = [m for m in HTTP_METHODS if view_class is not None and hasattr(view_class, m)]
        for method in methods:
            if method not in schema["paths"].get(path, {}):
                missing.append(f"{method.upper()} {path} (URL name {pattern.name!r})")
    assert not missing, "/api/ routes missing from the OpenAPI schema (describe them in photoevent/openapi.py):\n" + (
        "\n".join(missing)
    )


def test_every_operation_describes_its_answer_and_its_errors(schema: dict) -> None:
    undescribed = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            success = [code for code in responses if code.startswith("2")]
            errors = [code for code in responses if code[0] in "45"]
            bodies_ok = all(code == "204" or "content" in responses[code] for code in success)
            if not success or not errors or not bodies_ok:
                undescribed.append(f"{method.upper()} {path}")
    assert not undescribed, "operations without a described answer or error (photoevent/openapi.py):\n" + (
        "\n".join(undescribed)
    )


def test_errors_are_the_detail_shape(schema: dict) -> None:
    components = schema["components"]["schemas"]
    assert components["Error"]["properties"]["detail"]["type"] == "string"
    upload = schema["paths"]["/api/photographer/events/{event_id}/upload-photos"]["post"]
    assert upload["responses"]["404"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/Error"


def test_the_upload_is_described_as_multipart_files(schema: dict) -> None:
    upload = schema["paths"]["/api/photographer/events/{event_id}/upload-photos"]["post"]
    body = upload["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]
    photos = schema["components"]["schemas"][body]["properties"]["photos"]
    assert photos["type"] == "array"
    assert photos["items"] == {"type": "string", "format": "binary"}
    assert set(upload["responses"]) >= {"202", "400", "401", "403", "404", "429", "503"}


def test_the_docs_page_is_self_hosted_without_inline_code(db: None) -> None:
    client = Client()
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "cdn" not in html.lower()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "an inline script"
    assert "<style" not in html and "style=" not in html
    sources = re.findall(r'<script src="([^"]+)"', html)
    assert any("swagger-ui-bundle.js" in src for src in sources)
    for src in sources:
        response = client.get(src.replace("&amp;", "&"))
        assert response.status_code == 200, src
    init = client.get("/api/docs/?script=")
    assert init["Content-Type"].startswith("application/javascript")
    assert b"/api/schema/" in init.content
