"""Reading what Envoy sends: header maps, the client's address, the subset hint and the served
endpoint."""

from __future__ import annotations

from collections.abc import Mapping

from envoy.config.core.v3.base_pb2 import HeaderMap, Metadata
from google.protobuf.struct_pb2 import Struct, Value

from tokenway.gateway.extproc.protocol import (
    ATTRIBUTES_KEY,
    LB_NAMESPACE,
    SERVED_KEY,
    SOURCE_ADDRESS,
    SUBSET_KEY,
    SUBSET_NAMESPACE,
)
from tokenway.gateway.headers import merged_headers


def header_dict(headers: HeaderMap) -> dict[str, str]:
    """Lower-case names to values, repeats comma-joined (`merged_headers`); Envoy fills
    `raw_value` (bytes), older versions `value`."""
    return merged_headers(
        (h.key, h.raw_value.decode("utf-8", "replace") if h.raw_value else h.value)
        for h in headers.headers
    )


def downstream_peer(attributes: Mapping[str, Struct]) -> str:
    """The client IP as Envoy determined it (the `source.address` attribute), or "" without it.

    Never read from x-forwarded-for directly: the client writes that header, and the peer
    decides whether a forwarded client certificate is trusted. Envoy's own detection (the
    connection's peer with use_remote_address, or its trusted-hops rules) is what counts."""
    struct = attributes.get(ATTRIBUTES_KEY)
    if struct is None or SOURCE_ADDRESS not in struct.fields:
        return ""
    address = struct.fields[SOURCE_ADDRESS].string_value
    host, sep, port = address.rpartition(":")
    return (host if sep and port.isdigit() else address).strip("[]")


def _value(metadata: Metadata, namespace: str, key: str) -> Value | None:
    if namespace not in metadata.filter_metadata:
        return None
    return metadata.filter_metadata[namespace].fields.get(key)


def subset_hint(metadata: Metadata) -> frozenset[str] | None:
    """The endpoints the gateway allows ("ip:port"); None when it sent no hint."""
    value = _value(metadata, SUBSET_NAMESPACE, SUBSET_KEY)
    if value is None:
        return None
    if value.HasField("list_value"):
        return frozenset(v.string_value for v in value.list_value.values if v.string_value)
    # Some gateways send the list as one comma-separated string.
    return frozenset(part.strip() for part in value.string_value.split(",") if part.strip())


def served_endpoint(metadata: Metadata) -> str | None:
    value = _value(metadata, LB_NAMESPACE, SERVED_KEY)
    return value.string_value or None if value is not None else None
