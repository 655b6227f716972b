"""Audio inputs of speech recognition (``/v1/audio/transcriptions`` and the HF task API): decoded to
mono float32 samples at the model's sampling rate, without ffmpeg.

Decoding uses libsndfile through ``soundfile`` (WAV, FLAC, OGG/Vorbis, Opus, MP3, AIFF, ...) when it
is installed, else the standard library's ``wave`` (PCM WAV only). Containers that need ffmpeg
(M4A/AAC, WebM, MP4) are refused with a 400 that says so. The duration is read from the header
before anything is decoded, so a tiny file claiming hours of audio (FLAC of silence compresses
about 1000:1) is refused without being expanded. Runs off the event loop.
"""

from __future__ import annotations

import io
import math
import wave

from .errors import InvalidRequest

# What the HF task API's JSON form and OpenAI's multipart form carry.
READABLE = "WAV, FLAC, OGG (Vorbis/Opus), MP3 or AIFF"


def _not_audio(param: str, detail: str = "") -> InvalidRequest:
    return InvalidRequest(f"the file is not audio this server can decode ({READABLE}; M4A, AAC, WebM and MP4 "
                          f"are not supported){detail}", param=param)


def decode(blob: bytes, sampling_rate: int, max_seconds: float, param: str = "file"):
    """-> mono float32 numpy samples at ``sampling_rate``; InvalidRequest (400) for anything else."""
    import numpy as np

    if not blob:
        raise InvalidRequest("the audio file is empty", param=param)
    samples, rate = _read(blob, max_seconds, param)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if samples.size == 0:
        raise InvalidRequest("the audio file has no samples", param=param)
    if not np.isfinite(samples).all():
        raise _not_audio(param, ": it has non-finite samples")
    if rate != sampling_rate:
        from scipy.signal import resample_poly  # type: ignore[import-untyped]  # scipy ships no types

        g = math.gcd(int(rate), int(sampling_rate))
        samples = resample_poly(samples, sampling_rate // g, rate // g).astype(np.float32)
    return samples


def _read(blob: bytes, max_seconds: float, param: str):
    try:
        import soundfile as sf  # type: ignore[import-untyped]  # soundfile ships no types
    except ImportError:  # pragma: no cover - soundfile is in the inference extra
        return _read_wave(blob, max_seconds, param)
    try:
        with sf.SoundFile(io.BytesIO(blob)) as f:
            rate = int(f.samplerate)
            _check_duration(f.frames, rate, max_seconds, param)
            # Never more than the limit decoded, whatever the header claimed (MP3 frame counts are
            # estimates): one frame past it tells that the stream goes on.
            limit = int(max_seconds * rate) + 1
            data = f.read(frames=limit, dtype="float32", always_2d=True)
            _check_duration(len(data), rate, max_seconds, param)
    except InvalidRequest:
        raise
    except Exception:  # soundfile raises LibsndfileError, RuntimeError, TypeError... for bad input
        raise _not_audio(param) from None
    return data, rate


def _read_wave(blob: bytes, max_seconds: float, param: str):
    import numpy as np

    try:
        with wave.open(io.BytesIO(blob)) as w:
            channels, width, rate, frames = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            _check_duration(frames, rate, max_seconds, param)
            raw = w.readframes(frames)
    except InvalidRequest:
        raise
    except (wave.Error, EOFError, ValueError):
        raise _not_audio(param) from None
    data: np.ndarray
    if width == 1:
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128) / 128
    elif width in (2, 4):
        dtype = np.int16 if width == 2 else np.int32
        data = np.frombuffer(raw, dtype=dtype).astype(np.float32) / float(np.iinfo(dtype).max)
    else:
        raise _not_audio(param, f": {8 * width}-bit WAV needs soundfile")
    return data.reshape(-1, channels), rate


def _check_duration(frames: int, rate: int, max_seconds: float, param: str) -> None:
    if rate <= 0:
        raise _not_audio(param)
    if frames / rate > max_seconds:
        raise InvalidRequest(f"the audio is {frames / rate:.0f} s long; this server transcribes at most "
                             f"{max_seconds:g} s per request", param=param)
