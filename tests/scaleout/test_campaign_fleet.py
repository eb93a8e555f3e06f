"""SLOW (a few seconds each): a Redis campaign run by worker *processes*, killed and paused.

The fake provider serves over real TLS in this process; the loader and the workers are
``agile-sms campaign enqueue|work`` subprocesses (AGILE_BASE_URL, AGILE_API_KEY,
SSL_CERT_FILE point them at it). Faults are made deterministic by holding the fake's answer
*after* it accepted a request (``Fault.hold(hold, after_processing=True)``): the test then
knows the provider has the messages and the worker cannot have recorded it.
"""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from agile_async.testing import FakeAgileServer, Fault, Hold
from tests._waiting import wait_until
from tests.scaleout._fleet import (
    assert_sent_once,
    cli,
    enqueue,
    finish,
    hold_next_send,
    recipients,
    serving,
    states,
    stop,
    worker,
)

if TYPE_CHECKING:
    from tests._redis_server import KillableRedis

pytest_plugins = ("tests._redis_server",)

pytest.importorskip("uvicorn")
pytest.importorskip("trustme")
redis_sync = pytest.importorskip("redis")

pytestmark = pytest.mark.slow


def stream_length(url: str, name: str) -> int:
    with redis_sync.Redis.from_url(url) as client:
        return int(client.xlen(f"{{agile:c:{name}}}:q"))


def test_a_worker_killed_after_the_provider_accepted_leaves_that_batch_unknown(
    redis_url: str, tmp_path: Path
) -> None:
    name = f"kill-{uuid.uuid4().hex[:8]}"
    fake = FakeAgileServer(credit=Decimal(1000))
    with serving(fake) as env, Hold() as hold, ExitStack() as stack:  # released, then stopped
        code, _ = finish(enqueue(env, redis_url, name, recipients(tmp_path / "r.csv", 60)))
        assert code == 0
        hold_next_send(fake, hold)
        victim = worker(env, redis_url, name)
        stack.callback(stop, victim)
        assert hold.wait_held_blocking(timeout=15), "the worker sent nothing"
        victim.send_signal(signal.SIGKILL)  # the provider has the batch; the worker never knew
        victim.communicate(timeout=5)  # (closes its pipes)
        hold.release()
        taken = {m.message_id for m in fake.accepted}
        assert len(taken) == 5
        code, report = finish(worker(env, redis_url, name))
    assert code == 0, report
    assert report["became_unknown"] == 5
    assert report["campaign_counts"] == {
        "pending": 0, "in_flight": 0, "accepted": 55, "failed": 0, "unknown": 5,
    }  # fmt: skip
    ids = assert_sent_once(fake)
    assert len(ids) == 60  # the unknown batch was never sent again: 5 + 55
    assert states(redis_url, name) == "U" * 5 + "A" * 55
    assert stream_length(redis_url, name) == 0
    # The operator decides to send them again; not before they have been silent a while.
    with serving(fake) as env:
        code, report = finish(
            worker(env, redis_url, name, "--resend-unknown", "--silent-for", "1h")
        )
        assert code == 0, report
        assert report["campaign_counts"]["unknown"] == 5
        code, report = finish(worker(env, redis_url, name, "--resend-unknown"))
    assert code == 0, report
    assert report["campaign_counts"]["accepted"] == 60
    assert report["sent_by_this_worker"]["accepted"] == 5
    again = Counter(message.message_id for message in fake.accepted)
    assert sorted(again.values()) == [1] * 55 + [2] * 5
    assert {i for i, n in again.items() if n == 2} == taken


def test_a_paused_worker_is_fenced_out_when_it_comes_back(redis_url: str, tmp_path: Path) -> None:
    name = f"stop-{uuid.uuid4().hex[:8]}"
    fake = FakeAgileServer(credit=Decimal(1000))
    with serving(fake) as env, Hold() as hold, ExitStack() as stack:  # released, then stopped
        code, _ = finish(enqueue(env, redis_url, name, recipients(tmp_path / "r.csv", 40)))
        assert code == 0
        hold_next_send(fake, hold)
        paused = worker(env, redis_url, name)
        stack.callback(stop, paused)
        assert hold.wait_held_blocking(timeout=15), "the worker sent nothing"
        paused.send_signal(signal.SIGSTOP)  # a long GC pause, a frozen VM...
        hold.release()
        code, report = finish(worker(env, redis_url, name))  # reclaims after the lease
        assert code == 0, report
        assert report["became_unknown"] == 5
        paused.send_signal(signal.SIGCONT)
        code, late = finish(paused)
    assert code == 4, late  # stopped: fenced out
    assert late["sent_by_this_worker"]["accepted"] == 5
    ids = assert_sent_once(fake)
    assert len(ids) == 40
    # Its late answer turned the unknown batch into what really happened.
    assert states(redis_url, name) == "A" * 40


