"""The composer's checks before a member's message is queued: banned words and repeated text.

Both run in the inbox page and the two send APIs (``check_before_queue``), never for
campaigns or automations, which call the send pipeline directly. Banned words are the
account's own list (owners and managers keep it, ``composer_settings_update``); a match
refuses the message, or, when the account's policy allows it, asks for a confirmation.
Repeated text compares a hash of the normalised text (``text_fingerprint``, stored on each
member's message by the pipeline) with what the same member sent in the last hour: one
index lookup (``message_sender_fingerprint``).

Matching is linear in the text: words are cut with one non-backtracking pattern, and each
word costs a set lookup per phrase length (at most ``BANNED_WORD_MAX_WORDS``); the list and
each entry are capped in size.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

import structlog
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, transaction
from django.utils import timezone

from crm.errors import ApplicationError
from crm.models import BannedWordsPolicy, CreatorAccount, GatewayScreening
from crm.selectors import manager_membership_get

log = structlog.get_logger(__name__)

BANNED_WORDS_MAX_COUNT = 300
BANNED_WORD_MAX_LENGTH = 50
BANNED_WORD_MAX_WORDS = 4
# The settings form's textarea, capped before it is split (300 entries of 50 and newlines).
BANNED_WORDS_INPUT_MAX_LENGTH = 20_000
# What a check reads of a text; longer texts are refused by the pipeline's own validation.
CHECK_TEXT_MAX_LENGTH = 20_000

_WORD = re.compile(r"\w+")
# Marks that change how a text looks, not what it says: combining marks (emoji variation
# selectors among them), modifiers (skin tones), format characters (zero-width joiners).
_IGNORED_CATEGORIES = frozenset({"Mn", "Me", "Sk", "Cf"})


# --- Banned words ---------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return [word.casefold() for word in _WORD.findall(text)]


def banned_words_clean(words: Iterable[str]) -> list[str]:
    """The list as stored: each entry's words casefolded and single-spaced, duplicates and
    blanks dropped, in order; ApplicationError ``invalid_banned_words`` naming what is wrong."""
    cleaned: list[str] = []
    errors: list[str] = []
    for raw in words:
        entry = " ".join(_words(raw[: BANNED_WORD_MAX_LENGTH * 2]))
        if not entry:
            continue
        if len(raw.strip()) > BANNED_WORD_MAX_LENGTH:
            errors.append(
                f"“{raw.strip()[:20]}…” is longer than {BANNED_WORD_MAX_LENGTH} characters."
            )
        elif entry.count(" ") >= BANNED_WORD_MAX_WORDS:
            errors.append(f"“{entry}” has more than {BANNED_WORD_MAX_WORDS} words.")
        elif entry not in cleaned:
            cleaned.append(entry)
    if len(cleaned) > BANNED_WORDS_MAX_COUNT:
        errors.append(f"At most {BANNED_WORDS_MAX_COUNT} words or phrases.")
    if errors:
        raise ApplicationError(
            "The banned words are not valid.",
            code="invalid_banned_words",
            fields={"banned_words": errors},
        )
    return cleaned


@dataclass(frozen=True)
class BannedMatch:
    entry: str  # the list's entry, as stored
    start: int  # where it stands in the checked text (characters)
    end: int


def banned_words_find(*, text: str, banned_words: Iterable[str]) -> list[BannedMatch]:
    """Every place an entry of the list stands in ``text`` as whole words, in any case, in
    the text's order (overlaps keep the longer, earlier one)."""
    text = text[:CHECK_TEXT_MAX_LENGTH]
    phrases = {tuple(entry.split()) for entry in banned_words} - {()}
    if not phrases:
        return []
    # Longest first, at most BANNED_WORD_MAX_WORDS lengths: each word of the text costs that
    # many set lookups, whatever the list holds.
    lengths = sorted({len(words) for words in phrases}, reverse=True)
    tokens = [(m.group().casefold(), m.start(), m.end()) for m in _WORD.finditer(text)]
    words_only = [token[0] for token in tokens]
    matches: list[BannedMatch] = []
    index = 0
    while index < len(tokens):
        step = 1
        for length in lengths:
            window = tuple(words_only[index : index + length])
            if len(window) == length and window in phrases:
                end = tokens[index + length - 1][2]
                matches.append(BannedMatch(" ".join(window), tokens[index][1], end))
                step = length
                break
        index += step
    return matches


