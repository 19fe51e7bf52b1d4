"""Perspective's v1alpha1 API end to end, with the exact requests Coral Talk's client builds.

Coral's perspective service joins its configured endpoint's path with ``/comments:analyze`` (or
``/comments:suggestscore``), sets ``?key=``, and posts ``JSON.stringify`` of the bodies rebuilt
below; it reads ``attributeScores[model].summaryScore.value``.
"""

import copy
import json
import re
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import pytest
import redis.asyncio as aioredis
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from service import language
from service.appkeys import SCORER
from service.compat.perspective import ATTRIBUTES, MAX_SPANS
from service.labels import LabelLog
from service.times import iso_from_ms
from tests.clocks import Clock
from tests.service.api import test_compat_coral as coral

Client = TestClient[web.Request, web.Application]

CIVIL = "A calm remark about the harbour and its boats. The ferry runs twice a day!"


def coral_url(endpoint: str, operation: str, key: str) -> str:
    """Where Coral sends a Perspective call: Node's ``path.join`` of the endpoint's path and
    ``/<operation>`` (slashes collapsed), with ``?key=`` set."""
    parts = urlsplit(endpoint.strip())
    path = re.sub(r"/+", "/", f"{parts.path}/{operation}")
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode({"key": key.strip()}), ""))


def coral_analyze_body(text: str, model: str = "TOXICITY", language: str = "en") -> str:
    body = {
        "comment": {"text": text},
        "doNotStore": True,
        "requestedAttributes": {model: {}},
        "languages": [language],
    }
    return json.dumps(body, separators=(",", ":"))


def coral_suggest_body(
    text: str, comment_id: str, approved: bool, parent_id: str | None = None
) -> str:
    context = {"url": f"https://news.example/story?commentID={comment_id}"}
    if parent_id is not None:
        context["reply_to_id_Coral_comment_id"] = parent_id
    context["Coral_comment_id"] = comment_id
    body = {
        "comment": {"text": text},
        "context": {"entries": [{"text": json.dumps(context, separators=(",", ":"))}]},
        "attributeScores": {"TOXICITY": {"summaryScore": {"value": 0 if approved else 1}}},
        "languages": ["en"],
        "communityId": "Coral:https://news.example",
        "clientToken": f"comment:{comment_id}",
    }
    return json.dumps(body, separators=(",", ":"))


async def post(
    client: Client, url: str, body: str | bytes, content_type: str = "application/json"
) -> ClientResponse:
    path = urlsplit(url)
    target = f"{path.path}?{path.query}" if path.query else path.path
    return await client.post(target, data=body, headers={"Content-Type": content_type})


def analyze_url(key: str) -> str:
    return coral_url("http://civility.test/v1alpha1", "comments:analyze", key)


async def keys_of(redis_client: aioredis.Redis) -> set[str]:
    return {key async for key in redis_client.scan_iter("*")}


def test_coral_joins_its_endpoint_and_the_operation_like_node() -> None:
    assert coral_url(" http://civility.test/v1alpha1 ", "comments:analyze", " k ") == (
        "http://civility.test/v1alpha1/comments:analyze?key=k"
    )
    assert coral_url("http://civility.test/v1alpha1/", "comments:suggestscore", "k") == (
        "http://civility.test/v1alpha1/comments:suggestscore?key=k"
    )


async def test_coral_reads_the_toxicity_score_of_the_same_model_as_intake(
    client: Client, site: dict[str, str], post_signed: Any
) -> None:
    response = await post(client, analyze_url(site["api_key"]), coral_analyze_body(CIVIL))
    assert response.status == 200
    data = await response.json()
    # Exactly what Coral's toxic phase reads.
    score = data["attributeScores"]["TOXICITY"]["summaryScore"]["value"]
    assert data["attributeScores"]["TOXICITY"]["summaryScore"]["type"] == "PROBABILITY"
    assert data["languages"] == ["en"]
    intake = {"id": "c1", "article": {"id": "a1"}, "author": {"id": "u1"}, "text": CIVIL}
    verdict = await (await post_signed(site, intake)).json()
    # Scored in different micro-batches, the float sums may differ in the last places.
    assert score == pytest.approx(verdict["scores"]["toxicity"], abs=1e-6)


