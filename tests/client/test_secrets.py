"""No secret is reachable from any error the SDK raises, nor in its logs (issue 10, defect 8).

"Reachable" is what an error tracker that serialises exceptions may walk: attributes,
``__dict__``/``__slots__``, ``args``, ``__cause__``/``__context__``, ``__notes__``, the httpx
Request/Response/Headers/URL objects inside, ``repr``/``str`` of everything. The secrets: the
API key, the password, the Basic token (base64 of ``user:password``), a password written in
the base URL's userinfo, each also in its base64 and percent-encoded forms.
"""

from __future__ import annotations

import base64
import enum
import functools
import logging
import socket
import types
from collections.abc import AsyncIterator, Iterator, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
import pytest

import agile_async as aa
from agile_async import AgileClient, Message, RetryPolicy
from agile_async.testing import FakeAgileServer, Fault

API_KEY = "k3y-never-reachable"
USER = "acme"
PASSWORD = "pa55-never-reachable"
URL_PASSWORD = "ur1-pa55-never-reachable"
URL_USER = "gateway"
HOST = "fake.agiletelecom.test"

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.fake(api_key=API_KEY, username=USER, password=PASSWORD),
]

API_ERRORS: tuple[type[aa.APIError], ...] = (
    aa.AuthenticationError,
    aa.InsufficientCreditError,
    aa.DestinationNotAllowedError,
    aa.UnknownAPIError,
    aa.InvalidDestinationError,
    aa.ServerError,
    aa.ServiceTimeoutError,
    aa.GlobalIdLengthError,
    aa.SenderNotAllowedError,
    aa.IPNotAllowedError,
)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret_forms() -> dict[str, str]:
    """Every secret and every encoding of it worth looking for, by name."""
    forms: dict[str, str] = {}
    for name, secret in (("api key", API_KEY), ("password", PASSWORD), ("url", URL_PASSWORD)):
        forms[name] = secret
        forms[f"{name} (base64)"] = _b64(secret)
        forms[f"{name} (percent-encoded)"] = quote(secret, safe="")
    forms["basic token"] = _b64(f"{USER}:{PASSWORD}")
    forms["url basic token"] = _b64(f"{URL_USER}:{URL_PASSWORD}")
    return forms


SECRETS = secret_forms()

#: Things not walked into: code, not data an error tracker serialises.
_OPAQUE = (
    types.ModuleType,
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.CodeType,
    types.FrameType,
    types.TracebackType,
)


def _children(obj: object) -> Iterator[tuple[str, object]]:
    if isinstance(obj, BaseException):
        yield "args", obj.args
        yield "__cause__", obj.__cause__
        yield "__context__", obj.__context__
        yield "__notes__", getattr(obj, "__notes__", None)
        yield "exceptions", getattr(obj, "exceptions", None)
    if isinstance(obj, httpx.Request):
        yield "url", obj.url
        yield "headers", obj.headers
        yield "content", _safely(lambda: obj.content)
    if isinstance(obj, httpx.Response):
        yield "request", _safely(lambda: obj.request)
        yield "headers", obj.headers
        yield "content", _safely(lambda: obj.content)
    if isinstance(obj, httpx.Headers):
        yield "raw", obj.raw
    if isinstance(obj, httpx.URL):
        yield "userinfo", obj.userinfo
    if isinstance(obj, types.MethodType):
        yield "__self__", obj.__self__
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            yield f"[{key!r}]", key
            yield f"[{key!r}]", value
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for index, item in enumerate(obj):
            yield f"[{index}]", item
    for name, value in getattr(obj, "__dict__", {}).items():
        yield f".{name}", value
    for cls in type(obj).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            if hasattr(obj, slot):
                yield f".{slot}", getattr(obj, slot)


def _safely(read: Any) -> object:
    try:
        return read()
    except Exception:
        return None


