"""The repository's Markdown stands alone: every relative link resolves to a
file or folder inside the repository (none reaches outside it), every path the
README's Layout table names exists, and no table is split by a blank line
(the rows after it would render as text).

    check_docs.py REPO
"""
import os
import re
import sys

repo = os.path.realpath(sys.argv[1])
docs = ["README.md", "CHANGELOG.md"] + [os.path.join("docs", f) for f in sorted(os.listdir(os.path.join(repo, "docs"))) if f.endswith(".md")]
problems = []
link = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
for doc in docs:
    text = open(os.path.join(repo, doc), encoding="utf-8").read()
    in_code = False
    lines = text.split("\n")
    for n, line in enumerate(lines, 1):
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        for target in link.findall(line):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            path = target.split("#", 1)[0]
            full = os.path.realpath(os.path.join(repo, os.path.dirname(doc), path))
            if not (full == repo or full.startswith(repo + os.sep)):
                problems.append(f"{doc}:{n}: link {target} leaves the repository")
            elif not os.path.exists(full):
                problems.append(f"{doc}:{n}: link {target} names nothing")
        # A table row right after a blank line that follows another table row.
        if line.startswith("|") and n >= 3 and lines[n - 2] == "" and lines[n - 3].startswith("|"):
            problems.append(f"{doc}:{n}: a blank line splits a table")

readme = open(os.path.join(repo, "README.md"), encoding="utf-8").read()
layout = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
rows = 0
for m in re.finditer(r"^\| `([^`]+)` \|", layout, re.M):
    rows += 1
    path = m.group(1)
    if not os.path.exists(os.path.join(repo, path)):
        problems.append(f"README.md Layout: {path} does not exist")
for p in problems:
    print("FAIL", p)
print(f"docs: {len(docs)} files, {rows} layout paths, {len(problems)} problems")
sys.exit(1 if problems or rows == 0 else 0)
