"""ctypes.util in the wasm-agents sandbox: no native library can be found."""


def find_library(name):
    return None
