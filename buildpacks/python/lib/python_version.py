"""Which Python an app gets: reads the version the app asks for and picks one that can be had.

Run by bin/runtime with the stack's Python in isolated mode (`python3 -I`), standard library
only. The app's files are hostile: each is opened without following a symlink, must be a
regular file, and is read up to a size limit; nothing in them is executed.

Where the request comes from, first found wins (Heroku's order, then what uv and Poetry read):
  1. runtime.txt              python-3.12.4 (Heroku's deprecated file)
  2. .python-version          3.14 or 3.14.1; blank lines and # comments skipped
  3. pyproject.toml           [project] requires-python, a PEP 440 specifier (uv's source)
  4. pyproject.toml           [tool.poetry.dependencies] python (Poetry's ^ and ~ too)
Without any, the stack's Python (Heroku would pick its default line, DEFAULT_MINOR, which the
message names): an app that asks for nothing downloads nothing.

    python3 -I python_version.py choose APP_DIR STACK_VERSION AVAILABLE_FILE [CACHED...]
prints `stack|cached|install VERSION` on the first line and the reason on the second, or
exits 1 with the error's lines on stderr (the last line says what to do). AVAILABLE_FILE
lists the versions the mirror offers, one a line.
"""

import os
import re
import stat
import sys

# Heroku's default for apps that name no version ("newly created Python apps use the latest
# patch version of Python 3.13", Heroku's Python support reference): named in messages.
DEFAULT_MINOR = "3.13"
# The largest version file read; longer ones are refused, not truncated.
MAX_FILE_BYTES = 64 * 1024

_VERSION = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_CLAUSE = re.compile(r"^\s*(~=|===|==|!=|<=|>=|<|>)\s*([^\s]*)\s*$")


class RequestError(Exception):
    """A request that cannot be used: each arg is a line, the last says what to do."""


def parse_version(text):
    """'3.13.1' -> (3, 13, 1); None for anything but dotted numbers."""
    if not _VERSION.match(text) or len(text) > 64:
        return None
    return tuple(int(part) for part in text.split("."))


def _padded(version, length):
    return tuple(version) + (0,) * (length - len(version))


def _compare(left, right):
    length = max(len(left), len(right))
    a, b = _padded(left, length), _padded(right, length)
    return (a > b) - (a < b)


class Specifier:
    """A PEP 440 specifier set over final releases (what interpreters are): `>=3.10,<3.14`,
    `~=3.12.1`, `==3.13.*`. Pre-, post-, dev-releases, epochs and local versions in a
    specifier are refused, since no interpreter offered here is one."""

    def __init__(self, text):
        self.text = text
        self.clauses = []
        if not text.strip():
            raise ValueError("an empty specifier")
        for clause in text.split(","):
            match = _CLAUSE.match(clause)
            if not match:
                raise ValueError(f"'{clause.strip()}' is not a version specifier")
            operator, version_text = match.groups()
            star = False
            if operator == "===":
                self.clauses.append((operator, version_text, False))
                continue
            if version_text.endswith(".*"):
                if operator not in ("==", "!="):
                    raise ValueError(f"'{clause.strip()}': .* only goes with == and !=")
                version_text, star = version_text[:-2], True
            version = parse_version(version_text)
            if version is None:
                raise ValueError(f"'{version_text}' in '{clause.strip()}' is not a release version")
            if operator == "~=" and len(version) < 2:
                raise ValueError(f"'{clause.strip()}': ~= needs at least two version parts")
            self.clauses.append((operator, version, star))

    def contains(self, version_text):
        version = parse_version(version_text)
        if version is None:
            return False
        return all(self._clause(clause, version, version_text) for clause in self.clauses)

    @staticmethod
    def _clause(clause, version, version_text):
        operator, wanted, star = clause
        if operator == "===":
            return version_text == wanted
        if star:
            prefix = _padded(version, len(wanted))[: len(wanted)]
            same = prefix == tuple(wanted)
            return same if operator == "==" else not same
        order = _compare(version, wanted)
        if operator == "==":
            return order == 0
        if operator == "!=":
            return order != 0
        if operator == "<=":
            return order <= 0
        if operator == ">=":
            return order >= 0
        if operator == "<":
            return order < 0
        if operator == ">":
            return order > 0
        # ~=X.Y.Z: >=X.Y.Z and ==X.Y.*
        prefix = wanted[:-1]
        return order >= 0 and _padded(version, len(prefix))[: len(prefix)] == tuple(prefix)