async def test_a_field_sent_as_null_takes_its_default_as_googles_json_parser_does(
    client: Client, site: dict[str, str]
) -> None:
    body = {
        "comment": {"text": CIVIL, "type": None},
        "requestedAttributes": {"TOXICITY": {"scoreThreshold": None}},
        "spanAnnotations": None,
        "doNotStore": None,
        "languages": None,
        "clientToken": None,
    }
    response = await post(client, analyze_url(site["api_key"]), json.dumps(body))
    assert response.status == 200, await response.text()
    data = await response.json()
    assert set(data["attributeScores"]) == {"TOXICITY"}
    assert "spanScores" not in data["attributeScores"]["TOXICITY"]
    assert "clientToken" not in data


async def test_an_enums_unspecified_value_takes_its_default_as_in_googles_protos(
    client: Client, site: dict[str, str], redis_client: aioredis.Redis
) -> None:
    analysis = {
        "comment": {"text": CIVIL, "type": "TEXT_TYPE_UNSPECIFIED"},
        "requestedAttributes": {"TOXICITY": {"scoreType": "SCORE_TYPE_UNSPECIFIED"}},
    }
    analyzed = await post(client, analyze_url(site["api_key"]), json.dumps(analysis))
    assert analyzed.status == 200, await analyzed.text()
    assert set((await analyzed.json())["attributeScores"]) == {"TOXICITY"}
    suggestion = {
        "comment": {"text": CIVIL, "type": "TEXT_TYPE_UNSPECIFIED"},
        "attributeScores": {
            "TOXICITY": {"summaryScore": {"value": 0, "type": "SCORE_TYPE_UNSPECIFIED"}}
        },
    }
    url = coral_url("http://civility.test/v1alpha1", "comments:suggestscore", site["api_key"])
    suggested = await post(client, url, json.dumps(suggestion))
    assert suggested.status == 200, await suggested.text()
    [label] = [entry async for entry in LabelLog(redis_client).export(site["id"])]
    assert label["labels"] == {"toxicity": 0}


async def test_every_attribute_maps_to_its_label(
    client: Client, site: dict[str, str], admin: dict[str, str]
) -> None:
    model = await (await client.get("/v1/model", headers=admin)).json()
    scored = [name for name, label in ATTRIBUTES.items() if label in model["labels"]]
    assert {"TOXICITY", "SPAM"} <= set(scored)
    body = {
        "comment": {"text": CIVIL},
        "requestedAttributes": {name: {} for name in scored},
        "clientToken": "token-7",
        "sessionId": "s",
        "communityId": "c",
        "context": {"entries": [{"text": "the article"}]},
    }
    response = await post(client, analyze_url(site["api_key"]), json.dumps(body))
    assert response.status == 200
    data = await response.json()
    assert set(data["attributeScores"]) == set(scored)
    for name in scored:
        summary = data["attributeScores"][name]["summaryScore"]
        assert 0.0 <= summary["value"] <= 1.0
        assert "spanScores" not in data["attributeScores"][name]
    assert data["clientToken"] == "token-7"
    for name in set(ATTRIBUTES) - set(scored):
        missing = {"comment": {"text": CIVIL}, "requestedAttributes": {name: {}}}
        refused = await post(client, analyze_url(site["api_key"]), json.dumps(missing))
        assert await refused.json() == google_error(
            400, "INVALID_ARGUMENT", f"Attribute {name} is not scored by the active model."
        )


async def test_span_annotations_score_each_sentence(client: Client, site: dict[str, str]) -> None:
    text = "First calm sentence.  Second one is fine!\nThird line without a stop"
    body = {
        "comment": {"text": text},
        "requestedAttributes": {"TOXICITY": {}, "SPAM": {}},
        "spanAnnotations": True,
    }
    data = await (await post(client, analyze_url(site["api_key"]), json.dumps(body))).json()
    for name in ("TOXICITY", "SPAM"):
        spans = data["attributeScores"][name]["spanScores"]
        pieces = [text[span["begin"] : span["end"]] for span in spans]
        assert pieces == [
            "First calm sentence.",
            "Second one is fine!",
            "Third line without a stop",
        ]
        assert all(span["score"]["type"] == "PROBABILITY" for span in spans)


