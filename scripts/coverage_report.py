#!/usr/bin/env python3
"""Line coverage of a --coverage build after the suite ran (scripts/test.sh --coverage).

Summarises the counts in BUILD with gcovr (the sources of the product only: not the tests,
their test plugins or generated files), prints line coverage for everything and for each
path of scripts/coverage-floors.txt, and exits 1 when a path is under its floor. A path whose
floor is lowered there must be named, with the lines that cannot run here and why, in the
README's "Coverage" section; this checks that it is.

    python3 scripts/coverage_report.py BUILD                  # report, and fail under a floor
    python3 scripts/coverage_report.py --report-only BUILD    # after part of the suite: report only
"""
import fnmatch, json, os, re, subprocess, sys

args = sys.argv[1:]
report_only = "--report-only" in args
args = [a for a in args if a != "--report-only"]
if len(args) != 1:
    sys.exit("usage: coverage_report.py [--report-only] BUILD_DIR")
build = args[0]
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.chdir(root)
summary, floors_file, readme = os.path.join(build, "coverage-summary.json"), "scripts/coverage-floors.txt", "README.md"
# Threads update gcov's branch counters without atomics, so a count can come out negative
# ("branch 1 taken -1"), which gcovr 5.2 refuses to parse; such lines are skipped, not guessed.
subprocess.run(["gcovr", "--root", ".", "--object-directory", build, "--filter", "engine/", "--filter", "plugins/",
                "--filter", "sdk/", "--filter", "services/", "--gcov-ignore-parse-errors", "--exclude-unreachable-branches",
                "--json-summary", summary], check=True, stdout=subprocess.DEVNULL)

import fnmatch, json, re, sys

files = {f["filename"]: f for f in json.load(open(summary))["files"]}

# Each line: a path (a file, or a directory ending in /, where * matches one name), the
# coverage it must have, and optionally the lower floor it has instead while README.md's
# Coverage section explains which lines cannot run here and why.
rules = []
for line in open(floors_file):
    words = line.split("#", 1)[0].split()
    if words:
        rules.append((words[0], float(words[1]), float(words[2]) if len(words) > 2 else None))

text = open(readme).read()
m = re.search(r"^## Coverage\n(.*?)(?=^## |\Z)", text, re.S | re.M)
section = m.group(1) if m else ""

def expand(pattern):
    if "*" not in pattern:
        return [pattern]
    depth = pattern.rstrip("/").count("/") + 1
    return sorted({"/".join(name.split("/")[:depth]) + "/" for name in files
                   if name.count("/") >= depth and fnmatch.fnmatch("/".join(name.split("/")[:depth]) + "/", pattern)})

def lines(path):
    names = [n for n in files if (n.startswith(path) if path == "" or path.endswith("/") else n == path)]
    return sum(files[n]["line_covered"] for n in names), sum(files[n]["line_total"] for n in names)

# A rule for a path itself wins over a pattern that also names it.
chosen = {}
for pattern, required, lowered in rules:
    for path in expand(pattern):
        if path not in chosen or "*" not in pattern:
            chosen[path] = (required, lowered)

width = max([len(p) for p in chosen] + [20])
hit, total = lines("")
print(f"\n{'line coverage':<{width}}  {'lines':>11}  {'%':>6}  required")
print(f"{'everything measured':<{width}}  {hit:>5}/{total:<5}  {100.0 * hit / max(total, 1):6.1f}")
failed = []
for path in sorted(chosen):
    required, lowered = chosen[path]
    hit, total = lines(path)
    if total == 0:
        failed.append(f"{path}: no coverage data; was it built and were its tests run?")
        continue
    pct = 100.0 * hit / total
    floor = required if lowered is None else lowered
    note = "" if lowered is None else f" (lowered to {lowered:g}, see README.md#coverage)"
    print(f"{path:<{width}}  {hit:>5}/{total:<5}  {pct:6.1f}  {required:g}{note}")
    if pct < floor:
        failed.append(f"{path}: {pct:.1f}% of lines, under {floor:g}% ({floors_file})")
    if lowered is not None and f"`{path}`" not in section:
        failed.append(f"{path}: {floors_file} lowers its floor to {lowered:g}%, but the Coverage section of README.md "
                      "does not name it (in backquotes) with the lines that cannot run here and why")
if failed and report_only:
    print("\nfloors not checked: only part of the suite ran")
elif failed:
    print("\ncoverage check failed:\n  " + "\n  ".join(failed))
    print(f"The lines not run: gcovr --root . --object-directory {build} --html-details coverage.html; add tests for them, "
          "or explain in README.md why they cannot run here.")
    sys.exit(1)
