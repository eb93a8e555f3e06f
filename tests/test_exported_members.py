"""The public names are a contract: adding one is a decision, removing one is a break.

One table pins every public module's ``__all__``; the same checks run on each: the exact
names, in ruff's order (RUF022: constants, classes, then functions), each once, each
importable, each documented, and each class or function claiming the public module (so
reprs, docs and pickles show the path that is promised to stay).
"""

from __future__ import annotations

import ast
import copy
import importlib
import pickle
import re
import types
from pathlib import Path
from types import ModuleType

import pytest

import agile_async
from agile_async import AgileError

EXPECTED: dict[str, list[str]] = {
    "agile_async": [
        "BASE_URLS",
        "DEFAULT_LIMITS",
        "DEFAULT_TIMEOUT",
        "APIError",
        "AgileClient",
        "AgileClientWithRawResponse",
        "AgileError",
        "AuthenticationError",
        "BatchSettings",
        "Batcher",
        "BatcherState",
        "BatcherStatistics",
        "BatcherStoppedError",
        "ClientClosedError",
        "ClientState",
        "ConfigurationError",
        "Cost",
        "CreditCheck",
        "CreditThresholdError",
        "DeliveryOutcome",
        "DeliveryReport",
        "DeliveryStatus",
        "DeliverySummary",
        "DeliveryTracker",
        "DestinationNotAllowedError",
        "GlobalIdLengthError",
        "IPNotAllowedError",
        "InsufficientCreditError",
        "InvalidDestinationError",
        "Message",
        "MessageRow",
        "MessageWithdrawnError",
        "OutcomeUnknownError",
        "Problem",
        "QueueFullError",
        "RateLimit",
        "RateLimitError",
        "RateLimiter",
        "RawResponse",
        "Receipt",
        "RequestOutcome",
        "RequestTotals",
        "RetryPolicy",
        "SendOptions",
        "SendResult",
        "SenderNotAllowedError",
        "ServerError",
        "ServiceTimeoutError",
        "Ticket",
        "TicketState",
        "TokenBucket",
        "TransportError",
        "UnknownAPIError",
        "ValidationError",
        "__version__",
    ],
    "agile_async.campaigns": [
        "CONFIRMED_BY_REPORT",
        "EXPORT_COLUMNS",
        "BodyTemplate",
        "Campaign",
        "CampaignDefinition",
        "CampaignError",
        "CampaignProgress",
        "CampaignReport",
        "CampaignResult",
        "CampaignStatus",
        "DeliveryState",
        "DeliveryUpdate",
        "Failure",
        "InputChangedError",
        "InputFormat",
        "Journal",
        "JournalError",
        "JournalRow",
        "LoadProgress",
        "LoadState",
        "LoadedRow",
        "OutgoingRow",
        "Recovery",
        "RowState",
        "SQLiteJournal",
        "StateCounts",
        "Tally",
        "TemplateError",
    ],
    "agile_async.scaleout": [
        "DEFAULT_CHUNK_SIZE",
        "DEFAULT_IDLE_TTL",
        "DEFAULT_LEASE",
        "DEFAULT_MAX_CHUNK_TAKEOVERS",
        "DEFAULT_MAX_QUEUED_CHUNKS",
        "DEFAULT_MAX_WAIT",
        "DEFAULT_REDIS_TIMEOUT",
        "CampaignStoppedError",
        "ChunkFencedError",
        "FleetStop",
        "HeldChunk",
        "RedisCampaign",
        "RedisLimiter",
        "RedisLimiterStatistics",
        "RedisUnavailableError",
        "WorkResult",
        "account_key",
        "open_redis",
        "work",
    ],
    "agile_async.segments": [
        "MAX_PARTS",
        "CostEstimate",
        "Encoding",
        "EstimateInput",
        "MessageEstimate",
        "MessageLike",
        "PartCount",
        "PriceList",
        "SegmentCount",
        "body_problems",
        "count_hex_segments",
        "count_parts",
        "count_segments",
        "estimate_cost",
        "estimate_message",
        "iter_estimates",
        "part_capacity",
        "split_segments",
    ],
    "agile_async.testing": [
        "SIMULATION_API_KEY",
        "SIMULATION_PASSWORD",
        "SIMULATION_USERNAME",
        "AcceptedMessage",
        "AuthMode",
        "DeliveryAttempt",
        "DeliveryCallback",
        "DeliveryCallbackError",
        "DeliveryScript",
        "DeliveryStatistics",
        "DeliveryTarget",
        "DestinationFormat",
        "FakeAgileServer",
        "FakeTransport",
        "Fault",
        "FaultKind",
        "Hold",
        "PartRule",
        "RawDeliveryCallback",
        "RecordedRequest",
        "TLSServer",
    ],
    "agile_async.sync": ["AgileClient", "AgileClientWithRawResponse", "Batcher", "Ticket"],
    "agile_async.testing.pytest_plugin": [
        "ALLOW_REAL_PROVIDER",
        "RealProviderError",
        "agile_client",
        "agile_fake",
        "agile_sync_client",
        "agile_tls_client",
        "agile_tls_server",
    ],
    "agile_async.webhooks": [
        "DEFAULT_DEDUPE_WINDOW",
        "DEFAULT_MAX_BODY_BYTES",
        "DEFAULT_MAX_REPORTS",
        "MAX_LISTED_PROBLEMS",
        "MIN_PATH_TOKEN_LENGTH",
        "DeliveryReportReceiver",
        "InvalidDeliveryReportError",
        "ReceiverStatistics",
        "ReportCallback",
        "parse_delivery_report",
        "parse_delivery_reports",
    ],
}