def test_a_killed_loader_resumes_and_every_row_goes_once(redis_url: str, tmp_path: Path) -> None:
    name = f"load-{uuid.uuid4().hex[:8]}"
    source = recipients(tmp_path / "r.csv", 200)
    fake = FakeAgileServer(credit=Decimal(1000))
    with serving(fake) as env, ExitStack() as stack:
        loader = enqueue(env, redis_url, name, source, "--max-queued-chunks", "2")
        stack.callback(stop, loader)
        wait_until(lambda: stream_length(redis_url, name) == 2)  # full: the loader waits
        loader.send_signal(signal.SIGKILL)
        loader.communicate(timeout=5)
        assert len(states(redis_url, name)) == 40
        resumed = enqueue(env, redis_url, name, source, "--max-queued-chunks", "2")
        stack.callback(stop, resumed)
        code, report = finish(worker(env, redis_url, name, "--lease", "5"))
        assert code == 0, report
        code, loaded = finish(resumed)
    assert code == 0
    assert loaded == {"campaign": name, "rows": 200, "done": True}
    assert report["campaign_counts"]["accepted"] == 200
    assert len(assert_sent_once(fake)) == 200
    assert states(redis_url, name) == "A" * 200


def test_status_and_export_read_from_redis(redis_url: str, tmp_path: Path) -> None:
    name = f"read-{uuid.uuid4().hex[:8]}"
    fake = FakeAgileServer(credit=Decimal(1000))
    with serving(fake) as env:
        finish(enqueue(env, redis_url, name, recipients(tmp_path / "r.csv", 30)))
        finish(worker(env, redis_url, name))
        code, status = finish(cli(env, "status", "--redis", redis_url, name, "--json"))
        assert code == 0
        exported = tmp_path / "out.csv"
        process = cli(env, "export", "--redis", redis_url, name, "-o", str(exported))
        code, _ = finish(process)
        assert code == 0
    assert status["counts"]["accepted"] == 30
    assert len(exported.read_text().splitlines()) == 31


# -- chaos: repeated SIGKILLs of workers, and of Redis itself -------------------------------


def campaign_id(url: str, name: str) -> str:
    with redis_sync.Redis.from_url(url) as client:
        return str(json.loads(client.hget(f"{{agile:c:{name}}}:meta", "def"))["campaign_id"])


def check_invariants(
    fake: FakeAgileServer, url: str, name: str, total: int, *, max_unknown: int
) -> str:
    """Every row has an outcome, no id went twice, accepted rows are in the provider's log,
    nothing else is, and Redis holds no chunk any more."""
    final = states(url, name)
    assert len(final) == total
    assert set(final) <= {"A", "F", "U"}, Counter(final)
    ids = assert_sent_once(fake)
    cid = campaign_id(url, name)
    for seq, state in enumerate(final, start=1):
        if state == "A":
            assert f"{cid}-{seq}" in ids, seq
    allowed = {f"{cid}-{seq}" for seq, state in enumerate(final, start=1) if state in "AU"}
    assert set(ids) <= allowed
    assert final.count("U") <= max_unknown
    assert stream_length(url, name) == 0
    with redis_sync.Redis.from_url(url) as client:
        assert client.xpending(f"{{agile:c:{name}}}:q", "senders")["pending"] == 0
    return final


def run_until_finished(
    env: dict[str, str], url: str, name: str, stack: ExitStack, deadline: float
) -> None:
    """Start workers until one reports the campaign finished."""
    while time.monotonic() < deadline:
        code, _ = finish(worker(env, url, name, "--batch-size", "50"), timeout=30)
        if code == 0:
            return
    pytest.fail("the campaign did not finish")


