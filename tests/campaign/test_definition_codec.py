"""One codec writes a campaign's definition for both journals (SQLite columns, a Redis JSON
object): whatever is written reads back equal, what earlier versions stored still reads, and
what is stored is byte for byte what the previous version wrote."""

from __future__ import annotations

import json
import sqlite3
import tempfile
import uuid
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agile_async import SendOptions
from agile_async.campaigns import CampaignDefinition, JournalError, SQLiteJournal
from agile_async.scaleout import RedisCampaign

pytest_plugins = ("tests._redis_server",)
pytestmark = pytest.mark.anyio

OFFSETS = [timezone.utc, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5, minutes=-30))]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)

definitions = st.builds(
    CampaignDefinition,
    campaign_id=st.text("0123456789abcdef", min_size=1, max_size=16),
    source=st.text(max_size=60),
    source_format=st.sampled_from(["csv", "jsonl"]),
    source_sha256=st.text("0123456789abcdef", min_size=64, max_size=64),
    source_size=st.integers(0, 2**62),
    body=st.text(max_size=300),
    sender=st.text(max_size=16),
    options=st.builds(
        SendOptions,
        global_id=st.none() | st.text(max_size=20),
        max_id_len=st.integers(1, 2**31 - 1),
        enable_concatenated=st.booleans(),
        enable_unicode=st.booleans(),
        enable_delivery=st.booleans(),
        simulation=st.booleans(),
    ),
    created_at=st.datetimes(timezones=st.sampled_from(OFFSETS)),
    defaults=st.dictionaries(st.text(max_size=12), json_values, max_size=5),
    source_encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16"]),
    source_delimiter=st.none() | st.sampled_from([",", ";", "\t", "|"]),
)

#: A definition, and what the previous version (two hand-written serialisers) stored for it.
FIXED = CampaignDefinition(
    campaign_id="c0ffee",
    source="/data/spring €.csv",
    source_format="csv",
    source_sha256="ab" * 32,
    source_size=1234,
    body="Hi {name} 👋",
    sender="Shop",
    options=SendOptions(max_id_len=32, simulation=True),
    created_at=datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=1))),
    defaults={"rate": 100, "burst": None, "prices": "0.045"},
    source_encoding="cp1252",
    source_delimiter=";",
)
FIXED_REDIS_JSON = (
    '{"body": "Hi {name} \\ud83d\\udc4b", "campaign_id": "c0ffee", "created_at": '
    '"2026-03-01T09:30:15.123456+01:00", "defaults": {"burst": null, "prices": "0.045", '
    '"rate": 100}, "options": {"enable_concatenated": true, "enable_delivery": true, '
    '"enable_unicode": true, "global_id": null, "max_id_len": 32, "simulation": true}, '
    '"sender": "Shop", "source": "/data/spring \\u20ac.csv", "source_delimiter": ";", '
    '"source_encoding": "cp1252", "source_format": "csv", "source_sha256": '
    '"abababababababababababababababababababababababababababababababab", "source_size": 1234}'
)
FIXED_SQLITE_ROW = (
    "c0ffee",
    "/data/spring €.csv",
    "csv",
    "ab" * 32,
    1234,
    "Hi {name} 👋",
    "Shop",
    '{"enable_concatenated": true, "enable_delivery": true, "enable_unicode": true, '
    '"global_id": null, "max_id_len": 32, "simulation": true}',
    '{"burst": null, "prices": "0.045", "rate": 100}',
    "2026-03-01T09:30:15.123456+01:00",
    "cp1252",
    ";",
)
SQLITE_COLUMNS = (
    "campaign_id, source, source_format, source_sha256, source_size, body, sender, options,"
    " defaults, created_at, source_encoding, source_delimiter"
)

FIXED_COLUMNS = dict(zip(SQLITE_COLUMNS.split(", "), FIXED_SQLITE_ROW, strict=True))


async def sqlite_round_trip(definition: CampaignDefinition) -> CampaignDefinition | None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "c.journal"
        async with await SQLiteJournal.open(path, create=True) as journal:
            await journal.create(definition)
        async with await SQLiteJournal.open(path) as journal:
            return await journal.definition()


