"""More tasks (issue 17): zero-shot classification, summarization and translation (seq2seq) on the HF
task API with ``InferenceClient``, and ``/v1/rerank`` as Jina/Cohere serve it, each on a tiny random
model built here and uploaded to the live hub."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import ALICE_TOKEN, unique_name

pytestmark = pytest.mark.inference


@pytest.fixture(scope="module")
def models(live_hub, tmp_path_factory):
    from huggingface_hub import HfApi

    from aicommons.inference import devmodels

    root = tmp_path_factory.mktemp("more-tasks")
    folders = {"nli": devmodels.build_bert(root / "nli", "zero-shot-classification"),
               "ranker": devmodels.build_bert(root / "ranker", "text-ranking"),
               "bart": devmodels.build_bart(root / "bart", "summarization"),
               "vit": devmodels.build_vit(root / "vit")}
    api = HfApi(endpoint=live_hub.url, token=ALICE_TOKEN)
    ids = {}
    for key, folder in folders.items():
        ids[key] = f"alice/{unique_name(key)}"
        api.create_repo(ids[key])
        api.upload_folder(repo_id=ids[key], folder_path=str(folder))
    return ids, folders


def test_zero_shot_classification(live_hub, models):
    from huggingface_hub import InferenceClient

    ids, _ = models
    hf = InferenceClient(model=f"{live_hub.url}/models/{ids['nli']}", token=ALICE_TOKEN, timeout=120)
    labels = ["sport", "politics", "cooking"]
    out = hf.zero_shot_classification("the fox runs over the river", labels)
    assert sorted(o.label for o in out) == sorted(labels)
    assert abs(sum(o.score for o in out) - 1) < 1e-4 and out[0].score >= out[-1].score
    multi = hf.zero_shot_classification("the fox", labels, multi_label=True, hypothesis_template="It is {}.")
    assert all(0 <= o.score <= 1 for o in multi) and abs(sum(o.score for o in multi) - 1) > 1e-6
    bad = httpx.post(f"{live_hub.url}/models/{ids['nli']}", headers={"Authorization": f"Bearer {ALICE_TOKEN}"},
                     json={"inputs": "x", "parameters": {"candidate_labels": []}}, timeout=120)
    assert bad.status_code == 400 and "candidate_labels" in bad.text


def test_summarization_and_translation(live_hub, models):
    from huggingface_hub import InferenceClient
    from transformers import AutoTokenizer, BartForConditionalGeneration

    ids, folders = models
    hf = InferenceClient(model=f"{live_hub.url}/models/{ids['bart']}", token=ALICE_TOKEN, timeout=120)
    text = "the quick fox runs over the lazy dog in paris"
    summary = hf.summarization(text, generate_parameters={"max_new_tokens": 6})
    # The same greedy decoding, run here with transformers: the hub answers what the model says.
    tok = AutoTokenizer.from_pretrained(folders["bart"])
    model = BartForConditionalGeneration.from_pretrained(folders["bart"]).eval()
    expected = tok.decode(model.generate(**tok([text], return_tensors="pt"), max_new_tokens=6, do_sample=False,
                                         num_beams=1)[0], skip_special_tokens=True)
    assert summary.summary_text == expected
    translated = httpx.post(f"{live_hub.url}/models/{ids['bart']}/pipeline/translation",
                            headers={"Authorization": f"Bearer {ALICE_TOKEN}"},
                            json={"inputs": [text, "a dog"], "parameters": {"generate_parameters": {"max_new_tokens": 6}}},
                            timeout=120)
    assert translated.status_code == 200
    assert translated.json()[0] == {"translation_text": expected} and len(translated.json()) == 2


def test_rerank(live_hub, models):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    ids, folders = models
    docs = ["the fox runs", "paris london berlin", "a lazy dog sleeps"]
    headers = {"Authorization": f"Bearer {ALICE_TOKEN}"}
    r = httpx.post(f"{live_hub.url}/v1/rerank", headers=headers, timeout=120,
                   json={"model": ids["ranker"], "query": "where does the fox run?", "documents": docs, "top_n": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["results"]) == 2 and body["usage"]["total_tokens"] > 0
    tok = AutoTokenizer.from_pretrained(folders["ranker"])
    model = AutoModelForSequenceClassification.from_pretrained(folders["ranker"]).eval()
    logits = model(**tok(["where does the fox run?"] * 3, docs, padding=True, return_tensors="pt")).logits[:, 0]
    expected = logits.sigmoid().tolist()
    order = sorted(range(3), key=lambda i: -expected[i])[:2]
    assert [x["index"] for x in body["results"]] == order
    for x in body["results"]:
        assert abs(x["relevance_score"] - expected[x["index"]]) < 1e-4 and x["document"]["text"] == docs[x["index"]]
    bare = httpx.post(f"{live_hub.url}/v1/rerank", headers=headers, timeout=120,
                      json={"model": ids["ranker"], "query": "q", "documents": [{"text": "a"}], "return_documents": False})
    assert "document" not in bare.json()["results"][0]
    for bad in ({"query": "", "documents": ["a"]}, {"query": "q", "documents": []}, {"query": "q", "documents": [1]}):
        assert httpx.post(f"{live_hub.url}/v1/rerank", headers=headers, timeout=120,
                          json={"model": ids["ranker"], **bad}).status_code == 400
    # A generation model cannot rank: a 400 naming the model, not a 500.
    wrong = httpx.post(f"{live_hub.url}/v1/rerank", headers=headers, timeout=120,
                       json={"model": ids["bart"], "query": "q", "documents": ["a"]})
    assert wrong.status_code == 400


def test_image_classification(live_hub, models, tmp_path):
    import base64

    import torch
    from huggingface_hub import InferenceClient
    from PIL import Image
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    ids, folders = models
    path = tmp_path / "red.png"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(path)
    hf = InferenceClient(model=f"{live_hub.url}/models/{ids['vit']}", token=ALICE_TOKEN, timeout=120)
    out = hf.image_classification(path)  # the file's bytes as the body
    processor = AutoImageProcessor.from_pretrained(folders["vit"])
    model = AutoModelForImageClassification.from_pretrained(folders["vit"]).eval()
    with torch.inference_mode():
        probs = torch.softmax(model(**processor(images=[Image.open(path).convert("RGB")],
                                                return_tensors="pt")).logits, -1)[0]
    expected = sorted(((model.config.id2label[i], p) for i, p in enumerate(probs.tolist())), key=lambda x: -x[1])
    assert [(o.label, round(o.score, 4)) for o in out] == [(label, round(p, 4)) for label, p in expected]
    # Bytes go as the body with no Content-Type at all (huggingface_hub guesses none): was a 400
    # "request body is not valid JSON".
    assert [(o.label, round(o.score, 4)) for o in hf.image_classification(path.read_bytes())] == \
        [(o.label, round(o.score, 4)) for o in out]
    top1 = hf.image_classification(path, top_k=1)  # with parameters: base64 in JSON
    assert [o.label for o in top1] == [expected[0][0]]
    # function_to_apply was accepted and ignored (softmax whatever it said).
    raw = hf.image_classification(path, function_to_apply="none")
    logits = model(**processor(images=[Image.open(path).convert("RGB")], return_tensors="pt")).logits[0]
    assert [round(o.score, 4) for o in raw] == [round(v, 4) for v in sorted(logits.tolist(), reverse=True)]
    # Another image task's call is refused, not answered with this task's labels as its own.
    from huggingface_hub.errors import HfHubHTTPError

    with pytest.raises(HfHubHTTPError) as err:
        hf.zero_shot_image_classification(path, candidate_labels=["red", "blue"])
    assert err.value.response.status_code == 400 and "image-classification" in str(err.value)
    headers = {"Authorization": f"Bearer {ALICE_TOKEN}"}
    for bad in (b"not an image", base64.b64encode(b"nope")):
        r = httpx.post(f"{live_hub.url}/models/{ids['vit']}", headers={**headers, "Content-Type": "image/png"},
                       content=bad, timeout=120)
        assert r.status_code == 400, r.text
