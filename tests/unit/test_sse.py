"""The event-stream decoder against the HTML standard's interpretation rules, fed in pieces."""

from __future__ import annotations

from controller.app.sse import Comment, ServerEvent, SseDecoder


def decode(*pieces: str) -> tuple[list[ServerEvent | Comment], SseDecoder]:
    decoder = SseDecoder()
    items: list[ServerEvent | Comment] = []
    for piece in pieces:
        items += decoder.feed(piece)
    return items, decoder


def events(*pieces: str) -> list[ServerEvent]:
    return [i for i in decode(*pieces)[0] if isinstance(i, ServerEvent)]


def test_the_line_streams_messages() -> None:
    stream = 'retry: 2000\n: linectl line view every 1 s\n\nevent: line\ndata: {"a": 1}\n\n'
    items, decoder = decode(stream)
    assert items == [
        Comment("linectl line view every 1 s"),
        ServerEvent("line", '{"a": 1}'),
    ]
    assert decoder.retry_ms == 2000


def test_every_way_a_line_can_end_and_be_cut() -> None:
    whole = "event: line\r\ndata: 1\r\n\r\nevent: line\rdata: 2\r\revent: line\ndata: 3\n\n"
    expected = [ServerEvent("line", str(n)) for n in (1, 2, 3)]
    assert events(whole) == expected
    # cut after every character: a CR LF pair split over two pieces is still one line end
    assert events(*whole) == expected
    assert events(*(c for ch in whole for c in (ch, ""))) == expected  # empty pieces too
    for cut in range(1, len(whole)):
        assert events(whole[:cut], whole[cut:]) == expected, cut


def test_data_lines_join_and_fields_follow_the_rules() -> None:
    stream = (
        "\ufeffdata: first\n"
        "data:second, no space\n"
        "data\n"  # a field without a colon: data with an empty value
        "data:  two spaces keep one\n"
        "unknown: ignored\n"
        "id: 7\n"
        "\n"
    )
    assert events(stream) == [
        ServerEvent("message", "first\nsecond, no space\n\n two spaces keep one", "7")
    ]


def test_an_event_without_data_is_not_dispatched_and_the_type_resets() -> None:
    assert events("event: line\n\ndata: x\n\n") == [ServerEvent("message", "x")]


def test_ids_and_retries_that_do_not_count() -> None:
    items, decoder = decode("id: 1\ndata: a\n\nid: bad\0id\nretry: 1.5\ndata: b\n\n")
    assert [(e.data, e.id) for e in items if isinstance(e, ServerEvent)] == [("a", "1"), ("b", "1")]
    assert decoder.retry_ms is None


def test_heartbeats_are_comments_and_an_unfinished_event_waits() -> None:
    items, _ = decode(": heartbeat\n\n", "event: line\ndata: {}")
    assert items == [Comment("heartbeat")]  # the last event has no blank line yet


def test_text_past_the_line_separators_is_data() -> None:
    # JSON may hold U+2028 and other characters str.splitlines() would split at
    text = 'event: line\ndata: {"reason": "a\u2028b\x0cc\x1cd"}\n\n'
    assert events(text) == [ServerEvent("line", '{"reason": "a\u2028b\x0cc\x1cd"}')]
