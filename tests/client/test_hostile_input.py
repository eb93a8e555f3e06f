"""Hostile input through the public API: wrong types, lone surrogates, huge numbers.

Whatever a caller passes, the answer is a ``ValidationError`` naming the field, or success:
never a ``TypeError`` from the JSON encoder, never a request that fails the messages that
happened to share it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from agile_async import (
    AgileClient,
    BatchSettings,
    ConfigurationError,
    Message,
    RateLimit,
    RetryPolicy,
    SendOptions,
    TicketState,
    ValidationError,
)
from agile_async._validation import IdGenerator, prepare_request
from agile_async.testing import FakeAgileServer

pytestmark = [pytest.mark.anyio, pytest.mark.fake(credit=Decimal("100000"))]

GOOD: dict[str, Any] = {"destinations": "+393471234567", "sender": "Shop", "body": "Hello"}
LONE = "\ud800"
OPTION_FIELDS = "global_id|max_id_len|enable_concatenated|enable_unicode|enable_delivery|simulation"
#: Every field a problem may name: the constructors', a request's and the options'.
FIELD = re.compile(
    r"messages|options|message|messages\[\d+\]"
    r"|(message|messages\[\d+\])\.(destinations|ids|sender|body|hex_body|udh_data|scheduling)"
    r"(\[\d+\])?"
    rf"|options\.({OPTION_FIELDS})"
)


def fields(error: ValidationError) -> set[str]:
    """The fields an error names, after checking that each is a real one with a reason."""
    assert error.problems
    for problem in error.problems:
        assert FIELD.fullmatch(problem.field), problem.field
        assert problem.message
    return {problem.field for problem in error.problems}


def refused(**changes: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        Message(**{**GOOD, **changes})
    fields(caught.value)
    return {problem.field: problem.message for problem in caught.value.problems}


def sends(fake: FakeAgileServer) -> list[dict[str, Any]]:
    return [r.json for r in fake.requests if r.path.endswith("/sms/send")]


@pytest.fixture
async def client(fake: FakeAgileServer) -> AsyncIterator[AgileClient]:
    async with fake.client() as client:
        yield client


# -- defect 5: wrong types are refused where they are made, naming the field --------------


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"destinations": None}, "message.destinations", "not NoneType"),
        ({"destinations": 393471234567}, "message.destinations", "not int"),
        ({"destinations": b"+393471234567"}, "message.destinations", "not bytes"),
        ({"destinations": {"+393471234567": 1}}, "message.destinations", "not dict"),
        ({"destinations": [393471234567]}, "message.destinations[0]", "not int"),
        ({"destinations": ["+393471234567", ["+39"]]}, "message.destinations[1]", "not list"),
        ({"ids": 1}, "message.ids", "not int"),
        ({"ids": [None]}, "message.ids[0]", "not NoneType"),
        ({"sender": None}, "message.sender", "not NoneType"),
        ({"sender": 12345}, "message.sender", "not int"),
        ({"body": b"Hello"}, "message.body", "not bytes"),
        ({"body": ["Hello"]}, "message.body", "not list"),
        ({"udh_data": 1}, "message.udh_data", "a hex string or None, not int"),
        ({"udh_data": b"\x05\x00\x03"}, "message.udh_data", "a hex string or None, not bytes"),
        ({"hex_body": "false"}, "message.hex_body", "True or False"),
        ({"hex_body": 1}, "message.hex_body", "True or False"),
        ({"scheduling": "2030-01-01 10:00:00"}, "message.scheduling", "not str"),
    ],
)
def test_a_message_of_wrong_types_is_refused_naming_the_field(
    changes: dict[str, Any], field: str, fragment: str
) -> None:
    assert fragment in refused(**changes)[field]


def test_every_wrong_type_of_a_message_is_reported_at_once() -> None:
    found = refused(destinations=[1, "+393471234567", None], sender=None, body=7, udh_data=b"")
    assert set(found) == {
        "message.destinations[0]",
        "message.destinations[2]",
        "message.sender",
        "message.body",
        "message.udh_data",
    }


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"max_id_len": "64"}, "options.max_id_len"),
        ({"max_id_len": True}, "options.max_id_len"),
        ({"max_id_len": 64.0}, "options.max_id_len"),
        ({"global_id": 5}, "options.global_id"),
        ({"global_id": b"abc"}, "options.global_id"),
        ({"enable_unicode": 1}, "options.enable_unicode"),
        ({"simulation": "yes"}, "options.simulation"),
        ({"enable_concatenated": None}, "options.enable_concatenated"),
        ({"enable_delivery": 0}, "options.enable_delivery"),
    ],
)
def test_options_of_wrong_types_are_refused_naming_the_field(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        SendOptions(**changes)
    assert fields(caught.value) == {field}


def test_the_accepted_forms_still_work() -> None:
    """One destination (or id) as a string, many as any iterable; str subclasses too."""

    class Number(str):
        pass

    numbers = ("+393471234567", "+393471234568")
    assert Message(**GOOD).destinations == ("+393471234567",)
    assert Message(**{**GOOD, "destinations": list(numbers)}).destinations == numbers
    assert Message(**{**GOOD, "destinations": iter(numbers)}).destinations == numbers
    assert Message(**{**GOOD, "destinations": Number(numbers[0])}).destinations == numbers[:1]
    assert Message(**GOOD, ids="a-1").ids == ("a-1",)
    assert Message(**GOOD, ids=(f"x{i}" for i in range(1))).ids == ("x0",)
    assert Message(**{**GOOD, "body": "Caffè ☕ 👍🏽"}).body == "Caffè ☕ 👍🏽"


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: BatchSettings(max_latency="0.1"), "max_latency"),  # type: ignore[arg-type]
        (lambda: BatchSettings(max_latency=float("nan")), "max_latency"),
        (lambda: BatchSettings(max_messages=2.5), "max_messages"),  # type: ignore[arg-type]
        (lambda: BatchSettings(queue_capacity=True), "queue_capacity"),
        (lambda: BatchSettings(rate_limit=50), "rate_limit"),  # type: ignore[arg-type]
        (lambda: BatchSettings(credit_threshold=0.5), "credit_threshold"),  # type: ignore[arg-type]
        (lambda: BatchSettings(credit_threshold="lots"), "credit_threshold"),
        (lambda: BatchSettings(options=None), "options"),  # type: ignore[arg-type]
        (lambda: RetryPolicy(attempts="3"), "attempts"),  # type: ignore[arg-type]
        (lambda: RetryPolicy(deadline=float("nan")), "deadline"),
        (lambda: RetryPolicy(retry_ambiguous="no"), "retry_ambiguous"),  # type: ignore[arg-type]
        (lambda: RateLimit(rate="50"), "rate"),  # type: ignore[arg-type]
        (lambda: RateLimit(rate=10**400), None),  # a huge int is a number, not an OverflowError
        (lambda: RateLimit(rate=50, burst="100"), "burst"),  # type: ignore[arg-type]
        (lambda: RateLimit(rate=50, per="sms"), "per"),  # type: ignore[arg-type]
    ],
)
def test_settings_of_wrong_types_are_refused_naming_the_field(
    build: Callable[[], object], field: str | None
) -> None:
    """Not a ``TypeError`` from ``"0.1" < 0``, nor a NaN that every comparison lets through."""
    if field is None:
        build()
        return
    with pytest.raises(ConfigurationError) as caught:
        build()
    assert [problem.field for problem in caught.value.problems] == [field]


def test_an_amount_may_be_given_as_text() -> None:
    assert BatchSettings(credit_threshold="0.75").credit_threshold == Decimal("0.75")


@pytest.mark.parametrize("value", [2**70, 2**31, 0, -1])
async def test_an_impossible_max_id_len_is_refused_before_sending(
    client: AgileClient, fake: FakeAgileServer, value: int
) -> None:
    """``2**70`` used to reach orjson ("Integer exceeds 64-bit range"): now every path that
    takes options refuses it, naming the field, and nothing is sent."""
    options = SendOptions(max_id_len=value)
    with pytest.raises(ValidationError) as caught:
        await client.send(Message(**GOOD), options=options)
    assert fields(caught.value) == {"options.max_id_len"}
    with pytest.raises(ValidationError, match=r"options\.max_id_len"):
        BatchSettings(options=options)
    async with client.batcher() as batcher:
        with pytest.raises(ValidationError, match=r"options\.max_id_len"):
            await batcher.submit(Message(**GOOD), options=options)
    assert sends(fake) == []


async def test_the_largest_max_id_len_is_sent(client: AgileClient, fake: FakeAgileServer) -> None:
    await client.send(Message(**GOOD), options=SendOptions(max_id_len=2**31 - 1))
    assert sends(fake)[0]["maxIdLen"] == 2**31 - 1


@pytest.mark.parametrize("messages", [None, "+393471234567", b"x", 5, {"body": "x"}])
async def test_send_refuses_what_is_not_messages(
    client: AgileClient, fake: FakeAgileServer, messages: Any
) -> None:
    with pytest.raises(ValidationError) as caught:
        await client.send(messages)
    assert fields(caught.value) == {"messages"}
    assert sends(fake) == []


@pytest.mark.parametrize(
    ("messages", "field"),
    [([GOOD, None], "messages[1]"), ([GOOD, "text"], "messages[1]"), ([], "messages")],
)
async def test_send_names_the_message_that_is_not_one(
    client: AgileClient, messages: list[Any], field: str
) -> None:
    batch = [Message(**m) if isinstance(m, dict) else m for m in messages]
    with pytest.raises(ValidationError) as caught:
        await client.send(batch)
    assert fields(caught.value) == {field}


@pytest.mark.parametrize("message", [None, "+393471234567", GOOD, [Message(**GOOD)]])
async def test_the_batcher_refuses_what_is_not_a_message(client: AgileClient, message: Any) -> None:
    async with client.batcher() as batcher:
        with pytest.raises(ValidationError) as caught:
            await batcher.submit(message)
    assert fields(caught.value) == {"message"}


@pytest.mark.parametrize("options", ["simulation", 1, {"simulation": True}, [SendOptions()]])
async def test_the_batcher_refuses_what_is_not_options(client: AgileClient, options: Any) -> None:
    """An unhashable one included: it used to be looked up in a set first (TypeError)."""
    async with client.batcher() as batcher:
        with pytest.raises(ValidationError) as caught:
            await batcher.submit(Message(**GOOD), options=options)
    assert fields(caught.value) == {"options"}


# -- defect 4: a lone surrogate never reaches the encoder ----------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"body": f"Hi {LONE}"}, "message.body"),
        ({"body": "a\udcff"}, "message.body"),  # what surrogateescape makes of byte 0xff
        ({"body": "Hi 👍🏽"}, None),  # astral characters are text, not surrogates
        ({"ids": [LONE]}, "message.ids[0]"),
        ({"destinations": ["+393471234567", f"+39{LONE}"]}, "message.destinations[1]"),
        ({"sender": f"Shop{LONE}"}, "message.sender"),
        ({"udh_data": LONE}, "message.udh_data"),
    ],
)  # fmt: skip
def test_a_lone_surrogate_is_refused_naming_the_field(
    changes: dict[str, Any], field: str | None
) -> None:
    if field is None:
        Message(**{**GOOD, **changes})
        return
    found = refused(**changes)
    assert set(found) == {field}
    assert "lone surrogate" in found[field]


def test_a_lone_surrogate_in_the_global_id_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        SendOptions(global_id=f"run-{LONE}")
    assert fields(caught.value) == {"options.global_id"}
    assert "lone surrogate" in str(caught.value)


async def test_a_surrogate_cannot_fail_the_messages_sharing_its_request(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    """The Batcher used to queue it and fail its whole request with the encoder's TypeError."""
    async with client.batcher(max_latency=60) as batcher:
        before = [await batcher.submit(Message(**{**GOOD, "body": f"Hi {i}"})) for i in range(3)]
        with pytest.raises(ValidationError, match=r"message\.body: holds a lone surrogate"):
            await batcher.submit(Message(**{**GOOD, "body": f"Hi {LONE}"}))
        after = [await batcher.submit(Message(**{**GOOD, "body": f"Ho {i}"})) for i in range(2)]
    assert [t.state for t in before + after] == [TicketState.ACCEPTED] * 5
    assert [len(request["messages"]) for request in sends(fake)] == [5]


