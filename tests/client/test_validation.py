"""Local validation: every problem found at once, each naming its field."""

from __future__ import annotations

import copy
import pickle
from datetime import datetime, timezone

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agile_async import Message, SendOptions, ValidationError
from agile_async._validation import (
    IdGenerator,
    check_destination,
    check_message,
    message_problems,
    plainly_valid_row,
    plainly_valid_rows,
    prepare_request,
)

GOOD = Message(destinations="+393471234567", sender="MyApp", body="Hello")


def problems(messages: list[object], options: SendOptions | None = None) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        prepare_request(messages, options or SendOptions(), IdGenerator())  # type: ignore[arg-type]
    return {p.field: p.message for p in caught.value.problems}


@pytest.mark.parametrize(
    ("destination", "fragment"),
    [
        ("+39 347 1234567", "digits in international format"),
        ("+39-3471234567", "digits in international format"),
        ("abc", "digits in international format"),
        ("", "digits in international format"),
        ("+", "digits in international format"),
        ("003934712345", "country code"),
        ("03471234567", "country code"),
        ("+123456", "too short"),
        ("+1234567890123456", "too long"),
    ],
)
def test_bad_destinations(destination: str, fragment: str) -> None:
    found = problems([Message(destinations=destination, sender="MyApp", body="x")])
    assert fragment in found["messages[0].destinations[0]"]


@pytest.mark.parametrize(
    "destination", ["+393471234567", "393471234567", "+6834002", "+123456789012345"]
)
def test_good_destinations(destination: str) -> None:
    assert check_destination(destination) is None


@pytest.mark.parametrize(
    ("sender", "fragment"),
    [
        ("", "must not be empty"),
        ("ABCDEFGHIJKL", "at most 11 characters"),
        ("12345678901234567", "at most 16 digits"),
        ("Bad\nName", "letters, digits"),
    ],
)
def test_bad_senders(sender: str, fragment: str) -> None:
    found = problems([Message(destinations="+393471234567", sender=sender, body="x")])
    assert fragment in found["messages[0].sender"]


@pytest.mark.parametrize(
    "sender", ["MyApp", "ABCDEFGHIJK", "1234567890123456", "+393471234567", "My Shop"]
)
def test_good_senders(sender: str) -> None:
    prepare_request(
        [Message(destinations="+393471234567", sender=sender, body="x")],
        SendOptions(),
        IdGenerator(),
    )


def test_every_problem_is_reported_at_once() -> None:
    found = problems(
        [
            Message(
                destinations=["+393471234567", "nope"],
                sender="FarTooLongSender",
                body="",
                ids=["a"],
                udh_data="0G",
                scheduling=datetime(2026, 1, 1, 8, 0),
            ),
            Message(destinations=[], sender="MyApp", body="zz", hex_body=True),
            "not a message",
        ],
        SendOptions(global_id="g" * 65, max_id_len=0),
    )
    assert set(found) == {
        "options.global_id",
        "options.max_id_len",
        "messages[0].destinations[1]",
        "messages[0].sender",
        "messages[0].body",
        "messages[0].udh_data",
        "messages[0].scheduling",
        "messages[0].ids",
        "messages[1].destinations",
        "messages[1].body",
        "messages[2]",
    }
    assert "timezone-aware" in found["messages[0].scheduling"]
    assert "hex" in found["messages[1].body"]
    assert "1 ids for 2 destinations" in found["messages[0].ids"]


def test_the_error_message_lists_every_problem() -> None:
    with pytest.raises(ValidationError) as caught:
        prepare_request(
            [Message(destinations="x", sender="", body="")], SendOptions(), IdGenerator()
        )
    text = str(caught.value)
    assert text.startswith("3 problems in the request:")
    assert "messages[0].destinations[0]" in text
    assert "messages[0].sender" in text
    assert "messages[0].body" in text


def test_empty_request() -> None:
    assert "at least one message" in problems([])["messages"]


def test_a_bad_message_among_good_ones_is_still_named_after_good_requests() -> None:
    """Once its options and senders were found valid, the usual request is judged by the
    quick rule (client.send()'s path): a message it does not pass still gets the full one."""
    prepare_request([GOOD], SendOptions(), IdGenerator())  # the quick rule learns them
    short = Message(destinations="+39347", sender="MyApp", body="Hello")
    assert list(problems([GOOD, short])) == ["messages[1].destinations[0]"]
    assert list(problems([GOOD], SendOptions(max_id_len=0))) == ["options.max_id_len"]
    mine = Message(destinations=["+393471234567"] * 2, sender="MyApp", body="Hi", ids=["a", "a"])
    assert list(problems([GOOD, mine])) == ["messages[1].ids[1]"]


