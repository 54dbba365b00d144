"""Building ext_proc ProcessingResponse messages: pure functions from decisions to protobufs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from envoy.config.core.v3.base_pb2 import HeaderValue, HeaderValueOption
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.type.v3.http_status_pb2 import HttpStatus
from google.protobuf.struct_pb2 import Struct

from tokenway.gateway.errors import GatewayError
from tokenway.gateway.extproc.protocol import DESTINATION_HEADER, LB_NAMESPACE, MAX_BODY_CHUNK

_OVERWRITE = HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD


def header_mutation(headers: Mapping[str, str]) -> pb.HeaderMutation:
    # raw_value: Envoy rejects mutations that carry only the deprecated string `value`.
    return pb.HeaderMutation(
        set_headers=[
            HeaderValueOption(
                header=HeaderValue(key=name, raw_value=value.encode()), append_action=_OVERWRITE
            )
            for name, value in headers.items()
        ]
    )


def destination_metadata(endpoints: str) -> Struct:
    metadata = Struct()
    metadata.update({LB_NAMESPACE: {DESTINATION_HEADER: endpoints}})
    return metadata


def routed_common(headers: Mapping[str, str], body: bytes | None = None) -> pb.CommonResponse:
    """Headers set for the chosen endpoints; the route is recomputed so the destination counts."""
    common = pb.CommonResponse(header_mutation=header_mutation(headers), clear_route_cache=True)
    if body is not None:
        common.body_mutation.body = body
    return common


def routed_headers(headers: Mapping[str, str], endpoints: str) -> pb.ProcessingResponse:
    return pb.ProcessingResponse(
        request_headers=pb.HeadersResponse(response=routed_common(headers)),
        dynamic_metadata=destination_metadata(endpoints),
    )


def routed_buffered_body(
    headers: Mapping[str, str], endpoints: str, body: bytes
) -> pb.ProcessingResponse:
    """BUFFERED mode: headers are still held by Envoy, so they are set with the body."""
    return pb.ProcessingResponse(
        request_body=pb.BodyResponse(response=routed_common(headers, body)),
        dynamic_metadata=destination_metadata(endpoints),
    )


def streamed_body(
    body: bytes, *, end_of_stream: bool, request: bool = True
) -> Iterable[pb.ProcessingResponse]:
    """FULL_DUPLEX_STREAMED: the body as chunks of at most MAX_BODY_CHUNK bytes."""
    chunks = [body[i : i + MAX_BODY_CHUNK] for i in range(0, len(body), MAX_BODY_CHUNK)] or [b""]
    for index, chunk in enumerate(chunks):
        last = end_of_stream and index == len(chunks) - 1
        mutation = pb.BodyMutation(
            streamed_response=pb.StreamedBodyResponse(body=chunk, end_of_stream=last)
        )
        response = pb.BodyResponse(response=pb.CommonResponse(body_mutation=mutation))
        if request:
            yield pb.ProcessingResponse(request_body=response)
        else:
            yield pb.ProcessingResponse(response_body=response)


def continue_request_headers() -> pb.ProcessingResponse:
    return pb.ProcessingResponse(request_headers=pb.HeadersResponse())


def continue_request_trailers() -> pb.ProcessingResponse:
    return pb.ProcessingResponse(request_trailers=pb.TrailersResponse())


def response_headers(headers: Mapping[str, str]) -> pb.ProcessingResponse:
    common = pb.CommonResponse(header_mutation=header_mutation(headers)) if headers else None
    return pb.ProcessingResponse(response_headers=pb.HeadersResponse(response=common))


def continue_response_body() -> pb.ProcessingResponse:
    return pb.ProcessingResponse(response_body=pb.BodyResponse())


def continue_response_trailers() -> pb.ProcessingResponse:
    return pb.ProcessingResponse(response_trailers=pb.TrailersResponse())


def immediate(error: GatewayError) -> pb.ProcessingResponse:
    """A rejection answered by Envoy itself, with the OpenAI-style error body."""
    headers = {"content-type": "application/json", **error.headers}
    return pb.ProcessingResponse(
        immediate_response=pb.ImmediateResponse(
            status=HttpStatus(code=error.status),  # type: ignore[arg-type]
            headers=header_mutation(headers),
            body=error.body_bytes(),
            details=f"tokenway_{error.code or error.status}",
        )
    )
