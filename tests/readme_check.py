#!/usr/bin/python3
"""readme_check.py - run the README's console blocks as a user would, and check what they print.

usage: readme_check.py <README.md> <source dir> <build dir> [--list] [--keep]
                       [--work DIR --from LINE]   (rerun from a block in a kept directory)

The conventions (documented for README writers in README.md, "Development"):

* Every ```console block is checked, in order, in one bash session whose working directory is a
  fresh scratch directory holding symlinks to the checkout's build/, data/, models/, scripts/, web/
  and docs/ (so `build/amuse ...` and `data/eval/...` work and files a command writes stay out of
  the checkout). A line starting with "$ " is a command (a trailing backslash continues it on the
  next line); the lines after it, up to the next command, are what it prints (stdout and stderr).
* Comparison, line by line, after normalising both sides: a line "..." matches any number of
  lines, and "..." inside a line any text; every number (and so every port, score, time, date),
  every API key (amuse_<id>_<secret>) and every 12-hex-digit key id compares equal to any other;
  runs of spaces compare equal. So the README may show one run's numbers; the words, labels,
  messages and line structure must match.
* A command ending in "&" runs in the background (a server); its expected lines are awaited (up
  to 120 s) in its output instead of compared at once. Background commands get SIGTERM at the end.
* HTML comments on the line before a block change how it is checked (invisible on GitHub):
    <!-- readme-check: skip REASON -->     not run (installs packages, takes too long, needs a
                                            terminal); REASON is required
    <!-- readme-check: no-output REASON --> run, and every command must exit 0, but what they
                                            print is not compared; REASON is required
* Each command has 600 s; the whole check fails at the first mismatch, showing both sides.
"""
import os, re, shutil, signal, subprocess, sys, tempfile, time

MARK = re.compile(r"<!--\s*readme-check:\s*(skip|no-output)\s+(\S.*?)\s*-->")
KEY = re.compile(r"amuse_[0-9a-f]{12}_[A-Za-z0-9_-]+")
HEXID = re.compile(r"\b[0-9a-f]{12}\b")
NUM = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


def blocks(text):
    """(line number, mode, reason, [(command, [expected lines])]) for each console block."""
    out, lines, i, pending = [], text.split("\n"), 0, (None, None)
    while i < len(lines):
        m = MARK.search(lines[i])
        if m:
            pending = (m.group(1), m.group(2))
        elif lines[i].strip() == "```console":
            start, i, body = i + 1, i + 1, []
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            cmds = []
            j = 0
            while j < len(body):
                if body[j].startswith("$ "):
                    cmd = body[j][2:]
                    while cmd.endswith("\\") and j + 1 < len(body):
                        j += 1
                        cmd = cmd + "\n" + body[j]
                    cmds.append((cmd, []))
                elif cmds:
                    cmds[-1][1].append(body[j])
                elif body[j].strip():
                    sys.exit(f"README line {start + j}: output before the first command")
                j += 1
            out.append((start, pending[0] or "compare", pending[1], cmds))
            pending = (None, None)
        elif lines[i].strip() and not lines[i].startswith("<!--"):
            pending = (None, None) if lines[i].startswith("```") else pending
        i += 1
    return out


def norm(line):
    line = KEY.sub("<key>", line)
    line = HEXID.sub("<id>", line)
    line = NUM.sub("0", line)
    return " ".join(line.split())


def same(exp, act):
    """One normalised line: equal, or "..." inside the expected line stands for any text."""
    if "..." not in exp or exp == "...":
        return exp == act
    return re.fullmatch(".*".join(re.escape(p) for p in exp.split("...")), act) is not None


def match(expected, actual):
    """True if the expected lines (with "..." wildcards) match the actual ones."""
    exp = [norm(l) for l in expected]
    act = [norm(l) for l in actual]
    while exp and exp[-1] == "":
        exp.pop()
    while act and act[-1] == "":
        act.pop()
    memo = {}

    def go(i, j):
        if (i, j) in memo:
            return memo[(i, j)]
        if i == len(exp):
            r = j == len(act)
        elif exp[i] == "...":
            r = any(go(i + 1, k) for k in range(j, len(act) + 1))
        else:
            r = j < len(act) and same(exp[i], act[j]) and go(i + 1, j + 1)
        memo[(i, j)] = r
        return r

    return go(0, 0)


def contains_in_order(expected, actual):
    """For background output (still growing): every expected line appears, in order."""
    exp = [norm(l) for l in expected if l.strip() and l.strip() != "..."]
    act = [norm(l) for l in actual]
    k = 0
    for line in act:
        if k < len(exp) and same(exp[k], line):
            k += 1
    return k == len(exp)