def leaks(root: object, secrets: Mapping[str, str] = SECRETS) -> list[str]:
    """Where, in everything reachable from ``root``, a secret appears (by path and name)."""
    found: list[str] = []
    seen: set[int] = set()
    stack: list[tuple[object, str]] = [(root, "error")]
    while stack:
        obj, path = stack.pop()
        if obj is None or id(obj) in seen or isinstance(obj, (bool, int, float, Decimal)):
            continue
        seen.add(id(obj))
        if isinstance(obj, (str, bytes, bytearray)):
            text = obj if isinstance(obj, str) else bytes(obj).decode("latin-1")
            found += [f"{path}: {name}" for name, s in secrets.items() if s in text]
            continue
        if isinstance(obj, (*_OPAQUE, enum.Enum)):
            continue
        stack.append((_safely(functools.partial(repr, obj)), f"repr({path})"))
        stack.append((_safely(functools.partial(str, obj)), f"str({path})"))
        stack.extend((child, path + label) for label, child in _children(obj))
    return found


# -- the walker finds what it must --------------------------------------------------------


def test_the_walker_finds_a_key_in_a_chained_httpx_request() -> None:
    """Guards the guard: the very leak of defect 8 is found."""
    request = httpx.Request("POST", "https://h/sms/send", headers={"X-Api-Key": API_KEY})
    cause = httpx.ReadTimeout("timed out", request=request)
    error = aa.OutcomeUnknownError("x")
    error.__context__ = cause
    assert "error__context__._request.headers._list[2][2]: api key" in leaks(error)
    basic = httpx.Request("GET", f"https://{URL_USER}:{URL_PASSWORD}@h/")
    assert any("url" in leak for leak in leaks(aa.TransportError("x", ids=[str(basic.url)])))


# -- every error of the client, in every auth mode -----------------------------------------


class Mode(enum.Enum):
    API_KEY = "api_key"
    BASIC = "basic"
    URL_USERINFO = "url_userinfo"  # an API key, and a gateway's password in the base URL


def credentials(mode: Mode) -> dict[str, Any]:
    if mode is Mode.API_KEY:
        return {"api_key": API_KEY}
    if mode is Mode.BASIC:
        return {"username": USER, "password": PASSWORD}
    return {
        "api_key": API_KEY,
        "base_url": f"https://{URL_USER}:{URL_PASSWORD}@{HOST}/services/",
    }


@pytest.fixture(params=list(Mode), ids=[m.value for m in Mode])
def mode(request: pytest.FixtureRequest) -> Mode:
    return Mode(request.param)


@pytest.fixture
async def client(fake: FakeAgileServer, mode: Mode) -> AsyncIterator[AgileClient]:
    async with fake.client(retry=RetryPolicy.never(), **credentials(mode)) as client:
        yield client


