#!/usr/bin/env bash
# Regenerates the committed Swift code for Protos/ with protoc and the two plugins that the
# package's own dependencies provide (the SwiftPM build plugin would compile protoc from source on
# every clean build). Needs protoc: apt-get install -y protobuf-compiler.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v protoc >/dev/null || { echo "protoc is missing: apt-get install -y protobuf-compiler" >&2; exit 1; }
swift build --product protoc-gen-swift && swift build --product protoc-gen-grpc-swift-2
bin="$(swift build --show-bin-path)"
out=Sources/JobWorkerAPI/Generated
mkdir -p "$out"
protoc --proto_path=Protos \
  --plugin=protoc-gen-swift="$bin/protoc-gen-swift" \
  --plugin=protoc-gen-grpc-swift-2="$bin/protoc-gen-grpc-swift-2" \
  --swift_out="$out" --swift_opt=Visibility=Public \
  --grpc-swift-2_out="$out" --grpc-swift-2_opt=Visibility=Public \
  jobworker/v1/jobworker.proto grpc/health/v1/health.proto
echo "generated into $out"
