"""Chaos: thousands of messages from many tasks through the Batcher and ``client.send()``,
every fault kind injected at random, submitters, senders and the whole block cancelled at
random, an early ``aclose`` in some seeds. Seeded, so a failure replays exactly.

What must hold, whatever happened:
- every message submitted to the batcher has exactly one final outcome, and ``on_result``
  saw it exactly once;
- the fake never accepted an id twice;
- nothing the fake accepted was reported failed or withdrawn, and everything reported
  accepted is in the fake;
- a direct ``client.send()`` that returned was accepted by the fake; one that failed with a
  definite error was not.
"""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal

import anyio
import anyio.lowlevel
import pytest

from agile_async import (
    AgileClient,
    AgileError,
    Batcher,
    Message,
    OutcomeUnknownError,
    RequestOutcome,
    RetryPolicy,
    Ticket,
    TicketState,
)
from agile_async.testing import FakeAgileServer, Fault

pytestmark = pytest.mark.anyio

MESSAGES_PER_TASK = 60
TASKS = 40  # 2,400 messages a seed through the batcher, plus direct sends


async def no_sleep(_: float) -> None:
    await anyio.lowlevel.checkpoint()


def random_fault(rng: random.Random) -> Fault:
    """One of every kind the fake offers, a no-op most often."""
    roll = rng.random()
    if roll < 0.55:
        return Fault.delay(0)  # answers normally
    return rng.choice(
        [
            Fault.delay(rng.uniform(0.001, 0.01)),
            Fault.server_error(8),
            Fault.server_error(9, status=503),
            Fault.rate_limited(0.001),
            Fault.html(502),
            Fault.html(504),
            Fault.drop(),
            Fault.drop(after_processing=True),
            Fault.error(status=400, code=7, data="invalid destination"),
            Fault.error(status=400, code=4, data="unknown error"),
        ]
    )


class Chaos:
    """One seeded run: the fake, the record of what each side saw, and the checks."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.fake = FakeAgileServer(credit=Decimal("1000000"), price_per_part=Decimal("0.01"))
        for _ in range(400):
            self.fake.inject(random_fault(self.rng))
        if self.rng.random() < 0.2:  # an account error stops the batcher in some seeds
            self.fake.inject(Fault.error(status=401, code=1, data="wrong credentials"))
        self.fake.reject_destinations(lambda d: d.endswith("13"))  # bad numbers: bisection
        self.outcomes: list[RequestOutcome] = []
        self.tickets: list[Ticket] = []
        self.direct: dict[str, str] = {}  # id -> "accepted" | "failed" | "unknown"

    def message(self, task: int, k: int, *, prefix: str = "b") -> Message:
        return Message(
            destinations=f"+3934{task:04d}{k:04d}",
            sender="MyApp",
            body=self.rng.choice(["Hello", "Ciao", "Hello " * 40]),
            ids=(f"{prefix}{task}-{k}",),
        )

    async def submitter(self, batcher: Batcher, task: int) -> None:
        """Submits (or sends and waits) its messages; cancelled at random."""
        for k in range(MESSAGES_PER_TASK):
            cancel = self.rng.random() < 0.1
            with anyio.CancelScope() as scope:
                if cancel:
                    scope.deadline = anyio.current_time() + self.rng.uniform(0, 0.01)
                try:
                    if self.rng.random() < 0.5:
                        self.tickets.append(await batcher.submit(self.message(task, k)))
                    else:
                        await batcher.send(self.message(task, k))
                except AgileError:
                    pass  # a failed send, or a batcher closed early: outcomes checked below
            if self.rng.random() < 0.05:
                await anyio.sleep(self.rng.uniform(0, 0.003))  # seeded jitter: the chaos

    async def direct_sender(self, client: AgileClient, task: int) -> None:
        """``client.send()`` callers, some cancelled mid-request."""
        for k in range(10):
            message = self.message(task, k, prefix="d")
            (message_id,) = message.ids or ()
            with anyio.CancelScope() as scope:
                if self.rng.random() < 0.3:
                    scope.deadline = anyio.current_time() + self.rng.uniform(0, 0.005)
                try:
                    await client.send(message)
                    self.direct[message_id] = "accepted"
                except OutcomeUnknownError:
                    self.direct[message_id] = "unknown"
                except AgileError:
                    self.direct[message_id] = "failed"

    async def run(self) -> Batcher:
        rng = self.rng
        retry = RetryPolicy(attempts=3, sleep=no_sleep)
        async with self.fake.client(retry=retry) as client:
            batcher = client.batcher(
                on_result=self.outcomes.append,
                max_latency=rng.choice([0, 0.001, 0.005]),
                max_messages=rng.choice([7, 50, 500]),
                max_in_flight=rng.choice([1, 4]),
                queue_capacity=rng.choice([20, 200, 10_000]),
            )
            with anyio.CancelScope() as block:
                if rng.random() < 0.3:  # cancel the whole block at a random moment
                    block.deadline = anyio.current_time() + rng.uniform(0.005, 0.05)
                async with batcher, anyio.create_task_group() as tasks:
                    for task in range(TASKS):
                        tasks.start_soon(self.submitter, batcher, task)
                    for task in range(5):
                        tasks.start_soon(self.direct_sender, client, 9000 + task)
                    if rng.random() < 0.3:  # an early close, gentle or not
                        await anyio.sleep(rng.uniform(0, 0.02))  # a random moment, seeded
                        await batcher.aclose(cancel=rng.random() < 0.5)
        return batcher

    def check(self, batcher: Batcher) -> None:
        reported = Counter(i for o in self.outcomes for t in o.tickets for i in t.ids)
        assert not [i for i, n in reported.items() if n > 1], "on_result saw a message twice"
        for ticket in self.tickets:
            assert ticket.done(), f"{ticket!r} has no outcome"
            assert reported[ticket.ids[0]] == 1, f"{ticket!r} was never reported"
        state_of = {i: o.state for o in self.outcomes for t in o.tickets for i in t.ids}
        for outcome in self.outcomes:
            assert all(t.state is outcome.state for t in outcome.tickets)
        stats = batcher.statistics()
        assert stats.queued == stats.in_flight == 0
        settled = stats.accepted + stats.failed + stats.unknown + stats.withdrawn
        assert settled == len(reported)

        taken = Counter(m.message_id for m in self.fake.accepted)
        assert not [i for i, n in taken.items() if n > 1], "the fake accepted an id twice"
        for message_id, state in state_of.items():
            if state is TicketState.ACCEPTED:
                assert message_id in taken, f"{message_id} reported accepted, not in the fake"
            elif state in (TicketState.FAILED, TicketState.WITHDRAWN):
                assert message_id not in taken, f"{message_id} taken, but reported {state}"
        for message_id, verdict in self.direct.items():
            if verdict == "accepted":
                assert message_id in taken
            elif verdict == "failed":
                assert message_id not in taken


@pytest.mark.parametrize("seed", range(8))
async def test_chaos_every_message_has_exactly_one_outcome(seed: int) -> None:
    chaos = Chaos(seed)
    with anyio.fail_after(30):
        batcher = await chaos.run()
    chaos.check(batcher)
    assert chaos.outcomes, "the run settled nothing: the test would prove nothing"
