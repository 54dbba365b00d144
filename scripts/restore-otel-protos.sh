#!/usr/bin/env bash
# xds-protos (Envoy's protobufs) ships an old copy of the OpenTelemetry protos in the same
# `opentelemetry/proto` folder as opentelemetry-proto; whichever pip installs last wins. The OTLP
# exporter needs the real one, so reinstall it on top (its files only, no dependencies).
set -euo pipefail
python="${1:-python3}"
version=$("$python" -c 'import importlib.metadata as m; print(m.version("opentelemetry-proto"))')
"$python" -m pip install -q --force-reinstall --no-deps "opentelemetry-proto==${version}"
