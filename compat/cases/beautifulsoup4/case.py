"""markup: scrape links, a table and text from an HTML page with CSS selectors, and clean it up."""

from bs4 import BeautifulSoup


def compute(task):
    import soupsieve  # bs4's CSS engine, used directly for a compiled selector

    soup = BeautifulSoup(task["html"], "html.parser")
    rows = [[cell.get_text(strip=True) for cell in row.select("td")] for row in soup.select("table#prices tr") if row.select("td")]
    external = soupsieve.compile('a[href^="http"]:not([rel~="nofollow"])')
    for tag in soup(["script", "style"]):
        tag.decompose()
    return {
        "title": soup.title.string,
        "links": [a["href"] for a in soup.find_all("a", href=True)],
        "external_followed": [a["href"] for a in external.select(soup)],
        "rows": rows,
        "headings": [h.get_text() for h in soup.select("h1, h2")],
        "text": " ".join(soup.body.get_text(" ", strip=True).split()),
        "entities": soup.find("p", class_="note").decode_contents(formatter="html"),
    }
