"""Print the Markdown tables of docs/PERFORMANCE.md from a bench results JSON.

Usage: python bench/report.py [bench/results/latest.json]
"""

import json
import sys
from pathlib import Path


def fmt(entry: dict, digits: int = 3) -> tuple[str, str]:
    return f"{entry['median']:.{digits}g}", f"{entry['min']:.{digits}g} – {entry['max']:.{digits}g}"


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "results" / "latest.json"
    out = json.loads(source.read_text())
    targets = out["targets"]
    rows = []

    def row(label: str, entry: dict | None, key: str | None = None, digits: int = 3, note: str = "") -> None:
        if not entry or "median" not in entry:
            return
        median, spread = fmt(entry, digits)
        target = targets.get(key) if key else None
        verdict = "" if not target else ("met" if target["met"] else "**missed**")
        rows.append(f"| {label} | {median} | {spread} | {target['target'] if target else ''} | {verdict} | {note} |")

    rows.append("| figure | median | min – max | target | | holds |")
    rows.append("|---|---|---|---|---|---|")
    row("`cold_start_ms`: one agent, no pool (instantiate → result)", out["cold_start_ms"], "cold_start_ms", note="key")
    row("one agent, warm pool, paced (ms)", out["one_agent_ms"])
    row("one agent, back to back (ms)", out["back_to_back"]["one_agent_ms"])
    row("`hop_ms`: paced (ms)", out["hop_ms"], "hop_ms", note="key")
    row("hop, back to back (ms)", out["back_to_back"]["hop_ms"])
    row("hop, no pool (ms)", out["no_pool"]["hop_ms"])
    row("`chain_ms`: paced (ms)", out["chain_ms"], note="key")
    row("chain, back to back (ms)", out["back_to_back"]["chain_ms"])
    row("chain, no pool (ms)", out["no_pool"]["chain_ms"])
    row("`cli_run_ms`: `wasm-agents run`, whole process (ms)", out["cli_run_ms"], note="key")
    row("`wasm-agents run` peak RSS (MiB)", out["cli_run_ms"]["peak_rss_mb"])
    best = out["chains_per_s"]["concurrency"]
    for concurrency, entry in out["chains_per_s"]["by_concurrency"].items():
        cpu = out["chains_per_s"]["cpu_ms_per_chain"][concurrency]["median"]
        row(f"chains/s, `--concurrency {concurrency}`", entry, "chains_per_s" if int(concurrency) == best else None, 4,
            f"{'key; ' if int(concurrency) == best else ''}{cpu:g} ms process CPU per chain")
    for count, entry in out["mem_per_instance_mb"]["by_live_instances"].items():
        rss = out["mem_per_instance_mb"]["rss_mb"][count]["median"]
        row(f"MiB per live instance, {count} held", entry, "mem_per_instance_mb" if count == "256" else None,
            note=f"{'key; ' if count == '256' else ''}RSS {rss:g} MiB")
    cpu = out["cpu_ratio_vs_native"]
    host = cpu["native_python"]
    for kernel, entry in cpu["kernels"].items():
        others = ", ".join(f"{k.removeprefix('ratio_vs_')}: {v:g}" for k, v in entry.items() if k.startswith("ratio_vs_") and not k.endswith(host))
        rows.append(f"| cpu `{kernel}`: guest {entry['guest_ms']['median']:.3g} ms / native {entry[f'native_{host}_ms']['median']:.3g} ms "
                    f"| {entry[f'ratio_vs_{host}']:.3g} | | | | vs {others} |")
    row(f"`cpu_ratio_vs_native` (geomean, vs CPython {host})", cpu, "cpu_ratio_vs_native", note="key")
    row("`build_cold_s`", out.get("build_cold_s"), note="key; empty cache, wheels from PyPI")
    row("`build_nochange_s`: `build()` in-process", out["build_nochange_s"], "build_nochange_s", note="key")
    row("no-change build, `wasm-agents build` as a process (s)", out["build_nochange_s"]["as_process_s"])
    print("\n".join(rows))
    print()
    rows.clear()
    rows.append("| baseline | median | min – max | ours / theirs |")
    rows.append("|---|---|---|---|")
    native = out["baseline_native"]
    ratios = out["ratios_vs_native"]
    rows.append(f"| native CPython {host}: one agent in-process (ms) | {native['one_agent_ms']['median']:.3g} | "
                f"{native['one_agent_ms']['min']:.3g} – {native['one_agent_ms']['max']:.3g} | {ratios['one_agent']:g}× |")
    rows.append(f"| native CPython: two-agent chain in-process (ms) | {native['chain_ms']['median']:.3g} | "
                f"{native['chain_ms']['min']:.3g} – {native['chain_ms']['max']:.3g} | {ratios['chain']:g}× |")
    rows.append(f"| native CPython: hop, an in-process call (ms) | {native['hop_ms']['median']:.3g} | | {ratios['hop']:g}× |")
    rows.append(f"| native CPython: CPU kernels | 1 | | {ratios['cpu']:g}× |")
    if "pyodide_cold_start_ms" in out:
        vs = out["ratios_vs_pyodide"]
        for label, key, ratio in (
            ("Pyodide/Node: `pyodide_cold_start_ms`, process start → first result", "pyodide_cold_start_ms", vs["cold_start"]),
            ("Pyodide/Node: `pyodide_chain_ms`, warm interpreters reused", "pyodide_chain_ms", vs["chain"]),
            ("Pyodide/Node: hop, warm (ms)", "pyodide_hop_ms", None),
            ("Pyodide/Node: the chain as a whole process (ms)", "pyodide_process_ms", vs["process"]),
            ("Pyodide/Node: `pyodide_rss_mb`, peak RSS of that process", "pyodide_rss_mb", vs["rss"]),
        ):
            entry = out[key]
            rows.append(f"| {label} | {entry['median']:.4g} | {entry['min']:.4g} – {entry['max']:.4g} | {'' if ratio is None else f'{ratio:g}×'} |")
        py_cpu = out["pyodide_cpu_ratio_vs_native"]
        rows.append("| Pyodide/Node: CPU kernels / native (geomean; "
                    + ", ".join(f"{k} {v:g}" for k, v in py_cpu["kernels"].items()) + f") | {py_cpu['median']:g} | | {vs['cpu']:g}× |")
        rows.append(f"| process speed-up: Pyodide process / `wasm-agents run` | {out['process_speedup_vs_pyodide']['median']:g}× | "
                    f"{out['process_speedup_vs_pyodide']['min']:g} – {out['process_speedup_vs_pyodide']['max']:g} | target ≥ 20× |")
    print("\n".join(rows))
    m = out["machine"]
    print(f"\nMachine: {m['cpu']}, {m['cores']} cores, {m['os']}; Python {m['python']}; wasmtime {m['wasmtime']}; "
          f"componentize-py {m['componentize-py']}; node {m['node']}; pyodide {out.get('pyodide_version')}. "
          f"Run {out['generated']}, {out['bench_runtime_s']} s.")


if __name__ == "__main__":
    main()