def test_ids_must_be_unique_across_the_request() -> None:
    found = problems(
        [
            Message(
                destinations=["+393471234567", "+393471234568"],
                sender="A",
                body="x",
                ids=["a", "b"],
            ),
            Message(destinations="+393471234569", sender="A", body="x", ids=["a"]),
        ]
    )
    assert found == {"messages[1].ids[0]": "'a' is already used by messages[0].ids[0]"}


def test_ids_longer_than_max_id_len() -> None:
    found = problems(
        [Message(destinations="+393471234567", sender="A", body="x", ids=["abcdef"])],
        SendOptions(max_id_len=5),
    )
    assert "longer than max_id_len (6 > 5)" in found["messages[0].ids[0]"]


@pytest.mark.parametrize(
    ("udh", "ok"),
    [("050003CC0201", True), ("0500", True), ("ABC", False), ("XY", False), ("", False)],
)
def test_udh_must_be_even_length_hex(udh: str, ok: bool) -> None:
    message = Message(destinations="+393471234567", sender="A", body="x", udh_data=udh)
    if ok:
        prepare_request([message], SendOptions(), IdGenerator())
    else:
        assert "messages[0].udh_data" in problems([message])


def test_hex_body_must_be_even_length_hex() -> None:
    assert (
        "even number"
        in problems(
            [Message(destinations="+393471234567", sender="A", body="0041004", hex_body=True)]
        )["messages[0].body"]
    )
    prepare_request(
        [Message(destinations="+393471234567", sender="A", body="00410042", hex_body=True)],
        SendOptions(),
        IdGenerator(),
    )


def test_aware_scheduling_is_fine() -> None:
    message = Message(
        destinations="+393471234567",
        sender="A",
        body="x",
        scheduling=datetime(2026, 1, 1, 8, 0, tzinfo=timezone.utc),
    )
    prepare_request([message], SendOptions(), IdGenerator())


def test_every_destination_gets_a_unique_id_and_the_request_a_global_id() -> None:
    given = Message(destinations="+393471234569", sender="A", body="x", ids=["mine"])
    messages, options = prepare_request(
        [
            GOOD,
            Message(destinations=["+393471234567", "+393471234568"], sender="A", body="y"),
            given,
        ],
        SendOptions(),
        IdGenerator(),
    )
    ids = [id_ for m in messages for id_ in m.ids or ()]
    assert len(ids) == 4
    assert len(set(ids)) == 4
    assert ids[3] == "mine"
    assert options.global_id is not None
    assert len(options.global_id) == 32


def test_generated_ids_respect_a_short_max_id_len() -> None:
    messages, _ = prepare_request(
        [Message(destinations=[f"+3934712345{i:02d}" for i in range(50)], sender="A", body="y")],
        SendOptions(max_id_len=6),
        IdGenerator(),
    )
    ids = messages[0].ids or ()
    assert len(set(ids)) == 50
    assert all(len(i) <= 6 for i in ids)


def test_message_accepts_one_destination_as_a_string() -> None:
    assert GOOD.destinations == ("+393471234567",)
    assert GOOD.with_ids(["x"]).ids == ("x",)


def test_with_ids_keeps_every_other_field() -> None:
    full = Message(
        destinations=["+393471234567", "+393471234568"],
        sender="Shop",
        body="00ff",
        hex_body=True,
        udh_data="050003cc0201",
        scheduling=datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
    )
    assert full.with_ids(iter(["a", "b"])) == attrs.evolve(full, ids=("a", "b"))
    assert {f.name for f in attrs.fields(Message)} == {
        "destinations",
        "sender",
        "body",
        "ids",
        "hex_body",
        "udh_data",
        "scheduling",
    }  # a new field must be carried by with_ids too


