"""A helper that parses "key=value" text: warns about blank input, fails on a line without "=", or passes work on."""

import logging

from wasm_agents_sdk import delegate


class Parser:
    def __init__(self, task):
        self.task = task

    def run(self):
        text = self.task.get("text", "")
        if not text.strip():
            logging.warning("blank input, nothing to parse")
        if self.task["op"] == "parse":
            return parse(text)
        return delegate(self.task)


def parse(text):
    pairs = {}
    for line in text.splitlines():
        key, value = line.split("=")  # a line without "=" fails here
        pairs[key.strip()] = value.strip()
    return pairs


def main(config):
    return Parser(config["task"])
