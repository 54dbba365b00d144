from __future__ import annotations

import pytest
from google.protobuf.struct_pb2 import Struct

from tokenway.gateway.extproc.headers import downstream_peer


def attributes(address: str) -> dict[str, Struct]:
    struct = Struct()
    struct.update({"source.address": address})
    return {"envoy.filters.http.ext_proc": struct}


@pytest.mark.parametrize(
    ("address", "peer"),
    [
        ("10.1.2.3:51234", "10.1.2.3"),
        ("[2001:db8::7]:443", "2001:db8::7"),
        ("10.1.2.3", "10.1.2.3"),
    ],
)
def test_peer_comes_from_envoys_source_address(address: str, peer: str) -> None:
    assert downstream_peer(attributes(address)) == peer


def test_no_attribute_means_no_peer() -> None:
    assert downstream_peer({}) == ""
    assert downstream_peer({"envoy.filters.http.ext_proc": Struct()}) == ""
