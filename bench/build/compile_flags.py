#!/usr/bin/env python3
"""CPU time to compile a few of the tree's sources with the sanitizer, coverage and package builds'
flags as they were and as they are, side by side in one run, with the ratio new / old.

    python3 bench/build/compile_flags.py build              # any configured build with compile_commands.json
    python3 bench/build/compile_flags.py build package      # only the named variants

Each source is compiled with its own include paths and definitions from BUILD's
compile_commands.json; only the debug, optimisation, sanitizer and coverage options change.
User + system seconds of the compiler (not wall time), so other work on the machine matters less.
"""
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile

SOURCES = ["engine/planner.cpp", "plugins/support/src/docker_client.cpp",
           "tests/plugins/driver_aws_test.cpp", "tests/engine/cli_commands_test.cpp"]
VARIANTS = {
    "asan+ubsan": ("-O0 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined",
                   "-O0 -g1 -fsanitize=address,undefined -fno-sanitize=alignment,null,vptr -fno-sanitize-recover=undefined"),
    "coverage": ("-O0 -g --coverage", "-O0 -g1 --coverage"),
    # The package's files are stripped (CPACK_STRIP_FILES), so its debug information was never shipped.
    "package": ("-O2 -g -DNDEBUG", "-O2 -DNDEBUG"),
}
DROPPED = ("-g", "-O", "-fsanitize", "-fno-sanitize", "--coverage", "-o", "-c", "-DNDEBUG")


def base_command(entry):
    args = shlex.split(entry["command"])
    out, skip = [], False
    for a in args[1:]:
        if skip:
            skip = False
            continue
        if a in ("-o", "-c"):
            skip = True
            continue
        if a.startswith(DROPPED):
            continue
        out.append(a)
    return [args[0]] + out


def cpu_seconds(cmd, cwd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, cwd=cwd, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    if len(sys.argv) < 2 or any(v not in VARIANTS for v in sys.argv[2:]):
        sys.exit(__doc__ + "\nvariants: " + ", ".join(VARIANTS))
    build = os.path.abspath(sys.argv[1])
    variants = {name: flags for name, flags in VARIANTS.items() if len(sys.argv) == 2 or name in sys.argv[2:]}
    src = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    try:
        with open(os.path.join(build, "compile_commands.json")) as f:
            entries = {os.path.relpath(e["file"], src): e for e in json.load(f)}
    except FileNotFoundError:
        sys.exit(f"{build}/compile_commands.json not found: configure the build first (cmake -S . -B {sys.argv[1]})")
    totals = {}
    with tempfile.TemporaryDirectory(prefix="flotilla-bench-") as tmp:
        obj = os.path.join(tmp, "out.o")
        for source in SOURCES:
            if source not in entries:
                sys.exit(f"{source} is not in {build}/compile_commands.json (a build with tests is needed)")
            entry = entries[source]
            base = base_command(entry)
            for name, (old, new) in variants.items():
                t_old = cpu_seconds(base + shlex.split(old) + ["-c", entry["file"], "-o", obj], entry["directory"])
                t_new = cpu_seconds(base + shlex.split(new) + ["-c", entry["file"], "-o", obj], entry["directory"])
                totals.setdefault(name, [0.0, 0.0])
                totals[name][0] += t_old
                totals[name][1] += t_new
                print(f"{name:11} {source:40} old {t_old:6.1f} s  new {t_new:6.1f} s  new/old {t_new / t_old:.2f}", flush=True)
    for name, (t_old, t_new) in totals.items():
        print(f"{name:11} {'all ' + str(len(SOURCES)) + ' sources':40} old {t_old:6.1f} s  new {t_new:6.1f} s  new/old {t_new / t_old:.2f}")


if __name__ == "__main__":
    main()
