"""The Stripe-style webhook signature: what it accepts and, above all, what it refuses."""

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service import signatures
from service.signatures import SignatureError

NOW = 1_800_000_000
secrets_ = st.text(min_size=1, max_size=64)
bodies = st.binary(max_size=2048)


@given(secret=secrets_, body=bodies, skew=st.integers(min_value=-300, max_value=300))
def test_a_signed_body_verifies_within_the_tolerance(secret: str, body: bytes, skew: int) -> None:
    header = signatures.sign(secret, body, timestamp=NOW + skew)
    assert signatures.verify(header, body, [secret], now=NOW) == NOW + skew


@given(secret=secrets_, body=bodies, other=bodies)
def test_a_changed_body_is_refused(secret: str, body: bytes, other: bytes) -> None:
    header = signatures.sign(secret, body, timestamp=NOW)
    if other != body:
        with pytest.raises(SignatureError, match="does not match"):
            signatures.verify(header, other, [secret], now=NOW)


@given(secret=secrets_, wrong=secrets_, body=bodies)
def test_a_wrong_secret_is_refused(secret: str, wrong: str, body: bytes) -> None:
    header = signatures.sign(wrong, body, timestamp=NOW)
    if wrong != secret:
        with pytest.raises(SignatureError, match="does not match"):
            signatures.verify(header, body, [secret], now=NOW)


@given(
    body=bodies, skew=st.integers(min_value=301, max_value=10**6), sign_=st.sampled_from([-1, 1])
)
def test_a_stale_or_future_timestamp_is_refused(body: bytes, skew: int, sign_: int) -> None:
    header = signatures.sign("s3cret", body, timestamp=NOW + sign_ * skew)
    with pytest.raises(SignatureError, match="tolerance"):
        signatures.verify(header, body, ["s3cret"], now=NOW)


@given(
    valid=st.lists(secrets_, min_size=1, max_size=3, unique=True),
    sender=st.lists(secrets_, min_size=1, max_size=3, unique=True),
    body=bodies,
)
def test_any_sent_signature_matching_any_valid_secret_is_enough(
    valid: list[str], sender: list[str], body: bytes
) -> None:
    header = signatures.sign(sender, body, timestamp=NOW)
    if set(valid) & set(sender):
        assert signatures.verify(header, body, valid, now=NOW) == NOW
    else:
        with pytest.raises(SignatureError):
            signatures.verify(header, body, valid, now=NOW)


def test_the_header_carries_one_v1_per_secret_after_the_timestamp() -> None:
    header = signatures.sign(["old", "new"], b"{}", timestamp=NOW)
    parts = header.split(",")
    assert parts[0] == f"t={NOW}"
    assert [p.split("=", 1)[0] for p in parts[1:]] == ["v1", "v1"]
    assert parts[1] == "v1=" + signatures.compute("old", NOW, b"{}")


def test_unknown_schemes_are_ignored_next_to_a_valid_v1() -> None:
    header = "v0=abc," + signatures.sign("k", b"x", timestamp=NOW)
    assert signatures.verify(header, b"x", ["k"], now=NOW) == NOW


def test_no_secret_matches_nothing() -> None:
    header = signatures.sign("k", b"x", timestamp=NOW)
    with pytest.raises(SignatureError, match="does not match"):
        signatures.verify(header, b"x", [], now=NOW)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing"),
        ("", "missing"),
        ("garbage", "malformed"),
        ("t=abc,v1=00", "malformed timestamp"),
        ("t=1,t=2,v1=00", "malformed timestamp"),
        ("t=-5,v1=00", "malformed timestamp"),
        ("t=\u00b2,v1=00", "malformed timestamp"),  # a digit to str.isdigit(), not to int()
        ("t=\u0661\u0662,v1=00", "malformed timestamp"),  # Arabic-Indic digits
        ("t=1234567890123,v1=00", "malformed timestamp"),
        ("v1=00", "no timestamp"),
        (f"t={NOW}", "no v1"),
        (f"t={NOW}," + ",".join(["v1=00"] * 9), "more than 8"),
    ],
)
def test_malformed_headers_are_refused_with_a_reason(header: str | None, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        signatures.verify(header, b"{}", ["k"], now=NOW)


def test_signing_needs_a_secret() -> None:
    with pytest.raises(ValueError, match=r"^at least one secret is needed to sign$"):
        signatures.sign([], b"{}")


@given(
    body=bodies,
    count=st.integers(min_value=1, max_value=signatures.MAX_SIGNATURES),
    data=st.data(),
)
def test_a_matching_v1_counts_at_any_position_among_the_others(
    body: bytes, count: int, data: st.DataObject
) -> None:
    position = data.draw(st.integers(min_value=0, max_value=count - 1))
    wrong = [signatures.compute(f"other-{index}", NOW, body) for index in range(count)]
    wrong[position] = signatures.compute("k", NOW, body)
    header = f"t={NOW}," + ",".join(f"v1={value}" for value in wrong)
    assert signatures.verify(header, body, ["k"], now=NOW) == NOW


@given(
    body=bodies,
    scheme=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=8).filter(
        lambda name: name not in {"t", signatures.SCHEME}
    ),
)
def test_a_valid_hmac_under_another_scheme_alone_is_refused(body: bytes, scheme: str) -> None:
    header = f"t={NOW},{scheme}={signatures.compute('k', NOW, body)}"
    with pytest.raises(SignatureError, match="no v1 signature"):
        signatures.verify(header, body, ["k"], now=NOW)


