#!/usr/bin/env python3
"""Keeps the root Cargo.toml's list of build-time crates compiled unoptimised in the dev profile.

`[profile.dev.package."*"]` optimises every dependency, and it takes precedence over
`build-override`, so proc macros, build scripts and what only they use (syn, serde_derive, ...)
were optimised too: a third of a clean `make test` build, for code that runs once per build.
Each such crate gets its own `opt-level = 0` entry, which takes precedence over "*".

    build_only_crates.py write   rewrites the list between its markers
    build_only_crates.py check   fails when the list is out of date (a dependency change)
"""

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "Cargo.toml"
BEGIN = "# build-only crates: begin (make workspace-hack writes this list)\n"
END = "# build-only crates: end\n"
# A build-time crate whose own code runs long in the build: the compiler of cranelift's
# instruction-selection rules, which cranelift-codegen's build script runs.
KEEP_OPTIMISED = {"cranelift-isle"}


def build_only_names():
    host = subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True).stdout
    triple = next(line.split(": ")[1] for line in host.splitlines() if line.startswith("host: "))
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--filter-platform", triple],
            capture_output=True, text=True, check=True, cwd=ROOT,
        ).stdout
    )
    packages = {package["id"]: package for package in metadata["packages"]}
    nodes = {node["id"]: node for node in metadata["resolve"]["nodes"]}

    def is_proc_macro(package_id):
        return any("proc-macro" in target["kind"] for target in packages[package_id]["targets"])

    # What the tests and binaries link: normal and dev edges from the members, not into proc macros
    # (sdk-ext-derive is a member, and only the compiler runs it).
    linked = set()
    stack = [member for member in metadata["workspace_members"] if not is_proc_macro(member)]
    while stack:
        package_id = stack.pop()
        if package_id in linked:
            continue
        linked.add(package_id)
        for dep in nodes[package_id]["deps"]:
            kinds = {kind["kind"] for kind in dep["dep_kinds"]}
            if kinds & {None, "dev"} and not is_proc_macro(dep["pkg"]):
                stack.append(dep["pkg"])
    linked_names = {packages[package_id]["name"] for package_id in linked}
    # A profile override names a package, not a version: a name that is also linked stays optimised.
    return sorted(
        {packages[package_id]["name"] for package_id in nodes if package_id not in linked}
        - linked_names
        - KEEP_OPTIMISED
    )


def block(names):
    return BEGIN + "".join(f"{name} = {{ opt-level = 0 }}\n" for name in names) + END


def main():
    command = sys.argv[1] if len(sys.argv) > 1 else "check"
    text = MANIFEST.read_text()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        sys.exit(f"{MANIFEST}: the build-only crates markers are missing")
    current = text[start : end + len(END)]
    wanted = block(build_only_names())
    if command == "write":
        MANIFEST.write_text(text.replace(current, wanted))
    elif current != wanted:
        sys.exit("Cargo.toml: the dev profile's build-only crates are out of date; run make workspace-hack")


if __name__ == "__main__":
    main()
