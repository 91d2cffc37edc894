"""A client agent: makes the HTTP request its task describes, through the library the task names."""

import base64
import http.client
import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import httpx
import requests
import urllib3
import wit_world
from wasm_agents_sdk import delegate


def fetch(task):
    """Return what the library answered, or the exception it raised."""
    library, url, method = task["lib"], task["url"], task.get("method", "GET")
    headers, body, timeout = task.get("headers", {}), task.get("body"), task.get("timeout")
    data = body.encode() if body is not None else None
    try:
        if library == "requests":
            answer = requests.request(method, url, data=data, headers=headers, timeout=timeout)
            return {"status": answer.status_code, "text": answer.text, "url": answer.url, "history": [r.status_code for r in answer.history]}
        if library == "session":
            with requests.Session() as session:
                session.get(url + "/cookie", timeout=timeout)
                answer = session.post(url + "/echo", json={"n": 1}, timeout=timeout)
                return {"status": answer.status_code, "json": answer.json(), "cookies": session.cookies.get_dict()}
        if library == "urllib":
            request = urllib.request.Request(url, data=data, headers=headers, method=method)
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return {"status": answer.status, "text": answer.read().decode(), "url": answer.url}
        if library == "http.client":
            parts = urlsplit(url)
            kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
            connection = kind(parts.hostname, parts.port, timeout=timeout or 10)
            connection.request(method, (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), body=data, headers=headers)
            answer = connection.getresponse()
            text = answer.read().decode()
            connection.request("GET", "/echo")  # the same connection again
            again = connection.getresponse().status
            return {"status": answer.status, "text": text, "again": again}
        if library == "urllib3":
            answer = urllib3.PoolManager().request(method, url, body=data, headers=headers, timeout=timeout)
            return {"status": answer.status, "text": answer.data.decode(), "url": answer.geturl()}
        if library == "httpx":
            with httpx.Client(timeout=timeout, follow_redirects=True) as client:
                answer = client.request(method, url, content=data, headers=headers)
                return {"status": answer.status_code, "text": answer.text, "url": str(answer.url), "history": [r.status_code for r in answer.history]}
        if library == "raw":  # what a hostile agent could send, past every library's checks
            request = {"method": method, "url": url, "headers": task.get("raw_headers", []), "timeout": timeout}
            return {"answer": json.loads(wit_world.host_call("http", json.dumps(request)).partition("\n")[0])}
    except Exception as error:  # noqa: BLE001 - the test reads what the agent could catch
        return {"error": type(error).__name__, "caught_as": [kind.__name__ for kind in type(error).__mro__], "message": str(error)}
    raise ValueError(f"unknown library {library!r}")


class Client:
    def __init__(self, task):
        self.task = task

    def run(self):
        task = self.task
        if "to" in task:
            return delegate(task["task"], to=task["to"])
        if "repeat" in task:
            return [fetch(task) for _ in range(task["repeat"])]
        if "gzip" in task:
            answer = requests.get(task["url"], timeout=5)
            return {"text": answer.text, "encoding": answer.headers.get("Content-Encoding"), "raw": base64.b64encode(answer.raw.read() or b"").decode()}
        return fetch(task)


def main(config):
    return Client(config["task"])
