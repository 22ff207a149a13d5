"""Generate the committed gRPC stubs from kubekms_plugin/v2/api.proto (grpcio-tools).

``python -m kubekms_plugin.protogen [OUTPUT_DIR]`` writes ``kubekms_plugin/v2/api_pb2*.py``
under OUTPUT_DIR (default: the folder that holds the package). A test regenerates into a
temporary directory and compares, so the committed stubs never drift from the .proto.
"""

from __future__ import annotations

import sys
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # the folder holding kubekms_plugin/
PROTO = "kubekms_plugin/v2/api.proto"


def generate(output_root: Path = PACKAGE_ROOT) -> list[Path]:
    from grpc_tools import protoc  # a build/test tool, not a runtime dependency

    (output_root / "kubekms_plugin" / "v2").mkdir(parents=True, exist_ok=True)
    arguments = [
        "protoc",
        f"-I{PACKAGE_ROOT}",
        f"--python_out={output_root}",
        f"--pyi_out={output_root}",
        f"--grpc_python_out={output_root}",
        PROTO,
    ]
    if protoc.main(arguments) != 0:
        raise RuntimeError(f"protoc failed for {PROTO}")
    return sorted((output_root / "kubekms_plugin" / "v2").glob("api_pb2*"))


if __name__ == "__main__":
    for path in generate(Path(sys.argv[1]) if len(sys.argv) > 1 else PACKAGE_ROOT):
        print(path)
