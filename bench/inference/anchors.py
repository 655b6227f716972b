"""Anchor systems in environments of their own (issue 17).

``infinity-emb`` pins older transformers, numpy and huggingface_hub than the hub uses, and
``llama-cpp-python`` is an sdist that compiles llama.cpp: neither goes into the hub's venv. Each
anchor gets a virtual environment that the benchmark creates on first use and keeps under
``~/.cache/aicommons-bench/`` (``AICOMMONS_BENCH_CACHE``), outside the repository. torch is pinned
to the hub's own version in every one of them, so no anchor brings a different torch.

``python -m bench.inference.anchors`` builds both and prints what each took;
``python -m bench.inference.anchors --hub`` installs llama-cpp-python (the same cached wheel) into
the running interpreter's environment, where the hub serves GGUF files through it (.ci/run does so).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

TORCH = "torch==2.13.0"
LLAMA_CPP = "llama-cpp-python==0.3.36"
# The smallest llama.cpp build that serves: no tests, examples, tools or its own HTTP server (the
# Python package brings its own), native CPU instructions, OpenMP threads.
LLAMA_CMAKE_ARGS = ("-DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF "
                    "-DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_BLAS=OFF -DLLAMA_CURL=OFF "
                    "-DGGML_OPENMP=ON")

ANCHORS = {
    # name: (packages, whether it needs torch)
    "llama": (["llama-cpp-python[server]==0.3.36"], False),
    "infinity": (["infinity-emb[server,torch]==0.0.78"], True),
}


def cache_dir() -> Path:
    return Path(os.environ.get("AICOMMONS_BENCH_CACHE", Path.home() / ".cache" / "aicommons-bench"))


def wheel_dir() -> Path:
    """Built wheels (llama-cpp-python's, 20 minutes of compiling) are kept here and reused."""
    return cache_dir() / "wheels"


def venv_python(name: str) -> Path:
    return cache_dir() / f"{name}-venv" / "bin" / "python"


def build_llama_wheel() -> Path | None:
    """Compile llama-cpp-python once into ``wheels/`` (niced, one compiler job at a time)."""
    found = sorted(wheel_dir().glob("llama_cpp_python-*.whl"))
    if found:
        return found[-1]
    wheel_dir().mkdir(parents=True, exist_ok=True)
    jobs = os.environ.get("AICOMMONS_BENCH_BUILD_JOBS", "1")  # 1: the box stays usable while it compiles
    env = dict(os.environ, CMAKE_ARGS=LLAMA_CMAKE_ARGS, CMAKE_BUILD_PARALLEL_LEVEL=jobs, MAX_JOBS=jobs)
    subprocess.run(["nice", "-n", "19", sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-binary",
                    "llama-cpp-python", LLAMA_CPP, "-w", str(wheel_dir())], env=env, check=True)
    found = sorted(wheel_dir().glob("llama_cpp_python-*.whl"))
    return found[-1] if found else None


def ensure(name: str) -> Path:
    """The anchor's interpreter, its venv created (and the packages installed) on first use."""
    python = venv_python(name)
    marker = python.parent.parent / ".complete"
    if marker.exists():
        return python
    packages, torch = ANCHORS[name]
    if name == "llama":
        build_llama_wheel()
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(python.parent.parent)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--find-links", str(wheel_dir())]
    if torch:  # first and alone, so that nothing later can pick another one
        subprocess.run(pip + [TORCH], check=True)
        packages = packages + [TORCH]
    subprocess.run(pip + packages, check=True)
    marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return python


def install_into_hub() -> None:
    """llama-cpp-python into this interpreter's environment, from the cached wheel (built if absent)."""
    start = time.monotonic()
    wheel = build_llama_wheel()
    lock = Path(__file__).resolve().parents[2] / "requirements.lock"  # diskcache at the locked version
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-c", str(lock), str(wheel)], check=True)
    print("llama-cpp-python", wheel, f"{time.monotonic() - start:.0f} s", flush=True)


def main() -> None:
    if "--hub" in sys.argv[1:]:
        install_into_hub()
        return
    for name in ANCHORS:
        start = time.monotonic()
        print(name, ensure(name), f"{time.monotonic() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