async def test_span_annotations_cut_at_sentence_ends_not_at_every_stop(
    client: Client, site: dict[str, str]
) -> None:
    text = (
        'Mr. Okafor said "We sail at 3.5 knots." Then he left... and came back, e.g. twice. '
        "The U.S. coast guard agreed."
    )
    body = {
        "comment": {"text": text},
        "requestedAttributes": {"TOXICITY": {}},
        "spanAnnotations": True,
    }
    data = await (await post(client, analyze_url(site["api_key"]), json.dumps(body))).json()
    spans = data["attributeScores"]["TOXICITY"]["spanScores"]
    assert [text[span["begin"] : span["end"]] for span in spans] == [
        'Mr. Okafor said "We sail at 3.5 knots."',
        "Then he left... and came back, e.g. twice.",
        "The U.S. coast guard agreed.",
    ]


async def test_a_sentence_ends_after_a_lone_letter_but_not_inside_an_initialism(
    client: Client, site: dict[str, str]
) -> None:
    text = "I have a Plan B. It works. The U.S. Army agreed, e.g. twice."
    body = {
        "comment": {"text": text},
        "requestedAttributes": {"TOXICITY": {}},
        "spanAnnotations": True,
    }
    data = await (await post(client, analyze_url(site["api_key"]), json.dumps(body))).json()
    spans = data["attributeScores"]["TOXICITY"]["spanScores"]
    assert [(span["begin"], span["end"]) for span in spans] == [(0, 16), (17, 26), (27, 60)]
    assert [text[span["begin"] : span["end"]] for span in spans] == [
        "I have a Plan B.",
        "It works.",
        "The U.S. Army agreed, e.g. twice.",
    ]


async def test_span_offsets_count_utf16_code_units_as_perspective_does(
    client: Client, site: dict[str, str]
) -> None:
    text = "\U0001f600\U0001f600 Great. You are here."  # each emoji is two UTF-16 units
    body = {
        "comment": {"text": text},
        "requestedAttributes": {"TOXICITY": {}},
        "spanAnnotations": True,
    }
    data = await (await post(client, analyze_url(site["api_key"]), json.dumps(body))).json()
    units = text.encode("utf-16-le")
    pieces = [
        units[2 * span["begin"] : 2 * span["end"]].decode("utf-16-le")
        for span in data["attributeScores"]["TOXICITY"]["spanScores"]
    ]
    assert pieces == ["\U0001f600\U0001f600 Great.", "You are here."]


async def test_spans_leave_out_line_breaks_and_invisible_characters_around_a_sentence(
    client: Client, site: dict[str, str]
) -> None:
    # Lines from a Windows form (CR LF), a zero-width space after a stop, a blank last line.
    text = "First calm line\r\nSecond calm line\r\nThird one.\u200b Fourth one.\u200b\r\n \u200b"
    body = {
        "comment": {"text": text},
        "requestedAttributes": {"TOXICITY": {}},
        "spanAnnotations": True,
    }
    data = await (await post(client, analyze_url(site["api_key"]), json.dumps(body))).json()
    spans = data["attributeScores"]["TOXICITY"]["spanScores"]
    assert [text[span["begin"] : span["end"]] for span in spans] == [
        "First calm line",
        "Second calm line",
        "Third one.",
        "Fourth one.",
    ]


async def test_span_annotations_are_bounded(client: Client, site: dict[str, str]) -> None:
    text = " ".join(f"Sentence {number}." for number in range(MAX_SPANS * 3))
    body = {
        "comment": {"text": text},
        "requestedAttributes": {"TOXICITY": {}},
        "spanAnnotations": True,
    }
    data = await (await post(client, analyze_url(site["api_key"]), json.dumps(body))).json()
    spans = data["attributeScores"]["TOXICITY"]["spanScores"]
    assert len(spans) == MAX_SPANS
    assert (spans[0]["begin"], spans[-1]["end"]) == (0, len(text))


