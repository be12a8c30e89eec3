"""Deterministic, realistic-looking demo content: people, issues, pages, comments, files.

Every generator takes a ``random.Random`` so that the same seed always yields the same
content; nothing here touches the database.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# Content timestamps are fixed (not "now") so the demo data is the same on every run.
CONTENT_EPOCH = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
CONTENT_SPAN = timedelta(days=540)

FIRST_NAMES = (
    "Aisha", "Ben", "Carmen", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas",
    "Kofi", "Lena", "Mateo", "Nadia", "Oscar", "Priya", "Quinn", "Rosa", "Sven", "Tara",
    "Umar", "Vera", "Wei", "Ximena", "Yusuf", "Zoe", "Amir", "Bianca", "Chen", "Dara",
    "Emil", "Fatima", "Gustav", "Hana", "Ivan", "Julia", "Kenji", "Leila", "Marco", "Nora",
    "Olu", "Paula", "Rafael", "Sara", "Tomas", "Uma", "Viktor", "Wanda", "Yara", "Zain",
)  # fmt: skip
LAST_NAMES = (
    "Okafor", "Lindqvist", "Moreau", "Petrov", "Garcia", "Haddad", "Kim", "Tanaka", "Silva",
    "Becker", "Mensah", "Novak", "Rossi", "Khan", "Nilsen", "Patel", "Murphy", "Alvarez",
    "Berg", "Singh", "Farouk", "Costa", "Zhang", "Ortega", "Demir", "Walsh", "Rahimi",
    "Conti", "Wang", "Byrne", "Larsen", "Hassan", "Eriksson", "Sato", "Volkov", "Schmidt",
    "Mori", "Amini", "Bianchi", "Dubois", "Adeyemi", "Ferreira", "Romero", "Cohen", "Horvat",
    "Iyer", "Kowalski", "Lopez", "Nakamura", "Yilmaz",
)  # fmt: skip


@dataclass(frozen=True)
class Person:
    """Someone who can appear as a user on one or more product instances."""

    account_id: str
    display_name: str
    email: str
    active: bool = True


def make_people(
    rng: random.Random,
    count: int,
    domain: str,
    *,
    first: Person | None = None,
) -> list[Person]:
    """``count`` distinct people with Atlassian-style account ids; ``first`` leads the list."""
    people: list[Person] = [first] if first else []
    pairs = [(f, ln) for f in FIRST_NAMES for ln in LAST_NAMES]
    rng.shuffle(pairs)
    seen_ids = {p.account_id for p in people}
    seen_emails = {p.email for p in people}
    index = 0
    while len(people) < count:
        given, family = pairs[index % len(pairs)]
        round_ = index // len(pairs)
        index += 1
        suffix = str(round_ + 1) if round_ else ""
        email = f"{given.lower()}.{family.lower()}{suffix}@{domain}"
        account_id = f"{rng.getrandbits(96):024x}"
        if email in seen_emails or account_id in seen_ids:
            continue
        seen_emails.add(email)
        seen_ids.add(account_id)
        # About one in fifteen people has left the company (inactive account).
        people.append(Person(account_id, f"{given} {family}", email, rng.random() > 0.067))
    return people


def fixed_person(name: str, email: str, seed: str) -> Person:
    """A well-known person (such as the demo admin) whose account id derives from ``seed``."""
    return Person(hashlib.sha256(seed.encode()).hexdigest()[:24], name, email)


def content_time(rng: random.Random) -> datetime:
    """A creation time within the demo's fixed content window."""
    seconds = rng.randrange(int(CONTENT_SPAN.total_seconds()))
    return CONTENT_EPOCH - CONTENT_SPAN + timedelta(seconds=seconds)


# --- Jira ----------------------------------------------------------------------------

ISSUE_TYPES = ("Bug", "Story", "Task", "Epic")
ISSUE_TYPE_WEIGHTS = (35, 30, 30, 5)
STATUSES = ("To Do", "In Progress", "In Review", "Done")
STATUS_WEIGHTS = (30, 15, 10, 45)

