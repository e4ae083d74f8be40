"""labutils.kernels: every Triton kernel against its PyTorch reference, on odd shapes, forward and
backward, fp32 and fp16. On a CPU they run under Triton's interpreter (TRITON_INTERPRET=1, set by
labutils.kernels before any kernel is defined); on a CUDA machine the same tests run compiled."""

from __future__ import annotations

import pytest
import torch

from labutils import kernels

pytestmark = pytest.mark.skipif(not kernels.HAVE_TRITON,
                                reason="triton is not installed (it ships Linux x86-64 wheels only)")

if kernels.HAVE_TRITON:
    from labutils.kernels import flash_attention
    from labutils.kernels import matmul
    from labutils.kernels import softmax
    from labutils.kernels import vector_add

DEV = kernels.device()
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float16: dict(rtol=2e-3, atol=2e-3)}


def randn(*shape, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g).to(dtype=dtype, device=DEV)


def test_cpu_runs_the_interpreter():
    assert kernels.interpreted() == (not torch.cuda.is_available())


@pytest.mark.parametrize("n", [1, 1000, 4099])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_vector_add(n, dtype):
    x, y = randn(n, dtype=dtype), randn(n, dtype=dtype, seed=1)
    torch.testing.assert_close(vector_add.vector_add(x, y, block=256), vector_add.vector_add_reference(x, y),
                               rtol=0, atol=0)


