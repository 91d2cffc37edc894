"""An agent written for requests 2.28.0, as the original design pinned it."""

import requests


class Legacy:
    def __init__(self, task):
        self.task = task

    def run(self):
        url = self.task["url"]
        got = requests.get(url + "/echo", params={"q": "legacy"}, timeout=5)
        sent = requests.post(url + "/echo", json={"from": "legacy"}, timeout=5)
        try:
            requests.get(self.task["forbidden"], timeout=5)
            refused = None
        except requests.exceptions.ConnectionError as error:
            refused = str(error)
        return {"version": requests.__version__, "get": got.json(), "post": sent.json(), "refused": refused}


def main(config):
    return Legacy(config["task"])
