"""Query classes beyond paraphrase: what else an agent types when it looks up its memory.

The paraphrase queries (``corpus.py``) ask for the task in other words. Agents also paste the
error they just hit, or name a tool, a command or an identifier, often with a few words of the
task. ``workload_queries`` generates those from the corpus itself, seeded, labelled by family
like the paraphrases:

- ``error``: an error message that occurs in the family's episodes (on their failing step), as
  an agent pastes it: the line alone, with a short lead-in ("getting", "how to fix"), or with a
  number or a quoted name changed (another port, another count, another field), or both.
- ``identifier``: an identifier or command from the family's steps (a file, an API, a table or
  column, a CLI invocation, a non-generic tool), plus 2 to 4 consecutive content words of one of
  the family's paraphrase templates. Identifiers found in at least two of the family's episodes
  are preferred, so a label is not an exact match on one episode.
- ``mixed``: a paraphrase (as ``corpus.py`` makes them) plus one exact identifier.

Each query keeps its ``key`` (the error text or the identifier as it appears in the query) so
that the benchmark can report how many queries an exact substring search would answer.
Identifiers are extracted by shape (see ``identifiers``), never hand-picked per family.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

from .families import SUBJECTS, Family

__all__ = [
    "ERROR_LEAD_INS",
    "GENERIC_TOOLS",
    "QUERY_CLASSES",
    "WORKLOAD_CLASSES",
    "identifiers",
    "vary_error",
    "workload_queries",
]

QUERY_CLASSES = ("paraphrase", "error", "identifier", "mixed")
WORKLOAD_CLASSES = QUERY_CLASSES[1:]
# tools every family uses: their names say nothing about the task
GENERIC_TOOLS = frozenset(
    {"editor", "python", "pytest", "psql", "pip", "git", "curl", "docker", "go", "cargo", "gh"}
)
ERROR_LEAD_INS = (
    "getting ",
    "how to fix ",
    "seeing ",
    "keep hitting ",
    "why do I get ",
    "fails with ",
    "error: ",
)
_MIXED_JOIN = ("{p} using {i}", "{p} ({i})", "{i}: {p}", "{p}, with {i}", "{p} - {i}")
_STOP = frozenset(
    "a an and the to of in on for with is it be by at as or so our we us they them their each "  # noqa: SIM905
    "every one any can should when whenever if else than then that this those these there all "
    "make let get instead without before after into from out goes who what which needs need "
    "somewhere something someone people thing things once just only also very keep keeps "
    "does doing done have having been being were will would could must same other".split()
)
_CAMEL = re.compile(r"[a-z][A-Z]|[A-Z][a-z]+[A-Z]")
_CAPS = re.compile(r"^[A-Z][A-Z0-9-]{2,}$")
# a run of digits that is a count, a port, a size: not part of a code (E0599, utf-8, 0xe9) and
# not an HTTP status (changing 404 to 417 is another error, not the same one pasted again)
_NUMBER = re.compile(r"(?<![A-Za-z0-9\-\[])\d+(?![\dx])")
_QUOTED = re.compile(r"'([a-z_]+)'")
_OTHER_NAMES = ("id", "name", "user", "total", "items", "status", "token")


def _clean(token: str) -> str:
    return token.strip(",;()'\"`").rstrip(".:") if token not in {".", "..."} else ""


def _is_identifier(token: str) -> bool:
    if "{" in token or sum(c.isalpha() for c in token) < 2:
        return False
    if _CAMEL.search(token) or _CAPS.match(token):
        return True
    if any(c in token for c in "_/=") or re.search(r"\w\.\w", token):
        return True
    parts = token.split("-")
    # hyphenated words are English ("multi-stage") unless long or with a digit (HMAC-SHA256)
    return len(parts) >= 3 or (len(parts) == 2 and any(c.isdigit() for c in token))


def _command(tool: str, words: list[str], clis: frozenset[str]) -> str | None:
    """The leading command of an action ("terraform plan", "go test -race"), if it is one."""
    if not words or (words[0] != tool and words[0] not in clis):
        return None
    taken: list[str] = []
    for word in words[:5]:
        if "{" in word or word[0] in "'\"" or (taken and word in _STOP):
            break
        taken.append(word.rstrip(",;"))
    return " ".join(taken) if len(taken) >= 2 else None


def identifiers(family: Family, tools: frozenset[str]) -> list[str]:
    """Identifiers and commands of a family's steps, in step order, without the subject.

    Kept: a non-generic tool name; the leading command of an action that starts with a tool's
    name (up to 5 words, stopping at the subject, a quote or a stop word); runs of upper-case
    SQL-like words ("CREATE INDEX CONCURRENTLY"); and tokens shaped like identifiers (snake_case,
    camelCase, dotted or slashed names, long or numbered hyphenated names)."""
    clis = tools | {"npx", "xcrun", "http"}
    found: list[str] = []
    for tool, action in family.steps:
        if tool not in GENERIC_TOOLS:
            found.append(tool)
        words = action.split()
        command = _command(tool, words, clis)
        if command:
            found.append(command)
        caps: list[str] = []
        for raw in [*words, ""]:
            token = _clean(raw)
            if token and _CAPS.match(token) and "-" not in token:
                caps.append(token)
                continue
            run = " ".join(caps)
            # a run of SQL-like words, or one long upper-case name; not an acronym ("UTC")
            if (len(caps) >= 2 or len(run) > 3) and not (command and run in command):
                found.append(run)
            caps = []
            if token and _is_identifier(token) and (not command or token not in command):
                found.append(token)
    return list(dict.fromkeys(found))


def _change_number(message: str, rng: random.Random) -> str | None:
    spots = [
        m
        for m in _NUMBER.finditer(message)
        if not (len(m.group()) == 3 and m.group()[0] in "45")  # HTTP status
        and "code " not in message[max(0, m.start() - 5) : m.start()]  # exit code
    ]
    if not spots:
        return None
    m = rng.choice(spots)
    old = int(m.group())
    new = old
    while new == old:
        new = rng.randint(max(1, old // 2), old * 2 + 3)
    return message[: m.start()] + str(new) + message[m.end() :]


def _change_name(message: str, rng: random.Random) -> str | None:
    m = _QUOTED.search(message)
    if not m:
        return None
    name = rng.choice([n for n in _OTHER_NAMES if n != m.group(1)])
    return message[: m.start(1)] + name + message[m.end(1) :]


def vary_error(message: str, rng: random.Random) -> tuple[str, str, str]:
    """(query text, the error text in it, the variation): alone, lead-in, changed, both."""
    variation = rng.choice(("alone", "lead-in", "changed", "lead-in+changed"))
    key = message
    if "changed" in variation:
        changed = _change_number(message, rng) or _change_name(message, rng)
        if changed is None:
            variation = "lead-in"
        else:
            key = changed
    text = key
    if "lead-in" in variation:
        text = rng.choice(ERROR_LEAD_INS) + key
    return text, key, variation


def _task_words(family: Family, ident: str, rng: random.Random) -> str:
    """2 to 4 content words of one of the family's paraphrase templates, in their order."""
    template = rng.choice(family.queries).format(e=rng.choice(SUBJECTS[family.domain]))
    words = list(
        dict.fromkeys(
            w.lower()
            for w in re.findall(r"[A-Za-z][A-Za-z0-9-]*", template)
            if len(w) >= 4 and w.lower() not in _STOP and w.lower() not in ident.lower()
        )
    )
    size = min(len(words), rng.randint(2, 4))
    chosen = sorted(rng.sample(range(len(words)), size))
    return " ".join(words[i] for i in chosen)


