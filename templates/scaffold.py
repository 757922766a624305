#!/usr/bin/env python3
"""`make new FILTER=<name>`: writes filters/<name>/ from templates/filter/ and joins the filter to
the build, the chain module's features, the demo and Istio. `check-readme <name>` checks that the
README's "Write a filter" files are byte for byte the ones `new <name>` writes.

Placeholders: {{name}} (kebab-case, the crate), {{crate}} (snake_case, the module and metric
prefix), {{Type}} (CamelCase, the Rust types).
"""

import json
import os
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "templates" / "filter"
KEBAB = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
# Crate names a filter crate must not shadow: Rust keywords and the sysroot crates.
RESERVED = set("""as async await break const continue crate dyn else enum extern false fn for if
impl in let loop match mod move mut pub ref return self static struct super trait true type unsafe
use where while abstract become box do final macro override priv try typeof unsized virtual yield
std core alloc test proc_macro""".split())


class ScaffoldError(Exception):
    pass


def names(name):
    crate = name.replace("-", "_")
    return {
        "{{name}}": name,
        "{{crate}}": crate,
        "{{Type}}": "".join(part.capitalize() for part in name.split("-")),
    }


def with_free_priorities(text, istio):
    """The template's deploy.json with its WasmPlugin priority and EnvoyFilter priority moved to
    the first multiples of 5 that no other filter uses, so a new filter's order is defined."""
    deploy = json.loads(text)
    others = [json.loads(path.read_text()) for path in sorted(istio.glob("*/deploy.json"))]
    taken = {other["priority"] for other in others if other["phase"] == deploy["phase"]}
    taken_envoy = {other["envoy_filter_priority"] for other in others}
    deploy["priority"] = next(p for p in range(5, 1000, 5) if p not in taken)
    deploy["envoy_filter_priority"] = next(p for p in range(5, 1000, 5) if p not in taken_envoy)
    for key in ("priority", "envoy_filter_priority"):
        text = re.sub(rf'("{key}": )\d+', lambda match, key=key: f"{match.group(1)}{deploy[key]}", text)
    return text


def render(text, name):
    for placeholder, value in names(name).items():
        text = text.replace(placeholder, value)
    return text


def package_names():
    """Every package and dependency name of the workspace: a new crate that took one would clash
    with it in filters/chain or istio/."""
    found = set()
    for directory, subdirectories, files in os.walk(ROOT):
        subdirectories[:] = [sub for sub in subdirectories
                             if sub not in ("target", "templates", "node_modules") and not sub.startswith(".")]
        if "Cargo.toml" in files:
            text = (pathlib.Path(directory) / "Cargo.toml").read_text()
            match = re.search(r'^\[package\]\s*\nname = "([^"]+)"', text, re.M)
            if match:
                found.add(match.group(1))
            section = ""
            for line in text.splitlines():
                if line.startswith("["):
                    section = line
                elif "dependencies" in section:
                    key = re.match(r"^([A-Za-z0-9_-]+)(\.workspace)?\s*=", line)
                    path = re.search(r'path = "([^"]+)"', line)
                    # What an earlier `make new` of this name added: not a clash, done again as is.
                    earlier = path and (pathlib.Path(directory) / path.group(1)).resolve() == ROOT / "filters" / key.group(1) if key else False
                    if key and not earlier:
                        found.add(key.group(1))
    return found


def check_name(name):
    if not KEBAB.match(name):
        raise ScaffoldError(f"{name!r} is not a kebab-case name (lower-case letters and digits, words joined by '-', starting with a letter)")
    if name.replace("-", "_") in RESERVED:
        raise ScaffoldError(f"{name!r} is a Rust keyword or a sysroot crate name")
    if (ROOT / "filters" / name).exists():
        raise ScaffoldError(f"filters/{name} already exists")
    if name in package_names():
        raise ScaffoldError(f"the workspace already has a package or dependency called {name!r}")


def insert_before(path, marker, line):
    """Inserts `line` before the line holding `marker` unless `path` already has it."""
    text = path.read_text()
    if ("\n" + line + "\n") in ("\n" + text):
        return
    lines = text.splitlines(keepends=True)
    at = [index for index, existing in enumerate(lines) if marker in existing]
    if len(at) != 1:
        raise ScaffoldError(f"{path.relative_to(ROOT)}: expected one line containing {marker!r}; add this line by hand: {line}")
    lines.insert(at[0], line + "\n")
    path.write_text("".join(lines))


def insert_after_last(path, pattern, line):
    """Inserts `line` after the last line matching `pattern` unless `path` already has it."""
    text = path.read_text()
    if ("\n" + line + "\n") in ("\n" + text):
        return
    lines = text.splitlines(keepends=True)
    at = [index for index, existing in enumerate(lines) if re.search(pattern, existing)]
    if not at:
        raise ScaffoldError(f"{path.relative_to(ROOT)}: no line matches {pattern!r}; add this line by hand: {line}")
    lines.insert(at[-1] + 1, line + "\n")
    path.write_text("".join(lines))


def insert_before_end_of(path, start, line):
    """Inserts `line` before the `];` that closes the array opened on the line starting `start`."""
    text = path.read_text()
    if ("\n" + line + "\n") in ("\n" + text):
        return
    lines = text.splitlines(keepends=True)
    opened = [index for index, existing in enumerate(lines) if existing.startswith(start)]
    closed = [index for index, existing in enumerate(lines) if existing.rstrip() == "];" and opened and index > opened[0]]
    if len(opened) != 1 or not closed:
        raise ScaffoldError(f"{path.relative_to(ROOT)}: cannot find the end of `{start}`; add this by hand:\n{line}")
    lines.insert(closed[0], line + "\n")
    path.write_text("".join(lines))


