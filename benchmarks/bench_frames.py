"""Frame codec speed, pure and compiled: encode_text, decoding masked frames, apply_mask.

Run: .venv/bin/python -m pytest -p no:cacheprovider --benchmark-enable benchmarks/bench_frames.py
"""

from __future__ import annotations

from types import ModuleType

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from arinova._fast import _frames_py

try:
    from arinova._fast import _frames as _compiled
except ImportError:  # the extension is not built
    _compiled = None

SIZES = {"64B": 64, "1KiB": 1024, "16KiB": 16384}
MASK = b"\x37\xfa\x21\x3d"


@pytest.fixture(
    params=[
        pytest.param(_frames_py, id="pure"),
        pytest.param(
            _compiled,
            id="compiled",
            marks=pytest.mark.skipif(_compiled is None, reason="extension not built"),
        ),
    ]
)
def codec(request: pytest.FixtureRequest) -> ModuleType:
    module: ModuleType = request.param
    return module


@pytest.mark.benchmark(group="encode_text")
@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_encode_text(benchmark: BenchmarkFixture, codec: ModuleType, size: int) -> None:
    text = ('{"type":"stream_chunk","chunk":"' + "x" * size)[:size]
    frame = benchmark(codec.encode_text, text)
    assert len(frame) > size


@pytest.mark.benchmark(group="encode_text non-ASCII")
@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_encode_text_non_ascii(benchmark: BenchmarkFixture, codec: ModuleType, size: int) -> None:
    # 12 characters, 14 bytes: about ``size`` bytes of UTF-8 in all
    text = ("héllo wörld " * (size // 10))[: size * 6 // 7]
    frame = benchmark(codec.encode_text, text)
    assert abs(len(frame) - size) < 16


@pytest.mark.benchmark(group="decode masked frame")
@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_decode_masked(benchmark: BenchmarkFixture, codec: ModuleType, size: int) -> None:
    frame = _frames_py.encode_frame(1, b"m" * size, mask=MASK)
    decoder = codec.FrameDecoder(1 << 20)
    out = benchmark(decoder.feed, frame)
    assert out == [(1, "m" * size)]


@pytest.mark.benchmark(group="apply_mask")
def test_apply_mask_16k(benchmark: BenchmarkFixture, codec: ModuleType) -> None:
    data = bytes(range(256)) * 64
    out = benchmark(codec.apply_mask, data, MASK)
    assert len(out) == 16384