@pytest.mark.parametrize(
    "scheduling",
    [
        datetime(2030, 1, 1, 9, tzinfo=ZoneInfo("Europe/Rome")),
        datetime(1890, 1, 1, 9, tzinfo=ZoneInfo("Europe/Rome")),  # LMT: +00:49:56
        datetime(999, 12, 31, 23, 59, tzinfo=timezone.utc),  # strftime("%Y") gives "999"
    ],
)
async def test_any_aware_moment_is_written_in_the_provider_s_format(
    client: AgileClient, fake: FakeAgileServer, scheduling: datetime
) -> None:
    """The fake provider refused these (code 4): in a Batcher, with every message sharing
    the request. Offsets in seconds are written as the same moment in UTC."""
    async with client.batcher() as batcher:
        tickets = [
            await batcher.submit(Message(**GOOD, scheduling=scheduling)),
            await batcher.submit(Message(**{**GOOD, "body": "Unscheduled"})),
        ]
    assert [ticket.state for ticket in tickets] == [TicketState.ACCEPTED] * 2
    sent = sends(fake)[0]["messages"][0]["scheduling"]
    assert datetime.strptime(sent, "%Y-%m-%d %H:%M:%S.%f%z") == scheduling


def test_a_moment_past_the_calendar_s_edge_is_refused() -> None:
    moment = datetime(1, 1, 1, tzinfo=timezone(timedelta(seconds=30)))
    with pytest.raises(ValidationError, match=r"messages\[0\]\.scheduling: .* cannot be written"):
        prepare_request([Message(**GOOD, scheduling=moment)], SendOptions(), IdGenerator())