async def test_a_score_threshold_leaves_lower_scores_out(
    client: Client, site: dict[str, str]
) -> None:
    body = {
        "comment": {"text": CIVIL},
        "requestedAttributes": {
            "TOXICITY": {"scoreThreshold": 1.0},
            "SPAM": {"scoreType": "PROBABILITY"},
        },
    }
    data = await (await post(client, analyze_url(site["api_key"]), json.dumps(body))).json()
    assert set(data["attributeScores"]) == {"SPAM"}


async def test_a_score_threshold_leaves_lower_span_scores_out_too(
    client: Client, site: dict[str, str]
) -> None:
    text = "What a calm harbour this is. You are a stupid idiot and a moron."
    body: dict[str, Any] = {
        "comment": {"text": text},
        "requestedAttributes": {"INSULT": {}},
        "spanAnnotations": True,
    }
    data = await (await post(client, analyze_url(site["api_key"]), json.dumps(body))).json()
    calm, rude = data["attributeScores"]["INSULT"]["spanScores"]
    threshold = (calm["score"]["value"] + rude["score"]["value"]) / 2
    summary = data["attributeScores"]["INSULT"]["summaryScore"]["value"]
    assert calm["score"]["value"] < threshold <= min(rude["score"]["value"], summary)
    body["requestedAttributes"] = {"INSULT": {"scoreThreshold": threshold}}
    data = await (await post(client, analyze_url(site["api_key"]), json.dumps(body))).json()
    # "Don't return scores for this attribute that are below this threshold": spans' too.
    assert data["attributeScores"]["INSULT"]["spanScores"] == [rude]


@pytest.mark.parametrize("do_not_store", [True, False, None])
async def test_analyze_stores_nothing_and_queues_nothing(
    client: Client,
    site: dict[str, str],
    redis_client: aioredis.Redis,
    moderator: Any,
    do_not_store: bool | None,
) -> None:
    before = await keys_of(redis_client)
    body: dict[str, Any] = {"comment": {"text": CIVIL}, "requestedAttributes": {"TOXICITY": {}}}
    if do_not_store is not None:
        body["doNotStore"] = do_not_store
    assert (await post(client, analyze_url(site["api_key"]), json.dumps(body))).status == 200
    assert await keys_of(redis_client) == before
    queue = await client.get("/v1/sites/news/queue", headers=moderator(site))
    assert (await queue.json())["items"] == []


def google_error(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


@pytest.mark.parametrize("path", ["comments:analyze", "comments:suggestscore"])
async def test_a_missing_or_wrong_key_gets_googles_answer(client: Client, path: str) -> None:
    body = coral_analyze_body(CIVIL)
    missing = await post(client, f"/v1alpha1/{path}", body)
    assert missing.status == 403
    assert await missing.json() == google_error(
        403, "PERMISSION_DENIED", "The request is missing a valid API key."
    )
    wrong = await post(client, f"/v1alpha1/{path}?key=nope", body)
    assert wrong.status == 400
    assert await wrong.json() == google_error(
        400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            coral_analyze_body(CIVIL, model="NOT_AN_ATTRIBUTE"),
            "Unknown attribute: NOT_AN_ATTRIBUTE. Supported attributes: TOXICITY, "
            "SEVERE_TOXICITY, IDENTITY_ATTACK, INSULT, PROFANITY, THREAT, SPAM.",
        ),
        (coral_analyze_body("   "), "Comment must be non-empty."),
        (coral_analyze_body("\u200b\u2060 \u3000"), "Comment must be non-empty."),
        (coral_analyze_body("\u2800 \ufe0f\u034f"), "Comment must be non-empty."),
        (
            coral_analyze_body("é" * 10_241),
            "Comment text too long: 20482 bytes; the limit is 20480 bytes and 20000 characters.",
        ),
        (
            json.dumps({"comment": {"text": CIVIL}, "requestedAttributes": {}}),
            "requestedAttributes must name at least one attribute.",
        ),
        (
            "{not json",
            "request body is not valid JSON: key must be a string at line 1 column 2",
        ),
        (
            json.dumps(
                {"comment": {"text": CIVIL}, "requestedAttributes": {"TOXICITY": {}}, "x": 1}
            ),
            "Invalid JSON payload received. at 'x': Extra inputs are not permitted",
        ),
        (
            json.dumps({"comment": {}, "requestedAttributes": {"TOXICITY": {"scoreThreshold": 2}}}),
            "Invalid JSON payload received. at 'comment.text': Field required; at "
            "'requestedAttributes.TOXICITY.scoreThreshold': "
            "Input should be less than or equal to 1",
        ),
    ],
)
async def test_bad_requests_get_invalid_argument(
    client: Client, site: dict[str, str], body: str, message: str
) -> None:
    response = await post(client, analyze_url(site["api_key"]), body)
    assert response.status == 400
    assert await response.json() == google_error(400, "INVALID_ARGUMENT", message)


