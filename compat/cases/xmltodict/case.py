"""data formats: XML with attributes, namespaces and repeated elements to a dict and back to pretty XML."""


def compute(task):
    import xmltodict  # loaded where XML is first met

    data = xmltodict.parse(task["xml"], process_namespaces=True, namespaces={"http://example.com/books": "b"})
    plain = xmltodict.parse(task["xml"], force_list=("b:book",))
    books = plain["b:catalog"]["b:book"]
    return {
        "namespaced": data,
        "titles": [book["b:title"] for book in books],
        "total": round(sum(float(book["b:price"]["#text"]) for book in books), 2),
        "unparsed": xmltodict.unparse({"order": {"@id": "7", "item": [{"@sku": "x1", "#text": "Pen & ink"}, {"@sku": "y2"}]}}, pretty=True, indent="  "),
    }
