"""Generates the learner's `labs/` from the reference `solutions/`, and checks that they agree.

Rules (the contract for everyone who writes a lab):

- Every lab is a directory `solutions/<lab>/`; it is mirrored file by file to `labs/<lab>/`.
  Files at the top level of `solutions/` and `labs/` (READMEs, the manifest) are not mirrored.
- In `.py` files, the lines from `# BEGIN SOLUTION [exercise]` to `# END SOLUTION` are the
  learner's job. The block becomes, at the BEGIN line's indentation::

      # TODO(<exercise>): <the block's leading comment lines, else "write this part">
      raise NotImplementedError("Exercise '<exercise>' in labs/<lab>/<file>: <the same text>")

  Without a name, the exercise is named after the enclosing `def`, else the file's stem.
  Blocks cannot nest; every BEGIN needs its END. Each generated `.py` file starts with a
  header saying where it came from. Other files are copied byte for byte.
- `labs/` is the learner's workspace, so `build` never overwrites an edit silently. It keeps
  the SHA-256 of every file it wrote in `labs/.generated.json`; a labs file whose content is
  neither the new output nor the recorded hash (an edit, or a file build never wrote) is a
  conflict: `build` writes nothing and lists the conflicts, unless `force=True` (`--force`).
  The same goes for a file under `labs/<lab>/` that no source generates: removed only when
  it is build's own untouched output.

`load_module(path)` imports a learner's file afresh, so that the notebooks and the lab checks
see the latest edit, not a copy cached in `sys.modules`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from lambdalab.runtime.errors import LambdaLabError

MANIFEST = ".generated.json"
ROOT_ENV = "LAMBDALAB_ROOT"
DEFAULT_INSTRUCTIONS = "write this part"
# Tool droppings that appear next to code (bytecode, Jupyter autosaves): neither source nor lab.
_IGNORED_DIRS = frozenset({"__pycache__", ".ipynb_checkpoints", ".pytest_cache"})
_IGNORED_FILES = frozenset({".DS_Store"})
_IGNORED_SUFFIXES = frozenset({".pyc", ".pyo"})

_MARKER = re.compile(r"^(?P<indent>[ \t]*)#\s*(?P<kind>BEGIN|END) SOLUTION\b(?P<rest>.*)$")
_EXERCISE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_DEF = re.compile(r"^(?P<indent>[ \t]*)(?:async[ \t]+)?def[ \t]+(?P<name>\w+)")
# A shebang or a PEP 263 encoding line must stay on the first two lines, above our header.
_PRELUDE = re.compile(r"^(#!|#.*coding[:=])")


class LabsError(LambdaLabError):
    """solutions/ cannot be turned into labs/ (bad markers), or labs/ holds edits build won't clobber."""

    def __init__(self, summary: str, problems: list[str]):
        self.problems = problems
        super().__init__(summary + "\n" + "\n".join(f"  {p}" for p in problems))


@dataclass(frozen=True)
class Block:
    """One `# BEGIN SOLUTION` .. `# END SOLUTION` span of a solution file (1-based, inclusive lines)."""

    exercise: str
    indent: str
    begin: int
    end: int
    instructions: tuple[str, ...]  # the text of the block's leading comment lines


# --- locating the repo ---------------------------------------------------------------------


def find_root() -> Path:
    """The course repo: `$LAMBDALAB_ROOT`, else the directory holding the `lambdalab` package."""
    if os.environ.get(ROOT_ENV):
        return Path(os.environ[ROOT_ENV]).resolve()
    import lambdalab

    return Path(lambdalab.__file__).resolve().parents[1]