_VERBS = (
    "Fix", "Add", "Improve", "Refactor", "Investigate", "Update", "Remove", "Document",
    "Migrate", "Speed up", "Support", "Validate",
)  # fmt: skip
_OBJECTS = (
    "login timeout", "CSV export", "password reset email", "search results ranking",
    "notification settings page", "billing invoice PDF", "dashboard widgets", "API rate limits",
    "webhook retries", "SSO configuration", "audit log filters", "mobile push notifications",
    "dark mode colours", "onboarding checklist", "file upload progress", "date picker",
    "release pipeline", "database connection pool", "error page copy", "session handling",
    "user avatar cropping", "two-factor setup", "team permissions", "report scheduler",
)  # fmt: skip
_QUALIFIERS = (
    "on Safari", "for large accounts", "in the admin console", "on Android", "after upgrade",
    "for EU customers", "behind the proxy", "in dark mode", "for guest users", "on iOS",
    "under load", "in the public API", "", "", "",
)  # fmt: skip
_SENTENCES = (
    "Customers reported this through the support portal several times this month.",
    "This only happens intermittently, roughly one request in twenty.",
    "The current behaviour is confusing and generates avoidable tickets.",
    "We should align this with the design system before the next release.",
    "Logs show a spike of 5xx responses from the gateway at the same time.",
    "Product agreed to prioritise this for the upcoming sprint.",
    "A workaround exists, but it requires an admin to intervene manually.",
    "Acceptance criteria: behaviour is covered by automated tests and documented.",
    "The regression appeared after the dependency upgrade last week.",
    "See the attached screenshot for the exact error message.",
    "Performance budget: the page must render in under 300 ms at p95.",
    "Coordinate with the support team before rolling out to all customers.",
)  # fmt: skip
_COMMENTS = (
    "I can reproduce this on staging.",
    "Pushed a fix to the feature branch, ready for review.",
    "Could we get a HAR file from the customer?",
    "This is blocked by the infrastructure change, moving to next sprint.",
    "Verified in QA, looks good to me.",
    "Not able to reproduce anymore after the last deploy.",
    "Added more logging so we can track this down next time.",
    "Discussed in stand-up: we will split this into two tickets.",
    "The root cause is a race between the cache refresh and the write.",
    "Thanks! Closing once the release goes out.",
    "Linked the related incident for context.",
    "Updated the description with the acceptance criteria.",
)  # fmt: skip

JIRA_PROJECTS = (
    ("ENG", "Engineering Platform"),
    ("OPS", "Operations"),
    ("WEB", "Website"),
    ("MOB", "Mobile Apps"),
    ("DATA", "Data & Analytics"),
    ("SEC", "Security"),
    ("SUP", "Customer Support"),
    ("MKT", "Marketing Campaigns"),
    ("PAY", "Payments"),
    ("HR", "People Operations"),
)


def issue_summary(rng: random.Random) -> str:
    qualifier = rng.choice(_QUALIFIERS)
    text = f"{rng.choice(_VERBS)} {rng.choice(_OBJECTS)}"
    return f"{text} {qualifier}" if qualifier else text


def issue_description(rng: random.Random, issue_type: str) -> str:
    paragraphs = [" ".join(rng.sample(_SENTENCES, rng.randint(2, 4)))]
    if issue_type == "Bug":
        steps = rng.randint(2, 4)
        paragraphs.append(
            "Steps to reproduce:\n"
            + "\n".join(f"{n}. {rng.choice(_STEP_TEXT)}" for n in range(1, steps + 1))
        )
        paragraphs.append("Expected: the action succeeds.\nActual: an error is shown.")
    return "\n\n".join(paragraphs)


_STEP_TEXT = (
    "Sign in as a regular user",
    "Open the settings page",
    "Click the export button",
    "Switch the language to German",
    "Upload a file larger than 10 MB",
    "Reload the page",
    "Wait for the session to expire",
)


