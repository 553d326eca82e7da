"""The loopback HTTP service under hostile requests: every shape gets an HTTP error reply, the server stays up.

Each case is a request an adversarial review sent to ``hvae serve-oracle`` (issue 20, item 6), written
as raw bytes on a socket so that nothing on the client side repairs it. The reply must come (a read
timeout fails the test: the server must not wait for bytes that never come), carry the expected
status, and a valid request must still be answered afterwards.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from llm_stub_server import StubServer

from hvae.agents.llm import prompts
from hvae.agents.llm.loopback import MAX_BODY, LoopbackService, Request, Response
from hvae.agents.llm.oracle_server import OracleModel, OracleServer

READ_TIMEOUT_S = 10


def _decision(value_angle: float = 90.0, menu: str = "A: 85, 85\nB: 85, 76\nC: 85, 68") -> dict:
    return {"model": "hvae-oracle", "seed": 1, "messages": [
        {"role": "system", "content": prompts.value_prompt(value_angle)},
        {"role": "user", "content": f"Choose one option.\n{menu}\nAnswer with the letter."}]}


def _post(body: bytes, headers: str = "", content_length: str | None = None) -> bytes:
    length = str(len(body)) if content_length is None else content_length
    return (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n{headers}\r\n").encode() + body


def _read_response(sock: socket.socket, buffer: bytearray) -> tuple[int, dict[str, str], bytes]:
    """One response from ``sock`` (``buffer`` keeps bytes of the next one)."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response; got {bytes(buffer)[:200]!r}")
        buffer += chunk
    end = buffer.index(b"\r\n\r\n")
    lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    del buffer[: end + 4]
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(buffer) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside a response body")
        buffer += chunk
    body = bytes(buffer[:length])
    del buffer[:length]
    return int(lines[0].split(" ")[1]), headers, body


def _exchange(port: int, payload: bytes, responses: int = 1) -> list[tuple[int, dict[str, str], bytes]]:
    with socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT_S) as sock:
        sock.sendall(payload)
        buffer = bytearray()
        return [_read_response(sock, buffer) for _ in range(responses)]