async def hset(redis: Any, key: str, field: str, value: str) -> None:
    if type(redis).__module__.startswith("coredis"):
        await redis.hset(key, {field: value})
    else:
        await redis.hset(key, field, value)


@settings(max_examples=40, deadline=None)
@given(definition=definitions)
async def test_the_sqlite_journal_reads_back_what_it_wrote(
    definition: CampaignDefinition,
) -> None:
    assert await sqlite_round_trip(definition) == definition


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(definition=definitions)
async def test_the_redis_journal_reads_back_what_it_wrote(
    redis: Any, definition: CampaignDefinition
) -> None:
    name = f"codec-{uuid.uuid4().hex[:12]}"
    await RedisCampaign(redis, name).create(definition)
    assert await RedisCampaign(redis, name).definition() == definition


async def test_sqlite_stores_the_columns_the_previous_version_wrote(tmp_path: Path) -> None:
    path = tmp_path / "c.journal"
    async with await SQLiteJournal.open(path, create=True) as journal:
        await journal.create(FIXED)
    with closing(sqlite3.connect(path)) as conn, conn:
        assert conn.execute(f"SELECT {SQLITE_COLUMNS} FROM campaign").fetchone() == (
            FIXED_SQLITE_ROW
        )


async def test_redis_stores_the_json_the_previous_version_wrote(redis: Any) -> None:
    journal = RedisCampaign(redis, f"codec-{uuid.uuid4().hex[:12]}")
    await journal.create(FIXED)
    stored = await redis.hget(journal.keys[0], "def")
    assert (stored.decode() if isinstance(stored, bytes) else stored) == FIXED_REDIS_JSON


@pytest.mark.parametrize(
    ("source_format", "delimiter"), [("csv", ","), ("jsonl", None)], ids=["csv", "jsonl"]
)
async def test_a_redis_definition_from_before_encodings_reads_as_it_was_read(
    redis: Any, source_format: str, delimiter: str | None
) -> None:
    """Recorded before the input's encoding and delimiter were: UTF-8, and a CSV's commas."""
    old = json.loads(FIXED_REDIS_JSON)
    del old["source_encoding"], old["source_delimiter"]
    old["source_format"] = source_format
    journal = RedisCampaign(redis, f"codec-{uuid.uuid4().hex[:12]}")
    await journal.create(FIXED)
    await hset(redis, journal.keys[0], "def", json.dumps(old, sort_keys=True))
    read = await RedisCampaign(redis, journal.name).definition()
    assert read is not None
    assert (read.source_encoding, read.source_delimiter) == ("utf-8", delimiter)
    assert (read.body, read.options, read.defaults) == (FIXED.body, FIXED.options, FIXED.defaults)


async def test_an_unreadable_redis_definition_is_a_journal_error(redis: Any) -> None:
    journal = RedisCampaign(redis, f"codec-{uuid.uuid4().hex[:12]}")
    await journal.create(FIXED)
    record = json.loads(FIXED_REDIS_JSON)
    record["options"]["a_future_option"] = True
    for stored in (json.dumps(record), '{"campaign_id": "c0ffee"}', "[1, 2]", "{not json"):
        await hset(redis, journal.keys[0], "def", stored)
        with pytest.raises(JournalError, match="definition"):
            await RedisCampaign(redis, journal.name).definition()


async def test_an_unreadable_sqlite_definition_is_a_journal_error(tmp_path: Path) -> None:
    path = tmp_path / "c.journal"
    async with await SQLiteJournal.open(path, create=True) as journal:
        await journal.create(FIXED)
    for column, value in (("options", '{"a_future_option": true}'), ("created_at", "noon")):
        with closing(sqlite3.connect(path)) as conn, conn:
            conn.execute(f"UPDATE campaign SET {column} = ?", (value,))
        async with await SQLiteJournal.open(path) as journal:
            with pytest.raises(JournalError, match="definition"):
                await journal.definition()
        with closing(sqlite3.connect(path)) as conn, conn:  # as it was, for the next column's turn
            conn.execute(f"UPDATE campaign SET {column} = ?", (FIXED_COLUMNS[column],))
