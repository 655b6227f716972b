"""How long a model's first load takes in a fresh hub process (process isolation): the time from
asking ``ProcessLM.load`` / ``ProcessEncoder.load`` to a worker ready to answer.

The hub process here has not imported transformers yet, as a freshly started ``aicommons serve``
has not: the first load pays for that import in the hub too. Run each code version side by side
and read the ratio (timings on the 2-core box are noisy)::

    python -m bench.inference.cold_load --models /tmp/cold-load-models          # builds them once
    PYTHONPATH=<other checkout>/src python -m bench.inference.cold_load --models /tmp/cold-load-models

``--embedding-first`` loads MiniLM alone, first, as a hub whose first request is an embedding. Each
load also reports the CPU seconds its worker process spent (counted once the worker has exited).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

_BUILD = """
import sys
from pathlib import Path
from aicommons.inference import devmodels
devmodels.build_llama(Path(sys.argv[1]) / "llama")
devmodels.copy_minilm(Path(sys.argv[1]) / "minilm")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, required=True, help="folder for the tiny Llama and MiniLM")
    parser.add_argument("--embedding-first", action="store_true", help="load only MiniLM, in a fresh hub")
    args = parser.parse_args()
    if not (args.models / "minilm").is_dir():  # built in another process: this one must not import transformers
        subprocess.run([sys.executable, "-c", _BUILD, str(args.models)], check=True)

    from aicommons.inference.engines.process import ProcessEncoder, ProcessLM
    from aicommons.inference.settings import InferenceSettings
    from aicommons.inference.source import ResolvedModel

    settings = InferenceSettings.from_env()
    commit = "0" * 40
    if not args.embedding_first:
        started, cpu = time.perf_counter(), _workers_cpu_s()
        engine = ProcessLM.load(ResolvedModel("bench/llama", commit, args.models / "llama"), settings)
        first = time.perf_counter() - started
        engine.close()
        print(f"first load (tiny Llama, text-generation): {first:.2f} s, worker CPU {_workers_cpu_s() - cpu:.2f} s")
    started, cpu = time.perf_counter(), _workers_cpu_s()
    encoder = ProcessEncoder.load(ResolvedModel("bench/minilm", commit, args.models / "minilm"),
                                  "feature-extraction", settings)
    second = time.perf_counter() - started
    encoder.close()
    which = "first" if args.embedding_first else "next"
    print(f"{which} load (MiniLM, embeddings): {second:.2f} s, worker CPU {_workers_cpu_s() - cpu:.2f} s")


def _workers_cpu_s() -> float:
    """User + system CPU of this process's exited (waited-for) children: the workers."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
