"""POST /api/sandbox/execute (rest.md §3.12, behaviours.md §6, quirks Q03/Q41/Q46).

Over real HTTP: the request checks in the original's order with its bodies, the result
shape, the escape of quirk Q03, an infinite loop, a memory bomb, console output, thrown
errors, the per-user limit, and /health answering while a 5 s script runs. The engine and
the worker pool are also exercised directly for the finer formatting rules and kills.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import httpx
import pytest

from arinova.ratelimit.sandbox import SlidingWindowLimiter
from arinova.sandbox.engine import OUT_OF_MEMORY_MESSAGE, TIMEOUT_MESSAGE, run_javascript
from arinova.sandbox.fair import OwnerQueueFull, QueueFull, WaitedTooLong
from arinova.sandbox.pool import CRASH_MESSAGE, FAULT_ATTEMPTS, SandboxBusy, WorkerPool
from arinova.server import Server
from tests.support.auth import SignedIn, authed_client, sign_up
from tests.support.servers import StartServer

PATH = "/api/sandbox/execute"
NO_CODEGEN = "EvalError: Code generation from strings disallowed for this context"


@pytest.fixture(scope="module")
async def sandbox_server(start_module_server: StartServer) -> Server:
    return await start_module_server()


async def new_client(server: Server) -> tuple[SignedIn, httpx.AsyncClient]:
    user = await sign_up(server.url)
    return user, authed_client(server.url, user, timeout=60)


async def execute(server: Server, code: str) -> dict[str, Any]:
    _, client = await new_client(server)
    async with client:
        response = await client.post(PATH, json={"code": code, "language": "javascript"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    body: dict[str, Any] = response.json()
    assert list(body) == ["output", "error", "executionTimeMs"]
    assert isinstance(body["executionTimeMs"], int)
    return body


# --- request checks ----------------------------------------------------------------


async def test_needs_a_session(sandbox_server: Server) -> None:
    async with httpx.AsyncClient(base_url=sandbox_server.url) as anonymous:
        response = await anonymous.post(PATH, json={"code": "1", "language": "javascript"})
    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized"}


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        ({"code": "1"}, "undefined"),
        ({"code": "1", "language": "python"}, "python"),
        ({"code": "1", "language": "JavaScript"}, "JavaScript"),
        ({"code": "1", "language": None}, "null"),
        ({"code": "1", "language": 5}, "5"),
        ({"code": "1", "language": 1.5}, "1.5"),
        ({"code": "1", "language": True}, "true"),
        ({"code": "1", "language": ["java", "script"]}, "java,script"),
        ({"code": "1", "language": {"a": 1}}, "[object Object]"),
        ({}, "undefined"),
    ],
)
async def test_unsupported_language(sandbox_server: Server, body: Any, shown: str) -> None:
    _, client = await new_client(sandbox_server)
    async with client:
        response = await client.post(PATH, json=body)
    assert response.status_code == 400
    assert response.json() == {
        "error": f'Unsupported language: "{shown}". Only "javascript" is supported.'
    }


@pytest.mark.parametrize("code", [None, "", 0, 5, False, [], ["x"], {"a": 1}])
async def test_code_is_required(sandbox_server: Server, code: Any) -> None:
    _, client = await new_client(sandbox_server)
    body = {"language": "javascript"} if code is None else {"code": code, "language": "javascript"}
    async with client:
        response = await client.post(PATH, json=body)
    assert response.status_code == 400
    assert response.json() == {"error": "Code is required."}


async def test_code_length_counts_utf16_units(sandbox_server: Server) -> None:
    _, client = await new_client(sandbox_server)
    async with client:
        at_limit = "1" + " " * 9_999
        response = await client.post(PATH, json={"code": at_limit, "language": "javascript"})
        assert response.status_code == 200
        assert response.json()["output"] == "1"
        # 5 001 astral characters are 10 002 UTF-16 units, as JavaScript counts them
        too_long = "1//" + "🙂" * 4_999
        response = await client.post(PATH, json={"code": too_long, "language": "javascript"})
        assert response.status_code == 400
        assert response.json() == {"error": "Code exceeds maximum length of 10000 characters."}


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b"", {}),
        (b"null", {"content-type": "application/json"}),
        (b"[1,2]", {"content-type": "application/json"}),
        (b'"code"', {"content-type": "application/json"}),
        (b"console.log(1)", {"content-type": "text/plain"}),
    ],
)
async def test_a_body_that_is_not_an_object_is_a_validation_error(
    sandbox_server: Server, content: bytes, headers: dict[str, str]
) -> None:
    _, client = await new_client(sandbox_server)
    async with client:
        response = await client.post(PATH, content=content, headers=headers)
    assert response.status_code == 400
    assert response.json() == {
        "error": "Validation error",
        "code": "VALIDATION_ERROR",
        "details": "body: must be an object",
    }


async def test_ten_runs_a_minute_per_user_rejected_runs_not_counted(
    sandbox_server: Server,
) -> None:
    _, client = await new_client(sandbox_server)
    _, other = await new_client(sandbox_server)
    async with client, other:
        for i in range(10):
            response = await client.post(PATH, json={"code": f"{i}", "language": "javascript"})
            assert response.status_code == 200
            assert response.json()["output"] == str(i)
        # invalid requests are answered before the limiter and do not count
        response = await client.post(PATH, json={"code": "", "language": "javascript"})
        assert response.json() == {"error": "Code is required."}
        for _ in range(2):
            response = await client.post(PATH, json={"code": "1", "language": "javascript"})
            assert response.status_code == 429
            assert response.json() == {
                "error": "Rate limit exceeded. Max 10 executions per minute."
            }
        # another user is unaffected
        response = await other.post(PATH, json={"code": "2", "language": "javascript"})
        assert response.status_code == 200


# --- results over HTTP -------------------------------------------------------------


async def test_console_output_and_result_echo(sandbox_server: Server) -> None:
    body = await execute(
        sandbox_server,
        'console.log("hello", 42, {a: [1, 2]}); console.warn("w"); console.error(null)',
    )
    assert body["output"] == 'hello 42 {\n  "a": [\n    1,\n    2\n  ]\n}\nw\nnull'
    assert body["error"] is None
    body = await execute(sandbox_server, "const x = 20; x + 22")
    assert (body["output"], body["error"]) == ("42", None)


async def test_a_nul_character_in_the_code_is_part_of_it(sandbox_server: Server) -> None:
    # a string literal holding U+0000, and code after it
    body = await execute(sandbox_server, 'console.log("a\u0000b"); console.log("after")')
    assert (body["output"], body["error"]) == ("a\u0000b\nafter", None)


async def test_thrown_errors(sandbox_server: Server) -> None:
    body = await execute(sandbox_server, 'console.log("before"); throw new Error("boom")')
    assert (body["output"], body["error"]) == ("before", "boom")
    body = await execute(sandbox_server, 'throw "plain"')
    assert (body["output"], body["error"]) == ("", "plain")
    body = await execute(sandbox_server, "null.x")
    assert body["error"] == "TypeError: cannot read property 'x' of null"


async def test_escape_through_a_host_constructor_is_an_error(sandbox_server: Server) -> None:
    body = await execute(sandbox_server, 'console.log.constructor("return process")()')
    assert body == {"output": "", "error": NO_CODEGEN, "executionTimeMs": body["executionTimeMs"]}
    body = await execute(
        sandbox_server, "typeof process + ' ' + typeof require + ' ' + typeof globalThis"
    )
    assert body["output"] == "undefined undefined undefined"


async def test_memory_bomb_is_an_error(sandbox_server: Server) -> None:
    body = await execute(
        sandbox_server, 'let a = []; while (true) a.push("x".repeat(1000) + a.length)'
    )
    assert body["output"] == ""
    assert body["error"] == "InternalError: out of memory"
    body = await execute(sandbox_server, "const a = []; for (;;) a.push({})")
    assert body["error"] == "InternalError: out of memory"


async def test_health_answers_while_an_infinite_loop_runs(sandbox_server: Server) -> None:
    _, client = await new_client(sandbox_server)
    async with client, httpx.AsyncClient(base_url=sandbox_server.url) as probe:
        started = time.monotonic()
        loop = asyncio.create_task(
            client.post(
                PATH,
                json={"code": 'console.log("spin"); while (true) {}', "language": "javascript"},
            )
        )
        await asyncio.sleep(0.5)
        health_times = []
        while not loop.done():
            t0 = time.monotonic()
            response = await probe.get("/health")
            health_times.append(time.monotonic() - t0)
            assert response.status_code == 200
            await asyncio.sleep(0.25)
        response = await loop
        took = time.monotonic() - started
    assert response.status_code == 200
    assert response.json() == {
        "output": "spin",
        "error": TIMEOUT_MESSAGE,
        "executionTimeMs": response.json()["executionTimeMs"],
    }
    assert response.json()["executionTimeMs"] >= 5000  # 5 s of CPU time, at least as much wall
    assert took >= 5
    assert len(health_times) >= 10
    assert max(health_times) < 1.0


# --- the engine directly ----------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "output", "error"),
    [
        ("1 + 1", "2", None),
        ("({a: {b: [1]}})", '{\n  "a": {\n    "b": [\n      1\n    ]\n  }\n}', None),
        ("Promise.resolve(1)", "{}", None),
        ("undefined", "", None),
        ("console.log(1); 2", "1", None),
        ("console.log(undefined, () => 1, 'x')", "  x", None),
        ("console.log(1n)", "1", None),
        ("const o = {}; o.o = o; console.log(o)", "[object Object]", None),
        ("console.log('a\\u0000b')", "a\x00b", None),
        ("console.log('\\ud83d!')", "\ufffd!", None),
        ("throw new TypeError('t')", "", "t"),
        ("class E extends Error {}; throw new E('sub')", "", "sub"),
        ("throw Error('no new')", "", "no new"),
        ("throw {a: 1}", "", "[object Object]"),
        ("throw null", "", "null"),
        ("JSON.parse('{')", "", "expecting property name"),
        ("1 +", "", "unexpected token in expression: ''"),
        ("new Array(-1)", "", "RangeError: invalid array length"),
        ("eval('1')", "", NO_CODEGEN),
        ("new Function('return 1')", "", NO_CODEGEN),
        ("(async function () {}).constructor('return 1')", "", NO_CODEGEN),
        ("(function* () {}).constructor('return 1')", "", NO_CODEGEN),
        ("Function.prototype.constructor('return this')()", "", NO_CODEGEN),
        ("function f() { return f() } f()", "", "InternalError: stack overflow"),
        ("process", "", None),
        ("new Error('x') instanceof Error", "true", None),
        ("Promise.resolve().then(() => console.log('later')); 'now'", "now", None),
    ],
)
def test_engine_formats_like_the_original(code: str, output: str, error: str | None) -> None:
    result = run_javascript(code)
    assert (result["output"], result["error"]) == (output, error)


def test_output_is_capped_at_50000_characters_without_marker() -> None:
    result = run_javascript("for (let i = 0; i < 10; i++) console.log(String(i).repeat(9000))")
    lines = result["output"].split("\n")
    assert [line[0] for line in lines] == ["0", "1", "2", "3", "4"]
    assert all(len(line) == 9000 for line in lines)
    # a line that would pass the cap is dropped, later short lines too (the total only grows)
    result = run_javascript('console.log("a".repeat(49999)); console.log("bb"); console.log("c")')
    assert result["output"] == "a" * 49999


def test_engine_cpu_limit_keeps_output_so_far() -> None:
    result = run_javascript('console.log("x"); while (true) {}', time_limit_s=0.2)
    assert (result["output"], result["error"]) == ("x", TIMEOUT_MESSAGE)


@pytest.mark.parametrize(
    "code",
    [
        "(async () => { while (true) {} })()",
        "(async () => { await null; while (true) {} })()",
        "Promise.resolve().then(() => { for (;;) {} })",
        "Promise.resolve().then(() => 1).then(() => { for (;;) {} }); 'sync part done'",
        "const again = () => Promise.resolve().then(again); again()",
        # the interrupt reaches the script as a rejection; catching it does not buy time
        "async function spin() { for (;;) {} }"
        " (async () => { for (;;) { try { await spin() } catch (e) {} } })()",
        "Promise.resolve().then(() => { for (;;) {} }); throw new Error('after')",
    ],
)
def test_engine_cpu_limit_covers_async_functions_and_promise_jobs(code: str) -> None:
    result = run_javascript(code, time_limit_s=0.3)
    assert (result["output"], result["error"]) == ("", TIMEOUT_MESSAGE)


def test_engine_async_timeout_keeps_the_lines_of_the_synchronous_part() -> None:
    code = "console.log('sync'); (async () => { await null; console.log('job'); for (;;) {} })()"
    result = run_javascript(code, time_limit_s=0.3)
    assert (result["output"], result["error"]) == ("sync", TIMEOUT_MESSAGE)


@pytest.mark.parametrize(
    "code",
    [
        "(async () => 1)()",
        "(async () => { await null; return 2 })()",
        "new Promise(() => {})",
        "Promise.reject(new Error('unhandled'))",
        "(async () => { await null; console.log('job'); })()",
    ],
)
def test_engine_prints_a_promise_result_as_the_original(code: str) -> None:
    # behaviours.md §6: the echo of a Promise is "{}", its jobs' lines are not in the output
    result = run_javascript(code, time_limit_s=0.3)
    assert (result["output"], result["error"]) == ("{}", None)


async def test_async_infinite_loops_time_out_over_http(sandbox_server: Server) -> None:
    scripts = [
        "(async () => { await null; while (true) {} })()",
        "console.log('s'); Promise.resolve().then(() => { for (;;) {} }); 1",
    ]
    first, second = await asyncio.gather(*(execute(sandbox_server, code) for code in scripts))
    assert (first["output"], first["error"]) == ("", TIMEOUT_MESSAGE)
    assert (second["output"], second["error"]) == ("s", TIMEOUT_MESSAGE)
    assert first["executionTimeMs"] >= 5000 and second["executionTimeMs"] >= 5000


# --- the pool ----------------------------------------------------------------------


async def test_pool_kills_a_worker_that_does_not_answer_and_recovers() -> None:
    pool = WorkerPool(size=1, hard_timeout_s=0.5)
    try:
        assert (await pool.run("1"))["output"] == "1"
        result = await pool.run("while (true) {}")
        assert result["error"] == TIMEOUT_MESSAGE
        assert (await pool.run("'alive'"))["output"] == "alive"
    finally:
        await pool.close()


async def test_pool_cpu_limit_covers_what_quickjs_cannot_interrupt() -> None:
    # QuickJS does not check its interrupt inside the regular expression engine; the
    # worker's RLIMIT_CPU ends it (a few seconds of CPU), answered as a timeout
    pool = WorkerPool(size=1)
    try:
        result = await pool.run('/(a+)+$/.test("a".repeat(40) + "b")')
        assert result["error"] == TIMEOUT_MESSAGE
        assert (await pool.run("'next'"))["output"] == "next"
    finally:
        await pool.close()


async def test_pool_survives_a_worker_crash() -> None:
    pool = WorkerPool(size=1)
    try:
        run = asyncio.create_task(pool.run("while (true) {}"))
        for _ in range(100):
            await asyncio.sleep(0.05)
            if pool._all:
                break
        await asyncio.sleep(0.2)  # the script is running
        (worker,) = pool._all
        os.kill(worker.process.pid, signal.SIGKILL)
        result = await run
        assert result["error"] == CRASH_MESSAGE
        assert (await pool.run("3"))["output"] == "3"
    finally:
        await pool.close()


async def test_pool_answers_every_memory_bomb_of_one_worker_slot() -> None:
    # one QuickJS heap survives one out-of-memory run, not several (a bare "Error", then
    # a crash): the worker that ran out is replaced before the next script
    pool = WorkerPool(size=1)
    bombs = [
        'let a = []; while (true) a.push("x".repeat(1000) + a.length)',
        "const a = []; for (;;) a.push({})",
    ]
    try:
        for bomb in bombs * 3:
            assert (await pool.run(bomb))["error"] == OUT_OF_MEMORY_MESSAGE
        assert (await pool.run("'after'"))["output"] == "after"
    finally:
        await pool.close()


async def test_pool_bounds_its_queue() -> None:
    pool = WorkerPool(size=1, max_waiting=1, hard_timeout_s=5)
    try:
        busy = asyncio.create_task(
            pool.run("const t = Date.now(); while (Date.now() - t < 700) {}")
        )
        await asyncio.sleep(0.2)
        queued = asyncio.create_task(pool.run("1"))
        await asyncio.sleep(0.05)
        with pytest.raises(SandboxBusy):
            await pool.run("2")
        assert (await busy)["error"] is None
        assert (await queued)["output"] == "1"
    finally:
        await pool.close()


def test_limiter_window_and_bound() -> None:
    now = [1000.0]
    limiter = SlidingWindowLimiter(limit=2, window_s=60, max_users=3, clock=lambda: now[0])
    assert limiter.allow("a") and limiter.allow("a")
    assert not limiter.allow("a")
    now[0] += 59.9
    assert not limiter.allow("a")
    now[0] += 0.2  # the first run left the window
    assert limiter.allow("a")
    for user in ("b", "c", "d", "e"):
        assert limiter.allow(user)
    assert len(limiter) <= 3


async def _fault_workers(pool: WorkerPool, times: int) -> None:
    """Make the next ``times`` workers die of a segmentation fault while they run."""
    seen: set[int] = set()
    while len(seen) < times:
        await asyncio.sleep(0.02)
        for worker in list(pool._all):
            if worker.process.pid not in seen and worker.runs:
                await asyncio.sleep(0.2)  # the script is running
                seen.add(worker.process.pid)
                os.kill(worker.process.pid, signal.SIGSEGV)


async def test_pool_runs_a_script_again_when_its_worker_faulted() -> None:
    # QuickJS can fault in its out-of-memory path; the run is repeated on a fresh worker
    pool = WorkerPool(size=1)
    try:
        run = asyncio.create_task(
            pool.run("const t = Date.now(); while (Date.now() - t < 700) {}; 'done'")
        )
        await _fault_workers(pool, 1)
        assert (await run)["output"] == "done"
    finally:
        await pool.close()


async def test_pool_answers_a_crash_when_every_attempt_faults() -> None:
    pool = WorkerPool(size=1)
    try:
        run = asyncio.create_task(pool.run("while (true) {}"))
        await _fault_workers(pool, FAULT_ATTEMPTS)
        result = await run
        assert result["error"] == CRASH_MESSAGE
        assert result["executionTimeMs"] >= 400
        assert (await pool.run("3"))["output"] == "3"
    finally:
        await pool.close()


# --- fairness between users ---------------------------------------------------------


def busy_for(ms: int, answer: str) -> str:
    """A CPU-bound script that spins ``ms`` milliseconds of wall time, then answers."""
    return f"const t = Date.now(); while (Date.now() - t < {ms}) {{}}; {answer!r}"


async def use_pool(server: Server, pool: WorkerPool) -> None:
    """Serve ``server``'s sandbox route from ``pool`` (short limits keep the tests fast)."""
    old, server.state.sandbox.pool = server.state.sandbox.pool, pool
    await old.close()


