"""data formats: parse untrusted XML safely (ElementTree API) and refuse an entity-expansion bomb."""

import defusedxml


def compute(task):
    # defusedxml's submodules are imported explicitly, next to the parser they replace.
    import defusedxml.ElementTree as ElementTree

    root = ElementTree.fromstring(task["xml"])
    items = [
        {"sku": item.get("sku"), "qty": int(item.findtext("qty")), "price": float(item.findtext("price"))}
        for item in root.iter("item")
    ]
    try:
        ElementTree.fromstring(task["bomb"])
        bomb = "parsed"
    except defusedxml.EntitiesForbidden as error:
        bomb = f"{type(error).__name__}: {error.name}"
    return {
        "customer": root.findtext("customer/name"),
        "items": items,
        "total": round(sum(item["qty"] * item["price"] for item in items), 2),
        "bomb": bomb,
        "serialised": ElementTree.tostring(root.find("customer"), encoding="unicode"),
    }
