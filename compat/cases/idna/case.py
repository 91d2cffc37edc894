"""web: IDNA 2008 / UTS 46 encoding and decoding of internationalized domain names, and refusals."""


def compute(task):
    import idna  # loaded where hostnames are first normalised (the UTS 46 table loads on first use)

    out = {}
    for name in task["domains"]:
        try:
            encoded = idna.encode(name, uts46=True).decode("ascii")
            out[name] = {"ascii": encoded, "back": idna.decode(encoded)}
        except idna.IDNAError as error:
            out[name] = {"error": f"{type(error).__name__}: {error}"}
    # The standard library's IDNA 2003 codec, found by name, for comparison.
    out["stdlib_codec"] = [name.encode("idna").decode("ascii") for name in task["stdlib"]]
    return out