def comment_body(rng: random.Random) -> str:
    return " ".join(rng.sample(_COMMENTS, rng.randint(1, 2)))


# --- Confluence ----------------------------------------------------------------------

CONFLUENCE_SPACES = (
    ("ENG", "Engineering"),
    ("PROD", "Product Management"),
    ("MKT", "Marketing"),
    ("HR", "People & Culture"),
    ("SUP", "Support Knowledge Base"),
    ("DOCS", "Customer Documentation"),
    ("OPS", "Operations Runbooks"),
    ("SALES", "Sales Playbooks"),
)

_PAGE_TOPICS = (
    "Onboarding checklist", "Architecture overview", "Release process", "Incident postmortem",
    "Quarterly roadmap", "Meeting notes", "How to request access", "Runbook: database failover",
    "Brand guidelines", "Interview guide", "Pricing FAQ", "Troubleshooting login issues",
    "Team rituals", "Decision log", "Retrospective", "API style guide", "On-call handbook",
    "Competitive analysis", "Customer journey map", "Expense policy", "Style guide",
    "Product requirements", "Launch plan", "Security review checklist",
)  # fmt: skip


def page_title(rng: random.Random, seen: set[str]) -> str:
    """A page title, unique among ``seen`` (Confluence titles are unique within a space)."""
    topic = rng.choice(_PAGE_TOPICS)
    title = f"{topic} {content_time(rng).date().isoformat()}"
    candidate, n = title, 2
    while candidate in seen:
        candidate, n = f"{title} ({n})", n + 1
    seen.add(candidate)
    return candidate


def page_body(rng: random.Random, title: str) -> str:
    sections = []
    for _ in range(rng.randint(1, 3)):
        heading = rng.choice(("Context", "Goals", "Details", "Next steps", "Open questions"))
        text = " ".join(rng.sample(_SENTENCES, rng.randint(2, 4)))
        sections.append(f"<h2>{heading}</h2><p>{text}</p>")
    return f"<h1>{title}</h1>" + "".join(sections)


# --- Attachments ---------------------------------------------------------------------

_FILE_KINDS = (
    ("screenshot", "png", "image/png", b"\x89PNG\r\n\x1a\n"),
    ("photo", "jpg", "image/jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"),
    ("spec", "pdf", "application/pdf", b"%PDF-1.7\n"),
    ("archive", "zip", "application/zip", b"PK\x03\x04"),
    ("server", "log", "text/plain", b""),
    ("export", "csv", "text/csv", b""),
)


@dataclass(frozen=True)
class FileBlob:
    """One attachment's name, media type and bytes (1 to 20 KiB)."""

    filename: str
    media_type: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def attachment(rng: random.Random, number: int) -> FileBlob:
    stem, ext, media_type, magic = rng.choice(_FILE_KINDS)
    size = rng.randint(1024, 20 * 1024)
    if media_type.startswith("text/"):
        content = _text_file(rng, ext, size)
    else:
        content = magic + rng.randbytes(size - len(magic))
    return FileBlob(f"{stem}-{number}.{ext}", media_type, content)


def _text_file(rng: random.Random, ext: str, size: int) -> bytes:
    lines: list[str] = []
    if ext == "csv":
        lines.append("date,account,plan,amount")
    total = 0
    while total < size:
        when = content_time(rng).isoformat(timespec="seconds")
        if ext == "csv":
            line = f"{when[:10]},{rng.randrange(10**6):06d},{rng.choice(('free', 'pro'))}," + (
                f"{rng.randrange(10**5) / 100:.2f}"
            )
        else:
            level = rng.choice(("INFO", "INFO", "WARN", "ERROR"))
            line = f"{when} {level} [worker-{rng.randrange(8)}] {rng.choice(_COMMENTS)}"
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines).encode()[:size]