@pytest.fixture(autouse=True)
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every logger at DEBUG during every test; none may show a secret or a userinfo."""
    caplog.set_level(logging.DEBUG)
    yield
    records = caplog.get_records("setup") + caplog.get_records("call")
    text = "".join(f"{record.getMessage()}{record.__dict__}" for record in records)
    assert [name for name, s in SECRETS.items() if s in text] == []
    assert f"{URL_USER}:" not in text


def hello(**kwargs: Any) -> Message:
    fields: dict[str, Any] = {"destinations": "+393471234567", "sender": "MyApp", "body": "Hi"}
    return Message(**{**fields, **kwargs})


async def raised(client: AgileClient, message: Message | None = None) -> BaseException:
    with pytest.raises(aa.AgileError) as caught:
        await client.send(message or hello())
    return caught.value


@pytest.mark.parametrize("error_class", API_ERRORS, ids=lambda c: c.__name__)
async def test_api_errors(
    client: AgileClient, fake: FakeAgileServer, error_class: type[aa.APIError]
) -> None:
    code = error_class.codes[0]
    status = 500 if error_class in (aa.ServerError, aa.ServiceTimeoutError) else 400
    fake.inject(Fault.error(status=status, code=code))
    error = await raised(client)
    assert type(error) is error_class
    assert leaks(error) == []


async def test_rate_limit_and_foreign_bodies(client: AgileClient, fake: FakeAgileServer) -> None:
    fake.inject(Fault.rate_limited(retry_after=3600))
    fake.inject(Fault.html(502))
    errors = [await raised(client), await raised(client)]
    assert [type(e) for e in errors] == [aa.RateLimitError, aa.APIError]
    assert [leaks(e) for e in errors] == [[], []]


async def test_validation_error(client: AgileClient) -> None:
    error = await raised(client, hello(sender="far-too-long-a-sender"))
    assert isinstance(error, aa.ValidationError)
    assert leaks(error) == []


async def test_outcome_unknown(client: AgileClient, fake: FakeAgileServer) -> None:
    fake.inject(Fault.drop(after_processing=True))
    error = await raised(client)
    assert isinstance(error, aa.OutcomeUnknownError)
    assert isinstance(error.__cause__, httpx.TransportError)  # a scrubbed copy
    assert leaks(error) == []


async def test_closed_client(client: AgileClient) -> None:
    await client.aclose()
    error = await raised(client)
    assert isinstance(error, aa.ClientClosedError)
    assert leaks(error) == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_transport_errors_over_a_real_socket(mode: Mode) -> None:
    """httpx's own transport: a refused connection, for a send and for a read."""
    options = credentials(mode)
    userinfo = f"{URL_USER}:{URL_PASSWORD}@" if mode is Mode.URL_USERINFO else ""
    options["base_url"] = f"https://{userinfo}127.0.0.1:{_closed_port()}/services/"
    async with AgileClient(retry=RetryPolicy.never(), **options) as client:
        send_error = await raised(client)
        with pytest.raises(aa.TransportError) as caught:
            await client.credit()
    assert isinstance(send_error, aa.TransportError)
    assert isinstance(send_error.__cause__, httpx.ConnectError)
    assert leaks(send_error) == []
    assert leaks(caught.value) == []


async def test_batcher_tickets(client: AgileClient, fake: FakeAgileServer) -> None:
    fake.inject(Fault.error(status=400, code=3))
    fake.inject(Fault.drop(after_processing=True))
    errors: list[BaseException] = []
    for _ in range(2):
        async with client.batcher() as batcher:
            ticket = await batcher.submit(hello())
        error = ticket.exception()
        assert error is not None
        errors.append(error)
    assert [type(e) for e in errors] == [aa.DestinationNotAllowedError, aa.OutcomeUnknownError]
    assert [leaks(e) for e in errors] == [[], []]


async def test_client_repr(client: AgileClient) -> None:
    assert leaks(repr(client)) == []
    assert "***" not in str(client.base_url)  # the userinfo left the URL, not masked in it


# -- configuration errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url",
    [
        f"http://{URL_USER}:{URL_PASSWORD}@{HOST}/services/",
        f"https://{URL_USER}:{URL_PASSWORD}@{HOST}:port/services/",
        f"https://{URL_USER}:{URL_PASSWORD}@/services/",
        f"ftp://{URL_USER}:{URL_PASSWORD}@{HOST}/",
    ],
)
def test_configuration_errors_never_show_the_userinfo(base_url: str) -> None:
    with pytest.raises(aa.ConfigurationError) as caught:
        AgileClient(api_key=API_KEY, base_url=base_url)
    assert leaks(caught.value) == []
    assert URL_USER not in str(caught.value)


def test_url_credentials_given_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGILE_BASE_URL", f"https://{URL_USER}:{URL_PASSWORD}@{HOST}/services/")
    with pytest.raises(aa.ConfigurationError, match="give them once") as caught:
        AgileClient(username=USER, password=PASSWORD)
    assert leaks(caught.value) == []


# -- what the base URL's userinfo means -------------------------------------------------------


