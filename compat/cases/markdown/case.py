"""markup: Markdown to HTML with tables, fenced code, footnotes and a table of contents (extensions load by name)."""

import markdown


def compute(task):
    # The extension classes are imported where they are configured; the others are loaded by name.
    from markdown.extensions.toc import TocExtension

    md = markdown.Markdown(extensions=["tables", "fenced_code", "footnotes", "abbr", TocExtension(permalink=False, toc_depth="2-3")])
    html = md.convert(task["text"])
    return {"html": html, "toc": md.toc, "toc_tokens": md.toc_tokens, "plain": markdown.markdown("*hi* & <b>bye</b>")}
