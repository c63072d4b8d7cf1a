"""The preview says which characters make a text UCS-2 and offers its GSM-7 spelling."""

from tests.factories import make_cases


def _recipients(project):
    make_cases(
        project, [{"case_type": "mother", "phone_number": "+254712000801", "phone_raw": "+254712000801"}]
    )
    return {"filter": {"case_type": "mother", "criteria": []}}


def test_a_ucs2_text_names_its_characters_and_its_gsm7_spelling(project, web):
    recipients = _recipients(project)
    text = "Don’t miss clinic day – bring your card. " * 3
    body = (
        project.api()
        .post("/api/v1/broadcasts/preview", json={"recipients": recipients, "text": text})
        .get_json()
    )
    assert body["encoding_hints"] == [
        {
            "language": None,
            "ucs2_characters": ["’", "–"],
            "segments": 2,
            "gsm7_spelling": text.replace("’", "'").replace("–", "-"),
            "gsm7_segments": 1,
            "still_ucs2": [],
        }
    ]
    plain = project.api().post("/api/v1/broadcasts/preview", json={"recipients": recipients, "text": "Hi é"})
    assert plain.get_json()["encoding_hints"] == []
    translations = {"en": "Hello", "sw": "Habari 😀 “rafiki”"}
    body = (
        project.api()
        .post(
            "/api/v1/broadcasts/preview",
            json={"recipients": recipients, "translations": translations, "default_language": "en"},
        )
        .get_json()
    )
    [hint] = body["encoding_hints"]
    assert (hint["language"], hint["gsm7_spelling"], hint["still_ucs2"]) == (
        "sw",
        'Habari 😀 "rafiki"',
        ["😀"],
    )

    page = web.post(
        "/broadcasts/new",
        {
            "name": "x",
            "filter_case_type": "mother",
            "content": "text",
            "text": text,
            "when": "now",
            "action": "preview",
        },
    ).get_data(as_text=True)
    assert 'class="flash flash-warning encoding-hint"' in page and '<code class="ucs2-char">’</code>' in page
    assert "Spelled in GSM-7:" in page and "(1 segment" in page