def banned_entries(matches: Iterable[BannedMatch]) -> list[str]:
    """The distinct entries matched, in the order they first appear."""
    return list(dict.fromkeys(match.entry for match in matches))


# --- Repeated text --------------------------------------------------------------------------


def text_normalize(text: str) -> str:
    """What two texts share when a chatter pasted one into many chats: compatibility forms,
    case, spaces, punctuation and emoji variations set aside."""
    text = unicodedata.normalize("NFKC", text[:CHECK_TEXT_MAX_LENGTH]).casefold()
    kept = [
        " " if char.isspace() else char
        for char in text
        if not (
            unicodedata.category(char) in _IGNORED_CATEGORIES
            or unicodedata.category(char).startswith("P")
        )
    ]
    return " ".join("".join(kept).split())


def text_fingerprint(text: str) -> int | None:
    """A signed 64-bit hash of the normalised text (a bigint column); None for a text that
    normalises to nothing (only punctuation or emoji marks), which is never "repeated"."""
    normalized = text_normalize(text)
    if not normalized:
        return None
    digest = hashlib.blake2b(normalized.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def repeated_text_fan_count(*, user_id: int, fan_id: int, fingerprint: int | None) -> int:
    """How many other fans this member sent the same (normalised) text to within the window.
    One query on ``message_sender_fingerprint``; campaign messages carry no fingerprint."""
    if fingerprint is None:
        return 0
    since = timezone.now() - timedelta(minutes=settings.COMPOSER_REPEATED_TEXT_WINDOW_MINUTES)
    with connection.cursor() as cursor:
        cursor.execute(_REPEATED_TEXT_SQL, [user_id, fingerprint, since, fan_id])
        return int(cursor.fetchone()[0])


# Hand-written: it runs on every member's send, and the ORM's distinct count compiled a
# subquery in Python and left PostgreSQL a plan that cost more than the statement. The fan's
# own conversation comes by its unique fan index (a join to conversations made PostgreSQL
# hash the whole table); IS DISTINCT FROM keeps every row when the fan has none yet.
_REPEATED_TEXT_SQL = """
SELECT count(DISTINCT m.conversation_id) FROM crm_message m
WHERE m.sent_by_id = %s AND m.text_fingerprint = %s AND m.queued_at >= %s
  AND m.conversation_id IS DISTINCT FROM (SELECT c.id FROM crm_conversation c WHERE c.fan_id = %s)
"""


# --- The checks together --------------------------------------------------------------------


@dataclass(frozen=True)
class ComposerVerdict:
    """What the composer shows before sending, and what refuses a send."""

    matches: list[BannedMatch]
    policy: str
    repeated_fans: int

    @property
    def banned(self) -> list[str]:
        return banned_entries(self.matches)

    @property
    def can_send_anyway(self) -> bool:
        return self.policy == BannedWordsPolicy.CONFIRM

    @property
    def repeated(self) -> bool:
        return self.repeated_fans > settings.COMPOSER_REPEATED_TEXT_MAX_FANS

    @property
    def window_minutes(self) -> int:
        return int(settings.COMPOSER_REPEATED_TEXT_WINDOW_MINUTES)


def composer_verdict(
    *, account: CreatorAccount, user_id: int, fan_id: int, text: str
) -> ComposerVerdict:
    """Both checks on a text about to be sent (the composer's live check and the send)."""
    return ComposerVerdict(
        matches=banned_words_find(text=text, banned_words=account.banned_words),
        policy=account.banned_words_policy,
        repeated_fans=repeated_text_fan_count(
            user_id=user_id, fan_id=fan_id, fingerprint=text_fingerprint(text)
        ),
    )


def check_before_queue(
    *,
    account: CreatorAccount,
    user_id: int,
    fan_id: int,
    text: str,
    confirm_banned_words: bool = False,
    confirm_repeated_text: bool = False,
) -> None:
    """Refuse a member's message before it is queued: 422 ``banned_words`` (with the words,
    and whether ``confirm_banned_words`` may override them) or 422 ``repeated_text`` (with the
    number of fans). Costs no query for banned words and one for repeated text, which is
    skipped when confirmed."""
    matches = banned_words_find(text=text, banned_words=account.banned_words)
    if matches:
        may_confirm = account.banned_words_policy == BannedWordsPolicy.CONFIRM
        if not (may_confirm and confirm_banned_words):
            words = banned_entries(matches)
            log.info("composer.banned_words", account_id=account.pk, user_id=user_id)
            raise ApplicationError(
                "The message contains banned words: " + ", ".join(words) + ".",
                code="banned_words",
                status_code=422,
                fields={"text": [f"Banned: {', '.join(words)}."]},
                extra={"banned_words": words, "can_send_anyway": may_confirm},
            )
    if confirm_repeated_text:
        return
    fans = repeated_text_fan_count(
        user_id=user_id, fan_id=fan_id, fingerprint=text_fingerprint(text)
    )
    if fans > settings.COMPOSER_REPEATED_TEXT_MAX_FANS:
        window = settings.COMPOSER_REPEATED_TEXT_WINDOW_MINUTES
        log.info("composer.repeated_text", account_id=account.pk, user_id=user_id, fans=fans)
        raise ApplicationError(
            f"You sent this text to {fans} fans in the last {_window_words(window)}; "
            "fans compare notes. Send it anyway?",
            code="repeated_text",
            status_code=422,
            extra={"fans": fans, "window_minutes": window, "can_send_anyway": True},
        )


def highlighted(text: str, verdict: ComposerVerdict) -> list[tuple[str, bool]]:
    """The text cut into pieces, each marked when it is a banned word, for the composer's
    preview (the template escapes each piece)."""
    text = text[:CHECK_TEXT_MAX_LENGTH]
    pieces: list[tuple[str, bool]] = []
    position = 0
    for match in verdict.matches:
        if match.start > position:
            pieces.append((text[position : match.start], False))
        pieces.append((text[match.start : match.end], True))
        position = match.end
    if position < len(text):
        pieces.append((text[position:], False))
    return pieces


def _window_words(minutes: int) -> str:
    return "hour" if minutes == 60 else f"{minutes} minutes"


# --- Settings -------------------------------------------------------------------------------

User = AbstractBaseUser | AnonymousUser


@transaction.atomic
def composer_settings_update(
    *,
    actor: User,
    account_id: int,
    banned_words: Iterable[str] | None = None,
    banned_words_policy: str | None = None,
    gateway_banned_words: str | None = None,
) -> CreatorAccount:
    """Change the account's composer checks (owners and managers); what is None stays."""
    manager_membership_get(user=actor, account_id=account_id, action="change composer checks")
    account = CreatorAccount.objects.select_for_update().get(pk=account_id)
    changed: list[str] = []
    if banned_words is not None:
        account.banned_words = banned_words_clean(banned_words)
        changed.append("banned_words")
    if banned_words_policy is not None:
        if banned_words_policy not in BannedWordsPolicy.values:
            raise ApplicationError(
                "Unknown policy.",
                code="invalid_policy",
                fields={"banned_words_policy": ["refuse or confirm."]},
            )
        account.banned_words_policy = banned_words_policy
        changed.append("banned_words_policy")
    if gateway_banned_words is not None:
        if gateway_banned_words not in GatewayScreening.values:
            raise ApplicationError(
                "Unknown screening.",
                code="invalid_policy",
                fields={"gateway_banned_words": ["'', strict_ban, risky or replace_soften."]},
            )
        account.gateway_banned_words = gateway_banned_words
        changed.append("gateway_banned_words")
    if changed:
        account.save(update_fields=[*changed, "updated_at"])
        log.info("account.composer_checks_changed", account_id=account_id, fields=changed)
    return account
