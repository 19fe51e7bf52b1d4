"""Every moment the API writes has one form, UTC to the millisecond with a Z, whether a model
answers it through pydantic or a ``to_json`` writes it by hand."""

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from service.domain import Author, Comment, CommentArticle, SecretRotation, State
from service.times import HOUR_MS, ceil_ms, from_ms, hour_bucket, iso, iso_from_ms, to_ms

MOMENT_MS = 1_800_000_000_345


def test_a_whole_second_keeps_its_milliseconds() -> None:
    assert iso(datetime(2026, 12, 5, 20, 25, 12, tzinfo=UTC)) == "2026-12-05T20:25:12.000Z"
    assert iso_from_ms(MOMENT_MS) == "2027-01-15T08:00:00.345Z"


def test_a_moment_in_another_zone_is_written_in_utc() -> None:
    moment = datetime(2026, 12, 5, 22, 25, tzinfo=timezone(timedelta(hours=2)))
    assert iso(moment) == "2026-12-05T20:25:00.000Z"


def test_pydantic_and_hand_written_answers_agree() -> None:
    moment = from_ms(MOMENT_MS)
    comment = Comment(
        id="c1",
        article_id="a1",
        article=CommentArticle(id="a1"),
        parent_id=None,
        author=Author(id="u1"),
        text="hello",
        state=State.APPROVED,
        reasons=(),
        scores={},
        evidence={},
        model=None,
        version=1,
        decided_by="auto:test",
        decided_at=moment,
        created_at=moment,
        updated_at=moment,
        claimed_by="mod_x",
        lease_until=from_ms(MOMENT_MS - 345),
    )
    by_hand = comment.to_json()
    assert by_hand["created_at"] == comment.model_dump(mode="json")["created_at"]
    assert by_hand["created_at"] == "2027-01-15T08:00:00.345Z"
    assert by_hand["lease_until"] == "2027-01-15T08:00:00.000Z"
    rotation = SecretRotation(webhook_secret="whsec_x", previous_valid_until=moment)
    assert rotation.model_dump(mode="json")["previous_valid_until"] == "2027-01-15T08:00:00.345Z"


def test_the_document_still_calls_an_answers_moment_a_date_time() -> None:
    schema = SecretRotation.model_json_schema(mode="serialization")
    assert schema["properties"]["previous_valid_until"] == {
        "format": "date-time",
        "title": "Previous Valid Until",
        "type": "string",
    }


@given(st.integers(min_value=-(10**13), max_value=10**13))
def test_an_hour_is_named_as_its_moment_formats(ms: int) -> None:
    assert hour_bucket(ms) == from_ms(ms).strftime("%Y%m%d%H")


def test_the_hour_changes_at_its_first_millisecond() -> None:
    start = 490_000 * HOUR_MS
    assert hour_bucket(start - 1) == "2025112415"
    assert hour_bucket(start) == hour_bucket(start + HOUR_MS - 1) == "2025112416"
    assert hour_bucket(-1) == "1969123123"


# From 1970 to the last storable millisecond (service.domain.LATEST_CREATED_AT).
@given(st.integers(min_value=0, max_value=253_402_214_399_999))
def test_every_millisecond_is_stored_as_itself(ms: int) -> None:
    moment = from_ms(ms)
    assert to_ms(moment) == ms
    assert to_ms(datetime.fromisoformat(iso(moment))) == ms


def test_a_moment_within_a_millisecond_rounds_up_to_the_next_one() -> None:
    moment = from_ms(MOMENT_MS)
    assert ceil_ms(moment) == MOMENT_MS
    assert ceil_ms(moment + timedelta(microseconds=1)) == MOMENT_MS + 1
    assert ceil_ms(moment - timedelta(microseconds=1)) == MOMENT_MS
