"""web: prepare HTTP requests (query strings, form and JSON bodies, auth, cookies) without sending them."""

import requests


def compute(task):
    import mimetypes  # stdlib: content types for upload names

    session = requests.Session()
    session.headers.update({"User-Agent": "compat/1.0"})
    session.cookies.set("session", "abc123", domain="api.example.com")
    out = []
    for spec in task["requests"]:
        request = requests.Request(spec["method"], spec["url"], params=spec.get("params"), data=spec.get("data"), json=spec.get("json"),
                                   auth=tuple(spec["auth"]) if "auth" in spec else None, headers=spec.get("headers"))
        prepared = session.prepare_request(request)
        body = prepared.body.decode() if isinstance(prepared.body, bytes) else prepared.body
        out.append({"method": prepared.method, "url": prepared.url, "headers": dict(sorted(prepared.headers.items())), "body": body})
    return {
        "prepared": out,
        "types": {name: mimetypes.guess_type(name)[0] for name in task["files"]},
        "quoted": requests.utils.requote_uri(task["raw_url"]),
        "status": [requests.codes.teapot, requests.status_codes._codes[404][0]],
        "parsed_link": requests.utils.parse_header_links(task["link_header"]),
    }
