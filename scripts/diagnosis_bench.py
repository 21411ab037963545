#!/usr/bin/env python3
"""How well `pipeline-responder explain-log` points at the lines that explain a failed build.

    python3 scripts/diagnosis_bench.py --bin target/release/pipeline-responder \\
        [--config FILE] [--no-previous] [--json] [--timeout SECONDS] \\
        fixtures/ci-logs/cidiff-breakages fixtures/ci-logs/ours

A corpus is a folder of cases; a case is a sub-folder with `fail.log` and `groundtruth` (format in
fixtures/ci-logs/SOURCES.md), optionally `pass.log` and `meta.toml` (its `class` is the expected
root-cause class). For every case the script runs

    BIN explain-log CASE/fail.log --json [--previous CASE/pass.log] [--config FILE]

(`--previous` when pass.log exists, unless --no-previous) and compares the excerpt's line numbers
with the groundtruth's `E` (reason) lines. `C` (context) lines are not reasons. Two baselines that
read fail.log alone are scored the same way: `tail-40` (the last 40 lines) and `error|fail-40` (the
first 40 lines containing "error" or "fail", any case).

Per case: hit = the excerpt shows at least one reason line; recall = reason lines shown / reason
lines; lines shown = excerpt entries; severe misclassification = predicted class security_scan or
coverage while the expected class differs (or is unknown: the cidiff logs are ordinary Java build
failures); class correct, where an expected class is known. A call that does not exit 0 with the
expected JSON is an error: it is reported, and scored as showing nothing.

Output: per corpus a Markdown table and the cases where explain-log shows no reason line; then
wall time and mean milliseconds per explain-log call. --json prints every per-case result (and
the same summaries) as JSON instead. Exit status 0 when it ran, 2 on usage errors.

Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

SEVERE_CLASSES = {"security_scan", "coverage"}
TAIL_N = 40
GREP_N = 40
GREP_RE = re.compile(r"error|fail", re.IGNORECASE)
LINE_END_RE = re.compile(r"\r\n|\r|\n")
GROUNDTRUTH_RE = re.compile(r"^([EC])\s+(\d+)\s*(?:-\s*(\d+))?$")
ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")

OURS = "ours explain-log"
TAIL = "tail-40"
GREP = "error|fail-40"
METHODS = (OURS, TAIL, GREP)


def split_lines(text: str) -> list[str]:
    """Lines end at \\n, \\r\\n or a lone \\r; no empty last line after a final line break."""
    lines = LINE_END_RE.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def read_lines(path: Path) -> list[str]:
    return split_lines(path.read_bytes().decode("utf-8", errors="replace"))


def parse_groundtruth(path: Path) -> tuple[str, set[int], list[str]]:
    """(flavour, reason line numbers, problems). Reason lines are the `E` lines."""
    problems: list[str] = []
    raw = split_lines(path.read_bytes().decode("utf-8", errors="replace"))
    flavour = raw[0].strip() if raw else ""
    reasons: set[int] = set()
    for number, line in enumerate(raw[1:], start=2):
        line = line.strip()
        if not line:
            continue
        m = GROUNDTRUTH_RE.match(line)
        if not m:
            problems.append(f"groundtruth line {number} not understood: {line!r}")
            continue
        kind, lo, hi = m.group(1), int(m.group(2)), int(m.group(3) or m.group(2))
        if hi < lo:
            problems.append(f"groundtruth line {number} has an empty range: {line!r}")
            continue
        if kind == "E":
            reasons.update(range(lo, hi + 1))
    return flavour, reasons, problems


def expected_class(case: Path) -> tuple[str | None, list[str]]:
    meta = case / "meta.toml"
    if not meta.is_file():
        return None, []
    try:
        data = tomllib.loads(meta.read_bytes().decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        return None, [f"meta.toml unreadable: {e}"]
    value = data.get("class")
    if value is None:
        return None, []
    if not isinstance(value, str):
        return None, [f"meta.toml class is not a string: {value!r}"]
    return value, []


def find_cases(corpus: Path) -> list[Path]:
    return sorted(
        (p for p in corpus.iterdir() if p.is_dir() and (p / "fail.log").is_file()
         and (p / "groundtruth").is_file()),
        key=lambda p: p.name,
    )


def tail_excerpt(lines: list[str]) -> list[int]:
    return list(range(max(1, len(lines) - TAIL_N + 1), len(lines) + 1))


def grep_excerpt(lines: list[str]) -> list[int]:
    shown: list[int] = []
    for number, text in enumerate(lines, start=1):
        if GREP_RE.search(text):
            shown.append(number)
            if len(shown) == GREP_N:
                break
    return shown


def run_explain(args: argparse.Namespace, case: Path) -> dict:
    """One explain-log call: {"ok", "error", "class", "summary", "excerpt", "ms"}."""
    cmd = [args.bin, "explain-log", str(case / "fail.log"), "--json"]
    if not args.no_previous and (case / "pass.log").is_file():
        cmd += ["--previous", str(case / "pass.log")]
    if args.config:
        cmd += ["--config", args.config]
    result = {"ok": False, "error": None, "class": None, "summary": None, "excerpt": [],
              "ms": None, "command": cmd}
    start = time.perf_counter()
    try:
        # Own process group, so a timeout also ends anything the binary started.
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
    except OSError as e:
        result["ms"] = (time.perf_counter() - start) * 1000
        result["error"] = f"could not run: {e}"
        return result
    try:
        stdout, stderr_bytes = proc.communicate(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        result["ms"] = (time.perf_counter() - start) * 1000
        result["error"] = f"timed out after {args.timeout:g} s"
        return result
    result["ms"] = (time.perf_counter() - start) * 1000
    stderr = stderr_bytes.decode("utf-8", errors="replace").strip()
    if proc.returncode != 0:
        tail = stderr.splitlines()[-3:] if stderr else []
        result["error"] = f"exit status {proc.returncode}" + (
            ": " + " / ".join(tail) if tail else "")
        return result
    try:
        out = json.loads(stdout.decode("utf-8", errors="replace"))
    except json.JSONDecodeError as e:
        result["error"] = f"stdout is not JSON: {e}"
        return result
    if not isinstance(out, dict):
        result["error"] = "JSON output is not an object"
        return result
    problems = []
    cls, summary, excerpt = out.get("class"), out.get("summary"), out.get("excerpt")
    if not isinstance(cls, str):
        problems.append('"class" is not a string')
    if not isinstance(summary, str):
        problems.append('"summary" is not a string')
    entries: list[dict] = []
    if not isinstance(excerpt, list):
        problems.append('"excerpt" is not a list')
    else:
        for i, entry in enumerate(excerpt):
            line = entry.get("line") if isinstance(entry, dict) else None
            text = entry.get("text") if isinstance(entry, dict) else None
            if not isinstance(line, int) or isinstance(line, bool) or not isinstance(text, str):
                problems.append(f'excerpt[{i}] is not {{"line": int, "text": str}}')
                break
            entries.append({"line": line, "text": text})
    if problems:
        result["error"] = "unexpected JSON: " + "; ".join(problems)
        return result
    result.update(ok=True, **{"class": cls, "summary": summary, "excerpt": entries})
    return result


def normalise(text: str) -> str:
    return ANSI_RE.sub("", text).strip()


def score(shown: list[int], reasons: set[int]) -> dict:
    found = set(shown) & reasons
    return {
        "lines_shown": len(shown),
        "hit": bool(found) if reasons else None,
        "recall": len(found) / len(reasons) if reasons else None,
        "reason_lines_shown": len(found),
    }


def run_case(args: argparse.Namespace, case: Path) -> dict:
    lines = read_lines(case / "fail.log")
    flavour, reasons, problems = parse_groundtruth(case / "groundtruth")
    expected, meta_problems = expected_class(case)
    problems += meta_problems
    out_of_log = sorted(n for n in reasons if n > len(lines))
    if out_of_log:
        problems.append(f"{len(out_of_log)} reason line(s) beyond the log's {len(lines)} lines")

    call = run_explain(args, case)
    shown = [e["line"] for e in call["excerpt"]]
    ours = score(shown, reasons)
    predicted = call["class"]
    ours["class"] = predicted
    ours["summary"] = call["summary"]
    ours["severe_misclassified"] = (predicted in SEVERE_CLASSES and predicted != expected)
    ours["class_correct"] = (predicted == expected) if expected is not None else None
    ours["error"] = call["error"]
    ours["ms"] = call["ms"]
    # Line numbers that do not fit fail.log, and entries whose text is not the text of fail.log
    # at that number (ANSI codes and surrounding blanks ignored): a sign of a numbering mismatch,
    # though scrubbing secrets also changes the text.
    ours["out_of_range"] = sum(1 for n in shown if not 1 <= n <= len(lines))
    ours["text_mismatches"] = sum(
        1 for e in call["excerpt"]
        if 1 <= e["line"] <= len(lines) and normalise(e["text"]) != normalise(lines[e["line"] - 1])
    )
    ours["excerpt"] = call["excerpt"]

    return {
        "case": case.name,
        "path": str(case),
        "flavour": flavour,
        "log_lines": len(lines),
        "reason_lines": len(reasons),
        "expected_class": expected,
        "problems": problems,
        "command": call["command"],
        OURS: ours,
        TAIL: score(tail_excerpt(lines), reasons),
        GREP: score(grep_excerpt(lines), reasons),
    }


def summarise(cases: list[dict]) -> dict:
    summary = {}
    scored = [c for c in cases if c["reason_lines"] > 0]
    for method in METHODS:
        rows = [c[method] for c in cases]
        hits = sum(1 for c in scored if c[method]["hit"])
        s = {
            "logs": len(cases),
            "logs_with_reason_lines": len(scored),
            "hits": hits,
            "hit_rate": hits / len(scored) if scored else None,
            "mean_recall": (sum(c[method]["recall"] for c in scored) / len(scored)
                            if scored else None),
            "mean_lines_shown": sum(r["lines_shown"] for r in rows) / len(rows) if rows else None,
        }
        if method == OURS:
            known = [r for r in rows if r["class_correct"] is not None]
            s["severe_misclassified"] = sum(1 for r in rows if r["severe_misclassified"])
            s["class_correct"] = sum(1 for r in known if r["class_correct"])
            s["class_known"] = len(known)
            s["errors"] = sum(1 for r in rows if r["error"])
            times = [r["ms"] for r in rows if r["ms"] is not None]
            s["mean_ms"] = sum(times) / len(times) if times else None
        summary[method] = s
    return summary


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def printable(text: str, limit: int = 160) -> str:
    """One line of log text made safe for a Markdown code span."""
    text = ANSI_RE.sub("", text)
    text = "".join(c if c >= " " or c == "\t" else f"\\x{ord(c):02x}" for c in text)
    text = text.replace("\t", " ").replace("`", "'").strip()
    return text[:limit] + ("…" if len(text) > limit else "")


def print_markdown(corpus: str, cases: list[dict], summary: dict) -> None:
    print(f"## {corpus}\n")
    if not cases:
        print("No cases (sub-folders with fail.log and groundtruth).\n")
        return
    print("| | logs | reason line shown | recall of reason lines | lines per log "
          "| severe misclassified | class correct |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for method in METHODS:
        s = summary[method]
        hit = "n/a" if s["hit_rate"] is None else f"{pct(s['hit_rate'])} ({s['hits']})"
        lines = "n/a" if s["mean_lines_shown"] is None else f"{s['mean_lines_shown']:.1f}"
        if method == OURS:
            severe = str(s["severe_misclassified"])
            correct = f"{s['class_correct']}/{s['class_known']}"
        else:
            severe = correct = "–"
        label = method.replace("|", "\\|")
        print(f"| {label} | {s['logs']} | {hit} | {pct(s['mean_recall'])} | {lines} "
              f"| {severe} | {correct} |")
    print()
    s = summary[OURS]
    notes = []
    if s["logs_with_reason_lines"] < s["logs"]:
        notes.append(f"{s['logs'] - s['logs_with_reason_lines']} log(s) have no `E` line and are "
                     "left out of the reason-line columns.")
    if s["errors"]:
        notes.append(f"{s['errors']} explain-log call(s) failed; they count as showing nothing.")
    mismatches = sum(c[OURS]["text_mismatches"] for c in cases)
    out_of_range = sum(c[OURS]["out_of_range"] for c in cases)
    if out_of_range:
        notes.append(f"{out_of_range} excerpt line number(s) outside fail.log.")
    if mismatches:
        shown = sum(c[OURS]["lines_shown"] for c in cases)
        notes.append(f"{mismatches} of {shown} excerpt entries have text that differs from "
                     "fail.log at that line number (ANSI codes ignored; scrubbing also causes "
                     "this).")
    for c in cases:
        for p in c["problems"]:
            notes.append(f"`{c['case']}`: {p}")
    for n in notes:
        print(f"- {n}")
    if notes:
        print()

    errors = [c for c in cases if c[OURS]["error"]]
    if errors:
        print(f"explain-log errors ({len(errors)}):\n")
        for c in errors:
            print(f"- `{c['case']}`: {printable(c[OURS]['error'], 300)}")
        print()

    misses = [c for c in cases if c["reason_lines"] > 0 and not c[OURS]["hit"]]
    print(f"No reason line shown by explain-log ({len(misses)}):\n")
    for c in misses:
        o = c[OURS]
        if o["error"]:
            first = "error (see above)"
        elif o["excerpt"]:
            e = o["excerpt"][0]
            first = f"line {e['line']}: `{printable(e['text'])}`"
        else:
            first = "empty excerpt"
        predicted = f"`{o['class']}`" if o["class"] is not None else "none"
        expected = f"`{c['expected_class']}`" if c["expected_class"] is not None else "none known"
        print(f"- `{c['case']}`: class {predicted}, expected {expected}; first excerpt {first}")
    print()


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Score `explain-log` excerpts against labelled CI failure logs.")
    parser.add_argument("--bin", required=True, help="the pipeline-responder binary")
    parser.add_argument("--config", help="passed on as --config FILE")
    parser.add_argument("--no-previous", action="store_true",
                        help="do not pass pass.log as --previous")
    parser.add_argument("--json", action="store_true", help="print per-case results as JSON")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds before one explain-log call counts as an error (120)")
    parser.add_argument("corpus", nargs="+", help="corpus folders, e.g. fixtures/ci-logs/ours")
    args = parser.parse_args(argv)
    if not (os.path.isfile(args.bin) and os.access(args.bin, os.X_OK)):
        parser.error(f"--bin {args.bin}: not an executable file")
    if args.config and not os.path.isfile(args.config):
        parser.error(f"--config {args.config}: no such file")
    for corpus in args.corpus:
        if not os.path.isdir(corpus):
            parser.error(f"{corpus}: not a folder")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    results = []
    for corpus in args.corpus:
        cases = [run_case(args, case) for case in find_cases(Path(corpus))]
        results.append((corpus, cases, summarise(cases)))
    wall = time.perf_counter() - start
    times = [c[OURS]["ms"] for _, cases, _ in results for c in cases if c[OURS]["ms"] is not None]
    mean_ms = sum(times) / len(times) if times else None

    if args.json:
        json.dump({
            "bin": args.bin,
            "config": args.config,
            "previous": not args.no_previous,
            "corpora": [{"corpus": corpus, "summary": summary, "cases": cases}
                        for corpus, cases, summary in results],
            "wall_seconds": wall,
            "explain_log_calls": len(times),
            "mean_ms_per_call": mean_ms,
        }, sys.stdout, indent=1, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0

    print("# explain-log diagnosis benchmark\n")
    print(f"`{args.bin}`, config `{args.config or 'default'}`, "
          f"`--previous pass.log` {'off' if args.no_previous else 'when present'}.\n")
    for corpus, cases, summary in results:
        print_markdown(corpus, cases, summary)
    per_call = "n/a" if mean_ms is None else f"{mean_ms:.1f} ms"
    print(f"Wall time {wall:.2f} s; {len(times)} explain-log calls, mean {per_call} per call.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
