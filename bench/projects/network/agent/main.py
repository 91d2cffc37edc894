"""Times HTTP requests made from inside the sandbox, through the host: each with a new connection, as the host makes them."""

import http.client
import time
from urllib.parse import urlsplit

import requests


def timed(request, count):
    """Milliseconds of each of `count` calls of `request`."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        request()
        times.append((time.perf_counter() - start) * 1000)
    return times


def one_shot(url):
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port)
    connection.request("GET", parts.path + "?" + parts.query)
    connection.getresponse().read()
    connection.close()


class Timer:
    def __init__(self, task):
        self.task = task

    def run(self):
        url, count = self.task["url"], self.task["count"]
        if self.task["library"] == "requests":
            return timed(lambda: requests.get(url, timeout=10).content, count)
        return timed(lambda: one_shot(url), count)


def main(config):
    return Timer(config["task"])
