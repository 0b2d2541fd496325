"""Every command shown in README.md and docs/*.md is run by a test.

Each ```sh block must be preceded by a marker line:
  <!-- test: run -->        commands_test.sh runs the block as written, with
                            127.0.0.1:7700 / :7701 replaced by two live agents
  <!-- test: PATH... -->    the block's commands are run by those test files:
                            every command line's program and first word (e.g.
                            "podman build", "sockagentd --check-config") must
                            occur in one of them.
A block without a marker, a missing file, or a command a named test does not
run is an error.

    doc_commands.py ROOT check          -> exit 1 listing the problems
    doc_commands.py ROOT script FILE.md -> prints the file's run blocks as one
                                           bash script (for commands_test.sh)
"""
import glob
import os
import re
import sys

ROOT = sys.argv[1]
MARK = re.compile(r"^<!--\s*test:\s*(.*?)\s*-->\s*$")


def blocks(path):
    """Yields (line number, marker or None, [command lines]) per sh block."""
    lines = open(path, encoding="utf-8").read().splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() in ("```sh", "```bash"):
            start = i + 1
            marker = None
            j = i - 1
            while j >= 0 and not lines[j].strip():
                j -= 1
            if j >= 0 and MARK.match(lines[j].strip()):
                marker = MARK.match(lines[j].strip()).group(1)
            body = []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            yield start, marker, body
        i += 1


def commands(body):
    """The command lines of a block: continuation lines joined, comments and
    blank lines dropped, each `a; b` split."""
    joined, current = [], ""
    for line in body:
        current += line.rstrip("\\").rstrip() + " " if line.rstrip().endswith("\\") else line
        if not line.rstrip().endswith("\\"):
            joined.append(current)
            current = ""
    out = []
    for line in joined:
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if not line:
            continue
        for part in re.split(r";\s+", line):
            part = part.strip().rstrip("&").strip()
            if part and not re.match(r"^(do|done|then|fi|else|\}|\{)$", part):
                out.append(part)
    return out


def key(command):
    """Program and first non-option word: "sockctl run", "podman build"."""
    command = re.sub(r"^(sudo|export|exec|time)\s+", "", command)
    command = re.sub(r"^[A-Z_]+=\S*\s+", "", command)      # VAR=value cmd
    m = re.match(r"^[A-Za-z_]+=\$\((.*)\)$", command)          # X=$(cmd)
    if m:
        command = m.group(1)
    words = command.split()
    if not words or all(re.match(r"^[A-Za-z_]+=", w) for w in words):
        return ""  # assignments only
    program = os.path.basename(words[0])
    if program == "cmake" and len(words) > 1 and words[1].startswith("--"):
        return f"cmake {words[1]}"
    if program in ("bash", "sh") and len(words) > 1:
        return f"{program} {words[1]}"
    rest = [w for w in words[1:] if not w.startswith("-") and not w.startswith('"$')]
    return f"{program} {rest[0]}" if rest and re.match(r"^[a-z][a-z0-9_-]*$", rest[0]) else program


# How tests invoke the two programs: by name, through "$SOCKCTL" /
# "$SOCKAGENTD", or through small shell functions that wrap them.
ALIASES = {
    "sockctl": r"sockctl|SOCKCTL|sc|sa|sb|run",
    "sockagentd": r"sockagentd|SOCKAGENTD",
    "python3": r"python3|SOCKAGENT_PYTHON|PYTHON",
}


def doc_files():
    return [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))


def check():
    problems = []
    total = run = covered = 0
    for path in doc_files():
        rel = os.path.relpath(path, ROOT)
        for line, marker, body in blocks(path):
            total += 1
            where = f"{rel}:{line}"
            if marker is None:
                problems.append(f"{where}: sh block without <!-- test: ... --> marker")
                continue
            if marker == "run":
                run += 1
                continue
            tests = marker.split()
            texts = []
            for t in tests:
                full = os.path.join(ROOT, t)
                if not os.path.isfile(full):
                    problems.append(f"{where}: marker names {t}, which does not exist")
                    continue
                texts.append(open(full, encoding="utf-8", errors="replace").read())
            for command in commands(body):
                k = key(command)
                words = k.split()
                if not words:
                    continue
                # The program as the tests spell it (sockctl is often a shell
                # function or "$SOCKCTL"), then its first word on the same line.
                program = ALIASES.get(words[0], re.escape(words[0]))
                pattern = r"(?<![\w-])(?:" + program + r")(?![\w-])" + "".join(
                    r"[^\n]{0,120}?(?<![\w-])" + re.escape(w) + r"(?![\w-])" for w in words[1:])
                if not any(re.search(pattern, t) for t in texts):
                    problems.append(f"{where}: '{command}' ({k}) is not run by {' '.join(tests)}")
                else:
                    covered += 1
    # The API page lists every RPC of the service.
    proto = open(os.path.join(ROOT, "proto/sockagent/v1/sockagent.proto")).read()
    api = open(os.path.join(ROOT, "docs/api.md")).read()
    table = "\n".join(l for l in api.splitlines() if l.startswith("|"))
    for rpc in re.findall(r"^\s*rpc\s+(\w+)\s*\(", proto, re.M):
        if not re.search(r"`" + rpc + r"(\(|`)", table):
            problems.append(f"docs/api.md: the RPC table lacks {rpc}")
    for p in problems:
        print(p)
    print(f"{total} sh blocks: {run} run by tests/docs/commands_test.sh, "
          f"{covered} commands found in the tests their markers name; "
          f"{len(problems)} problems")
    return 1 if problems else 0


def script(path):
    out = []
    for line, marker, body in blocks(path):
        if marker == "run":
            out.append(f"echo '== {os.path.relpath(path, ROOT)}:{line}' >&2")
            out.extend(body)
    if out:
        print("\n".join(out))
    return 0


if __name__ == "__main__":
    if sys.argv[2] == "check":
        sys.exit(check())
    sys.exit(script(sys.argv[3]))
