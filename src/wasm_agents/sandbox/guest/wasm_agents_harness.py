"""The guest side of the `run` export: calls the agent's main(config).run() and encodes the outcome.

componentize-py imports this module at build time, so the agent's `main` module, everything it
imports and the stdlib modules below are part of the component's snapshot. Whatever is imported
later (the rest of the stdlib, a package's lazy submodules and data files) is read from the same
folders, mounted read-only into every fresh instance.
"""

import wasm_agents_sandbox  # noqa: F401 - first: adapts the stdlib to the sandbox before anything else imports it

import gc
import json
import sys
import traceback

# Stdlib modules agents commonly import: importing them here bakes them into the snapshot, so using them costs nothing.
import base64, bisect, collections, copy, csv, dataclasses, datetime, decimal, enum, fractions  # noqa: E401,F401
import functools, hashlib, heapq, io, itertools, math, operator, random, re, statistics  # noqa: E401,F401
import string, textwrap, time, types, typing, unicodedata, uuid, urllib.parse  # noqa: E401,F401

import wit_world
from componentize_py_types import Err
from wasm_agents_protocol import CODE_MOUNT, COMPILE_BYTECODE, DEPS_MOUNT, WARM_UP

import main as agent_main


class MainNotCallable(Exception):
    """The agent's module has no callable `main`: raised while the build imports it, and reported naming the agent's main.py."""


def _described(value: object) -> str:
    """Name `value` in a message: None, or its type with an article."""
    if value is None:
        return "None"
    noun = type(value).__name__
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


if not hasattr(agent_main, "main"):
    raise MainNotCallable("defines no main(config) function")
if not callable(agent_main.main):
    raise MainNotCallable(f"main must be a function main(config), not {_described(agent_main.main)}")

# What run() got instead of a result when main(config) returned an object without a run() method.
_NO_RUN = object()


def _compile_what_the_snapshot_lacks() -> int:
    """Compile the agent's and its packages' modules that the snapshot did not import, with this interpreter.

    Asked once, at build time, of a fresh instance whose /0 and /1 are writable copies: the bytecode ships in
    the dist, so a module imported later is not compiled again in every fresh instance. Unchecked-hash .pyc
    files stay valid whatever mtimes the sources get. Returns how many modules it compiled.
    """
    import importlib.util
    import os
    from importlib._bootstrap_external import _code_to_hash_pyc

    loaded = {getattr(module, "__file__", None) for module in list(sys.modules.values())}
    compiled = 0
    for root in (CODE_MOUNT, DEPS_MOUNT):
        for folder, subfolders, files in os.walk(root):
            subfolders[:] = [name for name in subfolders if name not in ("__pycache__", "tests", "test")]
            for name in files:
                path = os.path.join(folder, name)
                if not name.endswith(".py") or path in loaded:
                    continue
                with open(path, "rb") as handle:
                    source = handle.read()
                try:
                    code = compile(source, path, "exec", dont_inherit=True)
                except (SyntaxError, ValueError):
                    continue  # not importable Python (a template, another version's syntax): it stays source only
                os.makedirs(os.path.join(folder, "__pycache__"), exist_ok=True)
                # A buffered write: WASI may take a large write in parts, which py_compile refuses.
                with open(importlib.util.cache_from_source(path), "wb") as handle:
                    handle.write(_code_to_hash_pyc(code, importlib.util.source_hash(source), checked=False))
                compiled += 1
    return compiled



class WitWorld(wit_world.WitWorld):
    def run(self, input: str) -> str:
        if input == WARM_UP:
            return _warm_up()
        if input == COMPILE_BYTECODE:
            try:
                return json.dumps(_compile_what_the_snapshot_lacks())
            except Exception as error:  # noqa: BLE001 - the build reports it
                raise Err(_error(type(error).__name__, str(error), traceback.format_exc())) from None
        try:
            config = json.loads(input)
            agent = agent_main.main(config)
            run = getattr(agent, "run", None)
            result = run() if callable(run) else _NO_RUN
        except BaseException as error:  # SystemExit too: the agent must not end the sandbox silently
            raise Err(_error(type(error).__name__, str(error), traceback.format_exc())) from None
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        if result is _NO_RUN:  # said in the agent's terms, without a traceback into this harness
            name = config["agent"]
            folder = "agent" if name == "agent" else f"agent-{name}"
            message = f"agent '{name}': main(config) returned {_described(agent)} without a run() method ({folder}/main.py)"
            raise Err(_error("TypeError", message, ""))
        try:
            return json.dumps(result, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise Err(_error("NotSerializable", f"run() returned a value that is not JSON: {error}", "")) from None


def _warm_up() -> str:
    """Touch what every real call touches short of agent code, so its page faults happen before a task arrives: the
    JSON both ways and, when the agent imported the SDK, its log and delegate paths (the host answers them idly)."""
    sdk = sys.modules.get("wasm_agents_sdk")
    if sdk is not None:
        sdk.log("debug", "warm-up", step=1)
        sdk.delegate({"a": [1, 2.5, "x", None, True]})
    return json.dumps(json.loads('{"task": {"a": [1, 2.5, "x", null, true]}, "settings": {}}'))


def _error(kind: str, message: str, trace: str) -> str:
    return json.dumps({"type": kind, "message": message, "traceback": trace})

# Everything above is the snapshot every instance shares: out of the collector's sight, a collection in an
# instance never writes to (and so never copies) the snapshot's pages (~0.9 MiB less memory per instance).
gc.collect()
gc.freeze()
