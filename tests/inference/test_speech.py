"""Speech recognition (issue 17): ``/v1/audio/transcriptions`` with the unmodified ``openai`` client and
the HF task route with ``InferenceClient``, on a tiny random Whisper built here and uploaded to the
live hub. Answers are checked against transformers' own greedy ``generate`` on the same audio."""

from __future__ import annotations

import io
import wave

import httpx
import numpy as np
import pytest

from tests.conftest import ALICE_TOKEN, unique_name

pytestmark = pytest.mark.inference

RATE = 16_000


@pytest.fixture(scope="module")
def whisper(live_hub, tmp_path_factory):
    from huggingface_hub import HfApi

    from aicommons.inference import devmodels

    folder = devmodels.build_whisper(tmp_path_factory.mktemp("speech") / "whisper")
    repo = f"alice/{unique_name('whisper')}"
    api = HfApi(endpoint=live_hub.url, token=ALICE_TOKEN)
    api.create_repo(repo)
    api.upload_folder(repo_id=repo, folder_path=str(folder))
    return repo, folder


@pytest.fixture(scope="module")
def client(live_hub):
    from openai import OpenAI

    with OpenAI(base_url=live_hub.url + "/v1", api_key=ALICE_TOKEN, max_retries=0, timeout=120) as c:
        yield c


