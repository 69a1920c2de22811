"""The built-in model does every operation for real, over HTTP against a real gateway: extend an upload,
edit an earlier job's output by its asset id, move to an uploaded sound, go from a first to a last frame,
and take on reference images' colours; each output fetched and decoded back with PyAV."""

from __future__ import annotations

import base64
import io
import wave
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from helpers.gateway import wait_status
from helpers.media import png_bytes, png_data_url

pytestmark = pytest.mark.both_backends

MODEL = "vidgate/procedural"
W, H = 128, 72
SMALL = {"model": MODEL, "size": f"{W}x{H}", "seed": 7}


def texture(x0: float) -> np.ndarray:
    """A smooth RGB picture of a wide world, seen from ``x0`` pixels along: panning it is a camera pan."""
    xs = np.arange(W)[None, :] + x0
    ys = np.arange(H)[:, None]
    v = 128 + 60 * np.sin(xs / 9.0) * np.cos(ys / 7.0) + 40 * np.sin(xs / 23.0 + ys / 13.0)
    return np.clip(np.stack([v, v * 0.8 + 20, 255 - v], axis=-1), 0, 255).astype(np.uint8)


def mp4(pictures: list[np.ndarray], fps: int = 24) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        for index, picture in enumerate(pictures):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
    return buffer.getvalue()


