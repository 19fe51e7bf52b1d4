"""Perspective's span annotations: where ``segments`` cuts a comment into sentences."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classifier.normalize import is_blank
from service.compat.perspective import MAX_SPANS, segments, utf16_offset


def pieces(text: str) -> list[str]:
    return [text[begin:end] for begin, end in segments(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "I asked Mr. Smith and Dr. Jones. They agreed.",
            ["I asked Mr. Smith and Dr. Jones.", "They agreed."],
        ),
        (
            "Use a tool, e.g. a hammer. Or i.e. a rock.",
            ["Use a tool, e.g. a hammer.", "Or i.e. a rock."],
        ),
        ("It rose 3.5 percent. Then 0.25 more.", ["It rose 3.5 percent.", "Then 0.25 more."]),
        ("Wait... what? I see… Then it ended.", ["Wait... what?", "I see…", "Then it ended."]),
        ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
        ("\u201cStop.\u201d Then he left.", ["\u201cStop.\u201d", "Then he left."]),
        ('"Help!" she cried. "Stop," he said.', ['"Help!" she cried.', '"Stop," he said.']),
        ("It works (mostly.) Next one.", ["It works (mostly.)", "Next one."]),
        ("J. R. R. Tolkien wrote it. Read it.", ["J. R. R. Tolkien wrote it.", "Read it."]),
        (
            "The U.S. and the U.K. agree. At 5 p.m. They met.",
            ["The U.S. and the U.K. agree.", "At 5 p.m.", "They met."],
        ),
        (
            "Pens, inks etc. are sold. Pens, inks, etc. Then more.",
            ["Pens, inks etc. are sold.", "Pens, inks, etc.", "Then more."],
        ),
        ("See example.com/a.html today. Fine.", ["See example.com/a.html today.", "Fine."]),
        ("1. First point\n2. Second point. More.", ["1. First point", "2. Second point.", "More."]),
        ("I was 10. Then I grew.", ["I was 10.", "Then I grew."]),
        ("no capitals here. none at all! ok", ["no capitals here.", "none at all!", "ok"]),
        ("Really?! Yes!!! Fine.", ["Really?!", "Yes!!!", "Fine."]),
        ("A line\r\nAnother\u2028A third", ["A line", "Another", "A third"]),
        ("I have a Plan B. It works.", ["I have a Plan B.", "It works."]),
        ("Take vitamin C. The rest is rest.", ["Take vitamin C.", "The rest is rest."]),
        ("Pick option a. Then wait.", ["Pick option a.", "Then wait."]),
        ('Plan B. "It works," he said.', ["Plan B.", '"It works," he said.']),
        ("The U.S. Army agreed. It helped.", ["The U.S. Army agreed.", "It helped."]),
        ("We moved to the U.S. It was cold.", ["We moved to the U.S.", "It was cold."]),
        ("P.S. I wrote back.", ["P.S.", "I wrote back."]),
        ("John F. Kennedy spoke. Then he left.", ["John F. Kennedy spoke.", "Then he left."]),
        ("J. A. Smith came. I met him.", ["J. A. Smith came.", "I met him."]),
        ("Washington D.C. United won. We cheered.", ["Washington D.C. United won.", "We cheered."]),
    ],
)
def test_sentences_end_where_a_reader_ends_them(text: str, expected: list[str]) -> None:
    assert pieces(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dr.", ["Dr."]),
        ("e.g.", ["e.g."]),
        ("...", ["..."]),
        ("3.5", ["3.5"]),
        ('"Stop."', ['"Stop."']),
        ("A. B. C.", ["A. B. C."]),
        ("Mr. ", ["Mr."]),
        ("\u200b.\u200b", ["."]),
        (" \u200b \n\u2060", []),
    ],
)
def test_a_text_without_an_end_inside_is_one_part(text: str, expected: list[str]) -> None:
    assert pieces(text) == expected


# Sentences whose inner stops end nothing, each starting with a capital and ending with stops.
_INNER = st.sampled_from(
    [
        "calm",
        "harbour",
        "boats",
        "3.5",
        "0.25%",
        "e.g. a ferry",
        "i.e. the pier",
        "Mr. Brown",
        "Dr. Okafor",
        "J. Smith",
        "the U.S. coast",
        "at 5 p.m. sharp",
        "rain etc. came",
        "example.com",
        "wait... then",
        "so\u2026 maybe",
        '"yes," he said',
        '"stop!" she said',
        "(quietly)",
        "\U0001f600",
        "caf\u00e9",
        "John F. Kennedy",
        "J. A. Smith",
        "the U.S. Army",
    ]
)
_FIRST = st.sampled_from(["The", "A", "Boats", "It", "\u00c9mile", "Mr. Brown", "\U0001f600 Fun"])
_END = st.sampled_from([".", "!", "?", "?!", "...", "\u2026", '."', '!"', ".)", ".\u201d", "!!!"])


@st.composite
def sentence(draw: st.DrawFn) -> str:
    words = draw(st.lists(_INNER, min_size=1, max_size=6))
    return " ".join([draw(_FIRST), *words]) + draw(_END)


@given(
    st.lists(sentence(), min_size=1, max_size=8),
    st.lists(
        st.sampled_from([" ", "  ", "\n", " \u200b", "\u200b ", "\r\n", "\t"]),
        min_size=8,
        max_size=8,
    ),
)
@settings(max_examples=400, deadline=None)  # the CI machine is shared; timing says nothing here
def test_sentences_written_one_after_another_come_back_one_by_one(
    sentences: list[str], gaps: list[str]
) -> None:
    text = "".join(part + gap for part, gap in zip(sentences, gaps, strict=False))
    assert pieces(text) == sentences


_ANY = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(".!?…\"'”’)(“ \n\r\t\u200b\u00a0\u2028aAzZ0é9\U0001f600")),
        st.characters(codec="utf-8"),
    ),
    max_size=200,
)


# A sentence's first word that is never a name, and last words that are a lone letter or an
# initialism: the sentence ends at their stop when such a word follows.
_OPENER = st.sampled_from(["It", "The", "A", "We", "Then", "I", "But", '"It', "\u201cWhat"])
_LETTER_LAST = st.sampled_from(["Plan B", "vitamin C", "option a", "the U.S", "at 5 p.m", "P.S"])


@given(
    st.lists(
        st.tuples(_OPENER, st.lists(_INNER, max_size=4), _LETTER_LAST),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from([" ", "  ", " \u200b", "\t"]),
)
@settings(max_examples=300, deadline=None)
def test_a_lone_letter_or_initialism_ends_its_sentence_before_a_word_that_opens_one(
    parts: list[tuple[str, list[str], str]], gap: str
) -> None:
    sentences = [" ".join([first, *words, last]) + "." for first, words, last in parts]
    assert pieces(gap.join(sentences)) == sentences


@given(_ANY)
@settings(max_examples=500, deadline=None)
def test_parts_are_in_order_trimmed_and_leave_nothing_visible_out(text: str) -> None:
    found = segments(text)
    assert len(found) <= MAX_SPANS
    covered = 0
    for begin, end in found:
        assert covered <= begin < end <= len(text)
        assert is_blank(text[covered:begin])  # between parts: only spaces and invisible ones
        assert not is_blank(text[begin])
        assert not text[end - 1].isspace()
        covered = end
    assert is_blank(text[covered:])


@given(st.lists(sentence(), min_size=MAX_SPANS + 1, max_size=3 * MAX_SPANS))
@settings(max_examples=20, deadline=None)
def test_a_long_text_has_at_most_max_spans_parts_covering_it(sentences: list[str]) -> None:
    text = " ".join(sentences)
    found = segments(text)
    assert len(found) <= MAX_SPANS
    assert (found[0][0], found[-1][1]) == (0, len(text))


@given(_ANY)
@settings(max_examples=300, deadline=None)
def test_offsets_in_utf16_units_slice_the_same_text(text: str) -> None:
    units = text.encode("utf-16-le", "surrogatepass")
    for begin, end in segments(text):
        sliced = units[2 * utf16_offset(text, begin) : 2 * utf16_offset(text, end)]
        assert sliced.decode("utf-16-le", "surrogatepass") == text[begin:end]
