"""The preview: what a broadcast would do if it fired now, without writing anything.

Rules:
- The body is the one that creates the broadcast (``send_at`` and ``repeat``
  are ignored, the name is optional) and is validated the same way.
- It counts the recipients, those who would get a message, and the skipped by
  reason, with the same SELECT the firing snapshots.
- It renders at most ``PREVIEW_RENDER_LIMIT`` recipients to report the SMS
  segments (the total estimated from that sample), the placeholders some
  recipients lack and three samples.
- The time needed is at the gateway's rate: ``mps`` per sender, capped by
  ``project_mps``.
- A text (or translation) that is UCS-2 says which characters make it so, and
  offers its GSM-7 spelling with the segments each needs
  (:mod:`messaging.lib.gsm_spelling`): one curly apostrophe can double the cost.
- The cost is estimated per destination country (the recipients' numbers grouped
  by their first digits, times the segments a message takes on average in the
  rendered sample, at the project's price table: ``messaging.sms.prices``).
- The warnings say what the project's guards would do to the send, at its
  ``send_at`` or now (``messaging.sms.guards.preview_warnings``): wait for a
  sending window, a window closing before the send ends, the daily limit crossed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import NamedTuple

from sqlalchemy import func, select

from messaging.broadcasts.content import Content
from messaging.broadcasts.recipients import recipients_select
from messaging.broadcasts.spec import apply_spec, parse_spec
from messaging.errors import Invalid
from messaging.extensions import db
from messaging.gateways import routing
from messaging.gateways import settings as gateway_settings
from messaging.lib import clock
from messaging.lib.gsm_spelling import gsm7_spelling, ucs2_characters
from messaging.lib.segments import count_segments
from messaging.models import Broadcast, Project
from messaging.sms.guards import preview_warnings
from messaging.sms.prices import estimate_by_country
from messaging.sms.usage import PREFIX_CHARS, country_of

# The leading characters that decide a gateway: a plus and the longest prefix (7 digits).
ROUTING_CHARS = 8

# Preview renders at most this many recipients to report missing placeholders and segments.
PREVIEW_RENDER_LIMIT = 5000


def preview_broadcast(project: Project, body: Mapping) -> dict:
    """What a broadcast would do now: recipients, who gets a message, the skipped by reason,
    SMS segments, placeholders some recipients lack, and the time the gateway needs."""
    if not isinstance(body, Mapping):
        raise Invalid("invalid_json", "The request body must be a JSON object.")
    data = {k: v for k, v in body.items() if k not in ("send_at", "repeat")}
    if not data.get("name"):
        data["name"] = "preview"
    spec = parse_spec(project, data)
    snap = recipients_select(project.id, spec["recipients"]).subquery("snap")
    by_reason = dict(
        db.session.execute(select(snap.c.skip_reason, func.count()).group_by(snap.c.skip_reason)).all()
    )
    will_send = by_reason.pop(None, 0)
    recipients = will_send + sum(by_reason.values())
    b = Broadcast(project_id=project.id)
    apply_spec(b, spec)
    content = Content(b)
    rows = db.session.execute(
        select(snap).where(snap.c.skip_reason.is_(None)).order_by(snap.c.seq).limit(PREVIEW_RENDER_LIMIT)
    ).all()
    sample = _render_sample(content, rows)
    max_segments, total_segments = sample.max_segments, sample.total_segments
    if not rows:
        text = content.first_question if content.survey is not None else content.text_for(None)
        max_segments = count_segments(text).segments
    if rows and len(rows) < will_send:  # estimate the rest from the rendered sample
        total_segments = round(total_segments * will_send / len(rows))
    routes = gateway_settings.project_gateways(project.id)
    rate = sum(gateway_settings.messages_per_second(cfg) for cfg in routes)
    countries, gateways = _shares(routes, snap)
    # The gateways send at once, each at its own rate: the slowest share sets the time.
    seconds = round(max((g["recipients"] / g["messages_per_second"] for g in gateways), default=0.0), 1)
    per_message = total_segments / will_send if will_send else max_segments
    return {
        "recipients": recipients,
        "will_send": will_send,
        "skipped": by_reason,
        "segments": max_segments,
        "total_segments": total_segments,
        "missing_placeholders": sample.missing,
        "checked": len(rows),
        "samples": sample.samples,
        "messages_per_second": rate,
        "estimated_seconds": seconds,
        "encoding_hints": encoding_hints(b),
        "cost": estimate_by_country(project.id, countries, per_message),
        "gateways": gateways,
        "warnings": preview_warnings(project.id, will_send, _send_time(body), seconds),
    }


def _shares(gateways: list, snap) -> tuple[dict[str, int], list[dict]]:
    """Who will get a message, by country (the first digits of their numbers) and by the gateway
    each message takes (``messaging.gateways.routing``), from one count per leading digits."""
    leading = func.substr(snap.c.phone, 1, ROUTING_CHARS)
    countries: Counter = Counter()
    by_gateway: Counter = Counter()
    for start, n in db.session.execute(
        select(leading, func.count()).where(snap.c.skip_reason.is_(None)).group_by(leading)
    ).all():
        countries[country_of((start or "")[:PREFIX_CHARS])] += n
        by_gateway[id(routing.choose(start or "", gateways))] += n
    shares = [
        {
            "id": g.id,
            "name": g.name,
            "kind": g.kind,
            "recipients": by_gateway[id(g)],
            "messages_per_second": gateway_settings.messages_per_second(g),
        }
        for g in gateways
        if by_gateway[id(g)]
    ]
    return dict(countries), shares


def _send_time(body: Mapping):
    """When the broadcast would go: its ``send_at`` (when readable; creating it checks it), else now."""
    raw = body.get("send_at")
    if isinstance(raw, str) and raw.strip():
        try:
            return clock.parse_iso(raw)
        except ValueError:
            pass
    return clock.now()


def encoding_hints(b: Broadcast) -> list[dict]:
    """For each of the broadcast's texts (its text, or each translation) that is UCS-2: the
    characters forcing it, its GSM-7 spelling, and the segments of each (as written, before
    placeholders are filled)."""
    texts = {None: b.text} if b.text else dict(b.translations or {})
    hints = []
    for language, text in texts.items():
        if not text or not (forcing := ucs2_characters(text)):
            continue
        spelled = gsm7_spelling(text)
        hints.append(
            {
                "language": language,
                "ucs2_characters": forcing,
                "segments": count_segments(text).segments,
                "gsm7_spelling": spelled if spelled != text else None,
                "gsm7_segments": count_segments(spelled).segments if spelled != text else None,
                "still_ucs2": ucs2_characters(spelled),
            }
        )
    return hints


class _Sample(NamedTuple):
    max_segments: int
    total_segments: int
    missing: dict[str, int]  # placeholder: recipients who lack it
    samples: list[dict]


def _render_sample(content: Content, rows) -> _Sample:
    """Render ``rows``: the most and total segments, missing placeholders, three samples."""
    missing: Counter = Counter()
    max_segments, total_segments, samples = 0, 0, []
    contexts = content.contexts(rows)
    for r in rows:
        if content.survey is not None:
            text = content.first_question
        elif content.needs_context:
            rendered = content.render(r, contexts)
            text = rendered.text
            missing.update(rendered.missing)
        else:
            text = content.text_for(r.language)
        info = count_segments(text)
        max_segments = max(max_segments, info.segments)
        total_segments += info.segments
        if len(samples) < 3:
            samples.append(
                {"phone": r.phone, "text": text, "segments": info.segments, "encoding": info.encoding}
            )
    return _Sample(max_segments, total_segments, dict(missing), samples)
