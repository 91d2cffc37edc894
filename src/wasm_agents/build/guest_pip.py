"""Run pip with environment markers evaluated for the guest interpreter instead of the host.

pip's --python-version and --platform options choose wheel tags only: markers such as
`; python_version < "3.12"` or `; sys_platform == "wasi"` are still evaluated against the interpreter
running pip, in requirements files and in every dependency's metadata alike. This entry point gives
pip's own copy of `packaging` the guest's marker environment, then hands over to pip.

Usage: python -P guest_pip.py '<marker environment as JSON>' <pip arguments>
"""

import json
import sys


def main(argv: list[str]) -> int:
    """Run pip with `argv[1:]` under the marker environment given as JSON in `argv[0]`."""
    environment = json.loads(argv[0])
    from pip._internal.cli.main import main as pip
    from pip._vendor.packaging import markers

    markers.default_environment = lambda: dict(environment)
    return pip(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