def _closed_after(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.fixture(scope="module")
def oracle():
    with OracleServer(OracleModel(beta=2.0)) as server:
        yield server


NESTED = b"[" * 100_000 + b"]" * 100_000
HOSTILE = {
    "content-length abc": (_post(b"{}", content_length="abc"), 400),
    "content-length 1e3": (_post(b"{}", content_length="1e3"), 400),
    "content-length -1": (_post(b"", content_length="-1"), 400),
    "content-length 10^23": (_post(b"", content_length="1" + "0" * 23), 413),
    "body over 1 MiB": (_post(b"", content_length=str(MAX_BODY + 1)), 413),
    "non-UTF-8 body": (_post(b'{"messages": "\xff\xfe\xfa"}'), 400),
    "JSON nested 100,000 deep": (_post(NESTED), 400),
    "a number of 5,000 digits": (_post(b'{"seed": ' + b"9" * 5000 + b"}"), 400),
    "a seed of 400 digits": (_post(json.dumps({**_decision(), "seed": 10**400}).encode()), 400),
    "a menu amount of 400 digits": (_post(json.dumps(_decision(menu=f"A: {'9' * 400}, 1\nB: 1, 1")).encode()), 400),
    "messages of non-objects": (_post(b'{"messages": [1, "two", null]}'), 400),
    "json_schema as a string": (_post(json.dumps({**_decision(), "response_format": {"type": "json_schema", "json_schema": "x"}}).encode()), 400),
    "temperature NaN": (_post(b'{"messages": [{"role": "user", "content": "x"}], "temperature": NaN}'), 400),
    "body an array": (_post(b"[]"), 400),
    "two Content-Lengths": (_post(b"{}", headers="Content-Length: 5\r\n"), 400),
    "a malformed request line": (b"GARBAGE\r\n\r\n", 400),
    "headers over 64 KiB": (b"GET /v1/models HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", 431),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_request_gets_an_error_reply_and_the_server_stays_up(oracle, name: str) -> None:
    payload, expected = HOSTILE[name]
    [(status, headers, body)] = _exchange(oracle.port, payload)
    assert status == expected, (name, status, body[:300])
    message = json.loads(body)["error"]["message"]
    assert message and "\n" not in message and "Traceback" not in message
    [(status, _, reply)] = _exchange(oracle.port, _post(json.dumps(_decision()).encode()))
    assert status == 200 and json.loads(reply)["choices"][0]["message"]["content"] == "A"


def test_a_chunked_body_is_refused_and_never_read_as_the_next_request(oracle) -> None:
    # the chunk's data is itself a valid request: a server reading it as the next one would answer twice
    inner = _post(json.dumps(_decision()).encode())
    chunked = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               + f"{len(inner):x}\r\n".encode() + inner + b"\r\n0\r\n\r\n")
    before = dict(oracle.counts)
    with socket.create_connection(("127.0.0.1", oracle.port), timeout=READ_TIMEOUT_S) as sock:
        sock.sendall(chunked)
        status, headers, _ = _read_response(sock, bytearray())
        assert status == 411 and headers.get("connection") == "close"
        assert _closed_after(sock)
    assert oracle.counts == before  # nothing inside the chunk was served


def test_keep_alive_and_pipelined_requests_are_answered_in_order(oracle) -> None:
    angles = [90.0, -90.0, 0.0]  # three different answers, so an out-of-order reply shows
    bodies = [json.dumps({**_decision(theta), "seed": i}).encode() for i, theta in enumerate(angles)]
    payload = b"".join(_post(body) for body in bodies)  # all three in one write: pipelined
    replies = _exchange(oracle.port, payload, responses=3)
    expected = [OracleModel(beta=2.0).reply(json.loads(body)) for body in bodies]
    assert [json.loads(reply)["choices"][0]["message"]["content"] for _, _, reply in replies] == expected
    assert all(status == 200 for status, _, _ in replies)
    # a second request on the same connection after the first was answered
    with socket.create_connection(("127.0.0.1", oracle.port), timeout=READ_TIMEOUT_S) as sock:
        buffer = bytearray()
        for body in bodies[:2]:
            sock.sendall(_post(body))
            assert _read_response(sock, buffer)[0] == 200


def test_huge_beta_gives_probabilities_not_nan() -> None:
    options = np.array([[85.0, 85.0], [85.0, 76.0], [100.0, 50.0]])
    for theta in (90.0, 0.0, -45.0):
        utilities = [math.cos(math.radians(theta)) * s + math.sin(math.radians(theta)) * o for s, o in options]
        p = OracleModel(beta=1e307).choice_probabilities(theta, options)
        assert np.all(np.isfinite(p)) and p.sum() == pytest.approx(1.0)
        assert int(np.argmax(p)) == int(np.argmax(utilities)) and p.max() == pytest.approx(1.0)


def test_an_oracle_with_beta_1e307_answers() -> None:
    with OracleServer(OracleModel(beta=1e307)) as server:
        [(status, _, reply)] = _exchange(server.port, _post(json.dumps(_decision(-90.0)).encode()))
    assert status == 200 and json.loads(reply)["choices"][0]["message"]["content"] == "C"


def test_only_loopback_is_bound(oracle) -> None:
    assert [sock.getsockname()[0] for sock in oracle._server.sockets] == ["127.0.0.1"]


class _Slow(LoopbackService):
    """Holds every request until released: connections stay busy."""

    max_connections = 3

    def __init__(self) -> None:
        super().__init__()
        self.release: asyncio.Event | None = None

    async def _wait(self, release: asyncio.Event) -> Response:
        await release.wait()
        return Response.json(200, {"ok": True})

    def handle(self, request: Request) -> Response | asyncio.Future:
        if self.release is None:
            self.release = asyncio.Event()  # made on the service's loop
        if request.path == "/release":
            self.release.set()
            return Response.json(200, {"released": True})
        return self._wait(self.release)


def test_connections_beyond_the_bound_get_503_and_the_rest_are_served() -> None:
    with _Slow() as service:
        held = [socket.create_connection(("127.0.0.1", service.port), timeout=READ_TIMEOUT_S) for _ in range(2)]
        for sock in held:
            sock.sendall(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
        # a third connection is within the bound: it releases the two waiting ones
        [(status, _, _)] = _exchange(service.port, b"GET /release HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 200
        for sock in held:
            assert _read_response(sock, bytearray())[0] == 200
        # now fill the bound with idle keep-alive connections: one more is refused with 503
        for sock in held:
            sock.close()
        idle = [socket.create_connection(("127.0.0.1", service.port), timeout=READ_TIMEOUT_S) for _ in range(3)]
        for sock in idle:  # a round trip on each, so the server has registered all three
            sock.sendall(b"GET /release HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _read_response(sock, bytearray())[0] == 200
        with socket.create_connection(("127.0.0.1", service.port), timeout=READ_TIMEOUT_S) as extra:
            status, headers, body = _read_response(extra, bytearray())
        assert status == 503 and "too many connections" in json.loads(body)["error"]["message"]
        for sock in idle:
            sock.close()


async def _many_clients(port: int, clients: int, requests_each: int, payload: bytes) -> list[int]:
    async def client() -> list[int]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        statuses = []
        try:
            for _ in range(requests_each):
                writer.write(payload)
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
                await reader.readexactly(length)
                statuses.append(int(head.split(b" ")[1]))
        finally:
            writer.close()
        return statuses

    results = await asyncio.gather(*(client() for _ in range(clients)), return_exceptions=True)
    return [status for result in results for status in (result if isinstance(result, list) else [repr(result)])]


def test_many_concurrent_keep_alive_clients_are_all_served() -> None:
    """A bounded stand-in for the 3,000-client measurement of ``benchmarks/bench_loopback.py``."""
    clients, each = 200, 3
    with StubServer(latency_s=0.01) as stub:
        statuses = asyncio.run(_many_clients(stub.port, clients, each, _post(json.dumps(_decision()).encode())))
        assert statuses == [200] * (clients * each)
        assert stub.counts["ok"] == clients * each
        assert 1 < stub.peak_parallel <= clients


# ------------------------------------------------------------------------------ the stub's throughput model


def test_latency_grows_with_the_requests_in_flight() -> None:
    stub = StubServer(latency_s=0.02, latency_per_inflight_s=0.005)
    assert [stub.latency_for(n) for n in (1, 4)] == pytest.approx([0.02 + 0.005, 0.02 + 0.02])


def test_max_parallel_bounds_the_batch_and_each_request_waits_its_modelled_latency() -> None:
    latency, per_inflight, slots = 0.01, 0.004, 2
    with StubServer(latency_s=latency, latency_per_inflight_s=per_inflight, max_parallel=slots) as stub:
        statuses = asyncio.run(_many_clients(stub.port, 6, 2, _post(json.dumps(_decision()).encode())))
        log = stub.served()
    assert statuses == [200] * 12
    assert stub.peak_parallel == slots
    # sleeps last at least what they were asked for: never less than the model's latency for one in flight
    assert all(s.finished - s.started >= latency + per_inflight for s in log)


def test_stub_script_mode_prints_the_base_url_first_and_takes_the_model_flags() -> None:
    script = Path(__file__).with_name("llm_stub_server.py")
    process = subprocess.Popen(
        [sys.executable, str(script), "--latency", "0", "--max-parallel", "4", "--latency-per-inflight", "0.001"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1"), base_url + process.stderr.read()
        port = int(base_url.split(":")[2].split("/")[0])
        [(status, _, reply)] = _exchange(port, _post(json.dumps(_decision()).encode()))
        assert status == 200 and json.loads(reply)["choices"][0]["message"]["content"] == "A"
    finally:
        process.stdin.close()
        process.wait(timeout=10)
    assert process.returncode == 0
    bad = subprocess.run([sys.executable, str(script), "--latency-per-inflight", "nan"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "latency_per_inflight_s must be" in bad.stderr


def test_usage_is_billed_as_a_chatml_server_bills_it() -> None:
    """Text at 4 characters a token plus the template's tokens: 5 a message and 3 opening the reply."""
    from hvae.agents.llm.loopback import chat_completion

    body = {"messages": [{"role": "system", "content": "x" * 41}, {"role": "user", "content": [{"type": "text", "text": "y" * 20}]}]}
    usage = chat_completion(body, "z" * 9, model="m", completion_id="c", fingerprint="f")["usage"]
    assert usage == {"prompt_tokens": (41 + 20) // 4 + 2 * 5 + 3, "completion_tokens": 2, "total_tokens": 15 + 13 + 2}
