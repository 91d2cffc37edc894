"""data formats: XPath queries and an XSLT transform over an XML document with lxml."""


def compute(task):
    from lxml import etree  # loaded where XML is processed

    root = etree.fromstring(task["xml"].encode())
    transform = etree.XSLT(etree.fromstring(task["xslt"].encode()))
    return {
        "titles": root.xpath("//book[price > 10]/title/text()"),
        "count": int(root.xpath("count(//book)")),
        "html": str(transform(root)),
    }