def loud_then_silent_wav(seconds: float = 2.0, rate: int = 44_100) -> bytes:
    n = int(seconds * rate)
    tone = 0.8 * np.sign(np.sin(2 * np.pi * 220 * np.arange(n) / rate))
    tone[n // 2 :] = 0
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((tone * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def upload(api: httpx.Client, content: bytes, name: str, mime: str) -> dict[str, Any]:
    r = api.post("/v1/files", files={"file": (name, content, mime)})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def run(api: httpx.Client, tmp_path: Path, **body: Any) -> tuple[dict[str, Any], Path]:
    """Create a job, wait for it, fetch its video into a file."""
    r = api.post("/v1/videos", json={**SMALL, **body})
    assert r.status_code == 202, r.text
    done = wait_status(api, r.json()["id"], {"completed", "failed", "cancelled", "expired"}, timeout=180)
    assert done["status"] == "completed", done
    content = api.get(f"/v1/videos/{done['id']}/content")
    assert content.status_code == 200 and content.headers["content-type"] == "video/mp4"
    path = tmp_path / f"{done['id']}.mp4"
    path.write_bytes(content.content)
    return done, path


def luma(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="gray").astype(np.float32) for frame in container.decode(video=0)]


def rgb(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24").astype(np.float32) for frame in container.decode(video=0)]


def grey(picture: np.ndarray) -> np.ndarray:
    return av.VideoFrame.from_ndarray(picture, format="rgb24").to_ndarray(format="gray").astype(np.float32)


def diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def test_extend_an_uploaded_clip(api: httpx.Client, tmp_path: Path) -> None:
    clip = upload(api, mp4([texture(3 * i) for i in range(24)]), "pan.mp4", "video/mp4")
    assert clip["kind"] == "video" and clip["duration_seconds"] == pytest.approx(1.0, abs=0.1)
    ref = {"type": "video", "file_id": clip["id"], "role": "source"}
    done, path = run(api, tmp_path, prompt="mountains at dawn", duration=2, operation="extend", input_references=[ref])
    frames = luma(path)
    assert len(frames) == 24 + 48  # the source, then two seconds more
    asset = done["asset"]  # what the gateway probed of the stored file
    assert (asset["width"], asset["height"]) == (W, H)
    assert asset["duration_seconds"] == pytest.approx(3.0, abs=0.1)
    assert diff(frames[12], grey(texture(36))) < 5  # the source part is the source
    assert diff(frames[23], frames[24]) < 8  # no jump at the seam
    assert diff(frames[23], frames[24]) < 0.5 * diff(frames[23], frames[-1])


def test_edit_an_earlier_output_by_its_asset_id(api: httpx.Client, tmp_path: Path) -> None:
    first, original = run(api, tmp_path, prompt="a lighthouse by the sea at noon", duration=1)
    ref = {"type": "video", "asset_id": first["asset"]["id"], "role": "source"}
    looks = {}
    for name, prompt in (("dusk", "golden sunset at dusk"), ("night", "a city at night")):
        _, path = run(api, tmp_path, prompt=prompt, duration=4, operation="edit", input_references=[ref])
        frames = luma(path)
        assert len(frames) == len(luma(original)) == 24  # as long as the source, not the four seconds asked
        source = luma(original)
        for index in (0, 12, 23):
            gy, gx = np.gradient(frames[index])
            sy, sx = np.gradient(source[index])
            assert np.corrcoef(np.hypot(gx, gy).ravel(), np.hypot(sx, sy).ravel())[0, 1] > 0.5, (name, index)
        looks[name] = np.mean(rgb(path), axis=(0, 1, 2))
    assert looks["dusk"][0] - looks["dusk"][2] > looks["night"][0] - looks["night"][2] + 40


def test_an_uploaded_sound_drives_the_picture_and_is_its_soundtrack(api: httpx.Client, tmp_path: Path) -> None:
    sound = upload(api, loud_then_silent_wav(), "beat.wav", "audio/wav")
    assert sound["kind"] == "audio"
    ref = {"type": "audio", "file_id": sound["id"], "role": "reference"}
    _, path = run(api, tmp_path, prompt="calm green hills", duration=2, input_references=[ref])
    with av.open(str(path)) as container:
        assert container.streams.audio and container.streams.audio[0].codec_context.name == "aac"
        stream = container.streams.audio[0]
        samples = np.concatenate([f.to_ndarray().mean(axis=0) for f in container.decode(stream)])
        assert samples.size / stream.codec_context.sample_rate == pytest.approx(2.0, abs=0.05)
    half = samples.size // 2
    assert np.sqrt(np.mean(samples[2400 : half - 2400] ** 2)) > 0.3 > np.sqrt(np.mean(samples[half + 4800 :] ** 2))
    frames = luma(path)
    assert len(frames) == 48
    busy = np.mean([diff(frames[i], frames[i + 1]) for i in range(2, 22)])
    calm = np.mean([diff(frames[i], frames[i + 1]) for i in range(26, 46)])
    assert busy > 3 * calm + 1, (busy, calm)


def test_first_and_last_frames(api: httpx.Client, tmp_path: Path) -> None:
    red, blue = (220, 40, 40), (30, 60, 220)
    frames_in = [
        {"type": "image_url", "image_url": {"url": png_data_url(red, W, H)}, "frame_type": "first_frame"},
        {"type": "image_url", "image_url": {"url": png_data_url(blue, W, H)}, "frame_type": "last_frame"},
    ]
    _, path = run(api, tmp_path, prompt="a forest", duration=2, frame_images=frames_in)
    frames = rgb(path)
    assert len(frames) == 48
    assert diff(frames[0], np.array(red, np.float32)) < 10
    assert diff(frames[-1], np.array(blue, np.float32)) < 10


def test_reference_images_set_the_colours(api: httpx.Client, tmp_path: Path) -> None:
    looks = {}
    for name, colour in (("red", (210, 50, 40)), ("blue", (40, 70, 210))):
        data = base64.b64encode(png_bytes(colour, 64, 64)).decode()
        ref = {"type": "image", "data": data, "mime_type": "image/png", "role": "reference"}
        _, path = run(api, tmp_path, prompt="calm green hills", duration=1, input_references=[ref])
        looks[name] = np.mean(rgb(path), axis=(0, 1, 2))
    assert looks["red"][0] - looks["red"][2] > 60 and looks["blue"][2] - looks["blue"][0] > 60, looks


def test_an_undecodable_source_fails_the_job_and_voids_the_hold(api: httpx.Client) -> None:
    clip = "data:video/mp4;base64," + base64.b64encode(b"\x00\x00\x00\x18ftypmp42 not really a video").decode()
    ref = {"type": "video", "url": clip, "role": "source"}
    r = api.post(
        "/v1/videos", json={**SMALL, "prompt": "x", "duration": 1, "operation": "edit", "input_references": [ref]}
    )
    assert r.status_code == 202, r.text
    done = wait_status(api, r.json()["id"], {"completed", "failed"}, timeout=60)
    assert done["status"] == "failed" and done["error"]["code"] == "input_reference_invalid", done
    assert "source video" in done["error"]["message"]
    assert done["billing"]["state"] == "void"


def test_the_models_listing_says_what_the_built_in_takes(api: httpx.Client) -> None:
    listed = {m["id"]: m for m in api.get("/v1/videos/models").json()["data"]}
    caps = listed[MODEL]["capabilities"]
    assert caps["operations"] == ["generate", "extend", "edit"]
    assert caps["input_reference_roles"] == ["first_frame", "last_frame", "reference"]
    assert caps["video_reference_roles"] == ["source"] and caps["audio_reference_roles"] == ["reference"]
    assert caps["max_reference_images"] == 4
    assert caps["input_video_seconds"] == [1, 20] and caps["input_audio_seconds"] == [0.5, 60]