GERMAN = (
    "Die Regierung sollte die Brücke über den Fluss endlich reparieren, bevor der Winter kommt."
)


def language_error(attribute: str, requested: str, detected: list[str]) -> dict[str, Any]:
    """Google's answer for an attribute it has no model for in the comment's language."""
    message = f"Attribute {attribute} does not support request languages: {requested}"
    error = google_error(400, "INVALID_ARGUMENT", message)
    error["error"]["details"] = [
        {
            "@type": "type.googleapis.com/google.commentanalyzer.v1alpha1.Error",
            "errorType": "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE",
            "languageNotSupportedByAttributeError": {
                "detectedLanguages": detected,
                "attribute": attribute,
            },
        }
    ]
    return error


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # Coral sends its site's locale: German text on a German Coral.
        (coral_analyze_body(GERMAN, language="de-DE"), language_error("TOXICITY", "de", ["de"])),
        # No language given: the detected one decides, never "scored as English".
        (
            json.dumps({"comment": {"text": GERMAN}, "requestedAttributes": {"INSULT": {}}}),
            language_error("INSULT", "de", ["de"]),
        ),
        # An attribute Google has and civility's model has not, in any language.
        (
            coral_analyze_body(CIVIL, model="SEXUALLY_EXPLICIT"),
            language_error("SEXUALLY_EXPLICIT", "en", ["en"]),
        ),
    ],
)
async def test_a_language_the_model_cannot_score_gets_googles_language_error(
    client: Client, site: dict[str, str], body: str, expected: dict[str, Any]
) -> None:
    response = await post(client, analyze_url(site["api_key"]), body)
    assert (response.status, await response.json()) == (400, expected)


@pytest.mark.parametrize(
    ("text", "scored", "languages"),
    [
        # An attribute civility has no model for is left out; the others are scored.
        (CIVIL, {"TOXICITY"}, ["en"]),
        # A language the model cannot read leaves nothing to score: no scores, no error.
        (GERMAN, set(), ["de"]),
    ],
)
async def test_drop_unsupported_attributes_leaves_them_out_instead_of_failing(
    client: Client, site: dict[str, str], text: str, scored: set[str], languages: list[str]
) -> None:
    body = {
        "comment": {"text": text},
        "requestedAttributes": {"TOXICITY": {}, "SEXUALLY_EXPLICIT": {}},
        "dropUnsupportedAttributes": True,
    }
    response = await post(client, analyze_url(site["api_key"]), json.dumps(body))
    assert response.status == 200, await response.text()
    data = await response.json()
    assert (set(data["attributeScores"]), data["languages"]) == (scored, languages)


@pytest.mark.parametrize(
    ("text", "requested", "detected"),
    [
        # Coral sends its site's locale: English text on a German Coral is scored in English.
        (CIVIL, "de", "en"),
        # A language the request names and the model reads is the one scored in.
        (GERMAN, "en", "de"),
    ],
)
async def test_a_text_is_scored_in_a_language_the_model_reads_that_it_or_the_request_has(
    client: Client, site: dict[str, str], text: str, requested: str, detected: str
) -> None:
    response = await post(
        client, analyze_url(site["api_key"]), coral_analyze_body(text, language=requested)
    )
    data = await response.json()
    assert (response.status, data["languages"], data["detectedLanguages"]) == (
        200,
        ["en"],
        [detected],
    )
    assert set(data["attributeScores"]) == {"TOXICITY"}
    expected = await client.app[SCORER].score(text)
    value = data["attributeScores"]["TOXICITY"]["summaryScore"]["value"]
    assert value == pytest.approx(expected["toxicity"], abs=1e-6)


