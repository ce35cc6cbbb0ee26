"""Error bodies per format, validation summaries, and API-key handling."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.requests import Request

from app.api.auth import Authenticator, KeyEntry, key_id, load_keys
from app.api.errors import error_format
from app.config import AuthConfig
from app.protocol import ApiError, ApiException
from app.translators import anthropic_format, native, openai_format
from app.translators.validation import summarize

NOT_FOUND = ApiError.model_not_found("nope")


def test_error_shapes_per_format() -> None:
    assert native.to_error(NOT_FOUND) == (404, {"detail": NOT_FOUND.message})
    status, body = openai_format.to_error(NOT_FOUND)
    assert status == 404 and body["error"]["code"] == "model_not_found"
    assert set(body["error"]) == {"message", "type", "param", "code"}
    status, body = anthropic_format.to_error(NOT_FOUND)
    assert status == 404
    assert body == {
        "type": "error",
        "error": {"type": "not_found_error", "message": NOT_FOUND.message},
    }


@pytest.mark.parametrize(
    "status,openai_type,anthropic_type",
    [
        (422, "invalid_request_error", "invalid_request_error"),
        (401, "authentication_error", "authentication_error"),
        (413, "invalid_request_error", "request_too_large"),
        (429, "rate_limit_error", "rate_limit_error"),
        (503, "server_error", "api_error"),
    ],
)
def test_status_to_type_mapping(status: int, openai_type: str, anthropic_type: str) -> None:
    error = ApiError(status, "x", "m")
    openai_status, openai_body = openai_format.to_error(error)
    assert openai_body["error"]["type"] == openai_type
    assert openai_status == (400 if status == 422 else status)
    assert anthropic_format.to_error(error)[1]["error"]["type"] == anthropic_type


@pytest.mark.parametrize(
    "path,headers,expected",
    [
        ("/inference", {}, "native"),
        ("/v1/chat/completions", {}, "openai"),
        ("/v1/messages", {}, "anthropic"),
        ("/v1/models", {"anthropic-version": "2023-06-01"}, "anthropic"),
    ],
)
def test_error_format_by_path(path: str, headers: dict, expected: str) -> None:
    assert error_format(path, headers) == expected


def test_summarize_never_echoes_input() -> None:
    errors = [
        {"loc": ("body", "text"), "msg": "Value error, text must not be empty", "input": "SECRET"}
    ]
    assert summarize(errors) == "text: text must not be empty"


def _request(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "headers": raw, "method": "POST", "path": "/"})


def test_keys_from_file_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys_file = tmp_path / "keys.yaml"
    keys_file.write_text("pio_sk_a: proj-a\n")
    monkeypatch.setenv("TEST_KEYS", "pio_sk_b=proj-b, pio_sk_c=proj-c")
    keys = load_keys(AuthConfig(keys_file=str(keys_file), keys_env="TEST_KEYS"))
    projects = {key: entry.project for key, entry in keys.items()}
    assert projects == {"pio_sk_a": "proj-a", "pio_sk_b": "proj-b", "pio_sk_c": "proj-c"}


def test_long_form_key_entries(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.yaml"
    keys_file.write_text(
        "pio_sk_a:\n  project: proj-a\n  projects: [shared]\n  gliner2_model: m\n"
        "  rate_limits: {inference: [{requests: 3, window_s: 2}]}\n"
    )
    entry = load_keys(AuthConfig(keys_file=str(keys_file), keys_env=None))["pio_sk_a"]
    principal = Authenticator({"pio_sk_a": entry})(_request({"X-API-Key": "pio_sk_a"}))
    assert principal.gliner2_model == "m" and principal.rate_limits["inference"][0].requests == 3
    assert principal.project_for(None) == "proj-a"
    assert principal.project_for("shared") == "shared"
    with pytest.raises(ApiException) as caught:
        principal.project_for("someone-else")
    assert caught.value.error.status == 403
    keys_file.write_text("pio_sk_a: {project: p, colour: red}\n")
    with pytest.raises(ValueError, match="colour") as refused:
        load_keys(AuthConfig(keys_file=str(keys_file), keys_env=None))
    assert "pio_sk_a" not in str(refused.value)  # the key itself stays out of logs


def test_malformed_env_keys_fail_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_KEYS", "no-equals-sign")
    with pytest.raises(ValueError, match="key=project"):
        load_keys(AuthConfig(keys_env="TEST_KEYS"))


def test_authenticator_with_keys() -> None:
    auth = Authenticator({"pio_sk_a": KeyEntry(project="proj-a")})
    principal = auth(_request({"Authorization": "Bearer pio_sk_a"}))
    assert principal.project_id == "proj-a" and principal.key_id == key_id("pio_sk_a")
    assert "pio_sk_a" not in principal.key_id
    for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Basic pio_sk_a"}):
        with pytest.raises(ApiException) as caught:
            auth(_request(headers))
        assert caught.value.error.status == 401


def test_open_server_logs_once_and_lets_everyone_in(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="ray.serve")
    auth = Authenticator({})
    assert "open to any caller" in caplog.text
    assert auth(_request({})).project_id is None
    assert auth(_request({"X-API-Key": "anything"})).key_id == key_id("anything")


def test_a_key_without_a_project_is_refused(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.yaml"
    keys_file.write_text('pio_sk_a: ""\n')
    with pytest.raises(ValueError, match="at least 1 character"):
        load_keys(AuthConfig(keys_file=str(keys_file), keys_env=None))
