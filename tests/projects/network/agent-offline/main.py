"""An agent without [network]: whatever it is asked, it has no way out."""

import urllib.error
import urllib.request


class Offline:
    def __init__(self, task):
        self.task = task

    def run(self):
        try:
            urllib.request.urlopen(self.task["url"], timeout=5)
        except urllib.error.URLError as error:
            return {"refused": str(error.reason)}
        return {"refused": None}


def main(config):
    return Offline(config["task"])
