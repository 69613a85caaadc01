"""A training split in several files: a source's path may be a glob (`*`, `?`, `[...]`).

    corpus/part-*.{lang}.gz          # FilesSource: part-00.de.gz + part-00.en.gz, part-01...
    {tsv: corpus/*.tsv}              # TsvSource / JsonlSource: every matching file

A path that exists as written is that one file, glob characters or not, so every recipe
that named a file before names the same file now. A glob's files are read in sorted order
(the order of their names, never the file system's), one after the other, so a split's
pairs and a prepared dataset's key do not depend on where the files were made. For
parallel files, each language's files are matched by what the glob's wildcards matched:
part-03.de.gz answers part-03.en.gz, and a file with no partner is a UserError naming it.
"""

from __future__ import annotations

import glob
import re
from pathlib import Path

from nmt.errors import UserError


def expand_paths(pattern: str, key: str) -> list[Path]:
    """The files `pattern` names: itself if it exists or has no wildcard (a missing file
    is then reported by its reader), else its glob's matches, sorted; none is a UserError."""
    if Path(pattern).exists() or not glob.has_magic(pattern):
        return [Path(pattern)]
    found = sorted(glob.glob(pattern))
    if not found:
        raise UserError(f"{pattern}: no file matches (named by {key}); check the pattern")
    return [Path(p) for p in found]


def expand_pairs(pattern: str, src_lang: str, tgt_lang: str, key: str) -> list[tuple[Path, Path]]:
    """The (source, target) files of a `{lang}` pattern, each pair matched by its
    wildcards' text, in the sorted order of the source files."""
    src_pattern = pattern.replace("{lang}", src_lang)
    tgt_pattern = pattern.replace("{lang}", tgt_lang)
    if Path(src_pattern).exists() or not glob.has_magic(src_pattern):
        return [(Path(src_pattern), Path(tgt_pattern))]
    sources = _by_wildcards(pattern, src_lang, key)
    targets = _by_wildcards(pattern, tgt_lang, key)
    for mine, theirs, other in ((sources, targets, tgt_lang), (targets, sources, src_lang)):
        for parts, path in mine.items():
            if parts not in theirs:
                raise UserError(
                    f"{path} has no {other} file (named by {key} {pattern}); give each "
                    "file its partner in the other language, or remove it"
                )
    return [(sources[parts], targets[parts]) for parts in sorted(sources, key=sources.get)]


def _by_wildcards(pattern: str, lang: str, key: str) -> dict[tuple[str, ...], Path]:
    """One language's files of `pattern`, by the text each wildcard matched."""
    concrete = pattern.replace("{lang}", lang)
    shape = re.compile(_regex(pattern, lang))
    out: dict[tuple[str, ...], Path] = {}
    for path in expand_paths(concrete, key):
        match = shape.fullmatch(str(path))
        if match is None:  # glob and the regex disagree (e.g. hidden files): skip it
            continue
        out[match.groups()] = path
    return out


def _regex(pattern: str, lang: str) -> str:
    """A regex for `pattern` with `{lang}` as `lang` and each wildcard a group."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("{lang}", i):
            out.append(re.escape(lang))
            i += len("{lang}")
        elif pattern[i] == "*":
            out.append("([^/]*)")
            i += 1
        elif pattern[i] == "?":
            out.append("([^/])")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append(f"([{body}])")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)
