"""The pytest plugin (``agile_async.testing.pytest_plugin``), run by pytest itself (pytester).

Each run is a separate pytest process on a small test suite of a user's, on asyncio and trio:
the fixtures, the guard against the real provider, the marker that lifts it, and the plugin
as installed (found through its ``pytest11`` entry point, as ``pip install`` registers it).

Requests the guard must refuse go through httpx's real network transport (and httpcore's
pool, where the guard checks them), connected to a Unix socket that does not exist: if the
guard ever let one through, it would fail to connect (a different error, which these tests
tell apart), and nothing leaves the machine.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

import agile_async
from agile_async.testing._guard import is_provider_host
from tests._docs import doc_block

pytest_plugins = ("pytester",)

ROOT = Path(agile_async.__file__).resolve().parents[1]
PAGE = "docs/guides/testing.md"
PLUGIN = "agile_async.testing.pytest_plugin"

#: The user's conftest: every async test on asyncio and on trio.
CONFTEST = """
import pytest

@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param
"""

BACKENDS = ("asyncio", "trio")


class Suite:
    """A user's project, run by pytest in a process of its own."""

    def __init__(self, pytester: pytest.Pytester, env: pytest.MonkeyPatch) -> None:
        self.pytester = pytester
        self.env = env
        self.path = pytester.path

    def run(self, *args: str) -> dict[str, str | None]:
        """Run with only the plugin and anyio's (none of the others installed here)."""
        self.env.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
        return self.run_installed("-p", "anyio", "-p", PLUGIN, *args)

    def run_installed(self, *args: str) -> dict[str, str | None]:
        """Run as installed; each test's outcome: ``None`` when it passed, else its failure
        or error message."""
        report = self.path / "report.xml"
        self.pytester.runpytest_subprocess(
            "--strict-markers",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
            *args,
            timeout=120,
        )
        outcomes: dict[str, str | None] = {}
        for case in ElementTree.parse(report).iter("testcase"):
            problem = case.find("failure")
            if problem is None:
                problem = case.find("error")
            message = None if problem is None else problem.get("message", "")
            outcomes[str(case.get("name"))] = message
        return outcomes

    def install_entry_point(self) -> None:
        """What ``pip install agile-async`` leaves for pytest to find: a distribution whose
        ``entry_points.txt`` declares the project's ``pytest11`` entry point."""
        name, target = entry_point()
        dist = self.path / "site" / "agile_async-0.dist-info"
        dist.mkdir(parents=True)
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: agile-async\nVersion: 0\n")
        (dist / "entry_points.txt").write_text(f"[pytest11]\n{name} = {target}\n")
        self.env.setenv("PYTHONPATH", f"{self.path / 'site'}:{ROOT}")


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Suite:
    """A user's project: this checkout importable, no developer settings leaking in."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    for name in ("AGILE_API_KEY", "AGILE_USERNAME", "AGILE_PASSWORD", "AGILE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    pytester.makeconftest(CONFTEST)
    return Suite(pytester, monkeypatch)


def on_both_backends(outcomes: dict[str, str | None], name: str) -> list[str | None]:
    return [outcomes[f"{name}[{backend}]"] for backend in BACKENDS]


# -- fixtures ----------------------------------------------------------------------------

FIXTURE_TESTS = """
import threading

import pytest

from agile_async import AgileClient, Message
from agile_async.sync import AgileClient as SyncAgileClient

MESSAGE = Message(destinations="+393471234567", sender="MyApp", body="Hi")


async def test_agile_client_is_wired_to_the_fake_in_memory(agile_fake, agile_client):
    assert isinstance(agile_client, AgileClient)
    result = await agile_client.send(MESSAGE)
    assert [m.message_id for m in agile_fake.accepted] == list(result.ids)
    assert await agile_client.credit() == agile_fake.credit


async def test_agile_tls_client_talks_tls_to_a_loopback_port(agile_fake, agile_tls_server,
                                                             agile_tls_client):
    assert agile_tls_client.base_url.scheme == "https"
    assert agile_tls_client.base_url.host == "127.0.0.1"
    assert str(agile_tls_client.base_url) == agile_tls_server.base_url
    await agile_tls_client.send(MESSAGE)
    assert len(agile_fake.accepted) == 1