# -- the property: anything in, a named ValidationError or success out -------------------

#: Text with everything hypothesis avoids by default: lone surrogates, NUL, controls.
hostile_text = st.text(st.characters(exclude_categories=()), max_size=12) | st.sampled_from(
    [LONE, "a\udcff", "\x00", "", " ", "+39\ud83d", "0500", "0G"]
)
numbers = st.integers(min_value=-(2**80), max_value=2**80) | st.floats()
scalars = st.none() | st.booleans() | numbers | st.binary(max_size=6) | hostile_text
anything = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner)
        | st.dictionaries(st.text(max_size=3), inner, max_size=2)
    ),
    max_leaves=6,
)
destination = st.integers(min_value=10**9, max_value=10**12).map(lambda n: f"+39{n}")
destinations = destination | st.lists(destination, min_size=1, max_size=3, unique=True)
#: Any moment in any zone: historical offsets in seconds (LMT) and years before 1000 too.
aware = st.datetimes(timezones=st.timezones())
#: Plausible values of every field (some still invalid: the provider's rules are not types).
GOOD_MESSAGE = {
    "destinations": destinations,
    "sender": st.sampled_from(["Shop", "12345", "Caffè"]),
    "body": st.text(max_size=30),
    "ids": st.lists(st.text(st.characters(codec="ascii"), min_size=1, max_size=8), max_size=3),
    "hex_body": st.booleans(),
    "udh_data": st.sampled_from(["050003CC0201", "0G"]),
    "scheduling": aware | st.just(datetime(2031, 1, 1)),
}
GOOD_OPTIONS = {
    "global_id": st.text(st.characters(codec="ascii"), min_size=1, max_size=70),
    "max_id_len": st.integers(min_value=-5, max_value=2**40),
    "enable_concatenated": st.booleans(),
    "enable_unicode": st.booleans(),
    "enable_delivery": st.booleans(),
    "simulation": st.booleans(),
}
REQUIRED = ("destinations", "sender", "body")


