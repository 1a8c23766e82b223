#!/usr/bin/env python3
"""Every relative link in the project's Markdown files resolves.

A link [text](target) whose target is not a URL (no scheme) must name a file
or folder of the checkout, relative to the document; a #fragment, alone or
after a Markdown file, must be the anchor of one of that file's headings, as
GitHub makes them (lower case, punctuation dropped, spaces to hyphens, -N
for repeats). Links inside code fences and inline code are not links.

Usage: check-links.py [ROOT]   (default: the checkout holding this script)
Exit 0 if every link resolves; 1, listing each broken link as
FILE:LINE: target, otherwise.
"""
import os
import re
import subprocess
import sys

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`[^`]*`")


def anchors(path, cache={}):
    if path not in cache:
        seen, out = {}, set()
        in_fence = False
        with open(path, encoding="utf-8") as f:
            for line in f:
                if FENCE.match(line):
                    in_fence = not in_fence
                    continue
                m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
                if in_fence or not m:
                    continue
                text = re.sub(r"`|\*\*|__", "", m.group(1))
                text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
                slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
                n = seen.get(slug, 0)
                seen[slug] = n + 1
                out.add(slug if n == 0 else f"{slug}-{n}")
        cache[path] = out
    return cache[path]


def markdown_files(root):
    listed = subprocess.run(["git", "-C", root, "ls-files", "-co", "--exclude-standard", "*.md"],
                            capture_output=True, text=True)
    if listed.returncode == 0:
        return [os.path.join(root, p) for p in listed.stdout.split() if os.path.exists(os.path.join(root, p))]
    found = []
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if not x.startswith((".", "build"))]
        found += [os.path.join(d, f) for f in files if f.endswith(".md")]
    return found


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                           os.path.join(os.path.dirname(__file__), ".."))
    broken, checked = [], 0
    for doc in sorted(markdown_files(root)):
        in_fence = False
        with open(doc, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if FENCE.match(line):
                    in_fence = not in_fence
                    continue
                if in_fence:
                    continue
                for m in LINK.finditer(INLINE_CODE.sub("", line)):
                    target = m.group(1) or m.group(2)
                    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                        continue  # http:, https:, mailto: ...
                    checked += 1
                    path, _, frag = target.partition("#")
                    dest = os.path.normpath(os.path.join(os.path.dirname(doc), path)) if path else doc
                    where = f"{os.path.relpath(doc, root)}:{lineno}: {target}"
                    if not os.path.exists(dest):
                        broken.append(f"{where} (no such file)")
                    elif frag and dest.endswith(".md") and frag.lower() not in anchors(dest):
                        broken.append(f"{where} (no heading with that anchor)")
    for b in broken:
        print(b, file=sys.stderr)
    print(f"check-links: {checked} relative links, {len(broken)} broken")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
