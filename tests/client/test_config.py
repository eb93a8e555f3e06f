"""Building a client: credentials, endpoints, HTTPS only, and secrets kept out of sight."""

from __future__ import annotations

import logging

import httpx
import pytest

from agile_async import (
    AgileClient,
    AuthenticationError,
    ClientClosedError,
    ClientState,
    ConfigurationError,
)

SECRET = "s3cr3t-api-key-value"


async def sent_headers(**kwargs: object) -> httpx.Headers:
    """The headers a client made with ``kwargs`` sends (on its own pool, in memory)."""
    seen: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(401, json={"code": 1, "message": "no"})

    async with AgileClient(**kwargs, transport=httpx.MockTransport(refuse)) as client:  # type: ignore[arg-type]
        with pytest.raises(AuthenticationError):
            await client.credit()
    (request,) = seen
    return request.headers


@pytest.mark.anyio
async def test_api_key_from_the_argument() -> None:
    client = AgileClient(api_key=SECRET)
    assert str(client.base_url) == "https://secure.agiletelecom.com/services/"
    headers = await sent_headers(api_key=SECRET)
    assert headers["X-Api-Key"] == SECRET
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"].startswith("agile-async/")


def test_new_accounts_use_their_own_base_url() -> None:
    client = AgileClient(api_key=SECRET, account="new")
    assert str(client.base_url) == "https://http-api.agiletelecom.com/services/"


def test_base_url_overrides_and_gains_a_trailing_slash() -> None:
    client = AgileClient(api_key=SECRET, base_url="https://sms.example.test/api")
    assert str(client.base_url) == "https://sms.example.test/api/"
    assert str(client._send_url) == "https://sms.example.test/api/sms/send"


@pytest.mark.parametrize(
    "url", ["http://secure.agiletelecom.com/services/", "ftp://x/", "secure.agiletelecom.com"]
)
def test_only_https_is_accepted(url: str) -> None:
    with pytest.raises(ConfigurationError, match="https://"):
        AgileClient(api_key=SECRET, base_url=url)


def test_an_unknown_account_kind_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="'legacy' or 'new'"):
        AgileClient(api_key=SECRET, account="old")  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_environment_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGILE_API_KEY", SECRET)
    monkeypatch.setenv("AGILE_BASE_URL", "https://env.example.test/services/")
    client = AgileClient()
    assert (await sent_headers())["X-Api-Key"] == SECRET
    assert str(client.base_url) == "https://env.example.test/services/"


@pytest.mark.anyio
async def test_environment_basic_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGILE_USERNAME", "user")
    monkeypatch.setenv("AGILE_PASSWORD", "pass")
    assert (await sent_headers())["Authorization"] == "Basic dXNlcjpwYXNz"


@pytest.mark.anyio
async def test_explicit_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGILE_API_KEY", "from-env")
    headers = await sent_headers(username="user", password="pass")
    assert "X-Api-Key" not in headers
    assert headers["Authorization"] == "Basic dXNlcjpwYXNz"


def test_no_credentials_names_the_variables() -> None:
    with pytest.raises(ConfigurationError, match="AGILE_API_KEY"):
        AgileClient()


def test_half_a_password_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="password is missing"):
        AgileClient(username="user")


def test_key_and_password_together_are_ambiguous() -> None:
    with pytest.raises(ConfigurationError, match="either api_key or username"):
        AgileClient(api_key=SECRET, username="u", password="p")


def test_http_client_and_transport_together_are_ambiguous() -> None:
    with pytest.raises(ConfigurationError, match="either http_client or transport"):
        AgileClient(
            api_key=SECRET,
            http_client=httpx.AsyncClient(),
            transport=httpx.AsyncHTTPTransport(),
        )


def test_repr_never_shows_a_secret() -> None:
    for client in (AgileClient(api_key=SECRET), AgileClient(username="u", password=SECRET)):
        text = repr(client)
        assert SECRET not in text
        assert "dTo" not in text  # no base64 of the credentials either
        assert "auth=" in text
        assert repr(client._credentials).endswith("***>")


@pytest.mark.anyio
async def test_a_closed_client_refuses_work() -> None:
    client = AgileClient(api_key=SECRET)
    async with client:
        assert client.state is ClientState.OPENED
    assert client.is_closed
    with pytest.raises(ClientClosedError, match="closed"):
        await client.credit()
    with pytest.raises(ClientClosedError, match="reopen"):
        await client.__aenter__()
    await client.aclose()  # closing twice is harmless


@pytest.mark.anyio
async def test_a_callers_http_client_is_left_open() -> None:
    async with httpx.AsyncClient() as http:
        client = AgileClient(api_key=SECRET, http_client=http)
        await client.aclose()
        assert not http.is_closed


def test_nothing_secret_is_logged_at_construction(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    AgileClient(api_key=SECRET)
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"api_key": "key\n"}, "api_key"),
        ({"api_key": "kéy"}, "api_key"),
        ({"api_key": "k\ud800"}, "api_key"),
        ({"api_key": 12345}, "api_key"),
        ({"username": "u\ud800", "password": "p"}, "username"),
        ({"username": "u", "password": "p\x00"}, "password"),
        ({"username": "u:x", "password": "p"}, "username"),
        ({"username": b"u", "password": "p"}, "username"),
    ],
)
def test_credentials_no_request_could_carry_are_refused_naming_the_field(
    arguments: dict[str, object], field: str
) -> None:
    with pytest.raises(ConfigurationError, match=field) as caught:
        AgileClient(**arguments)  # type: ignore[arg-type]
    for value in arguments.values():
        if isinstance(value, str) and len(value) > 1:
            assert value not in str(caught.value)


def test_basic_credentials_in_any_language_are_fine() -> None:
    client = AgileClient(username="Zoë", password="pässwörd:with colon")
    assert client.state.value == "unopened"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"timeout": 0}, "timeout must be > 0 s, got 0"),
        ({"timeout": -1}, "timeout must be > 0 s, got -1"),
        ({"timeout": float("nan")}, "timeout must be a number > 0 s, got nan"),
        ({"timeout": "5"}, "timeout must be a number > 0 s, got '5'"),
        ({"retry": 3}, "retry must be a RetryPolicy or None, got 3"),
        ({"options": {"enable_unicode": False}}, "options must be a SendOptions or None"),
        ({"limits": 10}, "limits must be an httpx.Limits, got 10"),
        ({"http2": "yes"}, "http2 must be True or False, got 'yes'"),
    ],
)
def test_settings_are_checked_where_the_client_is_made(
    arguments: dict[str, object], expected: str
) -> None:
    """The constructor checks its settings as with_options() and each call do: a wrong one
    fails at once, naming it, instead of at the first send (or never, for a timeout of 0)."""
    with pytest.raises(ConfigurationError) as caught:
        AgileClient(api_key="k", **arguments)  # type: ignore[arg-type]
    assert expected in str(caught.value)


def test_the_sync_client_checks_its_settings_too() -> None:
    from agile_async.sync import AgileClient as SyncAgileClient

    with pytest.raises(ConfigurationError, match="timeout must be > 0 s"):
        SyncAgileClient(api_key="k", timeout=0)
