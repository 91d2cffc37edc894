"""cli/output: compose ANSI-colored terminal output with colorama and strip it again for a log file."""

import re


def compute(task):
    from colorama import Back, Cursor, Fore, Style, ansi  # loaded where colored output is first made

    colored = [f"{getattr(Fore, color)}{word}{Style.RESET_ALL}" for word, color in task["words"]]
    banner = f"{Back.BLUE}{Fore.WHITE}{Style.BRIGHT} {task['title']} {Style.RESET_ALL}"
    stripped = [re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text) for text in [*colored, banner]]
    return {
        "colored": colored,
        "banner": banner,
        "stripped": stripped,
        "cursor": [Cursor.UP(2), Cursor.POS(5, 3)],
        "clear": ansi.clear_screen(),
        "codes": {name: code for name, code in sorted(vars(ansi.AnsiFore).items()) if not name.startswith("_")},
    }
