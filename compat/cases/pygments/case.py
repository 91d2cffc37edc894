"""markup: syntax-highlight code in three languages to HTML and terminal output (lexers load by name)."""

from pygments import highlight, lex


def compute(task):
    # Lexers and formatters are found by name and imported on demand.
    from pygments.formatters import get_formatter_by_name
    from pygments.lexers import get_lexer_by_name

    html = get_formatter_by_name("html", nowrap=True)
    terminal = get_formatter_by_name("terminal")
    out = {}
    for language, code in task["snippets"].items():
        lexer = get_lexer_by_name(language)
        out[language] = {
            "lexer": lexer.name,
            "html": highlight(code, lexer, html),
            "ansi": highlight(code, lexer, terminal),
            "tokens": [[str(kind), value] for kind, value in lex(code, lexer)][:12],
        }
    return out