@pytest.fixture
def detector_forgotten() -> None:
    """This test process without the language detector, whatever an earlier test loaded (the
    fixture comes before the app's, so the app starts without it too)."""
    language._identifier.cache_clear()


async def test_the_api_process_leaves_language_detection_to_the_scoring_workers(
    detector_forgotten: None, client: Client, site: dict[str, str], post_signed: Any
) -> None:
    english = await post(client, analyze_url(site["api_key"]), coral_analyze_body(CIVIL))
    german = await post(
        client, analyze_url(site["api_key"]), coral_analyze_body(GERMAN, "INSULT", "de")
    )
    intake = {"id": "c1", "article": {"id": "a1"}, "author": {"id": "u1"}, "text": GERMAN}
    verdict = await (await post_signed(site, intake)).json()
    assert (english.status, await german.json()) == (200, language_error("INSULT", "de", ["de"]))
    assert (verdict["state"], verdict["reasons"], verdict["scores"]) == (
        "pending",
        ["LANGUAGE"],
        {},
    )
    # The detector (~110 MB) was never loaded here: the scoring workers detected every text.
    assert language._identifier.cache_info().currsize == 0


async def test_an_experimental_attribute_is_scored_like_its_production_one(
    client: Client, site: dict[str, str]
) -> None:
    body = {
        "comment": {"text": CIVIL},
        "requestedAttributes": {"TOXICITY": {}, "TOXICITY_EXPERIMENTAL": {}},
    }
    data = await (await post(client, analyze_url(site["api_key"]), json.dumps(body))).json()
    scores = data["attributeScores"]
    assert scores["TOXICITY_EXPERIMENTAL"] == scores["TOXICITY"]


async def test_a_suggestion_of_attributes_civility_has_no_label_for_teaches_nothing(
    client: Client, site: dict[str, str], redis_client: aioredis.Redis
) -> None:
    body = {
        "comment": {"text": "A fine remark."},
        "attributeScores": {"LIKELY_TO_REJECT": {"summaryScore": {"value": 1}}},
        "clientToken": "comment:1",
    }
    url = f"/v1alpha1/comments:suggestscore?key={site['api_key']}"
    response = await post(client, url, json.dumps(body))
    assert response.status == 200
    assert (await response.json())["clientToken"] == "comment:1"
    assert [entry async for entry in LabelLog(redis_client).export("news")] == []


async def test_a_body_that_is_not_json_or_too_large_is_an_invalid_argument(
    client: Client, site: dict[str, str]
) -> None:
    form = await post(
        client, analyze_url(site["api_key"]), "a=b", "application/x-www-form-urlencoded"
    )
    assert form.status == 400
    assert (await form.json())["error"]["status"] == "INVALID_ARGUMENT"
    huge = await post(client, analyze_url(site["api_key"]), coral_analyze_body("x" * 70_000))
    assert huge.status == 400
    assert (await huge.json())["error"]["message"] == "request body is larger than 65536 bytes"


async def test_the_key_may_come_in_googles_header(client: Client, site: dict[str, str]) -> None:
    headers = {"X-Goog-Api-Key": site["api_key"], "Content-Type": "application/json"}
    body = coral_analyze_body(CIVIL)
    response = await client.post("/v1alpha1/comments:analyze", data=body, headers=headers)
    assert response.status == 200
    assert "TOXICITY" in (await response.json())["attributeScores"]


@pytest.mark.parametrize(("approved", "label"), [(True, 0), (False, 1)])
async def test_corals_suggestscore_stores_a_training_label(
    client: Client, site: dict[str, str], redis_client: aioredis.Redis, approved: bool, label: int
) -> None:
    url = coral_url("http://civility.test/v1alpha1", "comments:suggestscore", site["api_key"])
    body = coral_suggest_body("You absolute clown.", "c-9", approved, parent_id="c-1")
    response = await post(client, url, body)
    assert response.status == 200
    assert await response.json() == {
        "detectedLanguages": [],  # too short to tell
        "requestedLanguages": ["en"],
        "clientToken": "comment:c-9",
    }
    [entry] = [entry async for entry in LabelLog(redis_client).export("news")]
    assert entry["labels"] == {"toxicity": label}
    assert (entry["text"], entry["source"]) == ("You absolute clown.", "perspective.suggestscore")
    assert entry["comment_id"].startswith("comment:c-9#")
    assert entry["model"]


