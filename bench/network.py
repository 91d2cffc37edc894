"""The cost of HTTP through the host: the same requests from a sandboxed agent and from native CPython, in one run.

Each request opens a new connection on both sides (the host never keeps one for a guest), to a server on
127.0.0.1 that answers at once, so the difference is what the host round trip adds: the guest's library and
adapter, the host call, the allow-list check, base64 of the body and the guest's parsing.

Usage: python bench/network.py [--count N]; prints a table and writes bench/results/network.json.
"""

import argparse
import http.client
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests

from wasm_agents import Runner, build

BENCH = Path(__file__).resolve().parent
PROJECT = BENCH / "projects" / "network"
SIZES = (100, 100_000, 1_000_000)


class Answer(BaseHTTPRequestHandler):
    """Answers GET /?n=BYTES with that many bytes."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        size = int(parse_qs(urlsplit(self.path).query)["n"][0])
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        self.wfile.write(b"x" * size)


def native(library: str, url: str, count: int) -> list[float]:
    """Milliseconds of each of `count` requests made by this process."""

    def one_shot() -> None:
        parts = urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port)
        connection.request("GET", parts.path + "?" + parts.query)
        connection.getresponse().read()
        connection.close()

    request = (lambda: requests.get(url, timeout=10).content) if library == "requests" else one_shot
    times = []
    for _ in range(count):
        start = time.perf_counter()
        request()
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="requests per case (default 200)")
    count = parser.parse_args().count
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder) / "network"
        shutil.copytree(PROJECT, project)
        (project / "agent" / "agent.toml").write_text(
            f'[limits]\nwall_time_s = 600\nmemory_mb = 256\n\n[network]\nallow = ["127.0.0.1:{port}"]\nmax_requests = {count}\n'
            f"max_response_bytes = {max(SIZES)}\n"
        )
        dist = build(project).dist
        rows = []
        with Runner(dist) as runner:
            for library in ("http.client", "requests"):
                for size in SIZES:
                    url = f"http://127.0.0.1:{port}/?n={size}"
                    native(library, url, 5)  # warm both sides before measuring, in alternation
                    runner.run({"library": library, "url": url, "count": 5})
                    result = runner.run({"library": library, "url": url, "count": count})
                    assert result.ok, result.error
                    guest, host = statistics.median(result.result), statistics.median(native(library, url, count))
                    rows.append({"library": library, "bytes": size, "native_ms": round(host, 3), "guest_ms": round(guest, 3),
                                 "overhead_ms": round(guest - host, 3), "ratio": round(guest / host, 2)})
    server.shutdown()
    print(f"{'library':<12} {'bytes':>9} {'native ms':>10} {'guest ms':>9} {'overhead':>9} {'ratio':>6}")
    for row in rows:
        print(f"{row['library']:<12} {row['bytes']:>9} {row['native_ms']:>10.3f} {row['guest_ms']:>9.3f} {row['overhead_ms']:>9.3f} {row['ratio']:>6.2f}")
    results = BENCH / "results" / "network.json"
    results.write_text(json.dumps({"count": count, "python": sys.version.split()[0], "rows": rows}, indent=2) + "\n")
    print(f"written to {results}")


if __name__ == "__main__":
    main()