def test_a_message_copies_pickles_and_subclasses_with_every_field_checked() -> None:
    """A Message is filled in by hand (see Message.__new__): copies, pickles and subclasses
    hold every field, and are checked again as the original was."""
    full = Message(
        destinations=["+393471234567", "+393471234568"],
        sender="Shop",
        body="00ff",
        ids=["a", "b"],
        hex_body=True,
        udh_data="050003cc0201",
        scheduling=datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
    )
    for made in (copy.copy(full), copy.deepcopy(full), pickle.loads(pickle.dumps(full))):
        assert type(made) is Message
        assert made == full
        assert hash(made) == hash(full)

    class Tagged(Message):
        __slots__ = ("tag",)

    tagged = Tagged(destinations="+393471234567", sender="Shop", body="hi")
    assert type(tagged) is Tagged
    assert (tagged.destinations, tagged.sender, tagged.body, tagged.ids) == (
        ("+393471234567",),
        "Shop",
        "hi",
        None,
    )
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        full.body = "changed"  # type: ignore[misc]
    with pytest.raises(ValidationError) as refused:
        Tagged(destinations="+393471234567", sender="Shop", body=b"hi")  # type: ignore[arg-type]
    assert [p.field for p in refused.value.problems] == ["message.body"]


@given(
    st.one_of(
        st.text(alphabet="+0123456789", max_size=20),
        st.text(max_size=20),
        st.from_regex(r"\+?[0-9]{0,17}\n?", fullmatch=True),
    )
)
def test_the_hot_path_destination_rule_is_the_full_rule(value: str) -> None:
    """The Batcher's one-match check agrees with the rule that explains what is wrong."""
    from agile_async._limits import destination_fault, plain_destination

    assert plain_destination(value) == (destination_fault(value) is None)


# Mostly valid rows, so one bad value among good ones is often what decides.
_GOOD_DESTINATIONS = st.sampled_from(["+393471234567", "393471234567", "+447700900123"])
_DESTINATIONS = st.one_of(
    _GOOD_DESTINATIONS,
    _GOOD_DESTINATIONS,
    st.sampled_from(["+0393471234", "+39347", "+39 347 1234567", "+39347123456789012", ""]),
    st.text(alphabet="+0123456789", max_size=18),
    st.integers(),
)
_GOOD_BODIES = st.sampled_from(["Your code is 4711", "Ünïcödé ✓", "€ 5", "x" * 1000])
_BODIES = st.one_of(
    _GOOD_BODIES,
    _GOOD_BODIES,
    st.sampled_from(["", "\ud800 lone", "x" * 1001, b"bytes"]),
    st.text(max_size=30),
    st.none(),
)
_GOOD_IDS = st.sampled_from(["a", "order-17", "x" * 64])
_IDS = st.one_of(  # a row given an id column has one (a None id takes the row path)
    _GOOD_IDS,
    _GOOD_IDS,
    st.sampled_from(["", "x" * 65, "ïd", 7]),
    st.text(max_size=8),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(_DESTINATIONS, _BODIES, st.none() | _IDS), min_size=0, max_size=4))
def test_the_quick_rule_of_a_request_is_never_more_lenient_than_the_full_one(
    rows: list[tuple[object, object, object]],
) -> None:
    from agile_async._validation import _plainly_valid_request, validate_request

    options = SendOptions()
    validate_request([GOOD], options)  # options and a sender found valid: the quick rule is on
    messages = []
    for destination, body, id_ in rows:
        try:
            messages.append(
                Message(
                    destinations=destination,  # type: ignore[arg-type]
                    sender="MyApp",
                    body=body,  # type: ignore[arg-type]
                    ids=None if id_ is None else [id_],  # type: ignore[list-item]
                )
            )
        except ValidationError:
            continue  # a value a Message cannot hold never reaches a request
    if _plainly_valid_request(messages, options):
        validate_request(messages, options)  # raises nothing


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.tuples(_DESTINATIONS, _BODIES, _IDS), min_size=1, max_size=4), st.booleans())
def test_the_column_check_of_rows_is_the_row_check_of_each(
    rows: list[tuple[object, object, object]], with_ids: bool
) -> None:
    options = SendOptions()
    check_message(Message(destinations="+393471234567", sender="Shop", body="hi"), options)
    destinations = [row[0] for row in rows]
    bodies = [row[1] for row in rows]
    ids = [row[2] for row in rows] if with_ids else None
    by_columns = plainly_valid_rows(destinations, bodies, "Shop", ids, options)
    by_rows = all(
        plainly_valid_row(d, b, "Shop", i if with_ids else None, options) for d, b, i in rows
    )
    assert by_columns == by_rows
    if by_columns:  # never more lenient than the full check, which names every problem
        for d, b, i in rows:
            message = Message(
                destinations=d,  # type: ignore[arg-type]
                sender="Shop",
                body=b,  # type: ignore[arg-type]
                ids=[i] if with_ids else None,  # type: ignore[list-item]
            )
            assert message_problems(message, "message", options) == []