MODULES = sorted(EXPECTED)
PACKAGE_ROOT = Path(agile_async.__file__).parent


def _module(name: str) -> ModuleType:
    return importlib.import_module(name)


def _is_class_or_function(obj: object) -> bool:
    """A class or a function: not a constant, and not a type alias. On Python 3.10 a generic
    alias (``Callable[[X], Y]``) passes ``isinstance(obj, type)``, so it is ruled out first."""
    if isinstance(obj, types.GenericAlias):
        return False
    return isinstance(obj, (type, types.FunctionType))


def _ruff_order(name: str) -> tuple[int, str]:
    """RUF022's isort-style order: SCREAMING_CASE, then CamelCase, then everything else."""
    if name.isupper():
        return 0, name
    return (1 if name[0].isupper() else 2), name


def _documented_by_comment(name: str) -> bool:
    """A constant or type alias is documented by a ``#:`` comment above its definition (the
    Sphinx convention), which may head a group of consecutive definitions."""
    definition = re.compile(rf"^{re.escape(name)}\s*(:[^=]*)?=")
    for path in PACKAGE_ROOT.rglob("*.py"):
        lines = path.read_text(encoding="utf-8").splitlines()
        for index, line in enumerate(lines):
            if not definition.match(line):
                continue
            above = index - 1
            while above >= 0 and re.match(r"^[A-Za-z_]\w*\s*(:[^=]*)?=", lines[above]):
                above -= 1
            if above >= 0 and lines[above].startswith("#:"):
                return True
    return False


@pytest.mark.parametrize("module_name", MODULES)
def test_all_is_pinned(module_name: str) -> None:
    assert _module(module_name).__all__ == EXPECTED[module_name]


@pytest.mark.parametrize("module_name", MODULES)
def test_all_is_sorted_and_unique(module_name: str) -> None:
    names = _module(module_name).__all__
    assert len(names) == len(set(names))
    assert names == sorted(names, key=_ruff_order)


@pytest.mark.parametrize("module_name", MODULES)
def test_every_name_is_importable(module_name: str) -> None:
    for name in EXPECTED[module_name]:
        namespace: dict[str, object] = {}
        exec(f"from {module_name} import {name}", namespace)
        assert namespace[name] is getattr(_module(module_name), name)


@pytest.mark.parametrize("module_name", MODULES)
def test_every_name_is_documented(module_name: str) -> None:
    module = _module(module_name)
    assert (module.__doc__ or "").strip(), module_name
    undocumented = []
    for name in module.__all__:
        obj = getattr(module, name)
        if isinstance(obj, type) and _is_class_or_function(obj):
            # Its own docstring: not one inherited from a base class (Exception's, say).
            documented = bool(vars(obj).get("__doc__"))
        elif isinstance(obj, types.FunctionType) or hasattr(obj, "__wrapped__"):
            documented = bool(obj.__doc__)  # a function, or one wrapped (a pytest fixture)
        elif name.startswith("__"):
            documented = True  # __version__: a convention, not an API to describe
        else:
            documented = _documented_by_comment(name)
        if not documented:
            undocumented.append(name)
    assert undocumented == []


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_class_and_function_claims_its_module(module_name: str) -> None:
    module = _module(module_name)
    for name in module.__all__:
        obj = getattr(module, name)
        if _is_class_or_function(obj):
            assert obj.__module__ == module_name, name


def test_an_alias_keeps_its_module_and_still_exports() -> None:
    """``ReportCallback`` is a ``Callable[...]`` alias, not a class: on Python 3.10 it passes
    ``isinstance(alias, type)`` and its ``__module__`` cannot be set; claiming leaves it be."""
    from agile_async.webhooks import ReportCallback

    assert not _is_class_or_function(ReportCallback)
    assert "DeliveryReport" in repr(ReportCallback)