def add_to_list(path, key, item):
    """Adds `"item"` to the one-line TOML array `key = [...]` unless it is there."""
    text = path.read_text()
    pattern = re.compile(rf"^({re.escape(key)} = \[)([^\]\n]*)(\])$", re.M)
    match = pattern.search(text)
    if not match:
        raise ScaffoldError(f"{path.relative_to(ROOT)}: no one-line `{key} = [...]`; add \"{item}\" to it by hand")
    items = [part.strip() for part in match.group(2).split(",") if part.strip()]
    if f'"{item}"' in items:
        return
    items.append(f'"{item}"')
    text = text[: match.start()] + match.group(1) + ", ".join(items) + match.group(3) + text[match.end():]
    path.write_text(text)


def new(name):
    check_name(name)
    values = names(name)
    crate, rust_type = values["{{crate}}"], values["{{Type}}"]
    target = ROOT / "filters" / name
    for source in sorted(TEMPLATE.rglob("*")):
        if source.is_file():
            destination = target / source.relative_to(TEMPLATE)
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_text(render(source.read_text(), name))

    # The module builder: a feature and an optional dependency, in `default` so chain.wasm links
    # it, and a line in its `modules!` list.
    chain = ROOT / "filters" / "chain"
    add_to_list(chain / "Cargo.toml", "default", name)
    insert_before(chain / "Cargo.toml", "make new: features above", f'{name} = ["dep:{name}"]')
    insert_before(chain / "Cargo.toml", "make new: dependencies above",
                  f'{name} = {{ path = "../{name}", optional = true }}')
    insert_before(chain / "src" / "lib.rs", "make new: filters above",
                  f'    "{name}" => {crate}::filter::{rust_type}Root,')

    # Istio: the config loader that checks pluginConfig, and the manifests' source.
    istio = ROOT / "istio"
    insert_after_last(istio / "Cargo.toml", r'^[a-z0-9-]+ = \{ path = "\.\./filters/',
                      f'{name} = {{ path = "../filters/{name}", features = ["schema"] }}')
    entry = (f"    FilterKind {{\n"
             f'        name: "{name}",\n'
             f"        load_config: |bytes| load::<{crate}::config::{rust_type}Config>(bytes).map(drop),\n"
             f"        config_schema: || schemars::schema_for!({crate}::config::{rust_type}Config),\n"
             f"        required_phase: None,\n"
             f"    }},")
    insert_before_end_of(istio / "src" / "filters.rs", "pub const FILTERS", entry)
    # The chain's pluginConfig checker links the same filters as chain.wasm.
    insert_before_end_of(istio / "src" / "chain.rs", "pub static FACTORIES",
                         f"    Factory::of::<{crate}::filter::{rust_type}Root>(),")
    deploy = istio / name / "deploy.json"
    if not deploy.exists():
        deploy.parent.mkdir(parents=True, exist_ok=True)
        text = render((ROOT / "templates" / "istio" / "deploy.json").read_text(), name)
        deploy.write_text(with_free_priorities(text, istio))
    # The demo (`make run`): a listener of its own, configured as its scenario file is.
    insert_before(ROOT / "envoy" / "src" / "bin" / "demo.rs", "make new: filters above",
                  f'    "{name}",')
    print(f"filters/{name}: written; it is in filters/chain (feature {name}), the demo and istio/{name}/deploy.json")


def readme_blocks(readme, name):
    """The README's (path, text, whole) code blocks under "Write a filter" that name a file of
    filters/<name>: "`filters/<name>/src/lib.rs`:" before a block means the whole file,
    "`...` (excerpt):" a part of it."""
    section = readme.split("\n## Write a filter\n", 1)
    if len(section) != 2:
        raise ScaffoldError("README.md has no \"## Write a filter\" section")
    text = section[1].split("\n## ", 1)[0]
    label = re.compile(rf"^`(filters/{re.escape(name)}/[^`]+)`( \(excerpt\))?:\n```[a-z]*\n(.*?)^```$", re.M | re.S)
    return [(match.group(1), match.group(3), match.group(2) is None) for match in label.finditer(text)]


def check_readme(name):
    readme = (ROOT / "README.md").read_text()
    blocks = readme_blocks(readme, name)
    if not blocks:
        raise ScaffoldError(f"README.md's \"Write a filter\" shows no file of filters/{name}")
    problems = []
    for path, text, whole in blocks:
        file = ROOT / path
        if not file.is_file():
            problems.append(f"{path}: shown in README.md but `make new` does not write it")
            continue
        actual = file.read_text()
        if (whole and text != actual) or (not whole and text not in actual):
            problems.append(f"{path}: README.md shows other text than `make new FILTER={name}` writes (templates/filter/)")
    for required in ("Cargo.toml", "src/lib.rs", "src/config.rs", "src/filter.rs"):
        if not any(path == f"filters/{name}/{required}" and whole for path, _, whole in blocks):
            problems.append(f"README.md's \"Write a filter\" must show all of filters/{name}/{required}")
    if problems:
        raise ScaffoldError("\n".join(problems))
    print(f"README.md: {len(blocks)} code blocks match filters/{name}/")


def main(argv):
    usage = "usage: scaffold.py new <name> | check-readme <name>"
    if len(argv) != 3 or argv[1] not in ("new", "check-readme"):
        print(usage, file=sys.stderr)
        return 2
    try:
        (new if argv[1] == "new" else check_readme)(argv[2])
    except ScaffoldError as error:
        label = "make new" if argv[1] == "new" else "README.md check"
        print(f"{label}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
