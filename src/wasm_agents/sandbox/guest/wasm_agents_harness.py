"""The guest side of the `run` export: calls the agent's main(config).run() and encodes the outcome.

componentize-py imports this module at build time, so the agent's `main` module, everything it
imports and the stdlib modules below are part of the component's snapshot. Whatever is imported
later (the rest of the stdlib, a package's lazy submodules and data files) is read from the same
folders, mounted read-only into every fresh instance.
"""

import wasm_agents_sandbox  # noqa: F401 - first: adapts the stdlib to the sandbox before anything else imports it

import json
import sys
import traceback

# Stdlib modules agents commonly import: importing them here bakes them into the snapshot, so using them costs nothing.
import base64, bisect, collections, copy, csv, dataclasses, datetime, decimal, enum, fractions  # noqa: E401,F401
import functools, hashlib, heapq, io, itertools, math, operator, random, re, statistics  # noqa: E401,F401
import string, textwrap, time, types, typing, unicodedata, uuid, urllib.parse  # noqa: E401,F401

import wit_world
from componentize_py_types import Err

import main as agent_main


WARM_UP = "wasm-agents:warm-up"  # as in wasm_agents.sandbox: the host warms fresh instances with it


class WitWorld(wit_world.WitWorld):
    def run(self, input: str) -> str:
        if input == WARM_UP:
            # Touch what every real call touches, so its page faults happen before a task arrives.
            return json.dumps(json.loads('{"task": {"a": [1, 2.5, "x", null, true]}, "settings": {}}'))
        try:
            config = json.loads(input)
            agent = agent_main.main(config)
            result = agent.run()
        except BaseException as error:  # SystemExit too: the agent must not end the sandbox silently
            raise Err(_error(type(error).__name__, str(error), traceback.format_exc())) from None
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        try:
            return json.dumps(result, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise Err(_error("NotSerializable", f"run() returned a value that is not JSON: {error}", "")) from None


def _error(kind: str, message: str, trace: str) -> str:
    return json.dumps({"type": kind, "message": message, "traceback": trace})
