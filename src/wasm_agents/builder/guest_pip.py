"""Run pip with environment markers evaluated for the guest interpreter instead of the host.

pip's --python-version and --platform options choose wheel tags only: markers such as
`; python_version < "3.12"` or `; sys_platform == "wasi"` are still evaluated against the interpreter
running pip, in requirements files and in every dependency's metadata alike. This entry point gives
pip's own copy of `packaging` the guest's marker environment, then hands over to pip.

It can also rank the wheels of some platforms below all others (`rank_last`): a resolution over the
guest's platforms plus a common compiled one then takes the newest release of each package, and a
sandbox wheel of that release whenever one exists, so the report shows which releases have none.

Usage: python -P guest_pip.py '{"markers": {...}, "rank_last": [platform, ...]}' <pip arguments>
"""

import json
import sys


def main(argv: list[str]) -> int:
    """Run pip with `argv[1:]` under the settings given as JSON in `argv[0]`."""
    settings = json.loads(argv[0])
    environment = settings["markers"]
    rank_last = frozenset(settings.get("rank_last", ()))
    from pip._internal.cli.main import main as pip
    from pip._vendor.packaging import markers

    markers.default_environment = lambda: dict(environment)
    if rank_last:
        from pip._internal.models import target_python

        supported = target_python.get_supported

        def guest_first(*args: object, **kwargs: object) -> list:
            """pip's supported tags, most preferred first, with those of `rank_last` platforms moved to the end."""
            # A stable sort: pip's own order is kept within each group.
            return sorted(supported(*args, **kwargs), key=lambda tag: tag.platform in rank_last)

        target_python.get_supported = guest_first
    return pip(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