def _pick(candidates: Sequence[str], used: set[str], rng: random.Random) -> str:
    fresh = [c for c in candidates if c not in used] or list(candidates)
    choice = rng.choice(fresh)
    used.add(choice)
    return choice


def workload_queries(
    family: Family,
    episode_texts: Sequence[str],
    tools: frozenset[str],
    rng: random.Random,
    paraphrase: Callable[[str, random.Random], str],
    per_class: int = 2,
) -> list[tuple[str, str, str, str]]:
    """The family's workload queries as (class, text, key, variation).

    ``episode_texts`` are the searchable texts of the family's episodes (to find the errors
    that occur and how many episodes share each identifier); ``paraphrase(template, rng)``
    makes a paraphrase the way the paraphrase class does."""
    out: list[tuple[str, str, str, str]] = []
    message = family.error[1]
    if any(message in text for text in episode_texts):
        seen: set[str] = set()
        for _ in range(per_class * 4):
            if len([q for q in out if q[0] == "error"]) == per_class:
                break
            text, key, variation = vary_error(message, rng)
            if text not in seen:
                seen.add(text)
                out.append(("error", text, key, variation))
    candidates = identifiers(family, tools)
    low = [t.lower() for t in episode_texts]
    shared = [c for c in candidates if sum(c.lower() in t for t in low) >= 2]
    pool = shared or [c for c in candidates if any(c.lower() in t for t in low)]
    if not pool:
        return out
    used: set[str] = set()
    for _ in range(per_class):
        ident = _pick(pool, used, rng)
        words = _task_words(family, ident, rng)
        text = f"{ident} {words}" if rng.random() < 0.5 else f"{words} {ident}"
        out.append(("identifier", text, ident, "shared" if ident in shared else "single"))
    used.clear()
    for _ in range(per_class):
        ident = _pick(pool, used, rng)
        phrase = paraphrase(rng.choice(family.queries), rng)
        text = rng.choice(_MIXED_JOIN).format(p=phrase, i=ident)
        out.append(("mixed", text, ident, "shared" if ident in shared else "single"))
    return out
