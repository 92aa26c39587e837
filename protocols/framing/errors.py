"""The one exception the framing package raises at run time.

Bytes from the peer never raise: they become events (`FrameRejected`,
`GarbageSkipped`, ...). What raises is a request from *our* side that the
configured framing cannot carry (h11's "local protocol error"): a payload over
`max_frame`, an ETX inside an STX/ETX payload without an inner length header,
an envelope that does not match the profile, a second `send` while the first
still waits for its ACK. Bad *configuration* raises
`protocols.iso8583.errors.SpecError` instead, naming the profile key.
"""

from __future__ import annotations


class FramingError(ValueError):
    """Our side asked the framer or the link for something it cannot do."""