@pytest.mark.parametrize("module_name", MODULES)
def test_public_classes_and_functions_pickle_by_their_public_path(module_name: str) -> None:
    """Pickles (and so multiprocessing, and caches) name the public path, which stays."""
    module = _module(module_name)
    for name in module.__all__:
        obj = getattr(module, name)
        if _is_class_or_function(obj):
            dumped = pickle.dumps(obj)
            assert module_name.encode() in dumped, name
            assert b"agile_async._" not in dumped, name
            assert pickle.loads(dumped) is obj, name


# -- the error tree --------------------------------------------------------------------------


def _public_errors() -> dict[str, type[BaseException]]:
    errors: dict[str, type[BaseException]] = {}
    for module_name in MODULES:
        if module_name == "agile_async.testing.pytest_plugin":
            continue  # RealProviderError fails a user's test (an AssertionError), not a send
        module = _module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type) and issubclass(obj, BaseException):
                assert errors.setdefault(name, obj) is obj, name
    return errors


def _drawn_tree(text: str) -> dict[str, str | None]:
    """Each class in a drawn tree (``├── Name``) mapped to its parent in the drawing."""
    block = text.split("```\nAgileError\n", 1)[1].split("```", 1)[0]
    parents: dict[str, str | None] = {"AgileError": None}
    stack: list[tuple[int, str]] = [(-1, "AgileError")]
    for line in block.splitlines():
        match = re.match(r"^([│ ]*)[├└]── (\w+)", line)
        assert match, line
        depth = len(match.group(1))
        while stack[-1][0] >= depth:
            stack.pop()
        parents[match.group(2)] = stack[-1][1]
        stack.append((depth, match.group(2)))
    return parents


def test_every_public_error_is_an_agile_error() -> None:
    assert issubclass(agile_async.ValidationError, ValueError)
    assert issubclass(agile_async.ConfigurationError, ValueError)
    assert issubclass(agile_async.ClientClosedError, RuntimeError)
    for name, error in _public_errors().items():
        assert issubclass(error, AgileError), name


def test_the_drawn_tree_is_the_real_one() -> None:
    """The diagram in the errors' module docstring draws every public error, each under the
    class it derives from; and the errors guide shows the same diagram."""
    import agile_async._exceptions as exceptions

    drawn = _drawn_tree(exceptions.__doc__ or "")
    errors = _public_errors()
    assert set(drawn) == set(errors)
    for name, parent in drawn.items():
        if parent is not None:
            assert errors[parent] in errors[name].__bases__, name
    guide = (PACKAGE_ROOT.parent / "docs" / "guides" / "errors.md").read_text(encoding="utf-8")
    assert _drawn_tree(guide) == drawn


def test_every_error_but_the_fakes_is_defined_in_one_module() -> None:
    import agile_async._exceptions as exceptions

    for name, error in _public_errors().items():
        if name != "DeliveryCallbackError":  # the fake's own, in agile_async.testing
            assert getattr(exceptions, name) is error, name


def test_every_public_error_can_be_copied() -> None:
    """The batcher hands each waiting caller its own copy, so each error survives
    :func:`copy.copy` with its message and attributes (keyword arguments have defaults)."""
    for name, error in _public_errors().items():
        made = error("what happened")
        copied = copy.copy(made)
        assert type(copied) is error, name
        assert str(copied) == str(made), name
        assert vars(copied) == vars(made), name


# -- who imports the public modules ----------------------------------------------------------


def _imported_modules(path: Path) -> set[str]:
    """The absolute names of the modules a source file imports from (relative ones resolved)."""
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    package = parts[:-1]  # a module's package; for an __init__, the package itself
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            module = ".".join([*base, *([node.module] if node.module else [])])
            if node.module is None:  # from . import _limits: each name is a module
                found.update(f"{module}.{alias.name}" for alias in node.names)
            else:
                found.add(module)
    return found


def test_the_implementation_never_imports_a_public_module() -> None:
    """The public modules are façades over private ones; the private modules import each
    other, never a façade (which would tie the implementation to the public layout and make
    import order matter). The CLI and the test helpers are users of the public API, so they
    may import it."""
    offenders = {}
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        parts = path.relative_to(PACKAGE_ROOT).with_suffix("").parts
        private = any(part.startswith("_") and part != "__init__" for part in parts)
        if not private or parts[0] in ("_cli", "testing"):
            continue
        wrong = _imported_modules(path) & set(MODULES)
        if wrong:
            offenders["/".join(parts)] = sorted(wrong)
    assert offenders == {}


def test_the_pytest_plugins_error_fails_a_test() -> None:
    from agile_async.testing import pytest_plugin

    assert issubclass(pytest_plugin.RealProviderError, AssertionError)
