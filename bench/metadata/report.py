"""Results: the goals of issue 10 checked, a JSON file, and the section of docs/benchmarks.md."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "metadata" / "results"
DOCS = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- bench-metadata:start -->", "<!-- bench-metadata:end -->"

GOAL_RATIO = 0.5        # throughput vs the bare endpoint
GOAL_P99_MS = 20.0      # single-repo calls
GOAL_SNAPSHOT = 0.7     # snapshot_download vs nginx
GOAL_SEARCH_P95_MS = 50.0


def goals(results: dict) -> dict:
    """Per database: each goal with the measured value and whether it is met."""
    out = {}
    for kind, r in results["databases"].items():
        g = []
        for e in r.get("endpoints", []):
            if e["baseline"]:
                continue
            g.append({"goal": f"{e['name']}: throughput >= {GOAL_RATIO}x bare", "value": round(e["ratio_vs_bare"], 3),
                      "met": e["ratio_vs_bare"] >= GOAL_RATIO})
            if e["single_repo"]:
                p99 = e["p99_ms"]
                g.append({"goal": f"{e['name']}: p99 <= {GOAL_P99_MS:.0f} ms",
                          "value": None if p99 is None else round(p99, 1), "met": p99 is not None and p99 <= GOAL_P99_MS})
        if "tree" in r:
            g.append({"goal": "tree walk linear in pages (last page <= 2x first)",
                      "value": round(r["tree"]["last_over_first"], 2), "met": r["tree"]["linear"]})
        if "snapshot" in r:
            ratio = r["snapshot"]["ratio_snapshot_vs_nginx"]
            g.append({"goal": f"snapshot_download >= {GOAL_SNAPSHOT}x nginx", "value": round(ratio, 3),
                      "met": ratio >= GOAL_SNAPSHOT})
        for row in r.get("search", {}).get("terms", []):
            g.append({"goal": f"search {row['term']!r} at {r['search']['repos']:,} repos: p95 <= {GOAL_SEARCH_P95_MS:.0f} ms",
                      "value": round(row["p95_ms"], 1), "met": row["p95_ms"] <= GOAL_SEARCH_P95_MS})
        out[kind] = g
    return out


def write_json(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, default=str) + "\n")


def _fmt(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}" if x >= 1 else f"{x:.2f}"


def markdown(results: dict, json_path: Path | None = None) -> str:
    s = results["settings"]
    lines = [
        f"## Metadata paths: {s['repos']:,} repos, {s['connections']} connections",
        "",
        f"`make bench-metadata` (`{results['command'].strip()}`), started {results['started']}, "
        f"{results['wall_s'] / 60:.1f} min in all"
        + (f"; raw figures in `{_shown(json_path)}`" if json_path else "") + ".",
        "A real `aicommons serve` (one process, rate limits and upload scanning off), driven by `wrk` "
        f"(2 threads, {s['connections']} connections, {s['seconds']:g} s per line after a 1 s warm-up) on the same "
        "2-core machine, so client and server share the CPUs. Each line walks a list of paths: 1,000 "
        "different repos for `model_info`, every page of the recursive tree of a "
        f"{s['tree_files']:,}-file repo, {len(s['search_terms'])} search terms, 50 authors, "
        f"`limit={s['list_limit']}` on the listings, "
        f"{s['small_files']:,} files of a repo of small files (0.5–4 KiB) for `resolve`. The ratio is "
        "the line's throughput over the bare `/api/health` on the same server, measured before and after "
        "(their mean). `HEAD` goes through a Python asyncio client instead (wrk 4.1 waits for a HEAD's body "
        "and completes none), compared with `/api/health` measured by that same client; that client costs "
        "far more CPU per request than wrk, so its bare figure is lower. "
        "`alone` is the median of 5 requests sent one at a time before the run: the cost of one call "
        "without queueing. A line whose 64 requests add up to more than 2 s of work runs 3 × that long "
        f"(at most {s['max_seconds']:g} s, without the warm-up): 64 such requests share the GIL and all finish "
        "late together, so a short run would complete none; the server is restarted after it rather than "
        "left to drain. Machine load (1/5/15-min averages) is noted beside each run.",
        "",
    ]
    for kind, r in results["databases"].items():
        seed = r["seed"]
        t = seed["timings_s"]
        svc = seed["service_path"]
        lines += [f"### {kind}", ""]
        lines.append(
            f"Seeding {seed['repos']:,} repos took {t['total_s']:.0f} s: {svc['repos']} repos through the API "
            f"(create_repo + a 3-file commit, {svc['clients']} clients) at {svc['repos_per_s']:.1f} repos/s "
            f"(100,000 that way: ~{100_000 / svc['repos_per_s'] / 60:.0f} min), the rest as bulk clones "
            f"(git symlinks {t.get('clone_git_s', 0):.0f} s, database rows {t.get('clone_db_s', 0):.0f} s). "
            f"Load before: `{r['load_before']}`.")
        lines += ["", "| call | req/s | × bare | p50 ms | p99 ms | alone ms | completed in | errors | load during |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for e in r["endpoints"]:
            lines.append(f"| {e['name']} | {_fmt(e['req_s'])} | {e['ratio_vs_bare']:.2f} | {_fmt(e['p50_ms'])} | "
                         f"{_fmt(e['p99_ms'])} | {_fmt(e.get('alone_ms'))} | {e['requests']:,} in {e['seconds']:.0f} s | "
                         f"{e['errors']} | `{e['load'].rsplit(' ', 2)[0]}` |")
        tr = r["tree"]
        lines += ["", f"Tree walk: {tr['entries']:,} entries in {tr['pages']} pages; each page alone (ms, one client): "
                  + ", ".join(_fmt(x) for x in tr["page_ms"])
                  + f"; last/first {tr['last_over_first']:.1f}×; `list_repo_tree` walk {tr['walk_s']:.2f} s "
                  f"({tr['walk_over_pages_x_first']:.1f}× pages × first page)."]
        sn = r["snapshot"]
        m = sn["median_s"]
        lines += ["", f"`snapshot_download` of {sn['files']:,} files ({sn['bytes'] / 1e6:.1f} MB), {sn['workers']} workers, "
                  f"median of {sn['rounds']}: {m['snapshot_download']:.2f} s vs nginx {m['nginx']:.2f} s "
                  f"(plain httpx client, {sn['workers']} threads) = **{sn['ratio_snapshot_vs_nginx']:.2f}×**; the same plain "
                  f"client against the hub's `resolve` URLs {m['hub_plain']:.2f} s ({sn['ratio_hub_plain_vs_nginx']:.2f}×)."]
        if "search" in r:
            se = r["search"]
            lines += ["", f"Search at {se['repos']:,} repos (through `RepoStore.list`, first page of 20, "
                      f"{se['runs']} runs each; populated in {se['populate_s']:.0f} s): "
                      + ", ".join(f"`{x['term']}` p50 {_fmt(x['p50_ms'])} / p95 {_fmt(x['p95_ms'])} ms" for x in se["terms"]) + "."]
        lines.append("")
    lines += ["### Goals of issue 10", "", "| database | goal | measured | met |", "|---|---|---|---|"]
    for kind, g in results["goals"].items():
        lines += [f"| {kind} | {x['goal']} | {'–' if x['value'] is None else x['value']} | {'yes' if x['met'] else '**no**'} |" for x in g]
    return "\n".join(lines) + "\n"


def _shown(path: Path) -> Path:
    """A results path as the docs name it: relative to the repository when inside it (``--json``
    may point anywhere; the run's docs step used to fail on a path outside it)."""
    path = Path(path).resolve()
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def update_docs(results: dict, json_path: Path) -> None:
    """Replace (or append) the generated section of docs/benchmarks.md."""
    section = f"{START}\n{markdown(results, json_path)}{END}"
    text = DOCS.read_text()
    if START in text and END in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: section, text, flags=re.S)
    else:
        marker = "\n## Inference"
        text = text.replace(marker, f"\n{section}\n{marker}", 1) if marker in text else text + f"\n{section}\n"
    DOCS.write_text(text)


if __name__ == "__main__":  # re-render the docs section from a results file
    import sys

    _path = Path(sys.argv[1]).resolve()
    update_docs(json.loads(_path.read_text()), _path)
