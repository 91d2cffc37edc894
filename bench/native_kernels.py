"""Run the kernels agent's code natively: `python native_kernels.py KERNEL REPEAT` prints one JSON list of ms."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "projects" / "kernels" / "agent"))
from main import run_kernel  # the agent's own module, from the path set above

if __name__ == "__main__":
    name, repeat = sys.argv[1], int(sys.argv[2])
    run_kernel(name)  # warm-up, as the guest side gets one
    print(json.dumps([run_kernel(name)["ms"] for _ in range(repeat)]))
