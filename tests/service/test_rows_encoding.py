"""The stored forms of a comment's evidence: the encoder's own text, empty or not."""

import json

from service.store.rows import encode_evidence


def test_no_evidence_is_stored_as_the_encoder_writes_it() -> None:
    assert encode_evidence({}) == json.dumps({})


def test_evidence_is_stored_as_json_lists() -> None:
    evidence = {"banned_word": [(0, 3), (10, 14)], "toxicity": [(5, 9)]}
    assert encode_evidence(evidence) == json.dumps(
        {"banned_word": [[0, 3], [10, 14]], "toxicity": [[5, 9]]}
    )
    assert json.loads(encode_evidence(evidence)) == {
        "banned_word": [[0, 3], [10, 14]],
        "toxicity": [[5, 9]],
    }