def main():
    def opt(name):
        return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else None
    args, skip = [], False
    for a in sys.argv[1:]:
        if skip or a in ("--work", "--from"):
            skip = not skip
            continue
        if not a.startswith("--"):
            args.append(a)
    readme, src, build = args[0], os.path.abspath(args[1]), os.path.abspath(args[2])
    found = blocks(open(readme, encoding="utf-8").read())
    if "--list" in sys.argv:
        for start, mode, reason, cmds in found:
            print(f"line {start}: {mode}{' (' + reason + ')' if reason else ''}: "
                  f"{len(cmds)} commands")
        return 0
    for need, why in (("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
                       "dataset-fashion-mnist"),
                      (os.path.join(src, "data/corpus/english.txt"), "data/make_corpus.sh"),
                      (os.path.join(build, "amuse"), "build the amuse command")):
        if not os.path.exists(need):
            print(f"FAIL prerequisites: {need} is missing ({why})")
            return 1
    # --work DIR --from LINE (for README writers): reuse a kept directory, start at a block.
    first = int(opt("--from") or 0)
    work = opt("--work") or tempfile.mkdtemp(prefix="amuse-readme.")
    for name in ("data", "models", "scripts", "web", "docs"):
        if not os.path.lexists(os.path.join(work, name)):
            os.symlink(os.path.join(src, name), os.path.join(work, name))
    if not os.path.lexists(os.path.join(work, "build")):
        os.symlink(build, os.path.join(work, "build"))
    for name in os.listdir(work):
        if name.startswith((".out.", ".rc.")):
            os.remove(os.path.join(work, name))
    env = dict(os.environ, HOME=work, XDG_DATA_HOME=os.path.join(work, ".local/share"),
               TERM="dumb", AMUSE_ACCESS_LOG="0")
    env.pop("AMUSE_DB", None)
    shell = subprocess.Popen(["bash", "--norc", "--noprofile"], stdin=subprocess.PIPE, cwd=work,
                             env=env, text=True, start_new_session=True)
    background, failed, n = [], 0, 0
    try:
        for start, mode, reason, cmds in found:
            if mode == "skip" or start < first:
                print(f"skip README line {start}: {reason}")
                continue
            for cmd, expected in cmds:
                n += 1
                out, rcf = os.path.join(work, f".out.{n}"), os.path.join(work, f".rc.{n}")
                bg = cmd.rstrip().endswith("&") and not cmd.rstrip().endswith("&&")
                if bg:
                    shell.stdin.write(f"{cmd.rstrip()[:-1]} >{out} 2>&1 & "
                                      f"echo $! >{rcf}.pid; echo 0 >{rcf}\n")
                else:
                    shell.stdin.write(f"{{ {cmd}\n}} >{out} 2>&1 </dev/null; echo $? >{rcf}\n")
                shell.stdin.flush()
                deadline = time.time() + 600
                while not os.path.exists(rcf) or not open(rcf).read().strip():
                    if time.time() > deadline:
                        raise SystemExit(f"README line {start}: timed out after 600 s: $ {cmd}")
                    time.sleep(0.05)
                rc = int(open(rcf).read())
                if bg:
                    background.append(int(open(rcf + ".pid").read()))
                    deadline = time.time() + 120
                    # The background job opens `out` itself, possibly after the shell wrote rcf.
                    while not os.path.exists(out) or not contains_in_order(
                            expected, open(out, errors="replace").read().split("\n")):
                        if time.time() > deadline or shell.poll() is not None:
                            break
                        time.sleep(0.1)
                    time.sleep(0.2)  # let the lines after the awaited ones arrive too
                got = open(out, errors="replace").read().split("\n")
                if bg:
                    ok = contains_in_order(expected, got)
                elif mode == "no-output":
                    ok = rc == 0
                else:
                    ok = rc < 124 and match(expected, got)
                status = "ok  " if ok else "FAIL"
                print(f"{status} README line {start}: $ {cmd.splitlines()[0]}"
                      + ("" if ok else f"\n  exit status {rc}\n  expected:\n    "
                         + "\n    ".join(expected) + "\n  got:\n    " + "\n    ".join(got)))
                sys.stdout.flush()
                if not ok:
                    failed += 1
                    raise SystemExit(1)
    finally:
        for pid in background:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        shell.stdin.close()
        try:
            shell.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(shell.pid, signal.SIGKILL)
        if "--keep" not in sys.argv and not opt("--work"):
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")
    print(f"{n} README commands ran as written, {failed} failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
