"""Builds the authgate.v1 stubs from the proto into the package at build
time (pip install ./clients/python, python -m build), so importing the
package never runs protoc."""
from importlib import resources
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent


def proto_dir() -> Path:
    # In the repository: ../../proto; in an sdist: ./proto (copied by
    # MANIFEST.in's graft when the sdist is made from the repository).
    for candidate in (HERE / "proto", HERE.parents[1] / "proto"):
        if (candidate / "authgate/v1/auth.proto").exists():
            return candidate
    raise SystemExit("authgate/v1/auth.proto not found (build from the repository or an sdist)")


def generate_stubs():
    """Writes authgate_client/_gen from the proto (each build: the proto is
    the source of truth)."""
    from grpc_tools import protoc

    out = HERE / "authgate_client" / "_gen"
    out.mkdir(exist_ok=True)
    well_known = str(resources.files("grpc_tools") / "_proto")
    rc = protoc.main([
        "protoc", f"-I{proto_dir()}", f"-I{well_known}",
        f"--python_out={out}", f"--grpc_python_out={out}",
        "authgate/v1/auth.proto",
    ])
    if rc != 0:
        raise SystemExit("protoc failed on authgate/v1/auth.proto")
    for pkg in (out, out / "authgate", out / "authgate" / "v1"):
        (pkg / "__init__.py").touch()
    # The generated gRPC module imports its messages as a top-level
    # package; make that import relative to ours.
    grpc_mod = out / "authgate" / "v1" / "auth_pb2_grpc.py"
    text = grpc_mod.read_text()
    grpc_mod.write_text(text.replace("from authgate.v1 import auth_pb2", "from . import auth_pb2"))


# setuptools lists the packages (egg_info) before build_py runs, so the
# stubs are made as soon as a build starts, not later.
generate_stubs()
setup()
