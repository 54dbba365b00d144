"""Names fixed by the Endpoint Picker Protocol (Gateway API Inference Extension, proposal 004)."""

from __future__ import annotations

DESTINATION_HEADER = "x-gateway-destination-endpoint"
"""Request header and `envoy.lb` metadata key: "ip:port[,ip:port...]", primary then fallbacks."""

LB_NAMESPACE = "envoy.lb"
SERVED_KEY = "x-gateway-destination-endpoint-served"
"""`envoy.lb` key the data plane fills with the endpoint that actually served."""

SUBSET_NAMESPACE = "envoy.lb.subset_hint"
SUBSET_KEY = "x-gateway-destination-endpoint-subset"

EXT_PROC_SERVICE = "envoy.service.ext_proc.v3.ExternalProcessor"
HEALTH_SERVICES = ("liveness", "readiness", EXT_PROC_SERVICE)

MAX_BODY_CHUNK = 62_000
"""Re-sent request bodies are cut into chunks no larger than this (as the reference picker)."""

ATTRIBUTES_KEY = "envoy.filters.http.ext_proc"
"""Key of the `attributes` map under which Envoy sends the `request_attributes` it was asked for."""
SOURCE_ADDRESS = "source.address"
"""Envoy attribute: the downstream peer's "ip:port"."""
