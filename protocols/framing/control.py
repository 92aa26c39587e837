"""ASCII transmission-control characters used by ECR serial links.

Values from ISO 646 / ISO 1745 (the basic-mode link control that ECR
protocols such as ZVT, Nexi ECR17 and Verifone PosLink descend from).
"""

from __future__ import annotations

from typing import Final

STX: Final = 0x02  # start of text: a frame begins
ETX: Final = 0x03  # end of text: the last (or only) block of a message ends
EOT: Final = 0x04  # end of transmission: the sender releases the line
ENQ: Final = 0x05  # enquiry: "may I send?"
ACK: Final = 0x06  # positive acknowledgement of a frame (or of an ENQ)
DLE: Final = 0x10  # data link escape: marks control bytes in DLE-framed links
NAK: Final = 0x15  # negative acknowledgement: resend
ETB: Final = 0x17  # end of transmission block: more blocks of this message follow

# Single bytes a peer sends between frames to steer the link.
LINK_CONTROLS: Final = frozenset({ACK, NAK, ENQ, EOT})