@st.composite
def kwargs(
    draw: st.DrawFn, good: dict[str, st.SearchStrategy[Any]], required: tuple[str, ...]
) -> dict[str, Any]:
    """Keyword arguments where a few fields (often none) are hostile, so examples get past
    the constructors as well as into them."""
    names = draw(st.sets(st.sampled_from(sorted(good)), max_size=len(good)))
    hostile = draw(st.sets(st.sampled_from(sorted(good)), max_size=2))
    return {
        name: draw(anything if name in hostile else good[name])
        for name in sorted(good)
        if name in names or name in required
    }


def build(message: dict[str, Any], options: dict[str, Any] | None) -> tuple[Any, Any]:
    """The message and options, or ``None`` for one whose constructor refused (checked)."""
    built: list[Any] = []
    for cls, arguments in ((Message, message), (SendOptions, options)):
        if arguments is None:
            built.append(None)
            continue
        try:
            built.append(cls(**arguments))
        except ValidationError as error:
            fields(error)
            built.append(None)
    return built[0], built[1]


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(message=kwargs(GOOD_MESSAGE, REQUIRED), options=st.none() | kwargs(GOOD_OPTIONS, ()))
async def test_any_input_gives_a_named_validation_error_or_success(
    message: dict[str, Any], options: dict[str, Any] | None
) -> None:
    built, send_options = build(message, options)
    if built is None or (options is not None and send_options is None):
        event("refused by a constructor")
        return
    fake = FakeAgileServer(credit=Decimal("100000"))
    async with fake.client() as client:
        try:
            result = await client.send(built, options=send_options)
        except ValidationError as error:
            fields(error)
            event("refused by send()")
        else:
            assert len(result.ids) == len(built.destinations)
            event("sent")
        batch_options = send_options
        if send_options is not None and send_options.global_id is not None:
            batch_options = SendOptions(**{**options, "global_id": None})  # type: ignore[dict-item]
        async with client.batcher(max_latency=0) as batcher:
            try:
                ticket = await batcher.submit(built, options=batch_options)
            except ValidationError as error:
                fields(error)
                ticket = None
        if ticket is not None:
            assert ticket.state is TicketState.ACCEPTED, ticket.exception()
