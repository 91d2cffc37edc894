"""ctypes for packages in the wasm-agents sandbox: C type names and their wasm32 sizes; loading native code raises.

Packages that import ctypes only to size a C type (sympy's `sizeof(c_long)`) load; anything that would
call native code fails with an OSError that names the sandbox.
"""

import errno

_NO_NATIVE_CODE = "native code is not available in the wasm-agents sandbox"


class _CData:
    _size_ = 0

    def __init__(self, value=0):
        self.value = value


def _type(name, size):
    return type(name, (_CData,), {"_size_": size})


c_bool, c_char, c_byte, c_ubyte = _type("c_bool", 1), _type("c_char", 1), _type("c_byte", 1), _type("c_ubyte", 1)
c_short, c_ushort, c_int, c_uint = _type("c_short", 2), _type("c_ushort", 2), _type("c_int", 4), _type("c_uint", 4)
c_long, c_ulong = _type("c_long", 4), _type("c_ulong", 4)  # wasm32 is ILP32
c_longlong, c_ulonglong = _type("c_longlong", 8), _type("c_ulonglong", 8)
c_size_t, c_ssize_t = _type("c_size_t", 4), _type("c_ssize_t", 4)
c_float, c_double, c_longdouble = _type("c_float", 4), _type("c_double", 8), _type("c_longdouble", 16)
c_char_p, c_wchar_p, c_void_p, c_wchar = _type("c_char_p", 4), _type("c_wchar_p", 4), _type("c_void_p", 4), _type("c_wchar", 4)
c_int8, c_uint8, c_int16, c_uint16 = c_byte, c_ubyte, c_short, c_ushort
c_int32, c_uint32, c_int64, c_uint64 = c_int, c_uint, c_longlong, c_ulonglong


class Structure(_CData):
    def __init__(self, *args, **kwargs):
        raise OSError(errno.ENOTSUP, f"ctypes structures are not available: {_NO_NATIVE_CODE}")


class Union(Structure):
    pass


def sizeof(obj_or_type):
    """Return the size in bytes of a C type or instance, as on wasm32."""
    size = getattr(obj_or_type, "_size_", None)
    if size is None or isinstance(obj_or_type, Structure) or (isinstance(obj_or_type, type) and issubclass(obj_or_type, Structure)):
        raise TypeError("this type has no size known to the wasm-agents sandbox's ctypes")
    return size


class CDLL:
    def __init__(self, name, *args, **kwargs):
        raise OSError(errno.ENOTSUP, f"cannot load {name!r}: {_NO_NATIVE_CODE}")


PyDLL = CDLL


class LibraryLoader:
    def __init__(self, dlltype):
        self._dlltype = dlltype

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self._dlltype(name)

    __getitem__ = __getattr__

    def LoadLibrary(self, name):
        return self._dlltype(name)


cdll, pydll = LibraryLoader(CDLL), LibraryLoader(PyDLL)


def _no_native_code(*args, **kwargs):
    raise OSError(errno.ENOTSUP, _NO_NATIVE_CODE)


POINTER = pointer = byref = cast = addressof = string_at = memmove = memset = CFUNCTYPE = _no_native_code