async def test_users_take_turns_and_run_one_at_a_time(sandbox_server: Server) -> None:
    await use_pool(sandbox_server, WorkerPool(size=1, max_wait_s=14))
    clients = {name: (await new_client(sandbox_server))[1] for name in "ACB"}
    finished: list[str] = []
    started = time.monotonic()

    async def run(name: str, n: int) -> float:
        response = await clients[name].post(
            PATH, json={"code": busy_for(500, f"{name}{n}"), "language": "javascript"}
        )
        assert response.status_code == 200, response.text
        finished.append(response.json()["output"])
        return time.monotonic() - started

    try:
        await run("A", 0)  # a worker is up
        started = time.monotonic()
        runs = [asyncio.create_task(run("A", n)) for n in (1, 2, 3, 4)]
        await asyncio.sleep(0.2)
        runs += [asyncio.create_task(run("C", n)) for n in (1, 2)]
        await asyncio.sleep(0.2)
        single = asyncio.create_task(run("B", 1))
        await asyncio.gather(*runs, single)
    finally:
        for client in clients.values():
            await client.aclose()
    # round-robin: B's single run waits for the run that held the slot and for C's first
    # (C was waiting before B), not for A's queue; first come, first served put it last
    # (a user's concurrent requests reach the server in any order: compare the users)
    assert [output[0] for output in finished[1:]] == ["A", "C", "B", "A", "C", "A", "A"]
    assert single.result() < 3 * 0.5 + 1.0


