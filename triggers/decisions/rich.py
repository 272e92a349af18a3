"""Rich content of a push: an image (one, or one per interest tag), a deep link and up to
three action buttons.

A variant declares them (``image_url``, ``image_by_tag``, ``image_alt``, ``deep_link``,
``buttons``: the types and checks below); the decision chooses what one user gets
(:func:`choose_rich`) and carries it as :class:`RichContent` in ``chosen``, the delivery
row and the outbound message; each channel then renders what its medium can show.

Links and images are tenant input that ends up in HTML, in push payloads and in an app's
URL handler, so they are checked on the way in: images are ``https`` URLs (push services
and mail clients fetch them; a plain-http image is refused by iOS and shown as mixed
content elsewhere); links have a scheme, no control characters (a CR/LF would split a
header or a log line) and none of the schemes that run code or read local data
(``javascript:``, ``vbscript:``, ``data:``, ``file:``). Button titles are plain text,
not templates: they are short labels, the same for every user.

Pure: no IO, no clock.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Final
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

if TYPE_CHECKING:  # models imports this module for the field types
    from triggers.decisions.models import Profile, Variant

MAX_URL_CHARS: Final = 2048
"""Longest image URL or link: what browsers and push services reliably accept."""
MAX_ALT_CHARS: Final = 256
"""Alt text is a short description of the picture, not a second body."""
MAX_BUTTONS: Final = 3
"""Android shows at most three notification actions; iOS shows four in a long press, but
three is what every channel can render."""
MAX_BUTTON_TITLE_CHARS: Final = 40
"""Action labels are cut by the phone after about 20-30 Latin characters; 40 leaves room
for wider scripts without letting a label become a sentence."""
MAX_IMAGE_TAGS: Final = 32
MAX_RICH_BYTES: Final = 2048
"""The JSON of one push's rich content (image URL, alt text, link, buttons) may take at
most 2 KB: FCM data and APNs payloads are limited to 4 KB in all, and the title, body and
campaign data need the other half."""

BUTTON_ID_PATTERN: Final = r"^[A-Za-z0-9_-]{1,32}$"
"""Button ids reach app code (an APNs action identifier, an FCM data value, the feedback
``button``): short, and free of anything that needs escaping."""

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_CONTROL = re.compile(r"[\x00-\x20\x7f-\x9f]")
"""Control characters (C0, DEL, C1) and the space: never in a URL as written."""
_UNSAFE_SCHEMES: Final = frozenset({"javascript", "vbscript", "data", "file"})
"""Schemes that run code in a browser or web view, or read the device's own files."""


def check_image_url(value: str) -> str:
    """``value`` when it is an absolute ``https`` URL with a host and no whitespace or
    control characters; ``ValueError`` otherwise."""
    if _CONTROL.search(value):
        raise ValueError("an image URL may not contain spaces or control characters")
    parts = urlsplit(value)
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise ValueError(f"an image URL must be an absolute https URL, got {value[:64]!r}")
    return value


def check_deep_link(value: str) -> str:
    """``value`` when it is a link with a scheme (``https://...``, ``myapp://offer/42``),
    no whitespace or control characters (CR/LF included) and not a ``javascript:``,
    ``vbscript:``, ``data:`` or ``file:`` link; ``ValueError`` otherwise."""
    if _CONTROL.search(value):
        raise ValueError("a link may not contain spaces, line breaks or control characters")
    match = _SCHEME.match(value)
    if match is None:
        raise ValueError(f"a link needs a scheme (https:, myapp:), got {value[:64]!r}")
    scheme = match.group(1).lower()
    if scheme in _UNSAFE_SCHEMES:
        raise ValueError(f"{scheme}: links are not allowed")
    if scheme in {"http", "https"} and not urlsplit(value).hostname:
        raise ValueError(f"a web link needs a host, got {value[:64]!r}")
    return value


ImageUrl = Annotated[str, StringConstraints(max_length=MAX_URL_CHARS),
                     AfterValidator(check_image_url)]
"""An absolute ``https`` image URL of at most 2,048 characters."""
DeepLink = Annotated[str, StringConstraints(max_length=MAX_URL_CHARS),
                     AfterValidator(check_deep_link)]
"""A web or app-scheme link of at most 2,048 characters (see :func:`check_deep_link`)."""
AltText = Annotated[str, StringConstraints(max_length=MAX_ALT_CHARS,
                                           pattern=r"^[^\x00-\x1f\x7f]*$")]