def load_module(path: Path, name: str | None = None) -> ModuleType:
    """The Python file at `path`, imported afresh (each call re-runs it, so the latest edit counts).

    It is registered in `sys.modules` under `name` (default: one derived from the path) while it
    runs, because dataclasses and `typing.get_type_hints` look their module up there. The source
    is compiled each time, never read from `__pycache__`: a cached .pyc is trusted when the file's
    size and mtime (whole seconds) match, so a same-length edit saved within a second would run the
    old code."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    name = name or f"lambdalab_lab_{re.sub(r'[^0-9A-Za-z]', '_', path.resolve().as_posix())}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    code = compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
    sys.modules[name] = module
    exec(code, module.__dict__)
    return module


def lab_names(root: Path) -> list[str]:
    """The labs: the directories of `solutions/`."""
    solutions = root / "solutions"
    if not solutions.is_dir():
        return []
    return sorted(p.name for p in solutions.iterdir() if p.is_dir() and not _ignored_name(p.name))


def exercise_labs(root: Path) -> list[str]:
    """The labs with at least one solution block: the ones a learner works on and a check covers.

    The others hold demo handlers a lesson runs as they are (from solutions/); labs/ has no copy."""
    found = []
    for lab in lab_names(root):
        for path in sorted((root / "solutions" / lab).rglob("*.py")):
            try:
                blocks, problems = parse_blocks(path.read_text(encoding="utf-8"), str(path))
            except UnicodeDecodeError:
                blocks, problems = [], ["not UTF-8"]
            if blocks or problems:  # a lab with broken markers is still a lab: build reports it
                found.append(lab)
                break
    return found


# --- markers -------------------------------------------------------------------------------


def parse_blocks(text: str, where: str) -> tuple[list[Block], list[str]]:
    """The solution blocks of one file's text (none if it has problems), and its marker
    problems as `<where>:<line>: ...`."""
    lines = text.splitlines()
    blocks: list[Block] = []
    problems: list[str] = []
    # (line, indent, exercise) of each BEGIN not yet closed; more than one entry means nesting.
    open_blocks: list[tuple[int, str, str]] = []
    for number, line in enumerate(lines, start=1):
        m = _MARKER.match(line)
        if not m:
            continue
        rest = m["rest"].strip()
        if rest and not _EXERCISE.match(rest):
            problems.append(f"{where}:{number}: exercise name {rest!r} after {m['kind']} SOLUTION "
                            "must be one word of letters, digits, '_' or '-'")
            continue
        if m["kind"] == "BEGIN":
            if open_blocks:
                problems.append(f"{where}:{number}: BEGIN SOLUTION inside the block opened at line "
                                f"{open_blocks[-1][0]} (solution blocks cannot nest)")
            exercise = rest or _default_exercise(lines, number, m["indent"], where)
            open_blocks.append((number, m["indent"], exercise))
            continue
        if not open_blocks:
            problems.append(f"{where}:{number}: END SOLUTION without a BEGIN SOLUTION before it")
            continue
        begin, indent, exercise = open_blocks.pop()
        if rest and rest != exercise:
            problems.append(f"{where}:{number}: END SOLUTION {rest} closes exercise {exercise!r} "
                            f"opened at line {begin}")
        elif m["indent"] != indent:
            problems.append(f"{where}:{number}: END SOLUTION is indented differently from its "
                            f"BEGIN SOLUTION at line {begin}")
        else:
            body = lines[begin:number - 1]
            blocks.append(Block(exercise, indent, begin, number, _instructions(body)))
    for begin, _, _ in open_blocks:
        problems.append(f"{where}:{begin}: BEGIN SOLUTION has no matching END SOLUTION")
    return ([] if problems else blocks), problems


def _default_exercise(lines: list[str], begin: int, indent: str, where: str) -> str:
    """The name of the function enclosing line `begin`, else the file's stem."""
    for line in reversed(lines[:begin - 1]):
        m = _DEF.match(line)
        if m and len(m["indent"]) < len(indent):
            return m["name"]
    return Path(where).stem


def _instructions(body: list[str]) -> tuple[str, ...]:
    """The text of the comment lines a block starts with (blank lines before them skipped)."""
    texts: list[str] = []
    for line in body:
        stripped = line.strip()
        if not stripped and not texts:
            continue
        if not stripped.startswith("#"):
            break
        texts.append(re.sub(r"^#+ ?", "", stripped).rstrip())
    return tuple(t for t in texts if t)


# --- generating one file -------------------------------------------------------------------


def header(source: str, lab: str) -> list[str]:
    """The comment lines that open every generated `.py` file."""
    return [
        f"# Generated from {source} by `lambdalab labs build`. This copy is yours: edit it.",
        f"# Replace each `raise NotImplementedError` with your code, then run `lambdalab check {lab}`.",
        "# `lambdalab labs build` never overwrites your edits (unless you pass --force).",
    ]


