"""The repo page's "Inference API" snippet (web/browse.py): valid Python for every text task, naming
the hub's own routes; none for the tasks whose input is a file."""

from __future__ import annotations

import ast

import pytest

from aicommons.web.browse import inference_snippet

HUB = "http://hub.example"


@pytest.mark.parametrize(("task", "chat", "route", "call"), [
    ("text-generation", True, f'base_url="{HUB}/v1"', "chat.completions.create"),
    ("text-generation", False, f'base_url="{HUB}/v1"', "completions.create"),
    ("feature-extraction", False, f'base_url="{HUB}/v1"', "embeddings.create"),
    ("sentence-similarity", False, f'base_url="{HUB}/v1"', "embeddings.create"),
    ("fill-mask", False, f'model="{HUB}/models/acme/m"', "fill_mask("),
    ("zero-shot-classification", False, f'model="{HUB}/models/acme/m"', "candidate_labels"),
])
def test_snippets_are_python_and_name_the_hub(task, chat, route, call):
    snippet = inference_snippet(HUB, "acme/m", task, chat)
    ast.parse(snippet)
    assert route in snippet and call in snippet and ('"acme/m"' in snippet or "/models/acme/m" in snippet)


@pytest.mark.parametrize("task", ["image-classification", "automatic-speech-recognition", "image-text-to-text", None])
def test_no_snippet_for_file_inputs_or_no_task(task):
    assert inference_snippet(HUB, "acme/m", task, True) is None