def test_agile_sync_client_blocks(agile_fake, agile_sync_client):
    assert isinstance(agile_sync_client, SyncAgileClient)
    threads = [threading.Thread(target=agile_sync_client.send, args=(MESSAGE,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(agile_fake.accepted) == 4


def test_each_test_gets_a_fresh_fake(agile_fake):
    assert agile_fake.requests == ()
"""

OVERRIDE_TESTS = """
from decimal import Decimal

import pytest

from agile_async import InsufficientCreditError, Message
from agile_async.testing import FakeAgileServer


@pytest.fixture
def agile_fake():
    return FakeAgileServer(credit=Decimal("0.01"), price_per_part=Decimal("0.05"))


async def test_the_clients_use_the_users_fake(agile_client):
    with pytest.raises(InsufficientCreditError):
        await agile_client.send(Message(destinations="+393471234567", sender="A", body="Hi"))


def test_the_sync_client_too(agile_sync_client):
    assert agile_sync_client.credit() == Decimal("0.01")
"""


def test_the_fixtures_on_both_backends(suite: Suite) -> None:
    suite.pytester.makepyfile(test_fixtures=FIXTURE_TESTS, test_override=OVERRIDE_TESTS)
    outcomes = suite.run(
        "-p", "no:randomly", "-o", "anyio_mode=auto"
    )  # the ini option: anyio 4.11 has no flag
    assert outcomes == {
        **{f"test_agile_client_is_wired_to_the_fake_in_memory[{b}]": None for b in BACKENDS},
        **{f"test_agile_tls_client_talks_tls_to_a_loopback_port[{b}]": None for b in BACKENDS},
        "test_agile_sync_client_blocks": None,
        "test_each_test_gets_a_fresh_fake": None,
        **{f"test_the_clients_use_the_users_fake[{b}]": None for b in BACKENDS},
        "test_the_sync_client_too": None,
    }


# -- the guard ---------------------------------------------------------------------------

GUARD_TESTS = """
from decimal import Decimal

import httpcore
import httpx
import pytest

import agile_async.sync
from agile_async import AgileClient, RetryPolicy, TransportError
from agile_async.testing import FakeAgileServer


def nowhere(tmp_path):
    "httpx's own network transport, to a socket that does not exist: nothing leaves."
    return httpx.AsyncHTTPTransport(uds=str(tmp_path / "nothing.sock"))


def client(tmp_path, **kwargs):
    return AgileClient(api_key="k", retry=RetryPolicy.never(), **kwargs)


@pytest.mark.anyio
async def test_refused_default_base_url(tmp_path):
    async with client(tmp_path, transport=nowhere(tmp_path)) as c:
        await c.credit()


@pytest.mark.anyio
async def test_refused_users_own_http_client(tmp_path):
    async with httpx.AsyncClient(transport=nowhere(tmp_path)) as http:
        async with client(tmp_path, http_client=http, account="new") as c:
            await c.credit()


class Logging(httpx.AsyncHTTPTransport):
    async def handle_async_request(self, request):
        return await super().handle_async_request(request)


@pytest.mark.anyio
async def test_refused_subclassed_transport(tmp_path, monkeypatch):
    monkeypatch.setenv("AGILE_BASE_URL", "https://other.agiletelecom.com/services/")
    transport = Logging(uds=str(tmp_path / "nothing.sock"))
    async with client(tmp_path, transport=transport) as c:
        await c.credit()


@pytest.mark.anyio
async def test_refused_even_if_swallowed(tmp_path):
    async with client(tmp_path, transport=nowhere(tmp_path)) as c:
        try:
            await c.credit()
        except Exception:
            pass  # an app that logs and goes on


def test_refused_from_the_sync_client(tmp_path):
    with agile_async.sync.AgileClient(api_key="k", transport=nowhere(tmp_path)) as c:
        c.credit()


def test_refused_plain_httpx(tmp_path):
    transport = httpx.HTTPTransport(uds=str(tmp_path / "nothing.sock"))
    with httpx.Client(transport=transport) as http:
        http.get("https://www.AgileTelecom.com./")


@pytest.fixture
def credit_at_start(tmp_path):
    with agile_async.sync.AgileClient(api_key="k", transport=nowhere(tmp_path)) as c:
        return c.credit()


def test_refused_in_a_fixture(credit_at_start):
    pass


@pytest.mark.agile_allow_real_provider
@pytest.mark.anyio
async def test_allowed_when_marked(tmp_path):
    async with client(tmp_path, transport=nowhere(tmp_path)) as c:
        with pytest.raises(TransportError):  # reached httpx's network layer: not refused
            await c.credit()


@pytest.mark.anyio
async def test_allowed_in_memory_whatever_the_host(tmp_path):
    fake = FakeAgileServer()
    async with AgileClient(api_key=fake.api_key, transport=fake.transport()) as c:
        assert c.base_url.host == "secure.agiletelecom.com"
        assert await c.credit() == fake.credit


@pytest.mark.anyio
async def test_allowed_when_a_mock_answers(tmp_path, monkeypatch):
    async def answer(pool, request):  # what respx does while it mocks: the same pool method
        return httpcore.Response(200, headers=[(b"content-type", b"application/json")],
                                 content=b'{"credit": 1.5}')

    monkeypatch.setattr(httpcore.AsyncConnectionPool, "handle_async_request", answer)
    async with client(tmp_path) as c:  # httpx's own transport, to the real host's URL
        assert await c.credit() == Decimal("1.5")


@pytest.mark.anyio
async def test_allowed_other_hosts(tmp_path):
    transport = nowhere(tmp_path)
    evil = "https://agiletelecom.com.evil/"
    async with client(tmp_path, transport=transport, base_url=evil) as c:
        with pytest.raises(TransportError):
            await c.credit()
"""

MARKED_MODULE = """
import httpx
import pytest

pytestmark = pytest.mark.agile_allow_real_provider


def test_allowed_for_a_whole_module(tmp_path):
    transport = httpx.HTTPTransport(uds=str(tmp_path / "nothing.sock"))
    with httpx.Client(transport=transport) as http, pytest.raises(httpx.ConnectError):
        http.get("https://secure.agiletelecom.com/services/sms/credit")
"""

REFUSED = re.compile(
    r"RealProviderError: this test tried to reach the real AgileTelecom provider "
    r"\(((?:GET|POST) https://[a-z.\-]*agiletelecom\.com[^) ]*)\)"
)
SWALLOWED = re.compile(
    r"RealProviderError: this test tried to reach the real AgileTelecom provider 1 time\(s\), "
    r"and went on: GET https://secure\.agiletelecom\.com/services/sms/credit"
)


def refused_url(message: str | None) -> str:
    found = REFUSED.search(message or "")
    assert found, message
    return found.group(1)


def test_the_guard_refuses_every_way_to_the_provider(suite: Suite) -> None:
    suite.pytester.makepyfile(test_guard=GUARD_TESTS, test_marked=MARKED_MODULE)
    outcomes = suite.run("-p", "no:randomly")

    credit = "GET https://secure.agiletelecom.com/services/sms/credit"
    assert [
        refused_url(m) for m in on_both_backends(outcomes, "test_refused_default_base_url")
    ] == [
        credit,
        credit,
    ]
    new = "GET https://http-api.agiletelecom.com/services/sms/credit"
    assert [
        refused_url(m) for m in on_both_backends(outcomes, "test_refused_users_own_http_client")
    ] == [
        new,
        new,
    ]
    other = "GET https://other.agiletelecom.com/services/sms/credit"
    assert [
        refused_url(m) for m in on_both_backends(outcomes, "test_refused_subclassed_transport")
    ] == [
        other,
        other,
    ]
    for message in on_both_backends(outcomes, "test_refused_even_if_swallowed"):
        assert message is not None
        assert SWALLOWED.search(message), message
    assert refused_url(outcomes["test_refused_from_the_sync_client"]) == credit
    assert refused_url(outcomes["test_refused_plain_httpx"]) == "GET https://www.agiletelecom.com./"
    assert refused_url(outcomes["test_refused_in_a_fixture"]) == credit

    for name in (
        "test_allowed_when_marked",
        "test_allowed_in_memory_whatever_the_host",
        "test_allowed_when_a_mock_answers",
        "test_allowed_other_hosts",
    ):
        assert on_both_backends(outcomes, name) == [None, None], name
    assert outcomes["test_allowed_for_a_whole_module"] is None
    assert len(outcomes) == 20


def test_the_marker_is_registered(suite: Suite) -> None:
    suite.env.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = suite.pytester.runpytest_subprocess("-p", PLUGIN, "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.agile_allow_real_provider: *"])


def test_provider_hosts_come_from_the_base_urls() -> None:
    for url in agile_async.BASE_URLS.values():
        assert is_provider_host(url.split("/")[2])
    assert is_provider_host("agiletelecom.com")
    assert is_provider_host("API.AgileTelecom.com.")
    assert not is_provider_host("fake.agiletelecom.test")
    assert not is_provider_host("agiletelecom.com.evil")
    assert not is_provider_host("notagiletelecom.com")
    assert not is_provider_host("127.0.0.1")


# -- as installed ------------------------------------------------------------------------


def entry_point() -> tuple[str, str]:
    """The ``pytest11`` entry point declared in ``pyproject.toml``: its name and target."""
    if sys.version_info >= (3, 11):
        import tomllib

        text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
        [(name, target)] = tomllib.loads(text)["project"]["entry-points"]["pytest11"].items()
        return str(name), str(target)
    pytest.skip("reading pyproject.toml needs tomllib (Python 3.11)")  # pragma: no cover


def test_the_entry_point_names_the_plugin_module() -> None:
    assert entry_point() == (PLUGIN, PLUGIN)


def test_the_readme_example_runs_with_the_installed_plugin(suite: Suite) -> None:
    """The README's testing example, as a user's test file, with no conftest line for the
    plugin: installed, it is loaded through its entry point (and naming it with ``-p``
    too, as some projects do, does not register it twice)."""
    suite.install_entry_point()
    suite.pytester.makepyfile(test_signup=doc_block(PAGE, "pytest-plugin"))
    expected = {
        **{f"test_welcome_sms[{b}]": None for b in BACKENDS},
        "test_welcome_sms_from_a_flask_view": None,
    }
    assert suite.run_installed("-p", "no:randomly") == expected
    assert suite.run_installed("-p", PLUGIN, "-p", "no:randomly") == expected


def test_the_readme_guard_example_fails_the_forgetful_test(suite: Suite) -> None:
    """The README's guard example, as written. Should the guard ever let the request go,
    it would meet a dead proxy (the environment's, which httpx honours), not the provider."""
    suite.install_entry_point()
    dead = "http://127.0.0.1:9"
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"):
        suite.env.setenv(name, dead)
    suite.pytester.makepyfile(test_guard=doc_block(PAGE, "pytest-guard"))
    # The marked test would really ask the provider: collected (the marker is known) only.
    outcomes = suite.run_installed("-k", "not test_my_account_has_credit")
    assert outcomes.keys() == {"test_forgot_the_fake"}
    url = refused_url(outcomes["test_forgot_the_fake"])
    assert url == "POST https://secure.agiletelecom.com/services/sms/send"
    result = suite.pytester.runpytest_subprocess("--strict-markers", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["test_guard.py::test_my_account_has_credit"])


def test_the_installed_plugin_can_be_disabled(suite: Suite) -> None:
    suite.install_entry_point()
    suite.pytester.makepyfile(test_without="def test_no_fixture(agile_fake):\n    pass\n")
    result = suite.pytester.runpytest_subprocess("-p", f"no:{PLUGIN}")
    result.stdout.fnmatch_lines(["*fixture 'agile_fake' not found*"])