def test_chaos_workers_killed_at_random(redis_url: str, tmp_path: Path) -> None:
    import random

    chance = random.Random(20261121)
    name = f"chaos-{uuid.uuid4().hex[:8]}"
    total, kills, batch, in_flight = 10_000, 8, 50, 2
    fake = FakeAgileServer(credit=Decimal(1_000_000))
    source = recipients(tmp_path / "r.csv", total)
    with serving(fake) as env, ExitStack() as stack:
        # The loader streams as the workers go (64 chunks ahead at most), so it runs along.
        loader = cli(env, "enqueue", "--redis", redis_url, str(source), "--name", name,
                     "--sender", "Shop", "--body", "Hi", "--json")  # fmt: skip
        stack.callback(stop, loader)
        wait_until(lambda: stream_length(redis_url, name) > 0)

        def start() -> subprocess.Popen[str]:
            process = worker(env, redis_url, name, "--batch-size", str(batch),
                             "--max-in-flight", str(in_flight), "--lease", "1")  # fmt: skip
            stack.callback(stop, process)
            return process

        workers = [start() for _ in range(3)]
        for _ in range(kills):
            time.sleep(chance.uniform(0.2, 0.6))  # kill at a random moment, seeded
            alive = [w for w in workers if w.poll() is None]
            if not alive:
                break
            victim = chance.choice(alive)
            victim.kill()
            victim.communicate(timeout=5)
            workers.remove(victim)
            workers.append(start())
        for process in workers:
            finish(process, timeout=30)
        run_until_finished(env, redis_url, name, stack, time.monotonic() + 30)
        assert finish(loader)[0] == 0
    final = check_invariants(fake, redis_url, name, total, max_unknown=kills * batch * in_flight)
    assert final.count("A") >= total - kills * batch * in_flight


# -- Redis itself killed: waited out within --redis-timeout, a clean stop beyond -------------


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_redis_restart_mid_campaign_is_waited_out(
    killable_redis: KillableRedis, tmp_path: Path, backend: str
) -> None:
    if backend == "trio":
        pytest.importorskip("coredis")
    url = killable_redis.url
    name = f"aof-{uuid.uuid4().hex[:8]}"
    total = 2000
    fake = FakeAgileServer(credit=Decimal(1_000_000))
    with serving(fake) as env, ExitStack() as stack:
        source = recipients(tmp_path / "r.csv", total)
        # The loader streams along (8 chunks ahead at most): it lives through the restart too.
        loader = cli(env, "enqueue", "--redis", url, str(source), "--name", name,
                     "--sender", "Shop", "--body", "Hi", "--chunk-size", "20",
                     "--max-queued-chunks", "8", "--json", backend=backend)  # fmt: skip
        stack.callback(stop, loader)
        wait_until(lambda: stream_length(url, name) > 0)  # the campaign exists
        workers = []
        for _ in range(3):
            process = cli(env, "work", "--redis", url, name, "--batch-size",
                          "20", "--max-in-flight", "2", "--rate", "1000", "--burst",
                          "100", "--lease", "8", "--json", backend=backend)  # fmt: skip
            stack.callback(stop, process)
            workers.append(process)
        wait_until(lambda: len(fake.accepted) >= 600)
        killable_redis.kill()  # SIGKILL: no shutdown; every connection drops
        time.sleep(1.0)  # Redis down for a second of real time: the workers wait it out
        assert len(fake.accepted) < total  # mid-campaign
        killable_redis.start()  # from its AOF (appendfsync always)
        results = [process.communicate(timeout=40) for process in workers]
        loaded = loader.communicate(timeout=10)
    for process, (out, err) in zip(workers, results, strict=True):
        assert process.returncode == 0, err[-3000:]
        report = json.loads(out)
        assert report["stopped_by"] is None
        assert report["campaign_counts"]["accepted"] == total
        assert "Traceback" not in err
        assert "Redis unavailable (" in err  # one line when Redis went...
        assert "Redis is back after" in err  # ...and one when it came back
    assert loader.returncode == 0, loaded[1][-3000:]
    assert states(url, name) == "A" * total  # none failed, none unknown
    assert len(assert_sent_once(fake)) == total
    assert stream_length(url, name) == 0


