"""_lzma in the wasm-agents sandbox: importable with liblzma's constants, so `lzma` loads; using it raises."""


_UNAVAILABLE = "lzma/xz compression is not available in the wasm-agents sandbox (its CPython has no liblzma); gzip and zlib are"

CHECK_NONE, CHECK_CRC32, CHECK_CRC64, CHECK_SHA256, CHECK_ID_MAX, CHECK_UNKNOWN = 0, 1, 4, 10, 15, 16
FILTER_LZMA1, FILTER_LZMA2, FILTER_DELTA = 0x4000000000000001, 0x21, 0x03
FILTER_X86, FILTER_POWERPC, FILTER_IA64, FILTER_ARM, FILTER_ARMTHUMB, FILTER_SPARC = 4, 5, 6, 7, 8, 9
FORMAT_AUTO, FORMAT_XZ, FORMAT_ALONE, FORMAT_RAW = 0, 1, 2, 3
MF_HC3, MF_HC4, MF_BT2, MF_BT3, MF_BT4 = 0x03, 0x04, 0x12, 0x13, 0x14
MODE_FAST, MODE_NORMAL = 1, 2
PRESET_DEFAULT, PRESET_EXTREME = 6, 0x80000000


class LZMAError(Exception):
    """Raised for every use of lzma in the sandbox."""


def _unavailable(*args, **kwargs):
    raise LZMAError(_UNAVAILABLE)


class LZMACompressor:
    __init__ = _unavailable


class LZMADecompressor:
    __init__ = _unavailable


def is_check_supported(check_id):
    return False


_encode_filter_properties = _decode_filter_properties = _unavailable
