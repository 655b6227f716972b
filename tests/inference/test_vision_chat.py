"""Vision-language chat (issue 17): image parts in OpenAI's message format, with the unmodified
``openai`` client, on a tiny random LLaVA built here and uploaded to the live hub. Images come as
data: URLs or as ``/resolve/`` URLs of files on this hub (read with the caller's access); no other
host is ever fetched. Answers are checked against transformers' own greedy ``generate``."""

from __future__ import annotations

import base64
import io

import httpx
import openai
import pytest

from tests.conftest import ALICE_TOKEN, BOB_TOKEN, unique_name

pytestmark = pytest.mark.inference


def _png(color) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buf, format="PNG")
    return buf.getvalue()


def _data_url(blob: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(blob).decode()


@pytest.fixture(scope="module")
def setup(live_hub, tmp_path_factory):
    from huggingface_hub import HfApi

    from aicommons.inference import devmodels

    root = tmp_path_factory.mktemp("vision")
    llava = devmodels.build_llava(root / "llava")
    (llava / "red.png").write_bytes(_png((200, 30, 30)))
    alice = HfApi(endpoint=live_hub.url, token=ALICE_TOKEN)
    repos = {"vlm": f"alice/{unique_name('llava')}", "text": f"alice/{unique_name('text-llama')}"}
    alice.create_repo(repos["vlm"])
    alice.upload_folder(repo_id=repos["vlm"], folder_path=str(llava))
    alice.create_repo(repos["text"])
    alice.upload_folder(repo_id=repos["text"], folder_path=str(devmodels.build_llama(root / "llama")))
    bob = HfApi(endpoint=live_hub.url, token=BOB_TOKEN)
    repos["bob"] = f"bob/{unique_name('private-images')}"
    bob.create_repo(repos["bob"], repo_type="dataset", private=True)
    bob.upload_file(path_or_fileobj=_png((200, 30, 30)), path_in_repo="red.png", repo_id=repos["bob"],
                    repo_type="dataset")
    return repos, llava


@pytest.fixture(scope="module")
def client(live_hub):
    with openai.OpenAI(base_url=live_hub.url + "/v1", api_key=ALICE_TOKEN, max_retries=0, timeout=120) as c:
        yield c


def _expected(folder, question: str, color, max_new_tokens: int = 8) -> str:
    """transformers' own answer: its chat template rendering, its processor, greedy generate."""
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(folder)
    model = AutoModelForImageTextToText.from_pretrained(folder).eval()
    messages = [{"role": "user", "content": [{"type": "text", "text": question}, {"type": "image"}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[prompt], images=[Image.new("RGB", (64, 48), color)], return_tensors="pt",
                       add_special_tokens=False)
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


def _ask(client, model: str, url: str, **kwargs):
    return client.chat.completions.create(
        model=model, temperature=0, max_tokens=8, **kwargs,
        messages=[{"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                               {"type": "image_url", "image_url": {"url": url}}]}])


def test_image_chat_with_data_urls_and_streaming(setup, client):
    repos, folder = setup
    red, green = (200, 30, 30), (20, 230, 30)
    answer = _ask(client, repos["vlm"], _data_url(_png(red)))
    assert answer.choices[0].message.content == _expected(folder, "what is this?", red)
    other = _ask(client, repos["vlm"], _data_url(_png(green)))
    assert other.choices[0].message.content == _expected(folder, "what is this?", green)
    assert other.choices[0].message.content != answer.choices[0].message.content  # the image is seen
    assert answer.usage.prompt_tokens > 16  # the 16 image tokens are counted
    chunks = list(_ask(client, repos["vlm"], _data_url(_png(red)), stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
        answer.choices[0].message.content
    # A text-only conversation on the same model still works.
    plain = client.chat.completions.create(model=repos["vlm"], max_tokens=4,
                                           messages=[{"role": "user", "content": "hello"}])
    assert plain.choices[0].finish_reason in ("stop", "length")


def test_images_from_this_hub_only(live_hub, setup, client):
    repos, folder = setup
    expected = _expected(folder, "what is this?", (200, 30, 30))
    own = _ask(client, repos["vlm"], f"{live_hub.url}/{repos['vlm']}/resolve/main/red.png")
    assert own.choices[0].message.content == expected
    # Bob's private dataset answers exactly like a file that does not exist.
    refused = {}
    for name, url in (("private", f"{live_hub.url}/datasets/{repos['bob']}/resolve/main/red.png"),
                      ("missing", f"{live_hub.url}/datasets/{repos['bob']}-nope/resolve/main/red.png")):
        with pytest.raises(openai.BadRequestError) as err:
            _ask(client, repos["vlm"], url)
        refused[name] = err.value.body["message"].replace(url, "URL")
    assert refused["private"] == refused["missing"]
    with openai.OpenAI(base_url=live_hub.url + "/v1", api_key=BOB_TOKEN, max_retries=0, timeout=120) as bob:
        mine = _ask(bob, repos["vlm"], f"{live_hub.url}/datasets/{repos['bob']}/resolve/main/red.png")
    assert mine.choices[0].message.content == expected
    # Any other host is refused without being fetched.
    for url in ("http://192.0.2.1/cat.png", "https://example.com/cat.png", "file:///etc/passwd"):
        with pytest.raises(openai.BadRequestError, match="only data: URLs"):
            _ask(client, repos["vlm"], url)


def test_bad_image_inputs_are_400s(live_hub, setup, client):
    repos, _ = setup
    for url in ("data:text/plain;base64,aGVsbG8=", "data:image/png;base64,bm90IGFuIGltYWdl"):
        with pytest.raises(openai.BadRequestError):
            _ask(client, repos["vlm"], url)
    # A text-only model refuses images with a 400 naming them, not a 500.
    with pytest.raises(openai.BadRequestError, match="does not take images"):
        _ask(client, repos["text"], _data_url(_png((1, 2, 3))))
    # The HF task route and TGI's /generate point at the chat route instead of failing.
    for path, body in (("", {"inputs": "hi"}), ("/generate", {"inputs": "hi"})):
        r = httpx.post(f"{live_hub.url}/models/{repos['vlm']}{path}", json=body, timeout=60,
                       headers={"Authorization": f"Bearer {ALICE_TOKEN}"})
        assert r.status_code == 400, (path, r.status_code, r.text)
    # Images only in user messages, as OpenAI accepts them.
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=repos["vlm"], messages=[
            {"role": "system", "content": [{"type": "image_url", "image_url": {"url": _data_url(_png((1, 2, 3)))}}]},
            {"role": "user", "content": "hi"}])
