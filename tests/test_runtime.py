"""Process-wide settings are borrowed and given back: torch's threads and random state."""

from __future__ import annotations

import os

import pytest

from dataaudit.runtime import (
    available_cores,
    cpu_has_native_bfloat16,
    seeded_torch,
    torch_rng_kept,
    torch_seeded,
    torch_threads,
)

torch = pytest.importorskip("torch")


def test_available_cores_is_the_affinity_share():
    import os

    assert 1 <= available_cores() <= (os.cpu_count() or 1)


def test_torch_threads_never_exceed_the_cores_and_respect_a_lower_count():
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(available_cores() + 3)
        with torch_threads():
            assert torch.get_num_threads() == available_cores()
        assert torch.get_num_threads() == available_cores() + 3
        torch.set_num_threads(1)
        with torch_threads():
            assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(saved)


def test_torch_threads_are_restored_even_after_an_error():
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with pytest.raises(RuntimeError), torch_threads(2):
            assert torch.get_num_threads() == 2
            raise RuntimeError("inside")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(saved)


def test_seeded_torch_draws_the_seeds_stream_and_gives_back_the_callers():
    torch.manual_seed(7)
    expected_next = torch.rand(4)
    torch.manual_seed(0)
    seeded = torch.rand(4)

    torch.manual_seed(7)
    with seeded_torch(0):
        assert torch.equal(torch.rand(4), seeded)
    assert torch.equal(torch.rand(4), expected_next)
    torch.manual_seed(7)
    with torch_rng_kept():
        torch.rand(100)
    assert torch.equal(torch.rand(4), expected_next)


def test_a_seeded_method_is_reproducible_and_leaves_no_trace():
    class Trainer:
        @torch_seeded
        def fine_tune(self, *, seed: int) -> torch.Tensor:
            return torch.rand(3)

    torch.manual_seed(11)
    expected_next = torch.rand(2)
    torch.manual_seed(11)
    first, second = Trainer().fine_tune(seed=3), Trainer().fine_tune(seed=3)
    assert torch.equal(first, second) and not torch.equal(first, Trainer().fine_tune(seed=4))
    assert torch.equal(torch.rand(2), expected_next)


@pytest.mark.slow
def test_embedding_gives_the_thread_count_back():
    from dataaudit.embed import SentenceTransformerEmbedder

    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        vectors = SentenceTransformerEmbedder().embed(["a short text", "another one"])
        assert vectors.shape[0] == 2 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(saved)


def _square_with_pid(value: int) -> tuple[int, int]:
    return value * value, os.getpid()


def _refuse(value: int) -> int:
    raise ValueError(f"refused {value}")


def test_in_background_runs_in_another_process_and_gives_the_result(monkeypatch):
    from dataaudit import runtime

    monkeypatch.setattr(runtime, "available_cores", lambda: 2)
    pending = runtime.in_background(_square_with_pid, 7)
    value, pid = pending()
    assert value == 49 and pid != os.getpid()


def test_in_background_runs_here_with_one_core_or_an_argument_that_cannot_travel(monkeypatch):
    import threading

    from dataaudit import runtime

    assert runtime.in_background(len, [1, 2, 3])() == 3
    monkeypatch.setattr(runtime, "available_cores", lambda: 1)
    assert runtime.in_background(_square_with_pid, 3)() == (9, os.getpid())
    monkeypatch.setattr(runtime, "available_cores", lambda: 2)
    lock = threading.Lock()  # cannot be pickled: the call runs in this process instead
    assert runtime.in_background(isinstance, lock, type(lock))() is True


def test_in_background_raises_the_functions_own_error_here(monkeypatch):
    from dataaudit import runtime

    monkeypatch.setattr(runtime, "available_cores", lambda: 2)
    with pytest.raises(ValueError, match="refused 5"):
        runtime.in_background(_refuse, 5)()


@pytest.mark.parametrize("flags, native", [
    ("fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni", True),  # AMD Zen 4
    ("fpu avx2 avx512f amx_bf16 amx_tile amx_int8", True),  # Intel Sapphire Rapids
    ("fpu avx2 avx512f avx512_vnni", False),  # AVX-512 without bfloat16 products
    ("fpu avx2 avx_vnni", False),
])
def test_native_bfloat16_is_read_off_the_cpu_flags(tmp_path, flags, native):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: x\nflags\t\t: {flags}\n\n")
    assert cpu_has_native_bfloat16(str(cpuinfo)) is native
    assert cpu_has_native_bfloat16(str(tmp_path / "absent")) is False
