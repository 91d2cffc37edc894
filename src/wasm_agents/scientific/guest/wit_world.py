"""The host imports a component has, for agents of the scientific runtime: the same calls, through its one door.

The guest modules of the sandbox (the SDK, the harness, HTTP) call `wit_world` as in a component; here each
call is one frame through `_host.call`: "call\\n<name>\\n<payload>", answered "ok\\n<json>" or "err\\n<json>",
and "log\\n<level>\\n<fields>", answered with nothing.
"""

import _host
from componentize_py_types import Err


class WitWorld:
    """What the harness's exports derive from, as componentize-py generates it."""


def host_call(name: str, payload: str) -> str:
    """Ask the host; return its answer, or raise Err carrying its refusal."""
    status, _, answer = _host.call(b"call\n%s\n%s" % (name.encode(), payload.encode())).partition(b"\n")
    if status == b"ok":
        return answer.decode()
    raise Err(answer.decode())


def log(level: str, fields: str) -> None:
    """Send one log record to the host."""
    _host.call(b"log\n%s\n%s" % (level.encode(), fields.encode()))
