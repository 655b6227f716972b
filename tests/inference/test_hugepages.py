"""Weights in memory advised for transparent huge pages (``hugepages.py``, issue 17): the engine
computes the same logits from the moved weights, tied parameters stay one tensor, and with
``HUGE_PAGE_WEIGHTS`` on (the default) every weight of a loaded engine lives in a private anonymous
mapping advised ``MADV_HUGEPAGE`` (``hg`` in smaps' VmFlags), where with it off the weights are
views of the memory-mapped safetensors file."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/smaps")


def mappings(pid: int | str = "self") -> list[dict]:
    """Each mapping of a process: start, end, path ('' for anonymous memory), VmFlags."""
    out: list[dict] = []
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and not head[0].endswith(":"):
            start, end = (int(x, 16) for x in head[0].split("-"))
            out.append({"start": start, "end": end, "path": head[5] if len(head) > 5 else "", "flags": []})
        elif line.startswith("VmFlags:"):
            out[-1]["flags"] = line.split()[1:]
    return out


def mapping_of(address: int, maps: list[dict]) -> dict:
    (found,) = [m for m in maps if m["start"] <= address < m["end"]]
    return found


def test_moved_weights_compute_the_same_logits_in_a_huge_page_advised_anonymous_mapping(model_dirs):
    torch = pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM

    from aicommons.inference.hugepages import huge_page_weights

    model = AutoModelForCausalLM.from_pretrained(model_dirs["llama"], dtype=torch.float32).eval()
    ids = torch.randint(0, model.config.vocab_size, (2, 7), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = model(input_ids=ids).logits
    params = list(model.parameters())
    moved = huge_page_weights(model)
    assert moved >= sum(p.numel() * p.element_size() for p in params)
    with torch.no_grad():
        after = model(input_ids=ids).logits
    assert torch.equal(before, after)
    maps = mappings()
    regions = {(m["start"], m["end"]) for m in (mapping_of(p.data_ptr(), maps) for p in model.parameters())}
    assert len(regions) == 1  # one mapping for all of them
    (region,) = [mapping_of(model.model.embed_tokens.weight.data_ptr(), maps)]
    assert region["path"] == "" and "hg" in region["flags"]


def test_tied_parameters_stay_one_tensor():
    torch = pytest.importorskip("torch")
    from aicommons.inference.hugepages import huge_page_weights

    class Tied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(100, 16)
            self.head = torch.nn.Linear(16, 100, bias=False)
            self.head.weight = self.embed.weight

    module = Tied()
    expected = module.embed.weight.detach().clone()
    huge_page_weights(module)
    assert module.head.weight is module.embed.weight
    assert module.head.weight.data_ptr() == module.embed.weight.data_ptr()
    assert torch.equal(module.embed.weight, expected)


@pytest.mark.parametrize("huge", [True, False])
def test_the_engine_setting_decides_where_the_weights_live(model_dirs, huge):
    pytest.importorskip("torch")
    from aicommons.inference.engine import SamplingParams
    from aicommons.inference.engines.transformers_lm import TransformersLM
    from aicommons.inference.settings import InferenceSettings
    from aicommons.inference.source import ResolvedModel

    settings = InferenceSettings.from_env({}, device="cpu", dtype="float32", engine="transformers",
                                          isolation="thread", threads=2, kv_cache_bytes=16 * 1024 * 1024,
                                          huge_page_weights=huge)
    engine = TransformersLM.load(ResolvedModel("acme/tiny-llama", "0" * 40, model_dirs["llama"]), settings)
    try:
        maps = mappings()
        where = [mapping_of(p.data_ptr(), maps) for p in engine.model.parameters()]
        if huge:
            assert all(m["path"] == "" and "hg" in m["flags"] for m in where)
        else:
            assert all(m["path"].endswith("model.safetensors") for m in where)

        async def generate():
            return [t async for step in engine.generate([1, 2, 3], SamplingParams(max_new_tokens=4, temperature=0.0,
                                                                                    ignore_eos=True))
                    for t in step.new_token_ids]

        assert len(asyncio.run(generate())) == 4
    finally:
        engine.close()
