#!/usr/bin/env bash
# Checks the tree keeps one of each thing: no plugin reaches into another plugin's folder by a
# relative include, and the code that belongs in plugins/support (flotilla_support) is not
# copied elsewhere: base64, the hash, atomic file replacement, the HTTP client, PATH search.
# Prints every offender as FILE:LINE: what and where it belongs, and exits 1 if there is one.
# Fast (a text scan); scripts/test.sh runs it before the build.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 - <<'PY'
import pathlib, re, sys

SOURCES = ("*.cpp", "*.hpp", "*.h", "*.c")
ROOTS = ("engine", "plugins", "services")
# Where each thing lives, and the one sanctioned home (a path prefix) for it.
HOME = "plugins/support/"
RULES = [
    (re.compile(r"\bEVP_(En|De)codeBlock\b|\bBIO_f_base64\b"), "base64", "use support::base64_encode/base64_decode"),
    (re.compile(r"1469598103934665603|14695981039346656037|1099511628211|0x0*cbf29ce484222325|0x0*100000001b3", re.I),
     "an FNV hash", "use support::stable_hash"),
    (re.compile(r"(?<![\w.])(::|std::filesystem::|fs::|std::)?rename(at2?)?\s*\("), "a rename (atomic write)",
     "use support::write_file_atomic"),
    (re.compile(r"\bcurl_easy_init\b|\bcurl_multi_init\b"), "a libcurl client", "use support's HTTP client (http.hpp)"),
    (re.compile(r"getenv\s*\(\s*\"PATH\"\s*\)"), "a PATH search", "use support::find_executable"),
]
# Files that do one of these things for a reason other than the thing support offers.
ALLOWED = {
    # Log rotation moves a full log aside; it writes nothing.
    ("plugins/addon_syslog/src/store_files.cpp", "a rename (atomic write)"),
}

def code_of(line):
    """The line without a // comment (good enough: no rule's pattern appears in a string)."""
    pos = line.find("//")
    return line if pos < 0 else line[:pos]

def plugin_folder(path):
    parts = path.parts
    return parts[1] if len(parts) > 2 and parts[0] == "plugins" else None

problems = []
for root in ROOTS:
    for pattern in SOURCES:
        for path in sorted(pathlib.Path(root).rglob(pattern)):
            rel = path.as_posix()
            in_block_comment = False
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                where = f"{rel}:{number}"
                if plugin_folder(path) and re.match(r'\s*#\s*include\s+"\.\./', line):
                    problems.append(f"{where}: includes another folder's file by a relative path; link that "
                                    "folder's library and include \"<plugin>/<file>.hpp\" (or move the code to plugins/support)")
                text = code_of(line)
                if in_block_comment:
                    if "*/" not in text:
                        continue
                    text = text.split("*/", 1)[1]
                    in_block_comment = False
                if "/*" in text:
                    before, _, after = text.partition("/*")
                    in_block_comment = "*/" not in after
                    text = before + (after.split("*/", 1)[1] if not in_block_comment else "")
                if rel.startswith(HOME):
                    continue
                for regex, what, fix in RULES:
                    if regex.search(text) and (rel, what) not in ALLOWED:
                        problems.append(f"{where}: {what} outside plugins/support; {fix}")

# ctest cuts a test's name at ';', so such a test matches no case and passes without running.
for path in sorted(pathlib.Path("tests").rglob("*.cpp")):
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        m = re.search(r'\b(TEST_CASE|SCENARIO)\s*\(\s*"([^"]*)"', line)
        if m and ";" in m.group(2):
            problems.append(f"{path.as_posix()}:{number}: the test name has a ';', which ctest cuts there, "
                            "so the test never runs; write ',' instead")

if problems:
    print("check-tree: the tree has private copies of what flotilla_support provides, or tests that cannot run:", file=sys.stderr)
    for p in problems:
        print("  " + p, file=sys.stderr)
    sys.exit(1)
PY
