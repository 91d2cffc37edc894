"""Running a command as a person would see it: stderr on a pseudo-terminal, stdout on a pipe."""

import os
import pty
import select
import subprocess
import time


def on_terminal(args: list[str], *, stdin: str | None = None, columns: int = 120, env: dict[str, str] | None = None,
                timeout: float = 300) -> tuple[int, str, str]:
    """Run `args` with stderr on a pseudo-terminal `columns` wide; return the exit code, stdout and the screen's bytes as text."""
    master, slave = pty.openpty()
    os.set_blocking(master, False)
    environment = {**os.environ, **(env or {}), "COLUMNS": str(columns), "LINES": "40", "TERM": "xterm-256color"}
    environment.pop("NO_COLOR", None)
    process = subprocess.Popen(
        args, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, env=environment,
    )
    os.close(slave)
    if stdin is not None:
        process.stdin.write(stdin.encode())
        process.stdin.close()
    screen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            screen += chunk
        elif process.poll() is not None and not select.select([master], [], [], 0.2)[0]:
            break
    stdout = process.stdout.read().decode()
    process.wait(timeout=60)
    os.close(master)
    return process.returncode, stdout, screen.decode("utf-8", "replace")