def render(text: str, source: str, target: str, lab: str) -> tuple[str, list[str]]:
    """The lab version of solution file `text` (`source`/`target` are repo-relative posix paths),
    and the problems found (bad markers, code that does not compile)."""
    problems = _compile_problems(text, source)
    blocks, marker_problems = parse_blocks(text, source)
    problems += marker_problems
    if problems:
        return "", problems
    lines = text.splitlines()
    out: list[str] = []
    cursor = 0
    for block in blocks:
        out += lines[cursor:block.begin - 1]
        out += _stub(block, target)
        cursor = block.end
    out += lines[cursor:]
    prelude = 0
    while prelude < min(2, len(out)) and _PRELUDE.match(out[prelude]):
        prelude += 1
    out[prelude:prelude] = header(source, lab)
    result = "\n".join(out) + "\n"
    # A block that is not a whole statement (inside an expression, say) would leave broken code.
    problems += [p.replace(target, f"{target} (generated from {source})", 1)
                 for p in _compile_problems(result, target)]
    return result, problems


def _stub(block: Block, target: str) -> list[str]:
    todo = block.instructions or (DEFAULT_INSTRUCTIONS,)
    message = f"Exercise '{block.exercise}' in {target}: {' '.join(todo)}"
    lines = [f"{block.indent}# TODO({block.exercise}): {todo[0]}"]
    lines += [f"{block.indent}# {more}" for more in todo[1:]]
    lines.append(f"{block.indent}raise NotImplementedError({_string_literal(message)})")
    return lines


