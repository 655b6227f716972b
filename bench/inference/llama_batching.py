"""What batching sequences would give the llama.cpp engine (issue 17), one command:

    .venv/bin/python -m bench.inference.llama_batching [--runs 3] [--streams 8] [--json out.json]

Our llama.cpp engine (``engines/llama_cpp.py``), like llama-cpp-python's own server, runs one
sequence at a time: 8 concurrent chats take turns, each decoding one token per ``llama_decode``.
This measures, on the same GGUF files the real-size benchmark serves (SmolLM2-135M's shape, random
weights, F16 and Q8_0) and through the same ``llama_cpp`` bindings, greedy decoding of ``--streams``
sequences two ways, interleaved per round:

- ``one_at_a_time``: each sequence's prompt, then its tokens one per decode, the next sequence after
  (what the engine does);
- ``batched``: every prompt in one decode (one sequence id each), then one decode per step carrying
  one token of every sequence (what ``llama-server --parallel N`` does).

Output tokens per second of each (median of ``--runs``), their ratio, how many greedy tokens the two
ways agree on, and the load per round.
"""

from __future__ import annotations

import argparse
import ctypes
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench.inference.cpu_bench import finish_report, loadavg


class Model:
    def __init__(self, path: Path, threads: int, streams: int):
        import llama_cpp as L

        self.L = L
        mparams = L.llama_model_default_params()
        mparams.use_extra_bufts = False  # as engines/llama_cpp.open_llama loads it
        self.model = L.llama_model_load_from_file(str(path).encode(), mparams)
        cparams = L.llama_context_default_params()
        cparams.n_ctx = 2048
        cparams.n_batch = 512
        cparams.n_seq_max = streams
        cparams.n_threads = cparams.n_threads_batch = threads
        cparams.kv_unified = True
        self.ctx = L.llama_init_from_model(self.model, cparams)
        self.n_vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(self.model))
        self.batch = L.llama_batch_init(512, 0, streams)

    def close(self) -> None:
        self.L.llama_batch_free(self.batch)
        self.L.llama_free(self.ctx)
        self.L.llama_model_free(self.model)

    def _decode(self, entries: list[tuple[int, int, int, bool]]) -> None:
        """entries: (token, position, sequence id, wants logits)."""
        b = self.batch
        for i, (token, pos, seq, logits) in enumerate(entries):
            b.token[i] = token
            b.pos[i] = pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seq
            b.logits[i] = logits
        b.n_tokens = len(entries)
        if self.L.llama_decode(self.ctx, b) != 0:
            raise RuntimeError("llama_decode failed")

    def _argmax(self, index: int) -> int:
        import numpy as np

        ptr = self.L.llama_get_logits_ith(self.ctx, index)
        return int(np.argmax(np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)),
                                                   shape=(self.n_vocab,))))

    def _clear(self) -> None:
        self.L.llama_memory_clear(self.L.llama_get_memory(self.ctx), True)

    def one_at_a_time(self, prompts: list[list[int]], new_tokens: int) -> tuple[float, list[list[int]]]:
        self._clear()
        out: list[list[int]] = []
        start = time.perf_counter()
        for prompt in prompts:
            self._clear()
            self._decode([(t, p, 0, p == len(prompt) - 1) for p, t in enumerate(prompt)])
            token, pos = self._argmax(len(prompt) - 1), len(prompt)
            out.append([token])
            for _ in range(new_tokens - 1):
                self._decode([(token, pos, 0, True)])
                token, pos = self._argmax(0), pos + 1
                out[-1].append(token)
        return len(prompts) * new_tokens / (time.perf_counter() - start), out

    def batched(self, prompts: list[list[int]], new_tokens: int) -> tuple[float, list[list[int]]]:
        self._clear()
        start = time.perf_counter()
        entries, last = [], []
        for seq, prompt in enumerate(prompts):
            entries += [(t, p, seq, p == len(prompt) - 1) for p, t in enumerate(prompt)]
            last.append(len(entries) - 1)
        self._decode(entries)
        tokens = [self._argmax(i) for i in last]
        out = [[t] for t in tokens]
        positions = [len(p) for p in prompts]
        for _ in range(new_tokens - 1):
            self._decode([(tokens[s], positions[s], s, True) for s in range(len(prompts))])
            tokens = [self._argmax(s) for s in range(len(prompts))]
            positions = [p + 1 for p in positions]
            for s, t in enumerate(tokens):
                out[s].append(t)
        return len(prompts) * new_tokens / (time.perf_counter() - start), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--prompt-tokens", type=int, default=40, help="about a 12-word chat message in its template")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quants", type=lambda v: v.split(","), default=["F16", "Q8_0"])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from aicommons.inference import devmodels

    rnd = random.Random(0)
    tmp = Path(tempfile.mkdtemp(prefix="aicommons-bench-"))
    report: dict = {"command": "python -m bench.inference.llama_batching " + " ".join(
        f"--{k.replace('_', '-')} {','.join(v) if isinstance(v, list) else v}"
        for k, v in vars(args).items() if k != "json"), "model": "smollm2-135m shape, random weights"}
    try:
        hf = devmodels.build_smollm2_135m(tmp / "hf")
        for quant in args.quants:
            path = tmp / f"model-{quant}.gguf"
            devmodels.export_gguf(hf, path, quant)
            model = Model(path, args.threads, args.streams)
            try:
                prompts = [[rnd.randrange(1000, model.n_vocab) for _ in range(args.prompt_tokens)]
                           for _ in range(args.streams)]
                model.one_at_a_time(prompts[:2], 4)  # warm-up
                model.batched(prompts, 4)
                rows: dict = {"one_at_a_time": [], "batched": [], "loadavg_per_round": []}
                same = []
                for _ in range(args.runs):
                    rows["loadavg_per_round"].append(loadavg())
                    speed, alone = model.one_at_a_time(prompts, args.max_tokens)
                    rows["one_at_a_time"].append(round(speed, 1))
                    speed, together = model.batched(prompts, args.max_tokens)
                    rows["batched"].append(round(speed, 1))
                    # the same greedy tokens both ways (batched kernels may round differently)
                    same.append(sum(a == b for x, y in zip(alone, together) for a, b in zip(x, y)))
                one, both = statistics.median(rows["one_at_a_time"]), statistics.median(rows["batched"])
                report[quant] = {**rows, "one_at_a_time_tok_s": one, "batched_tok_s": both,
                                 "batched_vs_one_at_a_time": round(both / one, 2),
                                 "same_greedy_tokens": f"{min(same)} of {args.streams * args.max_tokens}"}
            finally:
                model.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    finish_report(report, args.json)


if __name__ == "__main__":
    main()
