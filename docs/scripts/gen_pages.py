"""Pages generated when the site is built (mkdocs-gen-files): tutorials and API reference.

- `tutorials/`: one page per keras.io-style example script in `examples/`. The script's
  docstring gives the title (`Title: ...`), the lead (`Description: ...`) and the introduction;
  every other module-level string is Markdown prose and the code between them is shown as
  code, in the order of the script. Nothing is copied by hand, so the pages follow the scripts.
- `reference/`: one page per public module, with every symbol that `keras_atac_export`
  declares there, rendered from its docstring by mkdocstrings. The exports are read from the
  source (no framework is imported by the build).
- `results/`: the navigation of the reproduction runs in `docs/results/<run>/README.md`, and
  an overview page listing them (unless the folder has a README of its own).
"""

import ast
import pathlib
import textwrap

import mkdocs_gen_files

ROOT = pathlib.Path(__file__).resolve().parents[2]


def tutorial_page(path):
    """(title, Markdown) of a keras.io-style example script."""
    source = path.read_text()
    lines = source.splitlines()
    module = ast.parse(source)
    docstring = ast.get_docstring(module)
    if not docstring or not docstring.startswith("Title:"):
        raise ValueError(f"{path} does not start with a keras.io-style 'Title:' docstring")
    header, _, introduction = docstring.partition("\n\n")
    title = header.splitlines()[0].removeprefix("Title:").strip()
    description = " ".join(header.splitlines()[1:]).removeprefix("Description:").strip()
    relative = path.relative_to(ROOT).as_posix()
    parts = [
        f"# {title}",
        "",
        f"*{description}*" if description else "",
        "",
        f'!!! note "Generated from [`{relative}`]({_source_url(relative)})"',
        f"    Run it with `python {relative}`; `KERAS_BACKEND` picks the backend.",
        "",
        introduction,
    ]
    code_start = module.body[0].end_lineno  # the line after the docstring
    for node in module.body[1:]:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            if isinstance(node.value.value, str):
                parts += _code_block(lines[code_start : node.lineno - 1])
                parts += ["", textwrap.dedent(node.value.value).strip(), ""]
                code_start = node.end_lineno
    parts += _code_block(lines[code_start:])
    return title, "\n".join(parts) + "\n"


def _code_block(lines):
    code = "\n".join(lines).strip("\n")
    return ["", "```python", code, "```", ""] if code.strip() else []


def _source_url(relative):
    return f"https://github.com/keras-atac/keras-atac/blob/main/{relative}"


def exported_paths():
    """Every public path declared with `@keras_atac_export(...)` in the package's source."""
    paths = []
    for source in sorted((ROOT / "keras_atac").rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.ClassDef):
                continue
            for decorator in node.decorator_list:
                if (
                    isinstance(decorator, ast.Call)
                    and getattr(decorator.func, "id", None) == "keras_atac_export"
                ):
                    argument = ast.literal_eval(decorator.args[0])
                    paths += [argument] if isinstance(argument, str) else list(argument)
    return paths


def write_tutorials():
    summary = []
    for path in sorted((ROOT / "examples").glob("*.py")):
        title, page = tutorial_page(path)
        with mkdocs_gen_files.open(f"tutorials/{path.stem}.md", "w") as file:
            file.write(page)
        summary.append(f"* [{title}]({path.stem}.md)\n")
    with mkdocs_gen_files.open("tutorials/SUMMARY.md", "w") as file:
        file.writelines(summary)


def write_reference():
    modules = {}
    for path in exported_paths():
        module, _, _ = path.rpartition(".")
        modules.setdefault(module, []).append(path)
    summary = []
    for module in sorted(modules):
        page = f"{module}.md"
        with mkdocs_gen_files.open(f"reference/{page}", "w") as file:
            file.write(f"# `{module}`\n\n::: {module}\n    options:\n      members: false\n")
            file.write("      show_root_heading: false\n      show_source: false\n\n")
            for path in sorted(modules[module], key=str.lower):
                file.write(f"::: {path}\n\n")
        summary.append(f"* [{module}]({page})\n")
    with mkdocs_gen_files.open("reference/SUMMARY.md", "w") as file:
        file.writelines(summary)


def write_results():
    folder = ROOT / "docs" / "results"
    runs = []
    for readme in sorted(folder.glob("*/README.md")):
        title = readme.read_text().splitlines()[0].lstrip("# ").strip()
        runs.append((title, readme.relative_to(folder).as_posix()))
    if not (folder / "README.md").exists():
        with mkdocs_gen_files.open("results/README.md", "w") as file:
            file.write(
                "# Reproduction results\n\nRuns of the papers' comparisons on the real data, "
                "each with its exact command, the table and plot the command wrote and Keras's "
                "training logs:\n\n"
            )
            file.writelines(f"- [{title}]({path})\n" for title, path in runs)
    with mkdocs_gen_files.open("results/SUMMARY.md", "w") as file:
        file.write("* [Overview](README.md)\n")
        file.writelines(f"* [{title}]({path})\n" for title, path in runs)


write_tutorials()
write_reference()
write_results()
