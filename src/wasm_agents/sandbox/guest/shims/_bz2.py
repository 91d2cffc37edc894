"""_bz2 in the wasm-agents sandbox: importable, so `bz2` loads; compressing or decompressing raises."""

import errno

_UNAVAILABLE = "bz2 compression is not available in the wasm-agents sandbox (its CPython has no libbz2); gzip and zlib are"


class BZ2Compressor:
    def __init__(self, *args, **kwargs):
        raise OSError(errno.ENOTSUP, _UNAVAILABLE)


class BZ2Decompressor:
    def __init__(self, *args, **kwargs):
        raise OSError(errno.ENOTSUP, _UNAVAILABLE)
