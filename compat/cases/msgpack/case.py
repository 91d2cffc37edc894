"""data formats: pack records with an extension type and timestamps to MessagePack, checksum and unpack them."""

import datetime
import io

import msgpack


def compute(task):
    import zlib  # stdlib: a CRC32 of the packed bytes, as a transport would

    def default(value):
        if isinstance(value, complex):
            return msgpack.ExtType(42, msgpack.packb([value.real, value.imag]))
        raise TypeError(f"cannot pack {type(value).__name__}")

    def ext_hook(code, data):
        return complex(*msgpack.unpackb(data)) if code == 42 else msgpack.ExtType(code, data)

    records = [dict(row, z=complex(*row["z"])) for row in task["records"]]
    when = datetime.datetime.fromisoformat(task["when"])
    packed = msgpack.packb({"records": records, "when": when, "blob": bytes(range(8))}, default=default, datetime=True)
    unpacked = msgpack.unpackb(packed, ext_hook=ext_hook, timestamp=3)
    return {
        "hex": packed.hex(),
        "size": len(packed),
        "crc32": zlib.crc32(packed),
        "z": [[value["z"].real, value["z"].imag] for value in unpacked["records"]],
        "when": unpacked["when"].isoformat(),
        "blob": list(unpacked["blob"]),
        "streamed": [type(item).__name__ for item in msgpack.Unpacker(io.BytesIO(packed * 2), ext_hook=ext_hook)],
    }
