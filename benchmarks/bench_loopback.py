"""How fast the loopback servers answer, and whether they stay up under thousands of clients.

The server (the stub of ``tests/llm_stub_server.py`` or ``hvae serve-oracle``) runs in a child
process; this process is the load generator: ``--connections`` asyncio keep-alive connections,
each sending a realistic chat-completions request (a value prompt and a three-option menu, about
the size hvae sends) and waiting for its reply before sending the next, for ``--seconds``. The
client side parses only the status line and ``Content-Length``, so it costs little next to the
server. Reported: replies per second, errors (non-200 replies, resets, refused connections) and
the slowest reply.

::

    python benchmarks/bench_loopback.py                               # stub, 64 connections, 5 s
    python benchmarks/bench_loopback.py --connections 3000 --seconds 10
    python benchmarks/bench_loopback.py --server oracle --connections 3000

Goal (issue 22 item 2): the stub serves ≥ 5,000 requests/s at zero latency with keep-alive
clients; and neither server drops a connection at 3,000 concurrent clients (issue 20 item 6).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def request_bytes() -> bytes:
    """A decision request as hvae sends it: the value prompt, then a three-option menu."""
    from hvae.agents.llm import prompts

    menu = prompts.decision_prompt(0, [(85.0, 85.0), (85.0, 76.0), (85.0, 68.0)], "my goal", [], False)
    body = json.dumps({"model": "stub", "seed": 1, "temperature": 0, "messages": [
        {"role": "user", "content": prompts.value_prompt(45.0)},
        {"role": "assistant", "content": "I hold a prosocial value."},
        {"role": "user", "content": menu}]}).encode()
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head + body


def start_server(kind: str, latency: float) -> tuple[subprocess.Popen, int]:
    if kind == "stub":
        command = [sys.executable, str(ROOT / "tests" / "llm_stub_server.py"), "--latency", str(latency)]
    else:
        command = [sys.executable, "-m", "hvae.cli.main", "serve-oracle", "--port", "0", "--beta", "2"]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline().strip()
    url = line.split()[2] if kind == "oracle" else line  # "oracle server: http://127.0.0.1:PORT/v1 (...)"
    if not url.startswith("http://127.0.0.1:"):
        process.kill()
        raise SystemExit(f"the {kind} server did not start (said {line!r})")
    return process, int(url.split(":")[2].split("/")[0])


async def run_load(port: int, connections: int, seconds: float, payload: bytes) -> dict:
    replies = 0
    errors: dict[str, int] = {}
    slowest = 0.0
    stop_at = 0.0
    ready = asyncio.Event()
    settled = 0  # clients connected (or failed to)

    def error(kind: str) -> None:
        errors[kind] = errors.get(kind, 0) + 1

    async def client() -> None:
        nonlocal replies, slowest, settled
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError as exc:
            error(f"connect: {type(exc).__name__}")
            return
        finally:
            settled += 1
        await ready.wait()
        try:
            while time.perf_counter() < stop_at:
                sent = time.perf_counter()
                writer.write(payload)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                slowest = max(slowest, time.perf_counter() - sent)
                if head[9:12] == b"200":
                    replies += 1
                else:
                    error(f"HTTP {head[9:12].decode()}")
        except (OSError, asyncio.IncompleteReadError) as exc:
            error(f"dropped: {type(exc).__name__}")
        finally:
            writer.close()

    tasks = [asyncio.create_task(client()) for _ in range(connections)]
    while settled < connections:  # every connection open before the clock starts
        await asyncio.sleep(0.05)
    began = time.perf_counter()
    stop_at = began + seconds
    ready.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    return {"replies": replies, "seconds": elapsed, "per_second": replies / elapsed, "errors": errors, "slowest_s": slowest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", choices=("stub", "oracle"), default="stub")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--latency", type=float, default=0.0, help="the stub's latency per request")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    process, port = start_server(args.server, args.latency)
    try:
        result = asyncio.run(run_load(port, args.connections, args.seconds, request_bytes()))
    finally:
        process.stdin.close()
        process.terminate()
        process.wait(timeout=10)
    print(f"{args.server}: {args.connections} keep-alive connections, {args.seconds:g} s, latency {args.latency:g} s")
    print(f"  {result['replies']} replies in {result['seconds']:.2f} s = {result['per_second']:.0f} requests/s; "
          f"slowest reply {result['slowest_s'] * 1000:.0f} ms; errors: {result['errors'] or 'none'}")


if __name__ == "__main__":
    main()