async def test_userinfo_alone_is_the_basic_credentials(
    fake: FakeAgileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``AGILE_BASE_URL=https://user:pass@host/...`` and nothing else: Basic auth, as httpx
    would send it, but the URL that requests, logs and errors show has no userinfo."""
    monkeypatch.setenv("AGILE_BASE_URL", f"https://{USER}:{PASSWORD}@{fake.base_url[8:]}")
    async with AgileClient(transport=fake.transport()) as client:
        assert await client.credit() == Decimal("100")
        assert client.base_url == httpx.URL(fake.base_url)
        assert "basic" in repr(client)
    assert [r.auth for r in fake.requests] == ["basic"]


async def test_userinfo_beside_an_api_key_is_sent_as_basic_too(fake: FakeAgileServer) -> None:
    seen: list[httpx.Headers] = []
    transport = fake.transport()

    async def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return await transport.handle_async_request(request)

    async with AgileClient(
        transport=httpx.MockTransport(record), **credentials(Mode.URL_USERINFO)
    ) as client:
        await client.credit()
    assert seen[0]["x-api-key"] == API_KEY
    assert seen[0]["authorization"] == f"Basic {_b64(f'{URL_USER}:{URL_PASSWORD}')}"


def test_leaks_reports_paths_not_secrets() -> None:
    found = leaks(["fine", API_KEY])
    assert found
    assert all(API_KEY not in line for line in found)


# -- the webhook receiver's secrets -----------------------------------------------------------

WEBHOOK_TOKEN = "w3bhook-token-never-reachable"
WEBHOOK_PASSWORD = "w3bhook-pa55-never-reachable"
WEBHOOK_SECRETS = {"token": WEBHOOK_TOKEN, "password": WEBHOOK_PASSWORD}


def test_the_webhook_receivers_secrets() -> None:
    from agile_async.webhooks import DeliveryReportReceiver

    async def on_report(report: object) -> None:
        return None

    receiver = DeliveryReportReceiver(
        on_report, path_token=WEBHOOK_TOKEN, basic_auth=("hooks", WEBHOOK_PASSWORD)
    )
    assert leaks(repr(receiver), WEBHOOK_SECRETS) == []
    for bad in ({"path_token": "short!"}, {"basic_auth": ("a:b", WEBHOOK_PASSWORD)}):
        with pytest.raises(aa.ConfigurationError) as caught:
            DeliveryReportReceiver(on_report, **bad)
        assert leaks(caught.value, {**WEBHOOK_SECRETS, "short": "short!"}) == []


# -- the command line ---------------------------------------------------------------------------


def _cli(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    click_testing = pytest.importorskip("click.testing")
    from agile_async._cli._app import cli

    result = click_testing.CliRunner().invoke(cli, args, env=env)
    return result.exit_code, result.output + repr(result.exception)


@pytest.mark.parametrize(
    ("base_url", "exit_code"),
    [
        (f"http://{URL_USER}:{URL_PASSWORD}@{HOST}/services/", 2),  # ConfigurationError
        (f"https://{URL_USER}:{URL_PASSWORD}@127.0.0.1:{_closed_port()}/services/", 4),
    ],
    ids=["plain-http", "nothing-listening"],  # the port is a free one: no id of its own
)
def test_cli_errors_never_show_the_key_or_a_userinfo(base_url: str, exit_code: int) -> None:
    code, output = _cli(["credit"], {"AGILE_API_KEY": API_KEY, "AGILE_BASE_URL": base_url})
    assert code == exit_code
    assert "Error:" in output
    assert [name for name, s in SECRETS.items() if s in output] == []
    assert URL_USER not in output


def test_cli_never_shows_a_redis_password() -> None:
    pytest.importorskip("redis")
    url = f"redis://:{URL_PASSWORD}@127.0.0.1:not-a-port/0"
    code, output = _cli(["campaign", "status", "--redis", url, "spring"], {})
    assert code == 2
    assert "redis://***@127.0.0.1:not-a-port/0" in output
    assert URL_PASSWORD not in output
