#!/usr/bin/env python3
"""Writes a `git fast-import` stream of a repository for bench/changelog.sh: a root commit
tagged `bench-start`, then COMMITS commits (default 10,000) on `main`, so that the range
`bench-start..main` holds exactly COMMITS commits. Messages are a deterministic mix of what a
team's history holds: `changelog:` lines (some categories misspelled, some unknown, some
malformed), Conventional Commits (scopes, `!`, BREAKING CHANGE footers), `(#123)` suffixes of
squash merges, `Merge pull request #N from …` merges of two-commit branches, reverts,
Dependabot and Renovate bumps, `[skip changelog]` markers and junk. Each commit changes one of
200 small files. Usage: generate.py COMMITS > stream"""

import random
import sys

COMMITS = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
rng = random.Random(7)
out = sys.stdout.buffer

AREAS = ["api", "cli", "core", "store", "proxy", "engine", "ui", "auth", "billing", "search"]
VERBS = ["add", "remove", "fix", "handle", "support", "rename", "speed up", "simplify", "log", "validate"]
THINGS = ["pagination", "retries", "the login form", "time zones", "empty lists", "large uploads",
          "the health check", "rate limits", "session expiry", "CSV export", "webhooks", "audit events"]
CATEGORIES = ["User-Facing Improvements", "Bug Fixes", "Internal", "Upcoming Features"]
MISSPELT = ["Bug Fxes", "Internl", "User Facing Improvments", "bug fixes", "internal", "Upcoming Feature"]
UNKNOWN = ["Stuff", "Misc", "Security"]
CONVENTIONAL = ["feat", "fix", "perf", "refactor", "docs", "chore", "build", "ci", "style", "test"]
CRATES = ["serde", "tokio", "axum", "rack", "lodash", "requests", "jiff", "clap"]
JUNK = ["wip", "fix stuff", "asdf", "address review comments", "more tests", "oops",
        "Update README.md", "try again", "cleanup", "Merge branch 'main' into feature"]
AUTHORS = [("Ada Lovelace", "ada@example.com"), ("Grace Hopper", "grace@example.com"),
           ("Ken Thompson", "ken@example.com"), ("dependabot[bot]", "bot@example.com"),
           ("Barbara Liskov", "barbara@example.com")]

pr_number = 100
when = 1_700_000_000
mark = 0


def phrase():
    return f"{rng.choice(VERBS)} {rng.choice(THINGS)}"


def next_pr():
    global pr_number
    pr_number += 1
    return pr_number


def suffix():
    return f" (#{next_pr()})" if rng.random() < 0.6 else ""


def message():
    """One commit message, by the mix above."""
    roll = rng.random()
    if roll < 0.30:  # changelog: lines, in the body of a plain subject
        lines = []
        for _ in range(rng.choice([1, 1, 1, 2])):
            kind = rng.random()
            if kind < 0.80:
                category = rng.choice(CATEGORIES)
            elif kind < 0.93:
                category = rng.choice(MISSPELT)
            else:
                category = rng.choice(UNKNOWN)
            if rng.random() < 0.03:
                lines.append(f"changelog: {phrase()}")  # malformed: no category
            elif rng.random() < 0.6:
                lines.append(f"changelog: {category}, {rng.choice(AREAS).title()}, {phrase().capitalize()}")
            else:
                lines.append(f"changelog: {category}, {phrase().capitalize()}")
        subject = f"{phrase().capitalize()}{suffix()}"
        return subject + "\n\nSome words about why.\n\n" + "\n".join(lines) + "\n"
    if roll < 0.62:  # Conventional Commits
        kind = rng.choice(CONVENTIONAL)
        scope = f"({rng.choice(AREAS)})" if rng.random() < 0.6 else ""
        bang = "!" if rng.random() < 0.03 else ""
        body = ""
        if rng.random() < 0.3:
            body = "\n\nA longer explanation of the change,\nover two lines.\n"
        if rng.random() < 0.02:
            body += "\nBREAKING CHANGE: the old form is gone.\n"
        return f"{kind}{scope}{bang}: {phrase()}{suffix()}{body}\n"
    if roll < 0.70:  # dependency updates
        crate = rng.choice(CRATES)
        a, b = rng.randint(1, 9), rng.randint(0, 30)
        form = rng.random()
        if form < 0.5:
            return f"Bump {crate} from {a}.{b}.0 to {a}.{b + 1}.0 (#{next_pr()})\n\nBumps {crate}.\n"
        if form < 0.75:
            return f"chore(deps): update rust crate {crate} to v{a}.{b + 1}\n"
        return f"Update dependency {crate} to v{a + 1}\n"
    if roll < 0.74:  # reverts
        reverted = "".join(rng.choice("0123456789abcdef") for _ in range(40))
        return f'Revert "{rng.choice(CONVENTIONAL)}: {phrase()}"\n\nThis reverts commit {reverted}.\n'
    if roll < 0.80:  # skip markers
        return f"{rng.choice(['docs: ', 'chore: ', ''])}{phrase()} [skip changelog]\n"
    return rng.choice(JUNK) + "\n"  # junk, for a human


def commit(branch, text, parents):
    """Writes one commit changing one file; returns its mark."""
    global mark, when
    mark += 1
    when += rng.randint(60, 3600)
    name, email = rng.choice(AUTHORS)
    data = text.encode()
    content = f"{mark}\n".encode()
    out.write(f"commit refs/heads/{branch}\nmark :{mark}\n".encode())
    out.write(f"author {name} <{email}> {when} +0000\n".encode())
    out.write(f"committer {name} <{email}> {when} +0000\n".encode())
    out.write(f"data {len(data)}\n".encode() + data + b"\n")
    if parents:
        out.write(f"from :{parents[0]}\n".encode())
        for parent in parents[1:]:
            out.write(f"merge :{parent}\n".encode())
    out.write(f"M 644 inline src/file{rng.randrange(200):03}.txt\n".encode())
    out.write(f"data {len(content)}\n".encode() + content + b"\n")
    return mark


root = commit("main", "Initial commit\n", [])
out.write(f"reset refs/tags/bench-start\nfrom :{root}\n\n".encode())
head = root
made = 0
while made < COMMITS:
    if COMMITS - made >= 3 and rng.random() < 0.02:
        # A pull request of two commits, merged with a merge commit: three commits.
        first = commit("pr", message(), [head])
        second = commit("pr", message(), [first])
        number = next_pr()
        head = commit("main", f"Merge pull request #{number} from team/branch-{number}\n\n{phrase()}\n",
                      [head, second])
        made += 3
    else:
        head = commit("main", message(), [head])
        made += 1
out.write(b"done\n")