def _tone(seconds: float, rate: int = RATE, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = (0.3 * np.sin(2 * np.pi * freq * t) + 0.2 * np.sin(2 * np.pi * 3.1 * freq * t * (1 + t))).astype(np.float32)
    return np.stack([mono] * channels, axis=1) if channels > 1 else mono


def _wav(samples: np.ndarray, rate: int = RATE) -> bytes:
    """16-bit PCM WAV with the standard library (what a browser or `arecord` produces)."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1 if samples.ndim == 1 else samples.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def _expected(folder, samples: np.ndarray, language: str | None = None) -> list[str]:
    """Transformers' own greedy transcription, one text per 30 s window."""
    import torch
    from transformers import AutoFeatureExtractor, AutoTokenizer, WhisperForConditionalGeneration

    fe = AutoFeatureExtractor.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    model = WhisperForConditionalGeneration.from_pretrained(folder).eval()
    windows = [samples[i:i + 30 * RATE] for i in range(0, len(samples), 30 * RATE)]
    kwargs = {"language": language, "task": "transcribe"} if language else {}
    feats = fe(windows, sampling_rate=RATE, return_tensors="pt", return_attention_mask=True)
    with torch.inference_mode():
        ids = model.generate(feats["input_features"], attention_mask=feats["attention_mask"], do_sample=False,
                             num_beams=1, max_new_tokens=model.config.max_target_positions - 4, **kwargs)
    return [t.strip() for t in tok.batch_decode(ids, skip_special_tokens=True)]


def _pcm16(samples: np.ndarray) -> np.ndarray:
    """What the server reads back from our 16-bit WAV."""
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").astype(np.float32) / 32767


def test_openai_transcriptions(whisper, client):
    repo, folder = whisper
    samples = _tone(3.0)
    expected = _expected(folder, _pcm16(samples))
    out = client.audio.transcriptions.create(model=repo, file=("clip.wav", _wav(samples), "audio/wav"))
    assert out.text == expected[0] and out.text  # random weights still say something
    text = client.audio.transcriptions.create(model=repo, file=("clip.wav", _wav(samples)), response_format="text")
    assert text.strip() == expected[0]
    # The language reaches Whisper's decoder prompt, as with transformers' own generate.
    fr = client.audio.transcriptions.create(model=repo, file=("clip.wav", _wav(samples)), language="fr")
    assert fr.text == _expected(folder, _pcm16(samples), "fr")[0] and fr.text != out.text
    raw = client.audio.transcriptions.with_raw_response.create(model=repo, file=("clip.wav", _wav(samples)))
    assert len(raw.headers["x-model-revision"]) == 40 and raw.headers["x-model-id"] == repo


def test_long_audio_flac_and_resampling(whisper, client):
    import soundfile as sf
    from scipy.signal import resample_poly

    repo, folder = whisper
    # 45 s: two windows (30 s + 15 s), each transcribed; verbose_json gives one segment per window.
    long = _tone(45.0, freq=300.0)
    buf = io.BytesIO()
    sf.write(buf, long, RATE, format="FLAC")
    expected = _expected(folder, sf.read(io.BytesIO(buf.getvalue()), dtype="float32")[0])
    out = client.audio.transcriptions.create(model=repo, file=("long.flac", buf.getvalue()),
                                             response_format="verbose_json")
    assert out.duration == 45.0 and out.text == " ".join(t for t in expected if t)
    assert [(s.start, s.end, s.text) for s in out.segments] == [(0.0, 30.0, expected[0]), (30.0, 45.0, expected[1])]
    srt = client.audio.transcriptions.create(model=repo, file=("long.flac", buf.getvalue()), response_format="srt")
    assert "00:00:30,000 --> 00:00:45,000" in srt
    # 8 kHz stereo WAV: downmixed and resampled to the feature extractor's 16 kHz.
    stereo = _tone(2.0, rate=8000, channels=2)
    heard = resample_poly(_pcm16(stereo).mean(axis=1), 2, 1).astype(np.float32)
    out = client.audio.transcriptions.create(model=repo, file=("s.wav", _wav(stereo, 8000)))
    assert out.text == _expected(folder, heard)[0]


def test_inference_client_speech_recognition(live_hub, whisper, tmp_path):
    from huggingface_hub import InferenceClient

    repo, folder = whisper
    samples = _tone(2.0, freq=520.0)
    path = tmp_path / "hello.wav"
    path.write_bytes(_wav(samples))
    hf = InferenceClient(model=f"{live_hub.url}/models/{repo}", token=ALICE_TOKEN, timeout=120)
    out = hf.automatic_speech_recognition(path)  # the file as the body, Content-Type audio/x-wav
    assert out.text == _expected(folder, _pcm16(samples))[0]
    # Bytes go with no Content-Type at all (was a 400 "request body is not valid JSON").
    assert hf.automatic_speech_recognition(path.read_bytes()).text == out.text
    # With parameters the client sends base64 in JSON.
    fr = hf.automatic_speech_recognition(path, extra_body={"language": "fr"})
    assert fr.text == _expected(folder, _pcm16(samples), "fr")[0]


def test_bad_audio_is_a_clear_4xx(live_hub, whisper, client):
    import openai

    repo, _ = whisper
    for name, blob in (("x.wav", b"RIFF nothing like audio"), ("x.m4a", b"\x00\x00\x00\x18ftypM4A " + b"\x00" * 64),
                       ("empty.wav", b"")):
        with pytest.raises(openai.BadRequestError) as err:
            client.audio.transcriptions.create(model=repo, file=(name, blob))
        assert err.value.body["param"] == "file", name
    ok = _wav(_tone(1.0))
    bad_fields = ({"language": "xx"}, {"response_format": "docx"}, {"temperature": 0.7}, {"prompt": "hello"})
    for extra in bad_fields:
        with pytest.raises(openai.BadRequestError):
            client.audio.transcriptions.create(model=repo, file=("a.wav", ok), **extra)
    # Longer than AICOMMONS_INFERENCE_MAX_AUDIO_SECONDS (600): refused from the header, not decoded.
    with pytest.raises(openai.BadRequestError, match="600 s"):
        client.audio.transcriptions.create(model=repo, file=("long.wav", _wav(np.zeros(601 * 8000), 8000)))
    headers = {"Authorization": f"Bearer {ALICE_TOKEN}"}
    # Not multipart; a body over the limit (413 from its Content-Length, before it is read).
    r = httpx.post(f"{live_hub.url}/v1/audio/transcriptions", headers=headers, json={"model": repo}, timeout=60)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert _status_of_declared_body(live_hub.url, "/v1/audio/transcriptions", 26 * 1024 * 1024) == 413
    r = httpx.post(f"{live_hub.url}/models/{repo}", headers={**headers, "Content-Type": "audio/wav"},
                   content=b"definitely not audio", timeout=60)
    assert r.status_code == 400 and r.json()["error_type"] == "validation"


def _status_of_declared_body(url: str, path: str, length: int) -> int:
    """Sends only the headers of a multipart body of ``length`` bytes; the hub answers at once."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {ALICE_TOKEN}\r\n"
                     f"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: {length}\r\n\r\n".encode())
        return int(sock.recv(1024).split(b" ", 2)[1])