def test_exactly_the_maximum_number_of_signatures_is_accepted() -> None:
    valid = signatures.compute("k", NOW, b"{}")
    most = [*["v1=00"] * (signatures.MAX_SIGNATURES - 1), f"v1={valid}"]
    assert signatures.verify(f"t={NOW}," + ",".join(most), b"{}", ["k"], now=NOW) == NOW
    with pytest.raises(SignatureError, match=f"more than {signatures.MAX_SIGNATURES}"):
        signatures.verify(f"t={NOW},v1=00," + ",".join(most), b"{}", ["k"], now=NOW)


def test_a_v1_that_is_not_utf8_is_refused_not_an_encoding_error() -> None:
    # Header bytes that are not UTF-8 reach the check as surrogate escapes.
    header = f"t={NOW},v1=\udcff" + signatures.compute("k", NOW, b"{}")[1:]
    with pytest.raises(SignatureError, match="does not match"):
        signatures.verify(header, b"{}", ["k"], now=NOW)


def test_the_tolerance_given_is_the_one_applied() -> None:
    header = signatures.sign("k", b"{}", timestamp=NOW - 100)
    assert signatures.verify(header, b"{}", ["k"], tolerance_seconds=100, now=NOW) == NOW - 100
    with pytest.raises(SignatureError, match="outside the 99 s tolerance"):
        signatures.verify(header, b"{}", ["k"], tolerance_seconds=99, now=NOW)


def test_the_signature_is_the_documented_hmac_so_any_sender_can_compute_it() -> None:
    # Computed apart from the module: HMAC-SHA256 of b"<t>." + body, as the README documents.
    body = '{"comment": "café"}'.encode()
    expected = hmac.new(b"whsec-\xc3\xa9", str(NOW).encode() + b"." + body, hashlib.sha256)
    assert signatures.compute("whsec-é", NOW, body) == expected.hexdigest()
    assert signatures.sign("whsec-é", body, timestamp=NOW) == f"t={NOW},v1={expected.hexdigest()}"


def test_a_value_runs_from_the_first_equals_sign() -> None:
    # "v1=ab=cd" is a v1 signature that matches nothing, not an unknown "v1=ab" scheme.
    with pytest.raises(SignatureError, match="does not match"):
        signatures.verify(f"t={NOW},v1=ab=cd", b"{}", ["k"], now=NOW)
    with pytest.raises(SignatureError, match="malformed timestamp"):
        signatures.verify(f"t=={NOW},v1=ab", b"{}", ["k"], now=NOW)


def test_the_default_tolerance_is_five_minutes_either_way() -> None:
    for skew in (300, -300):
        signatures.check_timestamp(signatures.SignatureHeader(NOW + skew, ("00",)), now=NOW)
    for skew in (301, -301):
        with pytest.raises(SignatureError, match="outside the 300 s tolerance"):
            signatures.check_timestamp(signatures.SignatureHeader(NOW + skew, ("00",)), now=NOW)


def test_a_v1_in_upper_case_hex_matches() -> None:
    upper = signatures.compute("k", NOW, b"{}").upper()
    assert signatures.verify(f"t={NOW},v1={upper}", b"{}", ["k"], now=NOW) == NOW