async def test_queue_wait_bound_and_waiting_runs_per_user_over_http(
    sandbox_server: Server,
) -> None:
    await use_pool(sandbox_server, WorkerPool(size=1, max_waiting_per_owner=1, max_wait_s=0.6))
    (_, holder), (_, late), (_, eager) = [await new_client(sandbox_server) for _ in range(3)]
    async with holder, late, eager:
        await holder.post(PATH, json={"code": "0", "language": "javascript"})  # a worker is up
        long_run = asyncio.create_task(
            holder.post(PATH, json={"code": busy_for(2500, "held"), "language": "javascript"})
        )
        await asyncio.sleep(0.2)
        t0 = time.monotonic()
        response = await late.post(PATH, json={"code": "1", "language": "javascript"})
        waited = time.monotonic() - t0
        assert response.status_code == 503
        assert response.json() == {
            "error": "Sandbox is busy: no worker was free within 0.6 seconds. Try again later."
        }
        assert 0.5 <= waited < 2.0
        # the holder's next run waits behind its own; one more than that is refused at once
        queued = asyncio.create_task(
            holder.post(PATH, json={"code": "'next'", "language": "javascript"})
        )
        await asyncio.sleep(0.1)
        response = await holder.post(PATH, json={"code": "2", "language": "javascript"})
        assert response.status_code == 429
        assert response.json() == {
            "error": "Your previous runs are still waiting. Wait for them to finish."
        }
        assert (await long_run).json()["output"] == "held"
        # "queued" waited past 0.6 s for its own previous run: the bound covers it too
        assert (await queued).status_code == 503
        response = await eager.post(PATH, json={"code": "'free again'", "language": "javascript"})
        assert response.json()["output"] == "free again"
        # the refused runs do not count against the 10 a minute: the holder ran 2 so far
        statuses = [
            (await holder.post(PATH, json={"code": "1", "language": "javascript"})).status_code
            for _ in range(9)
        ]
        assert statuses == [200] * 8 + [429]