def read_app_file(app_dir, name):
    """The text of APP/NAME, or None when absent. Symlinks, non-files and big files are
    errors: they are never followed or read whole."""
    path = os.path.join(app_dir, name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as error:
        if os.path.islink(path):
            raise RequestError(f"{name} is a symbolic link; the version file must be a regular file.",
                               f"Replace {name} with a regular file and push again.") from error
        raise RequestError(f"{name} cannot be read ({error.strerror}).",
                           f"Make {name} a regular file and push again.") from error
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise RequestError(f"{name} is not a regular file.", f"Make {name} a regular file and push again.")
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise RequestError(f"{name} is larger than {MAX_FILE_BYTES // 1024} KiB, too large for a version file.",
                           f"Write only a version such as {DEFAULT_MINOR} in {name} and push again.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RequestError(f"{name} is not UTF-8 text.",
                           f"Write only a version such as {DEFAULT_MINOR} in {name} and push again.") from error


def _show(text):
    """Tenant text fit to quote in one build log line."""
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= 60 else text[:57] + "..."


def _exact_or_minor(text, origin, example):
    version = parse_version(text)
    if version is None or len(version) not in (2, 3) or version[0] != 3:
        raise RequestError(f'{origin} says "{_show(text)}", which is not a Python version.',
                           f"Write a version such as {example} in {origin}, or remove it.")
    if len(version) == 2:
        return Specifier(f"=={text}.*")
    return Specifier(f"=={text}")


def read_request(app_dir):
    """(origin, what the app wrote, Specifier) or None when the app names no version."""
    runtime_txt = read_app_file(app_dir, "runtime.txt")
    if runtime_txt is not None:
        text = runtime_txt.strip()
        if not text.startswith("python-"):
            raise RequestError(f'runtime.txt says "{_show(text)}", which is not a Python version.',
                               f"Write python-{DEFAULT_MINOR}.0 in it, or better a .python-version with {DEFAULT_MINOR}.")
        return ("runtime.txt", text, _exact_or_minor(text[len("python-"):], "runtime.txt", f"python-{DEFAULT_MINOR}.0"))

    python_version = read_app_file(app_dir, ".python-version")
    if python_version is not None:
        lines = [line.strip() for line in python_version.splitlines()]
        versions = [line for line in lines if line and not line.startswith("#")]
        if not versions:
            raise RequestError(".python-version has no version in it.",
                               f"Write a version such as {DEFAULT_MINOR} in .python-version, or remove it.")
        if len(versions) > 1:
            raise RequestError(f".python-version names more than one version ({_show(', '.join(versions))}).",
                               "Keep one version in .python-version and push again.")
        return (".python-version", versions[0], _exact_or_minor(versions[0], ".python-version", DEFAULT_MINOR))

    pyproject = read_app_file(app_dir, "pyproject.toml")
    if pyproject is not None:
        import tomllib

        try:
            data = tomllib.loads(pyproject)
        except tomllib.TOMLDecodeError as error:
            raise RequestError(f"pyproject.toml is not valid TOML ({error}).", "Fix pyproject.toml and push again.") from error
        requires = (data.get("project") or {}).get("requires-python") if isinstance(data.get("project"), dict) else None
        if requires is not None:
            if not isinstance(requires, str):
                raise RequestError("pyproject.toml's requires-python is not a string.", "Fix pyproject.toml and push again.")
            try:
                return ("pyproject.toml's requires-python", requires, Specifier(requires))
            except ValueError as error:
                raise RequestError(f'pyproject.toml\'s requires-python "{_show(requires)}" cannot be used: {error}.',
                                   f"Write a PEP 440 specifier such as \">={DEFAULT_MINOR}\" there, or add a .python-version.") from error
        poetry = ((data.get("tool") or {}).get("poetry") or {}).get("dependencies") if isinstance(data.get("tool"), dict) else None
        constraint = poetry.get("python") if isinstance(poetry, dict) else None
        if constraint is not None:
            try:
                return ("pyproject.toml's tool.poetry.dependencies.python", str(constraint), poetry_specifier(str(constraint)))
            except ValueError as error:
                raise RequestError(f'pyproject.toml\'s tool.poetry.dependencies.python "{_show(str(constraint))}" cannot be used: {error}.',
                                   f"Add a .python-version naming the version (such as {DEFAULT_MINOR}) and push again.") from error
    return None


def poetry_specifier(constraint):
    """Poetry's `^3.11`, `~3.11`, `3.11.*`, `>=3.11,<4.0` as a PEP 440 Specifier."""
    clauses = []
    for part in re.split(r",|\s+(?=[<>=!~^])", constraint.strip()):
        part = part.strip()
        if not part:
            continue
        if "||" in part or "|" in part:
            raise ValueError("alternatives (||) are not supported")
        if part[0] in "^~" and part[:2] != "~=":
            version = parse_version(part[1:].strip())
            if version is None:
                raise ValueError(f"'{part}' is not a version constraint")
            if part[0] == "^":
                upper = next((i for i, n in enumerate(version) if n != 0), len(version) - 1)
            else:
                upper = 1 if len(version) > 1 else 0
            bound = list(version[: upper + 1])
            bound[-1] += 1
            clauses += [f">={part[1:].strip()}", "<" + ".".join(map(str, bound))]
        elif part[0].isdigit():
            clauses.append(f"=={part}")
        else:
            clauses.append(part)
    return Specifier(",".join(clauses))


def choose(app_dir, stack_version, available, cached):
    """(kind, version, reason): kind is stack, cached or install."""
    request = read_request(app_dir)
    if request is None:
        # The stack's Python: no download for an app that asks for nothing, and the same
        # Python on every build of it until the app or its stack changes.
        return ("stack", stack_version,
                f"No Python version requested: using Python {stack_version} of the stack."
                f" Name a version in .python-version (Heroku's default is {DEFAULT_MINOR}) to choose it")
    origin, wrote, spec = request
    if spec.contains(stack_version):
        return ("stack", stack_version, f"Using Python {stack_version} of the stack from {origin} ({wrote})")
    choices = sorted({v for v in list(available) + list(cached) if spec.contains(v)}, key=parse_version)
    if choices:
        newest = choices[-1]
        why = f'Resolved {origin} "{wrote}" to {newest} (newest available)'
        return ("cached" if newest in cached else "install", newest, why)
    exact = [v for operator, v, star in spec.clauses if operator == "==" and not star]
    if exact and len(exact[0]) == 3 and exact[0][:2] == parse_version(stack_version)[:2]:
        return ("stack", stack_version,
                f"Warning: {origin} asks for Python {wrote.removeprefix('python-')}, but neither the stack nor the"
                f" mirror has it: building with Python {stack_version}, the stack's {stack_version.rsplit('.', 1)[0]} release."
                f" Ask for {stack_version.rsplit('.', 1)[0]} in {origin} to silence this.")
    offered = sorted({v for v in list(available) + list(cached) + [stack_version]}, key=parse_version)
    lines = [f'{origin} asks for Python "{_show(wrote)}", which cannot be had here.']
    wanted_minor = _requested_minor(spec)
    if wanted_minor:
        same = [v for v in offered if v.startswith(wanted_minor + ".")]
        lines.append(f"Python {wanted_minor} versions available: {', '.join(same) if same else 'none'}.")
    minors = sorted({".".join(v.split(".")[:2]) for v in offered}, key=parse_version)
    lines.append(f"Python versions available: {', '.join(minors)} (the stack's is {stack_version}).")
    lines.append(f"Change {origin} to ask for one of them and push again.")
    raise RequestError(*lines)


def _requested_minor(spec):
    for operator, version, star in spec.clauses:
        if operator in ("==", "~=", ">=") and isinstance(version, tuple) and len(version) >= 2:
            return f"{version[0]}.{version[1]}"
    return None


def main(argv):
    if len(argv) < 4 or argv[0] != "choose":
        print("usage: python_version.py choose APP_DIR STACK_VERSION AVAILABLE_FILE [CACHED...]", file=sys.stderr)
        return 2
    app_dir, stack_version, available_file = argv[1:4]
    with open(available_file, encoding="utf-8") as handle:
        available = [line.strip() for line in handle if parse_version(line.strip())]
    try:
        kind, version, reason = choose(app_dir, stack_version, available, argv[4:])
    except RequestError as error:
        for line in error.args:
            print(line, file=sys.stderr)
        return 1
    print(f"{kind} {version}")
    print(reason)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
