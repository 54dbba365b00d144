"""The ext_proc gRPC service: one ExtProcStream per Envoy stream (one HTTP request)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

from tokenway.gateway.extproc.stream import ExtProcStream
from tokenway.gateway.pipeline import Pipeline


class ExternalProcessor(pb_grpc.ExternalProcessorServicer):
    """Drives the shared pipeline from Envoy's ext_proc messages."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    async def Process(
        self,
        request_iterator: AsyncIterator[pb.ProcessingRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.ProcessingResponse]:
        stream = ExtProcStream(self._pipeline)
        try:
            async for message in request_iterator:
                for response in await stream.handle(message):
                    yield response
        finally:
            await stream.close()
