"""The API's contract: OpenAPI document, problem details for every error, probes."""

from __future__ import annotations

import re

import pytest

from conftest import make_app

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def spec(app) -> dict:
    response = app.test_client().get("/api/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "patch", "put", "delete"}:
                yield path, method, operation


def test_every_api_route_is_documented(app, spec):
    documented = {(p, m.upper()) for p, m, _ in operations(spec)}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, (path, method)


def test_every_operation_documents_its_errors_as_problem_details(spec):
    public = {"/api/v1/auth/login", "/api/v1/auth/refresh"}
    for path, method, operation in operations(spec):
        responses = operation["responses"]
        assert any(code.startswith("2") for code in responses), (path, method)
        assert "default" in responses, (path, method)
        if path in public:
            assert operation["security"] == []
        else:
            assert "401" in responses, (path, method)
        json_body = "application/json" in operation.get("requestBody", {}).get("content", {})
        if json_body or any(p["in"] == "query" for p in operation.get("parameters", [])):
            assert "422" in responses, (path, method)
        elif "requestBody" in operation:  # tus: raw bytes, refused with 400 when malformed
            assert "400" in responses, (path, method)
        if "x-roles" in operation:
            assert "403" in responses, (path, method)
    for name, response in spec["components"]["responses"].items():
        if name in {"DEFAULT_ERROR", "UNAUTHORIZED", "NOT_FOUND", "CONFLICT"}:
            assert list(response["content"]) == [PROBLEM], name
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_interactive_docs_are_served_without_outside_network(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert b"/api/docs/assets/swagger-ui-bundle.js" in page.data
    assert b"https://" not in page.data.split(b"<body")[0]
    script = client.get("/api/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.data) > 100_000


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/api/v1/nowhere", 404), ("DELETE", "/api/v1/workflows", 405)],
)
def test_routing_errors_are_problems(api, world, method, path, status):
    response = api.request(method, path, world.user("a1.officer"))
    assert response.status_code == status
    assert response.content_type == PROBLEM
    body = response.get_json()
    assert body["status"] == status and body["type"].startswith("urn:fieldcase:problem:")
    assert body["request_id"] == response.headers["X-Request-Id"]


def test_malformed_json_and_oversized_bodies_are_refused(api, world):
    officer = world.user("a1.officer")
    malformed = api.post(
        "/api/v1/incidents",
        officer,
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert malformed.status_code in (400, 422)
    assert malformed.content_type == PROBLEM
    huge = api.post(
        "/api/v1/incidents",
        officer,
        data=b"x" * (1024 * 1024 + 1),
        headers={"Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    assert huge.content_type == PROBLEM


def test_server_errors_say_nothing_of_the_cause(database_url, tmp_path, api, world):
    failing = make_app(database_url, tmp_path)

    @failing.get("/api/v1/explode")
    def explode() -> None:
        raise RuntimeError("secret stack detail")

    token = api.token(world.user("a1.officer"))
    response = failing.test_client().get(
        "/api/v1/explode", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "secret stack detail" not in body and "Traceback" not in body
    assert response.content_type == PROBLEM


def test_request_ids_are_echoed_or_made(api, world):
    officer = world.user("a1.officer")
    given = api.get("/api/v1/me", officer, headers={"X-Request-Id": "abcdef123456"})
    assert given.headers["X-Request-Id"] == "abcdef123456"
    made = api.get("/api/v1/me", officer, headers={"X-Request-Id": "bad id with spaces"})
    assert made.headers["X-Request-Id"] != "bad id with spaces"
    assert len(made.headers["X-Request-Id"]) == 32


def test_health_probes(client, database_url, tmp_path):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["status"] == "ready"
    broken = make_app("sqlite:///" + str(tmp_path / "missing" / "no.db"), tmp_path)
    response = broken.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.content_type == PROBLEM
