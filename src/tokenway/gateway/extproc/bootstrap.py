"""The Envoy bootstrap for tokenway as Endpoint Picker: a pure function of the platform file.

Wiring (docs/envoy.md explains each choice):
- an ext_proc filter calling the picker cluster, streamed bodies, `failure_mode_allow` for
  FailOpen, forwarding the `envoy.lb` and subset-hint metadata namespaces;
- one upstream cluster of the pools' endpoints with the override_host load-balancing policy,
  which takes the picker's ordered "ip:port,ip:port" list from `envoy.lb` metadata (or the
  destination header) and walks it on retries, records the endpoint that served under
  `envoy.lb/x-gateway-destination-endpoint-served`, and balances round robin when the picker
  named nobody (FailOpen with the picker down);
- retries before the first byte only (Envoy never retries a response it started relaying).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tokenway.config.platform import PlatformConfig
from tokenway.gateway.extproc.protocol import (
    DESTINATION_HEADER,
    EXT_PROC_SERVICE,
    LB_NAMESPACE,
    SERVED_KEY,
    SOURCE_ADDRESS,
    SUBSET_NAMESPACE,
)

PICKER_CLUSTER = "tokenway_picker"
HEALTH_CHECK_INTERVAL = 1.0
"""Seconds between Envoy's gRPC health checks of each picker (one failure marks it down)."""
UPSTREAM_CLUSTER = "tokenway_endpoints"


@dataclass(frozen=True, slots=True)
class PickerAddress:
    host: str
    port: int
    health_port: int


class BootstrapError(ValueError):
    """The platform file cannot be expressed as an Envoy bootstrap."""


# Envoy's defaults (1,024 requests, 3 concurrent retries per cluster) would cap long LLM
# streams (and their ext_proc streams) and turn retries into 503s; admission is tokenway's job.
_NO_CIRCUIT_BREAKING = {
    "thresholds": [
        {
            "max_connections": 1_000_000,
            "max_pending_requests": 1_000_000,
            "max_requests": 1_000_000,
            "max_retries": 1_000_000,
        }
    ]
}


def _type(extension: str) -> str:
    return f"type.googleapis.com/envoy.extensions.{extension}"


def _socket(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def _seconds(value: float) -> str:
    return f"{value:.3f}s"


def endpoint_addresses(urls: Sequence[str]) -> list[tuple[str, int]]:
    """(ip, port) of model-server URLs; Envoy's picker cluster matches hosts by IP literal."""
    result = []
    for url in urls:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        host, port = parts.hostname or "", parts.port
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise BootstrapError(
                f"endpoint {url!r}: Envoy needs an IP address, not a host name"
            ) from None
        if port is None:
            raise BootstrapError(f"endpoint {url!r} has no port")
        result.append((host, port))
    if not result:
        raise BootstrapError("pools: no endpoints to route to (list them under pools[].endpoints)")
    return result


def _ext_proc_filter(config: PlatformConfig) -> dict[str, Any]:
    picker = config.picker
    body_mode = picker.request_body_mode
    return {
        "name": "envoy.filters.http.ext_proc",
        "typed_config": {
            "@type": _type("filters.http.ext_proc.v3.ExternalProcessor"),
            "grpc_service": {
                "envoy_grpc": {"cluster_name": PICKER_CLUSTER},
                "timeout": _seconds(picker.message_timeout),
            },
            "failure_mode_allow": picker.failure_mode == "FailOpen",
            # BUFFERED: hand the body over with the headers instead of after their answer,
            # saving a round trip through the picker per request; Envoy still holds the body,
            # so failing open stays possible.
            "send_body_without_waiting_for_header_response": body_mode == "BUFFERED",
            "message_timeout": _seconds(picker.message_timeout),
            # The client's address, which x-forwarded-for (client-written) cannot be trusted for.
            "request_attributes": [SOURCE_ADDRESS],
            "processing_mode": {
                "request_header_mode": "SEND",
                "response_header_mode": "SEND",
                "request_body_mode": body_mode,
                "response_body_mode": "FULL_DUPLEX_STREAMED",
                "request_trailer_mode": "SEND" if body_mode == "FULL_DUPLEX_STREAMED" else "SKIP",
                "response_trailer_mode": "SEND",
            },
            "metadata_options": {
                "forwarding_namespaces": {"untyped": [LB_NAMESPACE, SUBSET_NAMESPACE]},
                # Without this Envoy drops the `envoy.lb` metadata the picker returns.
                "receiving_namespaces": {"untyped": [LB_NAMESPACE]},
            },
        },
    }


def _listener(config: PlatformConfig, host: str, port: int) -> dict[str, Any]:
    gateway = config.gateway
    route = {
        "match": {"prefix": "/"},
        "route": {
            "cluster": UPSTREAM_CLUSTER,
            "timeout": "0s",
            "idle_timeout": _seconds(gateway.timeouts.idle),
            "retry_policy": {
                "retry_on": "connect-failure,refused-stream,reset,retriable-status-codes",
                "retriable_status_codes": [502, 503, 504],
                "num_retries": gateway.retries.before_first_byte,
                # Past the picker's list (or without one) round robin must not pick a host
                # that already failed this request.
                "retry_host_predicate": [
                    {
                        "name": "envoy.retry_host_predicates.previous_hosts",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.retry.host."
                            "previous_hosts.v3.PreviousHostsPredicate"
                        },
                    }
                ],
                "host_selection_retry_max_attempts": 5,
                "per_try_timeout": _seconds(gateway.timeouts.first_byte),
            },
        },
    }
    manager = {
        "@type": _type("filters.network.http_connection_manager.v3.HttpConnectionManager"),
        "stat_prefix": "tokenway",
        "codec_type": "AUTO",
        # This Envoy is the edge: the client is the connection's peer, not what a client-written
        # x-forwarded-for claims (the picker reads it as the `source.address` attribute).
        "use_remote_address": True,
        "stream_idle_timeout": _seconds(gateway.timeouts.idle),
        "route_config": {
            "name": "tokenway",
            "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [route]}],
        },
        "http_filters": [
            _ext_proc_filter(config),
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": _type("filters.http.router.v3.Router")},
            },
        ],
    }
    return {
        "name": "tokenway",
        "address": _socket(host, port),
        "per_connection_buffer_limit_bytes": config.gateway.max_request_bytes,
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": manager,
                    }
                ]
            }
        ],
    }