def _string_literal(text: str) -> str:
    """A double-quoted Python literal of one line of text (repr would switch quote styles)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _compile_problems(text: str, where: str) -> list[str]:
    try:
        compile(text, where, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return [f"{where}:{exc.lineno}: does not compile: {exc.msg}"]
    return []


# --- the whole tree ------------------------------------------------------------------------


@dataclass
class Generated:
    """What `labs/` should hold: content per path relative to `labs/`, plus problems found."""

    files: dict[str, bytes]
    problems: list[str]
    broken: set[str]  # paths whose source has problems: neither expected nor extra

    @property
    def hashes(self) -> dict[str, str]:
        return {rel: _sha256(content) for rel, content in sorted(self.files.items())}


def generate(root: Path) -> Generated:
    """Render every file of every lab in `root/solutions` (in memory; nothing is written)."""
    files: dict[str, bytes] = {}
    problems: list[str] = []
    broken: set[str] = set()
    solutions = root / "solutions"
    for lab in exercise_labs(root):
        for rel in _tree(solutions / lab):
            rel = f"{lab}/{rel}"
            path = solutions / rel
            if path.suffix != ".py":
                files[rel] = path.read_bytes()
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                problems.append(f"solutions/{rel}: not UTF-8 text ({exc.reason} at byte {exc.start})")
                broken.add(rel)
                continue
            out, found = render(text, f"solutions/{rel}", f"labs/{rel}", lab)
            if found:
                problems += found
                broken.add(rel)
            else:
                files[rel] = out.encode("utf-8")
    return Generated(files, problems, broken)


def _tree(base: Path) -> list[str]:
    """Posix paths, relative to `base`, of the files under it (tool droppings skipped)."""
    if not base.is_dir():
        return []
    found = []
    for path in base.rglob("*"):
        rel = path.relative_to(base)
        if path.is_file() and not any(_ignored_name(part) for part in rel.parts) \
                and path.suffix not in _IGNORED_SUFFIXES:
            found.append(rel.as_posix())
    return sorted(found)


def _ignored_name(name: str) -> bool:
    return name in _IGNORED_DIRS or name in _IGNORED_FILES


def _lab_files(labs: Path) -> list[str]:
    """The files in `labs/<dir>/` subtrees (top-level files such as the manifest are not lab files)."""
    if not labs.is_dir():
        return []
    return [f"{d.name}/{rel}" for d in sorted(labs.iterdir())
            if d.is_dir() and not _ignored_name(d.name) for rel in _tree(d)]


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def read_manifest(labs: Path) -> dict[str, str]:
    """path (relative to labs/) -> SHA-256 of what build last wrote there; {} when there is none."""
    path = labs / MANIFEST
    if not path.exists():
        return {}
    try:
        files = json.loads(path.read_text(encoding="utf-8"))["files"]
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
            raise TypeError("entries must map a path to a hash")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LabsError(f"labs/{MANIFEST} is not a build manifest ({exc}); delete it and run "
                        "`lambdalab labs build --force`", []) from exc
    return files


def _manifest_text(hashes: dict[str, str]) -> str:
    doc = {
        "comment": "Written by `lambdalab labs build`: the SHA-256 of each file it generated, "
                   "so that it never overwrites your edits. Do not edit.",
        "files": hashes,
    }
    return json.dumps(doc, indent=1) + "\n"


def build(root: Path, force: bool = False) -> list[Path]:
    """Regenerate `root/labs` from `root/solutions`; return the lab files written or removed.

    Raises LabsError, writing nothing, when solutions/ has marker problems, or (unless `force`)
    when it would overwrite or remove a labs file that differs from what build last wrote.
    """
    generated = generate(root)
    if generated.problems:
        raise LabsError("solutions/ has problems; labs/ was not changed:", generated.problems)
    labs = root / "labs"
    manifest = read_manifest(labs)
    writes: list[str] = []
    removals: list[str] = []
    conflicts: list[str] = []
    for rel, content in generated.files.items():
        path = labs / rel
        if not path.exists():
            writes.append(rel)
            continue
        current = path.read_bytes()
        if current == content:
            continue
        writes.append(rel)
        if manifest.get(rel) != _sha256(current):
            conflicts.append(f"labs/{rel}: differs from what build last wrote (your edits?)")
    for rel in _lab_files(labs):
        if rel in generated.files:
            continue
        removals.append(rel)
        if manifest.get(rel) != _sha256((labs / rel).read_bytes()):
            conflicts.append(f"labs/{rel}: has no source in solutions/ and build did not write it")
    if conflicts and not force:
        raise LabsError("labs/ was not changed: build would overwrite or delete files it did not "
                        "write. Keep your work elsewhere, or pass --force to discard it:", conflicts)
    for rel in writes:
        (labs / rel).parent.mkdir(parents=True, exist_ok=True)
        (labs / rel).write_bytes(generated.files[rel])
    for rel in removals:
        (labs / rel).unlink()
    if removals:
        _prune_dirs(labs)
    manifest_text = _manifest_text(generated.hashes)
    manifest_path = labs / MANIFEST
    if not manifest_path.exists() or manifest_path.read_text(encoding="utf-8") != manifest_text:
        labs.mkdir(parents=True, exist_ok=True)
        manifest_path.write_text(manifest_text, encoding="utf-8")
    return [labs / rel for rel in sorted(writes + removals)]


def _prune_dirs(labs: Path) -> None:
    """Remove directories under labs/ left with no lab file (only tool droppings, or nothing)."""
    dirs = [d for d in labs.rglob("*") if d.is_dir() and not _ignored_name(d.name)]
    for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
        if d.exists() and not any(_ignored_name(part) for part in d.relative_to(labs).parts) \
                and not _tree(d):
            shutil.rmtree(d)


def check(root: Path) -> list[str]:
    """Why `root/labs` is not exactly what build would write; [] when it is."""
    generated = generate(root)
    problems = list(generated.problems)
    labs = root / "labs"
    try:
        manifest = read_manifest(labs)
    except LabsError as exc:
        problems.append(str(exc))
        manifest = {}
    for rel, content in generated.files.items():
        path = labs / rel
        if not path.exists():
            problems.append(f"labs/{rel}: missing (generated from solutions/{rel})")
            continue
        current = path.read_bytes()
        if current == content:
            continue
        if manifest.get(rel) == _sha256(current):
            problems.append(f"labs/{rel}: stale: solutions/{rel} changed since the last build")
        else:
            problems.append(f"labs/{rel}: differs from what solutions/{rel} generates (edited by hand?)")
    for rel in _lab_files(labs):
        if rel not in generated.files and rel not in generated.broken:
            problems.append(f"labs/{rel}: extra: there is no solutions/{rel}")
    # Checked last, and only alone: any problem above already implies a stale manifest.
    if not problems and manifest != generated.hashes:
        problems.append(f"labs/{MANIFEST}: does not record the current output")
    return problems
