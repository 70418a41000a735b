"""The typed shape of a userRegistrationDetails page: only the fields the tally reads, decoded by msgspec.

Why msgspec: it decodes a page straight into these structs in C, skipping the fields we do not declare
(names, UPNs, ids, dates: most of each record's ~580 bytes) without ever building a Python object for
them. Decoding a page into dicts with `json` and then reading them was most of the exporter's CPU time when
paging; this costs less than the `json.loads` alone (benchmarks/details_cpu.py, docs/benchmarks.md).

It is also strict where `json` is not: a number where a boolean belongs is refused (in Python 1 == True, so
a dict would let it pass for one), as is a string, an object or an empty method name.

A record is frozen (so hashable): the tally counts equal records with one C-level Counter update per page
and looks at each distinct one only when it folds. `gc=False` because a record holds only strings, booleans
and a tuple of strings, which can never form a reference cycle: the collector need not track them.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from exporter.errors import BadResponse

MethodName = Annotated[str, msgspec.Meta(min_length=1)]


class Record(msgspec.Struct, frozen=True, gc=False):
    """One user's record, as much of it as the tally reads; a field left out reads as null.

    The fields keep Graph's spelling, so msgspec maps them with no rename table.
    """

    userType: str | None = None
    isAdmin: bool | None = None
    isSsprRegistered: bool | None = None
    isSsprEnabled: bool | None = None
    isSsprCapable: bool | None = None
    isMfaRegistered: bool | None = None
    isMfaCapable: bool | None = None
    isPasswordlessCapable: bool | None = None
    methodsRegistered: tuple[MethodName, ...] | None = None


FIELDS: tuple[str, ...] = Record.__struct_fields__


class Page(msgspec.Struct, gc=False):
    value: list[Record]
    next_link: Annotated[str, msgspec.Meta(min_length=1)] | None = msgspec.field(default=None, name="@odata.nextLink")


_decoder = msgspec.json.Decoder(Page)


def decode_page(body: bytes) -> Page:
    """A page's records and its next link (None on the last page); BadResponse says what was wrong."""
    try:
        return _decoder.decode(body)
    except msgspec.ValidationError as exc:  # valid JSON of the wrong shape: msgspec names the path ($.value[3]…)
        raise BadResponse(f"a userRegistrationDetails page does not have the expected shape: {exc}") from None
    except (msgspec.DecodeError, RecursionError) as exc:  # RecursionError: nested too deep, even where skipped
        start = body[:80].decode("utf-8", "replace").strip().replace("\n", " ")
        raise BadResponse(f"the response is not valid JSON ({exc}); it starts with {start!r}") from None