async def test_a_suggestion_is_dated_by_the_services_clock(
    client: Client, site: dict[str, str], redis_client: aioredis.Redis, clock: Clock
) -> None:
    clock.advance(30 * 24 * 3600)
    before_ms = int(clock() * 1000)
    url = coral_url("http://civility.test/v1alpha1", "comments:suggestscore", site["api_key"])
    response = await post(client, url, coral_suggest_body("You absolute clown.", "c-9", False))
    assert response.status == 200
    [entry] = [entry async for entry in LabelLog(redis_client).export("news")]
    assert iso_from_ms(before_ms) <= entry["at"] <= iso_from_ms(int(clock() * 1000))


async def test_a_suggestion_replaces_the_one_for_the_same_token_and_text_only(
    client: Client, site: dict[str, str], redis_client: aioredis.Redis
) -> None:
    url = coral_url("http://civility.test/v1alpha1", "comments:suggestscore", site["api_key"])
    # Coral's moderator changes their mind; a client sends one token for every comment.
    for text, approved in (("You clown.", True), ("You clown.", False), ("Nice work.", True)):
        body = json.loads(coral_suggest_body(text, "c-9", approved))
        body["clientToken"] = "my-app"
        assert (await post(client, url, json.dumps(body))).status == 200
    entries = [entry async for entry in LabelLog(redis_client).export("news")]
    ids = [entry["comment_id"] for entry in entries]
    assert ids[0] == ids[1] != ids[2]


async def test_a_suggestion_without_token_answers_without_one(
    client: Client, site: dict[str, str], redis_client: aioredis.Redis
) -> None:
    body = {
        "comment": {"text": "Cheap pills here"},
        "attributeScores": {"SPAM": {"summaryScore": {"value": 0.9, "type": "PROBABILITY"}}},
    }
    url = f"/v1alpha1/comments:suggestscore?key={site['api_key']}"
    response = await post(client, url, json.dumps(body))
    assert response.status == 200
    assert "clientToken" not in await response.json()
    [entry] = [entry async for entry in LabelLog(redis_client).export("news")]
    assert (entry["labels"], entry["comment_id"]) == ({"spam": 1}, None)


@pytest.mark.parametrize(
    ("text", "languages", "detected"),
    [
        (CIVIL, None, ["en"]),
        # Coral sends its site's locale, answered as it was sent.
        (GERMAN, ["de-DE"], ["de"]),
        (CIVIL, ["en", "fr"], ["en"]),
    ],
    ids=["none-named", "corals-locale", "two-named"],
)
async def test_a_suggestion_is_answered_with_the_detected_and_requested_languages(
    client: Client,
    site: dict[str, str],
    text: str,
    languages: list[str] | None,
    detected: list[str],
) -> None:
    # Google's SuggestCommentScoreResponse: detectedLanguages, requestedLanguages, clientToken.
    body: dict[str, Any] = {
        "comment": {"text": text},
        "attributeScores": {"TOXICITY": {"summaryScore": {"value": 0}}},
        "clientToken": "t-1",
    }
    if languages is not None:
        body["languages"] = languages
    url = f"/v1alpha1/comments:suggestscore?key={site['api_key']}"
    response = await post(client, url, json.dumps(body))
    assert (response.status, await response.json()) == (
        200,
        {
            "detectedLanguages": detected,
            "requestedLanguages": languages or [],
            "clientToken": "t-1",
        },
    )


def span_score(begin: int, end: int, value: float) -> dict[str, Any]:
    return {"begin": begin, "end": end, "score": {"value": value, "type": "PROBABILITY"}}


@pytest.mark.parametrize(("rude", "label"), [(0.9, 1), (0.2, 0)])
async def test_a_suggestion_of_span_scores_alone_is_labelled_by_its_worst_span(
    client: Client, site: dict[str, str], redis_client: aioredis.Redis, rude: float, label: int
) -> None:
    # Google accepts a suggestion of a comment's parts without one of the whole.
    text = "What a calm harbour this is. You are a stupid idiot."
    body = {
        "comment": {"text": text},
        "attributeScores": {
            "TOXICITY": {"spanScores": [span_score(0, 28, 0.1), span_score(29, 51, rude)]}
        },
        "clientToken": "comment:c-5",
    }
    url = f"/v1alpha1/comments:suggestscore?key={site['api_key']}"
    response = await post(client, url, json.dumps(body))
    assert response.status == 200, await response.text()
    [entry] = [entry async for entry in LabelLog(redis_client).export("news")]
    assert (entry["text"], entry["labels"]) == (text, {"toxicity": label})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {
                "comment": {"text": "x"},
                "attributeScores": {"NOT_AN_ATTRIBUTE": {"summaryScore": {"value": 1}}},
            },
            "Unknown attribute: NOT_AN_ATTRIBUTE. Supported attributes: TOXICITY, "
            "SEVERE_TOXICITY, IDENTITY_ATTACK, INSULT, PROFANITY, THREAT, SPAM.",
        ),
        (
            {
                "comment": {"text": ""},
                "attributeScores": {"TOXICITY": {"summaryScore": {"value": 1}}},
            },
            "Comment must be non-empty.",
        ),
        (
            {"comment": {"text": "x"}, "attributeScores": {}},
            "attributeScores must name at least one attribute.",
        ),
        (
            {"comment": {"text": "x"}, "attributeScores": {"TOXICITY": {"spanScores": []}}},
            "Invalid JSON payload received. at 'attributeScores.TOXICITY': "
            "Value error, a suggestion needs a summaryScore or spanScores",
        ),
        (
            {
                "comment": {"text": "x"},
                "attributeScores": {"TOXICITY": {"spanScores": [{"begin": 0, "end": 1}]}},
            },
            "Invalid JSON payload received. at 'attributeScores.TOXICITY.spanScores.0.score': "
            "Field required",
        ),
        (
            {
                "comment": {"text": "x"},
                "attributeScores": {"TOXICITY": {"summaryScore": {"value": 3}}},
            },
            "Invalid JSON payload received. at 'attributeScores.TOXICITY.summaryScore.value': "
            "Input should be less than or equal to 1",
        ),
    ],
)
async def test_a_bad_suggestion_stores_nothing(
    client: Client,
    site: dict[str, str],
    redis_client: aioredis.Redis,
    body: dict[str, Any],
    message: str,
) -> None:
    url = f"/v1alpha1/comments:suggestscore?key={site['api_key']}"
    response = await post(client, url, json.dumps(body))
    assert response.status == 400
    assert await response.json() == google_error(400, "INVALID_ARGUMENT", message)
    assert [entry async for entry in LabelLog(redis_client).export("news")] == []


async def test_corals_suggestions_are_erased_with_the_author_of_the_comment_they_name(
    client: Client, site: dict[str, str], admin: dict[str, str], redis_client: aioredis.Redis
) -> None:
    # Coral sends its comments through the phase and, with its toxic filter on civility too,
    # each of its moderators' decisions as a suggestion naming Coral's comment in clientToken.
    assert (await coral.set_secret(client, admin, coral.SECRET)).status == 200
    phased = copy.deepcopy(coral.NEW_COMMENT)
    phased["comment"].update(id="c-9", body="You absolute clown.")
    assert (await coral.send(client, phased)).status in (200, 204)
    stored = await (await client.get("/v1/sites/news/comments/c-9", headers=admin)).json()
    url = coral_url("http://civility.test/v1alpha1", "comments:suggestscore", site["api_key"])
    body = coral_suggest_body("You absolute clown.", "c-9", approved=False)
    assert (await post(client, url, body)).status == 200

    author = quote(stored["author"]["id"], safe="")
    erased = await client.post(f"/v1/sites/news/authors/{author}:erase", headers=admin)
    assert erased.status == 200
    assert (await erased.json())["labels_erased"] == 1
    assert [entry async for entry in LabelLog(redis_client).export("news")] == []
    # A suggestion arriving after the erasure brings nothing of theirs back.
    assert (await post(client, url, body)).status == 200
    assert [entry async for entry in LabelLog(redis_client).export("news")] == []