@pytest.mark.parametrize("shape", [(1, 1), (7, 33), (64, 1000), (3, 4097)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_softmax(shape, dtype):
    x = randn(*shape, dtype=dtype) * 5
    out = softmax.softmax(x)
    torch.testing.assert_close(out, softmax.softmax_reference(x), **TOL[dtype])
    torch.testing.assert_close(out.float().sum(-1), torch.ones(shape[0], device=DEV), rtol=0,
                               atol=2e-3 if dtype == torch.float16 else 1e-5)


def test_softmax_is_safe_for_large_inputs():
    x = torch.tensor([[1000.0, 1000.0, -1000.0]], device=DEV)
    torch.testing.assert_close(softmax.softmax(x), torch.tensor([[0.5, 0.5, 0.0]], device=DEV))


def test_fused_softmax_moves_a_third_of_the_bytes():
    assert softmax.fused_bytes(4096, 4096, torch.float16) * 3 == softmax.unfused_bytes(4096, 4096, torch.float16)


@pytest.mark.parametrize("mnk", [(1, 1, 1), (70, 83, 45), (128, 64, 96), (33, 17, 129)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_matmul(mnk, dtype):
    M, N, K = mnk
    a, b = randn(M, K, dtype=dtype), randn(K, N, dtype=dtype, seed=1)
    out = matmul.matmul(a, b, block_m=32, block_n=32, block_k=16)
    tol = dict(rtol=1e-5, atol=1e-4) if dtype == torch.float32 else dict(rtol=2e-3, atol=5e-2)
    torch.testing.assert_close(out, matmul.matmul_reference(a, b), **tol)


def test_matmul_accumulates_in_fp32():
    # 4096 products of 1 + 2^-11 (exactly representable in fp16): an fp16 running sum would
    # round away the small parts; an fp32 accumulator keeps them until the final rounding.
    a = torch.full((16, 4096), 1 + 2**-11, dtype=torch.float16, device=DEV)
    b = torch.ones((4096, 16), dtype=torch.float16, device=DEV)
    out = matmul.matmul(a, b, block_m=16, block_n=16, block_k=64)
    assert out[0, 0].item() == pytest.approx(4096 * (1 + 2**-11), rel=1e-3)


def test_arithmetic_intensity_grows_with_tiles():
    assert matmul.arithmetic_intensity(64, 64, 32, 2) == pytest.approx(32.0)
    assert matmul.arithmetic_intensity(128, 128, 32, 2) == pytest.approx(64.0)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("T, D", [(1, 16), (45, 32), (64, 64), (97, 16)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_flash_attention_forward_and_backward(causal, T, D, dtype):
    q, k, v = (randn(2, 3, T, D, dtype=dtype, seed=s).requires_grad_() for s in range(3))
    do = randn(2, 3, T, D, dtype=dtype, seed=3)
    out = flash_attention.flash_attention(q, k, v, causal)
    out.backward(do)
    grads = [t.grad for t in (q, k, v)]
    # reference: autograd through plain fp32 attention on the same (rounded) inputs
    q32, k32, v32 = (t.detach().float().requires_grad_() for t in (q, k, v))
    ref = flash_attention.attention_reference(q32, k32, v32, causal)
    ref.backward(do.float())
    tol = TOL[dtype] if dtype == torch.float32 else dict(rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(out.float(), ref, **tol)
    for g, r in zip(grads, (q32, k32, v32)):
        torch.testing.assert_close(g.float(), r.grad, **tol)


def test_flash_attention_saves_the_log_sum_exp():
    q, k, v = (randn(1, 2, 50, 32, seed=s) for s in range(3))
    o, lse = flash_attention.flash_forward(q, k, v, causal=True)
    s = (q @ k.transpose(-2, -1)) / 32**0.5
    s = s.masked_fill(~torch.ones(50, 50, dtype=torch.bool).tril(), float("-inf"))
    torch.testing.assert_close(lse, torch.logsumexp(s, -1), rtol=1e-5, atol=1e-5)
    assert lse.shape == (1, 2, 50) and lse.dtype == torch.float32


def test_flash_attention_matches_sdpa_with_a_custom_scale():
    q, k, v = (randn(1, 1, 40, 16, seed=s) for s in range(3))
    out = flash_attention.flash_attention(q, k, v, causal=True, sm_scale=0.3)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.3)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


# --- bad input: a clear error, never a wrong result ----------------------------------------------

def test_bad_inputs_name_the_argument():
    x = randn(8, 8)
    with pytest.raises(ValueError, match="x and y"):
        vector_add.vector_add(x, randn(8, 9))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        softmax.softmax([[1.0, 2.0]])
    with pytest.raises(TypeError, match="dtype"):
        softmax.softmax(torch.ones(4, 4, dtype=torch.int64, device=DEV))
    with pytest.raises(ValueError, match="contiguous"):
        softmax.softmax(randn(8, 16).t())
    with pytest.raises(ValueError, match="2 dimensions"):
        softmax.softmax(randn(8))
    with pytest.raises(ValueError, match=r"\(M, K\) and \(K, N\)"):
        matmul.matmul(randn(4, 5), randn(4, 5))
    with pytest.raises(TypeError, match="same dtype"):
        matmul.matmul(randn(4, 4), randn(4, 4, dtype=torch.float16))
    with pytest.raises(ValueError, match="block_k"):
        matmul.matmul(randn(4, 4), randn(4, 4), block_k=24)
    with pytest.raises(ValueError, match="input_precision"):
        matmul.matmul(randn(4, 4), randn(4, 4), input_precision="fp8")
    q = randn(1, 1, 8, 16)
    with pytest.raises(ValueError, match="head size"):
        flash_attention.flash_attention(randn(1, 1, 8, 24), randn(1, 1, 8, 24), randn(1, 1, 8, 24))
    with pytest.raises(ValueError, match="same shape"):
        flash_attention.flash_attention(q, randn(1, 1, 9, 16), q)
    with pytest.raises(TypeError, match="causal"):
        flash_attention.flash_attention(q, q, q, causal=1)
    with pytest.raises(ValueError, match="4 dimensions"):
        flash_attention.flash_attention(randn(8, 16), randn(8, 16), randn(8, 16))


@pytest.mark.skipif(torch.cuda.is_available(), reason="the interpreter's bf16 check is CPU-only")
def test_bf16_is_refused_under_the_interpreter():
    with pytest.raises(TypeError, match="bfloat16"):
        softmax.softmax(torch.ones(2, 2, dtype=torch.bfloat16))