def _picker_cluster(config: PlatformConfig, pickers: Sequence[PickerAddress]) -> dict[str, Any]:
    endpoints = [
        {
            "endpoint": {
                "address": _socket(p.host, p.port),
                "health_check_config": {"port_value": p.health_port},
            }
        }
        for p in pickers
    ]
    return {
        "name": PICKER_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "lb_policy": "ROUND_ROBIN",
        "circuit_breakers": _NO_CIRCUIT_BREAKING,
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": _type("upstreams.http.v3.HttpProtocolOptions"),
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        "health_checks": [
            {
                "timeout": "1s",
                "interval": _seconds(HEALTH_CHECK_INTERVAL),
                "no_traffic_interval": _seconds(HEALTH_CHECK_INTERVAL),
                "unhealthy_threshold": 1,
                "healthy_threshold": 1,
                "grpc_health_check": {"service_name": EXT_PROC_SERVICE},
            }
        ],
        "load_assignment": {
            "cluster_name": PICKER_CLUSTER,
            "endpoints": [{"lb_endpoints": endpoints}],
        },
    }


def _upstream_cluster(
    config: PlatformConfig, endpoints: Sequence[tuple[str, int]]
) -> dict[str, Any]:
    lb_endpoints = [{"endpoint": {"address": _socket(host, port)}} for host, port in endpoints]
    override_host = {
        "@type": _type("load_balancing_policies.override_host.v3.OverrideHost"),
        "override_host_sources": [
            {"metadata": {"key": LB_NAMESPACE, "path": [{"key": DESTINATION_HEADER}]}},
            {"header": DESTINATION_HEADER},
        ],
        "selected_host_key": {"key": LB_NAMESPACE, "path": [{"key": SERVED_KEY}]},
        "fallback_policy": {
            "policies": [
                {
                    "typed_extension_config": {
                        "name": "envoy.load_balancing_policies.round_robin",
                        "typed_config": {
                            "@type": _type("load_balancing_policies.round_robin.v3.RoundRobin")
                        },
                    }
                }
            ]
        },
    }
    return {
        "name": UPSTREAM_CLUSTER,
        "type": "STATIC",
        "connect_timeout": _seconds(config.gateway.timeouts.connect),
        "circuit_breakers": _NO_CIRCUIT_BREAKING,
        "load_balancing_policy": {
            "policies": [
                {
                    "typed_extension_config": {
                        "name": "envoy.load_balancing_policies.override_host",
                        "typed_config": override_host,
                    }
                }
            ]
        },
        "load_assignment": {
            "cluster_name": UPSTREAM_CLUSTER,
            "endpoints": [{"lb_endpoints": lb_endpoints}],
        },
    }


def envoy_bootstrap(
    config: PlatformConfig,
    *,
    listen: tuple[str, int] | None = None,
    admin_port: int | None = None,
    pickers: Sequence[PickerAddress] | None = None,
    endpoints: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The bootstrap as a dict (JSON/YAML-ready). Defaults come from the platform file:
    `gateway.listen` for Envoy, `picker.listen`/`healthListen` for one picker, and every
    pool's endpoints."""
    host, port = listen or (config.gateway.host, config.gateway.port)
    if pickers is None:
        picker = config.picker
        pickers = [
            PickerAddress(
                picker.listen.rpartition(":")[0].strip("[]"),
                int(picker.listen.rpartition(":")[2]),
                int(picker.health_listen.rpartition(":")[2]),
            )
        ]
    urls = (
        list(endpoints) if endpoints is not None else [u for p in config.pools for u in p.endpoints]
    )
    return {
        "admin": {
            "address": _socket(
                "127.0.0.1", config.picker.envoy_admin_port if admin_port is None else admin_port
            )
        },
        "static_resources": {
            "listeners": [_listener(config, host, port)],
            "clusters": [
                _picker_cluster(config, pickers),
                _upstream_cluster(config, endpoint_addresses(urls)),
            ],
        },
    }