def test_redis_down_past_the_tolerance_stops_workers_cleanly(
    killable_redis: KillableRedis, tmp_path: Path
) -> None:
    url = killable_redis.url
    name = f"down-{uuid.uuid4().hex[:8]}"
    total = 2000
    fake = FakeAgileServer(credit=Decimal(1_000_000))
    with serving(fake) as env, ExitStack() as stack:
        code, _ = finish(enqueue(env, url, name, recipients(tmp_path / "r.csv", total),
                                 "--max-queued-chunks", "200"))  # fmt: skip
        assert code == 0
        workers = []
        for _ in range(2):
            process = worker(env, url, name, "--batch-size", "20", "--max-in-flight", "2",
                             "--rate", "1000", "--burst", "100",
                             "--redis-timeout", "1")  # fmt: skip
            stack.callback(stop, process)
            workers.append(process)
        wait_until(lambda: len(fake.accepted) >= 300)
        killable_redis.kill()
        results = [process.communicate(timeout=20) for process in workers]
        sent = len(fake.accepted)
        killable_redis.start()
        after_outage = states(url, name)
        code, report = finish(worker(env, url, name, "--batch-size", "50"), timeout=30)
    for process, (out, err) in zip(workers, results, strict=True):
        assert process.returncode == 5, err[-3000:]  # documented: Redis unavailable
        assert out == ""
        [error] = [line for line in err.splitlines() if line.startswith("Error:")]
        assert "RedisUnavailableError" in error
        assert "tolerance of 1 s" in error
        assert "Traceback" not in err
    assert sent < total
    assert "F" not in after_outage  # nothing that was not sent is counted failed
    assert code == 0, report
    final = states(url, name)
    assert len(final) == total
    assert set(final) <= {"A", "U"}
    assert final.count("U") == after_outage.count("I")  # only outcomes that could not be written
    assert final.count("U") <= 2 * 2 * 20  # per worker: max_in_flight x batch size
    ids = assert_sent_once(fake)
    assert len(ids) >= final.count("A")


def test_a_crash_leaves_at_most_the_requests_in_flight_unknown(
    redis_url: str, tmp_path: Path
) -> None:
    name = f"bound-{uuid.uuid4().hex[:8]}"
    fake = FakeAgileServer(credit=Decimal(1000))
    with serving(fake) as env, Hold() as hold, ExitStack() as stack:
        code, _ = finish(enqueue(env, redis_url, name, recipients(tmp_path / "r.csv", 100)))
        assert code == 0
        fake.inject(Fault.hold(hold, after_processing=True), times=None, path="/sms/send")
        victim = worker(env, redis_url, name, "--max-in-flight", "3")
        stack.callback(stop, victim)
        assert hold.wait_held_blocking(3, timeout=15), "the worker did not fill its slots"
        time.sleep(0.3)  # a 4th request would be marked in flight now, if it could be
        in_flight = states(redis_url, name).count("I")
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=5)
        hold.release()
        code, report = finish(worker(env, redis_url, name))
    assert in_flight == 3 * 5  # max_in_flight requests of batch-size rows, no more
    assert code == 0, report
    assert report["became_unknown"] == 15
    assert report["campaign_counts"]["unknown"] == 15
    assert report["campaign_counts"]["accepted"] == 85
    assert len(assert_sent_once(fake)) == 100


def test_saved_reports_are_recorded_into_redis_and_exported(redis_url: str, tmp_path: Path) -> None:
    name = f"rep-{uuid.uuid4().hex[:8]}"
    fake = FakeAgileServer(credit=Decimal(1000))
    with serving(fake) as env:
        code, _ = finish(enqueue(env, redis_url, name, recipients(tmp_path / "r.csv", 10)))
        assert code == 0
        code, report = finish(worker(env, redis_url, name))
        assert code == 0, report
        sent = sorted(fake.accepted, key=lambda message: message.destination)
        saved = tmp_path / "reports.jsonl"
        lines = [
            {
                "messageId": message.message_id,
                "destination": message.destination,
                "statusCode": 3 if i else 6,
                "description": "Delivered" if i else "Undeliverable",
                "doneDate": "2026-04-08 14:35:22.045+0200",
                "concatTotal": 1,
                "concatProgressive": 1,
            }
            for i, message in enumerate(sent[:3])
        ]
        saved.write_text("".join(json.dumps(line) + "\n" for line in lines) + "not json\n")
        recorded = cli(env, "reports", "--redis", redis_url, name, str(saved), "--json")
        out, err = recorded.communicate(timeout=20)
        assert recorded.returncode == 1, err  # one line was not a report
        summary = json.loads(out)
        assert (summary["matched"], summary["refused"]) == (3, 1)
        exported = cli(env, "export", "--redis", redis_url, name)
        out, err = exported.communicate(timeout=20)
        assert exported.returncode == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 10
    assert all(row["id"] and row["destination"] for row in rows)
    by_destination = {row["destination"]: row for row in rows}
    assert by_destination[sent[0].destination]["delivery"] == "undeliverable"
    assert by_destination[sent[1].destination]["delivery"] == "delivered"
    assert by_destination[sent[3].destination]["delivery"] == ""