async def test_pool_runs_one_owner_at_a_time_on_free_slots() -> None:
    pool = WorkerPool(size=2, max_wait_s=10)
    try:
        await asyncio.gather(pool.run("0"), pool.run("0"))  # two workers are up
        t0 = time.monotonic()

        async def timed(code: str, owner: str) -> tuple[str, float]:
            result = await pool.run(code, owner=owner)
            return result["output"], time.monotonic() - t0

        results = await asyncio.gather(
            timed(busy_for(600, "a1"), "a"),
            timed(busy_for(600, "a2"), "a"),
            timed(busy_for(600, "b1"), "b"),
        )
        (_, a1), (_, a2), (_, b1) = results
        assert a1 < a2
        assert [output for output, _ in results] == ["a1", "a2", "b1"]
        assert a2 >= 1.2  # after a1, though a slot was free
        assert b1 < a2  # b's run took the other slot at once
    finally:
        await pool.close()


async def test_pool_bounds_give_their_own_refusals() -> None:
    pool = WorkerPool(size=1, max_waiting=2, max_waiting_per_owner=1, max_wait_s=5)
    try:
        holder = asyncio.create_task(pool.run(busy_for(800, "held"), owner="h"))
        await asyncio.sleep(0.2)
        waiting = [asyncio.create_task(pool.run("1", owner=o)) for o in ("x", "y")]
        await asyncio.sleep(0.05)
        with pytest.raises(OwnerQueueFull):
            await pool.run("2", owner="x")
        with pytest.raises(QueueFull):
            await pool.run("3", owner="z")
        # a cancelled waiter gives its place back
        waiting[1].cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting[1]
        late = asyncio.create_task(pool.run("'z'", owner="z"))
        assert (await holder)["output"] == "held"
        assert (await waiting[0])["output"] == "1"
        assert (await late)["output"] == "z"
        assert pool._slots.waiting == 0
    finally:
        await pool.close()


async def test_pool_wait_bound_hands_the_slot_on() -> None:
    pool = WorkerPool(size=1, max_wait_s=0.3)
    try:
        holder = asyncio.create_task(pool.run(busy_for(700, "held"), owner="h"))
        await asyncio.sleep(0.1)
        with pytest.raises(WaitedTooLong):
            await pool.run("1", owner="w")
        assert (await holder)["output"] == "held"
        assert (await pool.run("'after'", owner="w"))["output"] == "after"
    finally:
        await pool.close()
