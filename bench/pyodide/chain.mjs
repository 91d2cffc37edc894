// The original design, as a baseline: the example's two agents in Pyodide on Node.js.
// Each agent gets its own Pyodide interpreter (its isolation unit in that design); a JS-side
// orchestrator routes the root agent's delegate() into the multiplier's interpreter.
// Usage: node chain.mjs PYODIDE_DIR EXAMPLE_DIR WHEEL_DIR MODE [REPEAT]
//   MODE "cold":  one add task on the root agent, then exit (process start to result)
//   MODE "chain": one multiply chain, then exit (the whole process, like `wasm-agents run`)
//   MODE "warm":  REPEAT chains in warm interpreters, timed one by one
//   MODE "kernels": EXAMPLE_DIR is the kernels agent's folder; REPEAT timed runs of each of its CPU kernels
//   MODE "kernels-cpu": the same, as {"ms": {kernel: [...]}, "cpu_ms": {kernel: [...]}} with the process's CPU time of each run
//   MODE "interpreter": EXAMPLE_DIR is the kernels agent's folder; its description of Pyodide's interpreter
// Prints one JSON object on stdout.
import fs from "node:fs";
import path from "node:path";

const [pyodideDir, exampleDir, wheelDir, mode, repeatText] = process.argv.slice(2);
const repeat = Number(repeatText || 50);
const { loadPyodide } = await import(path.join(pyodideDir, "pyodide.mjs"));

const SDK = `
import json
import wasm_agents_host

class DelegationError(Exception):
    pass

def delegate(task, to=None):
    ok, answer = wasm_agents_host.delegate(json.dumps(task), to).to_py()
    if not ok:
        raise DelegationError(answer)
    return json.loads(answer)

def log(level, message, **fields):
    wasm_agents_host.log(level, json.dumps({"message": message, **fields}))
`;

const RUN = `
import json
def _wasm_agents_run(config_json):
    import main
    return json.dumps(main.main(json.loads(config_json)).run())
_wasm_agents_run
`;

const agents = {};

async function loadAgent(name, folder) {
  const py = await loadPyodide({ indexURL: pyodideDir + "/", stdout: () => {}, stderr: () => {} });
  py.registerJsModule("wasm_agents_host", {
    delegate: (taskJson, to) => route(name, taskJson, to),
    log: () => {},
  });
  const site = py.runPython("import sysconfig; sysconfig.get_paths()['purelib']");
  py.FS.mkdirTree(site);
  // The root agent's requirements (python-dateutil, six): pure wheels unpacked into site-packages
  // (micropip is not in the npm package and the CDN is out of reach).
  if (fs.existsSync(path.join(folder, "requirements.txt"))) {
    for (const wheel of fs.readdirSync(wheelDir).filter((f) => f.endsWith(".whl"))) {
      py.unpackArchive(new Uint8Array(fs.readFileSync(path.join(wheelDir, wheel))), "wheel", { extractDir: site });
    }
  }
  py.FS.writeFile(site + "/wasm_agents_sdk.py", SDK);
  const dir = "/agent";
  py.FS.mkdirTree(dir);
  py.FS.writeFile(dir + "/main.py", fs.readFileSync(path.join(folder, "main.py")));
  py.runPython(`import sys; sys.path.insert(0, "${dir}")`);
  const run = py.runPython(RUN);
  agents[name] = { py, run };
}

function invoke(name, taskJson) {
  const config = `{"task": ${taskJson}, "agent": ${JSON.stringify(name)}, "run_id": "x", "settings": {}}`;
  return agents[name].run(config);
}

function route(caller, taskJson, to) {
  const target = to || (caller === "agent" ? "multiplier" : null);
  if (!target || !agents[target]) return [false, JSON.stringify({ type: "EndOfChain" })];
  return [true, invoke(target, taskJson)];
}

function rssMb() {
  const status = fs.readFileSync("/proc/self/status", "utf8");
  const kb = (key) => Number(status.match(new RegExp(key + ":\\s+(\\d+)"))[1]);
  return { rss_mb: kb("VmRSS") / 1024, peak_rss_mb: kb("VmHWM") / 1024 };
}

const ADD = '{"op": "add", "a": 2, "b": 3}';
const MULTIPLY = '{"op": "multiply", "a": 6, "b": 7}';
const out = {};
if (mode === "kernels" || mode === "kernels-cpu") {
  await loadAgent("kernels", exampleDir);
  const py = agents.kernels.py;
  py.runPython("import main");
  const wall = {}, cpu = {};
  for (const kernel of py.runPython("list(main.KERNELS)").toJs()) {
    py.runPython(`main.run_kernel("${kernel}")`); // warm-up, as on the other sides
    wall[kernel] = [];
    cpu[kernel] = [];
    for (let i = 0; i < repeat; i++) {
      const before = process.cpuUsage();
      wall[kernel].push(py.runPython(`main.run_kernel("${kernel}")["ms"]`));
      const used = process.cpuUsage(before);
      cpu[kernel].push((used.user + used.system) / 1000);
    }
  }
  Object.assign(out, mode === "kernels" ? wall : { ms: wall, cpu_ms: cpu });
} else if (mode === "interpreter") {
  await loadAgent("kernels", exampleDir);
  Object.assign(out, JSON.parse(agents.kernels.py.runPython("import json, main; json.dumps(main.interpreter())")));
} else if (mode === "cold") {
  await loadAgent("agent", path.join(exampleDir, "agent"));
  out.result = JSON.parse(invoke("agent", ADD));
  out.since_process_start_ms = performance.now(); // performance.now() counts from process start
} else {
  await loadAgent("agent", path.join(exampleDir, "agent"));
  await loadAgent("multiplier", path.join(exampleDir, "agent-multiplier"));
  out.loaded_ms = performance.now();
  out.result = JSON.parse(invoke("agent", MULTIPLY));
  out.since_process_start_ms = performance.now();
  if (mode === "warm") {
    const one = [], two = [];
    for (let i = 0; i < repeat; i++) {
      let start = performance.now();
      invoke("agent", ADD);
      one.push(performance.now() - start);
      start = performance.now();
      invoke("agent", MULTIPLY);
      two.push(performance.now() - start);
    }
    out.one_agent_ms = one;
    out.chain_ms = two;
  }
  Object.assign(out, rssMb());
}
process.stdout.write(JSON.stringify(out) + "\n");
