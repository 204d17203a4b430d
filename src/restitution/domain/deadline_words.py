"""What each deadline asks of the party who holds it, and what happens when it passes, in
words: the case page (web.cases) and the reminder e-mail (services.emails) say the same."""

from __future__ import annotations

# What the party who holds the deadline must do, and what happens when it passes.
DEADLINE_WORDS: dict[str, tuple[str, str]] = {
    "D1": ("answer the buyer's request", "the buyer's request is accepted automatically"),
    "D2": ("reach an agreement", "the case goes to the platform automatically"),
    "D3": ("ship the return", "the case closes without a refund"),
    "D4": ("receive the return", "the case goes to the platform"),
    "D5": ("inspect the returned item", "the inspection passes and the refund is issued"),
    "D6": ("ship the replacement", "it becomes a full refund"),
    "D7": ("decide the case", "it is reported as late; nothing happens automatically"),
}
# A deadline whose words depend on its action: D3 runs against the seller while the buyer
# has no return address or label.
DEADLINE_ACTION_WORDS: dict[tuple[str, str], tuple[str, str]] = {
    ("D3", "auto_escalate"): (
        "give the buyer a return address or a prepaid label",
        "the case goes to the platform",
    ),
}
GENERAL_WORDS = ("act", "the case moves on")


def deadline_words(kind: str, action: str, reader: str | None = None) -> tuple[str, str]:
    """(what to do, what happens otherwise) for a deadline of this kind and action; as the
    buyer reads them when `reader` is "buyer" ("answer your request", not "the buyer's")."""
    todo, otherwise = DEADLINE_ACTION_WORDS.get((kind, action)) or DEADLINE_WORDS.get(
        kind, GENERAL_WORDS
    )
    if reader == "buyer":
        return _to_the_buyer(todo), _to_the_buyer(otherwise)
    return todo, otherwise


def _to_the_buyer(words: str) -> str:
    return words.replace("the buyer's", "your").replace("the buyer", "you")