"""Plain text describing the image, one line."""
ImageTag = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Button(BaseModel):
    """An action button: ``id`` is what the app and the feedback report name, ``title``
    the label (plain text), ``deep_link`` where a tap goes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=BUTTON_ID_PATTERN, max_length=32)
    title: str = Field(min_length=1, max_length=MAX_BUTTON_TITLE_CHARS,
                       pattern=r"^[^\x00-\x1f\x7f]*$")
    deep_link: DeepLink


Buttons = Annotated[tuple[Button, ...], Field(max_length=MAX_BUTTONS)]
"""At most three buttons, ids unique (see :func:`check_rich_fields`)."""
ImageByTag = Annotated[dict[ImageTag, ImageUrl], Field(max_length=MAX_IMAGE_TAGS)]
"""Interest tag → image URL, in the order of preference (see :func:`choose_image`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RichContent:
    """The rich content one push carries, as chosen for its user.

    ``image_alt`` is set whenever ``image_url`` is (the variant's, else the push's
    title). ``image_tag`` names the interest tag the image was chosen for (``None``: the
    variant's ``image_url``)."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    image_url: str | None = None
    image_alt: str | None = None
    image_tag: str | None = None
    deep_link: str | None = None
    buttons: tuple[Button, ...] = ()

    def button_ids(self) -> tuple[str, ...]:
        return tuple(b.id for b in self.buttons)

    def web_link(self) -> str | None:
        """The first ``http(s)`` link of the deep link, then the buttons': the one an SMS
        can carry (text-message apps make only web addresses tappable)."""
        for link in (self.deep_link, *(b.deep_link for b in self.buttons)):
            if link is not None and link.lower().startswith(("https://", "http://")):
                return link
        return None

    def category_id(self) -> str | None:
        """A stable identifier of the button set (ids and titles, in order), for an APNs
        ``category``: the same buttons always give the same id, so an app that registers
        a category once per id shows them again without re-registering. ``None``
        without buttons."""
        if not self.buttons:
            return None
        canonical = json.dumps([[b.id, b.title] for b in self.buttons], ensure_ascii=False,
                               separators=(",", ":"))
        return "geopush." + hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def as_json(self) -> dict[str, Any]:
        """The JSON object payloads and the delivery row carry: the fields that are set,
        buttons as ``[{id, title, deep_link}]``."""
        out: dict[str, Any] = {}
        for name in ("image_url", "image_alt", "image_tag", "deep_link"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.buttons:
            out["buttons"] = [b.model_dump() for b in self.buttons]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> RichContent | None:
        """The content :meth:`as_json` wrote (a stored row: trusted, rebuilt as is);
        ``None`` for ``None`` or an empty object."""
        if not data:
            return None
        return cls(
            image_url=data.get("image_url"), image_alt=data.get("image_alt"),
            image_tag=data.get("image_tag"), deep_link=data.get("deep_link"),
            buttons=tuple(Button.model_construct(**b) for b in data.get("buttons") or ()))


def check_button_ids(buttons: Sequence[Button]) -> None:
    """``ValueError`` when two buttons share an id (feedback names a button by it)."""
    seen: set[str] = set()
    for button in buttons:
        if button.id in seen:
            raise ValueError(f"button id {button.id!r} is used twice; button ids must be "
                             "unique")
        seen.add(button.id)


def check_rich_size(
    *,
    image_url: str | None,
    image_by_tag: Mapping[str, str],
    image_alt: str | None,
    deep_link: str | None,
    buttons: Sequence[Button],
) -> None:
    """``ValueError`` when the largest push a variant's rich fields can make (its longest
    image) takes more than :data:`MAX_RICH_BYTES` of JSON. A missing alt text defaults to
    the title, which the payload carries already, so it is not counted twice."""
    longest = max([image_url, *image_by_tag.values()],
                  key=lambda u: 0 if u is None else len(u.encode()))
    largest = RichContent(
        image_url=longest, image_alt=image_alt,
        image_tag=max(image_by_tag, key=len) if image_by_tag else None,
        deep_link=deep_link, buttons=tuple(buttons))
    size = len(json.dumps(largest.as_json(), ensure_ascii=False).encode())
    if size > MAX_RICH_BYTES:
        raise ValueError(f"image, alt text, link and buttons take {size:,} bytes of JSON, "
                         f"more than {MAX_RICH_BYTES:,} (push payloads hold 4 KB in all)")


def choose_image(
    image_url: str | None, image_by_tag: Mapping[str, str], user_tags: Iterable[str]
) -> tuple[str | None, str | None]:
    """``(url, tag)`` of the image for a user with ``user_tags``.

    The user's strongest interest is the first tag of ``image_by_tag`` (the campaign's
    order of preference) that the user holds; its image wins. A user holding none of them
    gets ``image_url`` (tag ``None``), or no image. Scores of learned tags may rank the
    user's own interests later; until then the campaign's order decides, which keeps the
    choice deterministic and in the tenant's hands.
    """
    if image_by_tag:
        held = frozenset(user_tags)
        for tag, url in image_by_tag.items():
            if tag in held:
                return url, tag
    return image_url, None


def choose_rich(
    *,
    image_url: str | None,
    image_by_tag: Mapping[str, str],
    image_alt: str | None,
    deep_link: str | None,
    buttons: tuple[Button, ...],
    user_tags: Iterable[str],
    title: str,
) -> RichContent | None:
    """The rich content a user with ``user_tags`` gets from a variant's fields, ``title``
    being the push's rendered title (the alt text when the variant gives none); ``None``
    when the variant has none."""
    url, tag = choose_image(image_url, image_by_tag, user_tags)
    if url is None and deep_link is None and not buttons:
        return None
    alt = None if url is None else (image_alt or " ".join(title.split())[:MAX_ALT_CHARS])
    return RichContent(image_url=url, image_alt=alt, image_tag=tag, deep_link=deep_link,
                       buttons=buttons)


def rich_of(variant: Variant, profile: Profile, title: str) -> RichContent | None:
    """:func:`choose_rich` of ``variant``'s fields for ``profile`` (its interest and
    scene tags, as audiences see them), ``title`` being the rendered title."""
    if (variant.image_url is None and not variant.image_by_tag and variant.deep_link is None
            and not variant.buttons):
        return None  # most variants: no tag set built
    return choose_rich(image_url=variant.image_url, image_by_tag=variant.image_by_tag,
                       image_alt=variant.image_alt, deep_link=variant.deep_link,
                       buttons=variant.buttons, user_tags=profile.all_tags, title=title)
