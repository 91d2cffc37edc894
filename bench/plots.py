"""The plots of docs/PERFORMANCE.md, drawn from a bench results JSON.

Usage: python bench/plots.py [bench/results/latest.json] [docs/img]
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def draw(out: dict, folder: Path) -> list[Path]:
    """Draw latency.png (one panel per figure) and memory.png (RSS against live instances) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    return [latency(out, folder / "latency.png"), memory(out, folder / "memory.png")]


def latency(out: dict, path: Path) -> Path:
    samples = out["samples"]
    targets = {key: value["target"] for key, value in out["targets"].items()}
    panels = [
        ("Cold start: one agent, no pool", {"ours": samples["one_agent_no_pool_ms"]}, "ms", "cold_start_ms"),
        ("One agent task", {"paced": samples["one_agent_paced_ms"], "back to back": samples["one_agent_back_to_back_ms"]}, "ms", None),
        ("Hop (chain - one agent)", {"paced": samples["hop_paced_ms"], "back to back": samples["hop_back_to_back_ms"]}, "ms", "hop_ms"),
        ("Two-agent chain", {"paced": samples["chain_paced_ms"], "back to back": samples["chain_back_to_back_ms"],
                             **({"Pyodide warm": samples["pyodide_chain_ms"]} if "pyodide_chain_ms" in samples else {}),
                             "native Python": samples["native_chain_ms"]}, "ms", None),
        ("Whole process, chain", {"wasm-agents run": samples["cli_run_ms"],
                                  **({"Pyodide (node)": samples["pyodide_process_ms"]} if "pyodide_process_ms" in samples else {})}, "ms", None),
        ("CPU kernels: guest / native", {
            kernel: [g / n for g, n in zip(samples["cpu_guest_ms"][kernel],
                                           samples["cpu_native_ms"][out["cpu_ratio_vs_native"]["native_python"]][kernel], strict=True)]
            for kernel in samples["cpu_guest_ms"]}, "ratio", "cpu_ratio_vs_native"),
    ]
    figure, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    for axis, (title, series, unit, target_key) in zip(axes.flat, panels, strict=True):
        labels = list(series)
        axis.boxplot([series[label] for label in labels], showfliers=True, flierprops={"markersize": 2})
        axis.set_xticks(range(1, len(labels) + 1), labels, fontsize=8)
        axis.set_title(title, fontsize=10)
        axis.set_ylabel(unit)
        values = [v for label in labels for v in series[label]]
        if min(values) > 0 and max(values) / min(values) > 50:
            axis.set_yscale("log")
        if target_key and target_key in targets:
            limit = float(targets[target_key].split()[1])
            axis.axhline(limit, color="tab:red", linestyle="--", linewidth=1, label=f"target {targets[target_key]}")
            axis.legend(fontsize=8)
        axis.grid(axis="y", alpha=0.3)
    machine = out["machine"]
    figure.suptitle(f"Latency distributions ({machine['cores']} cores, {machine['cpu']}, Python {machine['python']}, "
                    f"wasmtime {machine['wasmtime']})", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def memory(out: dict, path: Path) -> Path:
    mem = out["mem_per_instance_mb"]
    probes = out["samples"]["memory"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    counts = sorted(int(c) for c in probes)
    baseline = mem["baseline_rss_mb"]["median"]
    for count in counts:
        left.scatter([count] * len(probes[str(count)]), [p["held_mb"] for p in probes[str(count)]], color="tab:blue", s=12)
    left.plot(counts, [mem["rss_mb"][str(c)]["median"] for c in counts], color="tab:blue", label="process RSS (median)")
    left.plot(counts, [baseline + 12 * c for c in counts], color="tab:red", linestyle="--", label="target: 12 MiB per instance")
    if "pyodide_rss_mb" in out:
        left.axhline(out["pyodide_rss_mb"]["median"], color="tab:orange", linestyle=":", label="Pyodide process, 2 agents")
    left.set_xlabel("live sandboxes held at once")
    left.set_ylabel("RSS (MiB)")
    left.set_title("Process RSS against live instances", fontsize=10)
    left.legend(fontsize=8)
    left.grid(alpha=0.3)
    right.bar([str(c) for c in counts], [mem["by_live_instances"][str(c)]["median"] for c in counts], color="tab:blue")
    right.axhline(12, color="tab:red", linestyle="--", label="target 12 MiB")
    right.set_xlabel("live sandboxes held at once")
    right.set_ylabel("RSS growth per instance (MiB)")
    right.set_title("Per live instance", fontsize=10)
    right.legend(fontsize=8)
    right.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


if __name__ == "__main__":
    import json

    source = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "results" / "latest.json"
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).resolve().parent.parent / "docs" / "img"
    for drawn in draw(json.loads(source.read_text()), target):
        print(drawn)
