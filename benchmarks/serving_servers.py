"""Benchmark: which HTTP server and interface to serve with. The same tiny handler (read a JSON body, answer a JSON
body with orjson) under Granian RSGI, Granian ASGI, uvicorn (httptools, uvloop) raw ASGI, and FastAPI on uvicorn,
one worker each, ``wrk`` at 16 connections, ``--seconds`` per server, ``--repeat`` rounds alternating servers.

This measures the server's own cost per request (what remains for the feature read is the rest of the budget);
the choice it informed is in docs/serving.md.

    .venv/bin/python benchmarks/serving_servers.py --seconds 5 --repeat 3

Raw results: benchmarks/results/serving_servers.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _results

from pipelines.testing.lifetime import parent_death_hook
from pipelines.testing.redis_server import free_port

APPS = '''
import orjson

ANSWER = {"metadata": {"feature_names": ["user_id", "f"]}, "results": [{"values": [1], "statuses": ["PRESENT"]}]}


class Rsgi:
    async def __rsgi__(self, scope, proto):
        body = await proto()
        orjson.loads(body)
        proto.response_bytes(200, [("content-type", "application/json")], orjson.dumps(ANSWER))


rsgi = Rsgi()


async def asgi(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    orjson.loads(body)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": orjson.dumps(ANSWER)})


from fastapi import FastAPI
from pydantic import BaseModel


class Request(BaseModel):
    features: list[str] = []
    entities: dict[str, list]


fastapi_app = FastAPI()


@fastapi_app.post("/get-online-features")
async def online(request: Request):
    return ANSWER
'''

SERVERS = {
    "granian-rsgi": ["granian", "--interface", "rsgi", "--loop", "uvloop", "--http", "1", "--no-ws",
                     "--workers", "1", "apps:rsgi"],
    "granian-asgi": ["granian", "--interface", "asgi", "--loop", "uvloop", "--http", "1", "--no-ws",
                     "--workers", "1", "apps:asgi"],
    "uvicorn-asgi": ["uvicorn", "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level",
                     "warning", "apps:asgi"],
    "fastapi-uvicorn": ["uvicorn", "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level",
                        "warning", "apps:fastapi_app"],
}
LUA = '''wrk.method = "POST"
wrk.body = '{"features": ["user_txn_stats_v1:txn_count_5m"], "entities": {"user_id": ["user-1"]}}'
wrk.headers["Content-Type"] = "application/json"
'''


def run(name: str, command: list[str], folder: Path, seconds: int) -> dict[str, float]:
    port = free_port()
    binary = str(Path(sys.executable).parent / command[0])
    args = [binary, *command[1:], "--port", str(port), "--host", "127.0.0.1"]
    process = subprocess.Popen(args, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               preexec_fn=parent_death_hook())
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/get-online-features",
                                                 data=b'{"entities": {"user_id": ["a"]}}', method="POST")
                urllib.request.urlopen(request, timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start") from None
                time.sleep(0.2)
        done = subprocess.run(["wrk", "-t", "2", "-c", "16", "-d", f"{seconds}s", "--latency", "-s",
                               str(folder / "post.lua"), f"http://127.0.0.1:{port}/get-online-features"],
                              capture_output=True, text=True, check=True, timeout=seconds + 60)
        rps = float(next(line.split()[1] for line in done.stdout.splitlines() if line.startswith("Requests/sec")))
        p99 = next(line.split()[1] for line in done.stdout.splitlines() if line.strip().startswith("99%"))
        non2xx = sum(int(line.split()[-1]) for line in done.stdout.splitlines() if "Non-2xx" in line)
        return {"rps": rps, "p99": p99, "non_2xx": non2xx}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    _results.start()
    folder = Path(tempfile.mkdtemp(prefix="bench-servers-"))
    (folder / "apps.py").write_text(APPS)
    (folder / "post.lua").write_text(LUA)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in SERVERS}
    for _ in range(args.repeat):
        for name, command in SERVERS.items():
            result = run(name, command, folder, args.seconds)
            result["load_average_1m"] = os.getloadavg()[0]
            runs[name].append(result)
            print(f"{name}: {result['rps']:.0f} req/s p99 {result['p99']}", flush=True)
    medians = {name: statistics.median(r["rps"] for r in results) for name, results in runs.items()}
    best = medians["granian-rsgi"]
    summary = {name: {"rps_median": value, "relative_to_granian_rsgi": round(value / best, 2)}
               for name, value in medians.items()}
    print(json.dumps(summary, indent=2))
    _results.write("serving_servers", {"seconds": args.seconds, "repeat": args.repeat, "workers": 1,
                                       "connections": 16, "wrk_threads": 2}, {"medians": summary, "runs": runs})


if __name__ == "__main__":
    main()
