"""The package face: `posgw.protocols.iso8583` names its public API in `__all__`."""

from __future__ import annotations

import subprocess
import sys

import posgw.protocols.iso8583 as iso8583
from posgw.protocols.iso8583.codec import Codec
from posgw.protocols.iso8583.errors import SpecError
from posgw.protocols.iso8583.message import Message
from posgw.protocols.iso8583.tlv import TlvNode


def test_every_name_in_all_is_exported() -> None:
    missing = [name for name in iso8583.__all__ if not hasattr(iso8583, name)]
    assert missing == []


def test_the_face_names_the_same_objects_as_the_modules() -> None:
    assert (iso8583.Codec, iso8583.Message, iso8583.SpecError, iso8583.TlvNode) == (
        Codec, Message, SpecError, TlvNode)


def test_the_table_reader_loads_first_without_an_import_loop() -> None:
    # protocols.tables is read by the iso8583 spec parser: importing it before
    # the package (as the config loaders do) must not meet a half-built module.
    code = "import posgw.protocols.tables, posgw.protocols.iso8583; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr
