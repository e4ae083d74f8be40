"""Assignment 13_kernels: a Triton kernel of one's own (masked, any length, launched on a grid),
the arithmetic intensity of a matmul tile, and the napkin math of kernels on a roofline
(chapter 13)."""

from _rules import RULES
from build_sources import md, setup_cell, solution, tests

ASSIGNMENT = "13_kernels"
TITLE = "GPU kernels in Triton"

# Triton must be imported after labutils.kernels: without a CUDA device that package switches on
# Triton's CPU interpreter (TRITON_INTERPRET=1), which is read when a @triton.jit is defined.
IMPORTS = """import torch

import labutils.kernels  # first: without a GPU it switches on Triton's CPU interpreter
import triton
import triton.language as tl

labutils.kernels.require_triton()
DEVICE = labutils.kernels.device()  # cpu under the interpreter, cuda when compiled
print(f"kernels run {'under the interpreter' if labutils.kernels.interpreted() else 'compiled'}, "
      f"on {DEVICE}")
"""


def cells():
    return [
        md(f"""
# Assignment 13: {TITLE}

Chapter 13 (`notebooks/13_kernels.ipynb`) writes GPU kernels in Triton: a vector add (the
launch grid, program ids, masks), a fused softmax, a tiled matmul with an fp32 accumulator and
FlashAttention. Here you write and launch a kernel of your own, compute how many FLOPs a matmul
tile does per byte it loads, then place **your** kernels on a GPU's roofline.
{RULES}
**Triton in this notebook.** Run the setup cell before anything else: it imports
`labutils.kernels` *before* Triton. Without a CUDA GPU that switches on Triton's interpreter
(`TRITON_INTERPRET=1`), which runs your kernel with NumPy on the CPU: slowly, but the same
source, with the same results. The switch is read when a `@triton.jit` function is *defined*, so
define your kernels only after the setup cell has run (after a kernel restart, run the setup cell
again first). Tensors live on `DEVICE`: the CPU under the interpreter, the GPU when compiled.

Points: Part 1 (4), Part 2 (2), Part 3 (6). Total 12.
"""),
        *setup_cell(ASSIGNMENT, extra_imports=IMPORTS),
        md("""
## Part 1: a scaled ReLU kernel (4 points)

Write an elementwise Triton kernel and the Python function that launches it:

* `scaled_relu_kernel(x_ptr, out_ptr, n_elements, alpha, BLOCK: tl.constexpr)`, decorated with
  `@triton.jit`: each program instance owns `BLOCK` consecutive elements (program `p` owns
  `p·BLOCK … p·BLOCK + BLOCK − 1`) and writes `out[i] = alpha · max(x[i], 0)` for those of its
  elements with `i < n_elements`. It must **never read or write past `n_elements`**: the last
  block sticks out whenever the length is not a multiple of `BLOCK`, so load and store with a
  mask. Compute in fp32 and store in the output's dtype (`out_ptr.dtype.element_ty`).
* `scaled_relu(x, alpha, block=1024)`: for a contiguous 1-D tensor `x` on `DEVICE` (float32 or
  float16, any length ≥ 1) and a Python float `alpha` (negative too), allocate the output (a new
  tensor of `x`'s shape and dtype; `x` is left unchanged), launch `scaled_relu_kernel[grid](...)`
  with one program per block of `block` elements (`triton.cdiv` rounds up), and return the
  output. `block` is a power of two ≥ 16.

The grader launches your kernel itself on lengths that are not multiples of `BLOCK`, checks that
nothing past the end was written, and checks that `scaled_relu` returns what the kernel computed:
computing the result with PyTorch instead scores nothing. As in the chapter's `vector_add`, the
kernel sees raw pointers: `x_ptr + offsets` addresses elements, `tl.load`/`tl.store` take a
`mask=`.
"""),
        solution("relu_impl", '''
@triton.jit
def scaled_relu_kernel(x_ptr, out_ptr, n_elements, alpha, BLOCK: tl.constexpr):
    """out[i] = alpha * max(x[i], 0) for the BLOCK elements this program owns (masked)."""
    ### BEGIN SOLUTION
    first = tl.program_id(0) * BLOCK  # this program's block starts here
    idx = first + tl.arange(0, BLOCK)  # (BLOCK,) element indices
    inside = idx < n_elements  # lanes past the end do nothing
    xs = tl.load(x_ptr + idx, mask=inside, other=0.0).to(tl.float32)
    ys = alpha * tl.maximum(xs, 0.0)
    tl.store(out_ptr + idx, ys.to(out_ptr.dtype.element_ty), mask=inside)
    ### END SOLUTION


def scaled_relu(x, alpha, block=1024):
    """alpha * max(x, 0) elementwise, computed by scaled_relu_kernel."""
    ### BEGIN SOLUTION
    result = torch.empty_like(x)
    n_programs = triton.cdiv(x.numel(), block)
    scaled_relu_kernel[(n_programs,)](x, result, x.numel(), alpha, BLOCK=block)
    return result
    ### END SOLUTION
'''),
        tests("relu_tests", 4, '''
# Public tests. x and the output are the first 3000 elements of longer buffers, so a kernel
# that forgets its mask writes into the spare room (where the test sees it), not into memory
# that belongs to something else.
_g = torch.Generator().manual_seed(13)
_xbuf = torch.randn(3000 + 2048, generator=_g).to(DEVICE)
_obuf = torch.full((3000 + 2048,), 7.0, device=DEVICE)
scaled_relu_kernel[(triton.cdiv(3000, 1024),)](_xbuf, _obuf, 3000, 2.5, BLOCK=1024)
assert bool((_obuf[3000:] == 7.0).all()), "the kernel wrote past n_elements: mask tl.store"
torch.testing.assert_close(_obuf[:3000], 2.5 * torch.relu(_xbuf[:3000]))
_y = scaled_relu(_xbuf[:3000], 2.5)
assert isinstance(_y, torch.Tensor) and _y.shape == (3000,) and _y.dtype == torch.float32
torch.testing.assert_close(_y, 2.5 * torch.relu(_xbuf[:3000]))
### BEGIN HIDDEN TESTS
# The kernel and the launcher run in the student's process (student_process: the grader's
# handle on it); these checks run in the grader's own.
assert student_process.eval("isinstance(scaled_relu_kernel, triton.runtime.KernelInterface)") is True, \\
    "scaled_relu_kernel must be a @triton.jit function"

def _ref_relu(_x, _alpha):
    return (_alpha * torch.relu(_x.float())).to(_x.dtype)


_TOL = {torch.float32: dict(rtol=1e-6, atol=1e-6), torch.float16: dict(rtol=2e-3, atol=2e-3)}
_PAD = 2048
_g = torch.Generator().manual_seed(2013)
for _dtype in (torch.float32, torch.float16):
    for _i, _n in enumerate((1, 2, 15, 16, 17, 127, 1000, 1025, 3001)):
        for _j, _block in enumerate((16, 128, 1024)):
            _alpha = (1.0, 0.3, -2.0, 1.75)[(_i + _j) % 4]
            _xb = (3 * torch.randn(_n + _PAD, generator=_g)).to(dtype=_dtype, device=DEVICE)
            _x_before = _xb.clone()
            _ob = torch.full((_n + _PAD,), 7.0, dtype=_dtype, device=DEVICE)
            scaled_relu_kernel[(triton.cdiv(_n, _block),)](_xb, _ob, _n, _alpha, BLOCK=_block)
            _where = f"n_elements={_n}, BLOCK={_block}, alpha={_alpha}, {_dtype}"
            assert bool((_ob[_n:] == 7.0).all()), f"the kernel wrote past n_elements ({_where})"
            assert torch.equal(_xb, _x_before), f"the kernel changed its input ({_where})"
            torch.testing.assert_close(_ob[:_n], _ref_relu(_xb[:_n], _alpha), **_TOL[_dtype],
                                       msg=lambda _m: f"wrong output for {_where}: {_m}")
        for _n in (1, 17, 1000, 1025, 4099):
            _alpha = (0.5, -1.5, 3.0)[_n % 3]
            _xb = (3 * torch.randn(_n + _PAD, generator=_g)).to(dtype=_dtype, device=DEVICE)
            _x = _xb[:_n]
            _x_before = _x.clone()
            _y = scaled_relu(_x, _alpha)
            _where = f"scaled_relu on {_n} {_dtype} elements, alpha={_alpha}"
            assert isinstance(_y, torch.Tensor), f"{_where}: return a tensor"
            assert _y.shape == _x.shape and _y.dtype == _x.dtype and _y.device == _x.device, \\
                f"{_where}: the output must have x's shape, dtype and device"
            assert torch.equal(_x, _x_before), f"{_where}: x was changed"
            torch.testing.assert_close(_y, _ref_relu(_x, _alpha), **_TOL[_dtype],
                                       msg=lambda _m: f"{_where}: {_m}")


# The launch spy: in the student's process, scaled_relu_kernel is swapped for a spy that counts
# launches and runs a kernel adding 1000, so the result shows whether the kernel's output is used.
_SPY = """
@triton.jit
def _lab_marked_kernel(x_ptr, out_ptr, n_elements, alpha, BLOCK: tl.constexpr):
    _k = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    _v = tl.load(x_ptr + _k, mask=_k < n_elements, other=0.0)
    tl.store(out_ptr + _k, alpha * tl.maximum(_v, 0.0) + 1000.0, mask=_k < n_elements)


class _LabLaunchSpy:
    def __init__(self):
        self.launches = 0

    def __getitem__(self, grid):
        self.launches += 1
        return _lab_marked_kernel[grid]


_lab_student_kernel, _lab_spy = scaled_relu_kernel, _LabLaunchSpy()
scaled_relu_kernel = _lab_spy
"""
_x = torch.randn(4099 + _PAD, generator=_g).to(DEVICE)[:4099]
student_process.exec(_SPY)
try:
    _y = scaled_relu(_x, 1.5)
    _launches = student_process.eval("_lab_spy.launches")
finally:
    student_process.exec("scaled_relu_kernel = _lab_student_kernel")
assert type(_launches) is int and _launches >= 1, "scaled_relu must launch scaled_relu_kernel[grid](...)"
assert torch.allclose(_y, 1.5 * torch.relu(_x) + 1000.0), \\
    "scaled_relu must return what scaled_relu_kernel computed, for every element"
### END HIDDEN TESTS
'''),
        md("""
## Part 2: arithmetic intensity of a matmul tile (2 points)

The chapter's tiled matmul runs one program per `BLOCK_M × BLOCK_N` tile of C. At each step
along K it loads a `BLOCK_M × BLOCK_K` tile of A and a `BLOCK_K × BLOCK_N` tile of B, each
element `bytes_per_element` bytes, and adds their product into its accumulator: a
multiply and an add (2 FLOPs) for each of the `BLOCK_M · BLOCK_N · BLOCK_K` products.

Implement `tile_intensity(block_m, block_n, block_k, bytes_per_element)`: the FLOPs per byte
loaded in one such K-step (count the loads of A and B only; the accumulator stays in registers),
as a Python float.
"""),
        solution("intensity_impl", '''
def tile_intensity(block_m, block_n, block_k, bytes_per_element):
    """FLOPs per byte loaded by one K-step of one program of the tiled matmul."""
    ### BEGIN SOLUTION
    flops = 2 * block_m * block_n * block_k
    loaded_bytes = (block_m * block_k + block_k * block_n) * bytes_per_element
    return flops / loaded_bytes
    ### END SOLUTION
'''),
        tests("intensity_tests", 2, '''
# Public tests: a 64 × 64 tile in bf16 does 32 FLOPs per byte; BLOCK_K cancels out.
assert abs(tile_intensity(64, 64, 32, 2) - 32.0) < 1e-9
assert abs(tile_intensity(64, 64, 128, 2) - 32.0) < 1e-9
assert abs(tile_intensity(128, 128, 32, 4) - 32.0) < 1e-9
### BEGIN HIDDEN TESTS
from labutils.kernels.matmul import arithmetic_intensity as _ref_intensity
for _bm in (16, 32, 64, 128, 256):
    for _bn in (16, 32, 64, 128, 256, 512):
        for _bk in (16, 32, 64, 128):
            for _e in (1, 2, 4):
                _want = _ref_intensity(_bm, _bn, _bk, _e)
                _got = tile_intensity(_bm, _bn, _bk, _e)
                assert abs(_got - _want) <= 1e-9 * _want, f"wrong for {_bm}x{_bn}x{_bk}, {_e} bytes"
assert abs(tile_intensity(100, 30, 7, 2) - _ref_intensity(100, 30, 7, 2)) < 1e-9, "not only powers of two"
### END HIDDEN TESTS
'''),
        md("""
## Part 3: napkin math for your kernels (6 points)

Your GPU is `PARAMS["gpu"]`. Take its numbers from the datasheet module, never typed by hand:
after `from labutils.hardware import get`, `spec = get(PARAMS["gpu"])` has
`spec.mem_bandwidth_bytes_per_s` (HBM, bytes/s) and `spec.peak_flops(dtype)` (dense FLOP/s,
`dtype` one of `"fp32"`, `"bf16"`, ...).
GB = 10⁹ bytes, MB = 10⁶ bytes. Answers within 2 % get full marks (the program count must be
exact).

* `answer_add_time_us`: the shortest possible time, in microseconds, of the chapter's vector add
  `out = x + y` on `PARAMS["n_elements"]` **fp16** elements, if it moved every byte it must at
  the full HBM bandwidth.
* `answer_programs`: your matmul multiplies an (`PARAMS["M"]` × `PARAMS["K"]`) matrix by a
  (`PARAMS["K"]` × `PARAMS["N"]`) one with tiles of `PARAMS["block_m"]` × `PARAMS["block_n"]`
  (× `PARAMS["block_k"]`), one program per tile of C: how many programs does its launch grid
  have?
* `answer_tile_intensity`: the FLOPs per byte of one K-step of one of those programs (Part 2),
  with `PARAMS["matmul_dtype"]` inputs (`"fp32"`: 4 bytes, `"bf16"`: 2 bytes).
* `answer_attainable_tflops`: the roofline bound on that kernel in TFLOP/s (10¹² FLOP/s), if
  every tile were loaded from HBM (no reuse through the caches): the smaller of the peak for
  `PARAMS["matmul_dtype"]` (fp32 multiplies run on the CUDA cores, bf16 on the tensor cores)
  and intensity × bandwidth. It is memory-bound when its intensity is below the ridge point
  peak ÷ bandwidth.
* `answer_score_gb`: naive attention at sequence length `PARAMS["seq_len"]` with
  `PARAMS["n_heads"]` heads materialises one fp16 score per (head, query, key) for one sequence
  and one layer: how many GB is that?
* `answer_lse_mb`: FlashAttention stores instead one fp32 log-sum-exp per (head, query) for the
  backward pass: how many MB is that?
"""),
        solution("napkin", '''
### BEGIN SOLUTION
from labutils.hardware import get as _get_spec

_spec = _get_spec(PARAMS["gpu"])
answer_add_time_us = 3 * PARAMS["n_elements"] * 2 / _spec.mem_bandwidth_bytes_per_s * 1e6
answer_programs = triton.cdiv(PARAMS["M"], PARAMS["block_m"]) * triton.cdiv(PARAMS["N"], PARAMS["block_n"])
_bytes = 4 if PARAMS["matmul_dtype"] == "fp32" else 2
_bm, _bn = PARAMS["block_m"], PARAMS["block_n"]
answer_tile_intensity = 2 * _bm * _bn / ((_bm + _bn) * _bytes)
answer_attainable_tflops = min(_spec.peak_flops(PARAMS["matmul_dtype"]),
                               answer_tile_intensity * _spec.mem_bandwidth_bytes_per_s) / 1e12
answer_score_gb = PARAMS["seq_len"] ** 2 * PARAMS["n_heads"] * 2 / 1e9
answer_lse_mb = PARAMS["seq_len"] * PARAMS["n_heads"] * 4 / 1e6
### END SOLUTION
print(f"vector add >= {answer_add_time_us:,.0f} us; matmul grid of {answer_programs:,} programs, "
      f"{answer_tile_intensity:.1f} FLOP/byte, <= {answer_attainable_tflops:.0f} TFLOP/s")
print(f"attention scores {answer_score_gb:,.1f} GB vs FlashAttention's lse {answer_lse_mb:.2f} MB")
'''),
        tests("napkin_add", 1, '''
assert isinstance(answer_add_time_us, (int, float)) and answer_add_time_us > 0
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "add_time_us", answer_add_time_us, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_grid", 1, '''
assert isinstance(answer_programs, (int, float)) and answer_programs >= 1
assert answer_programs == int(answer_programs), "a grid has a whole number of programs"
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "programs", answer_programs, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_intensity", 1, '''
assert isinstance(answer_tile_intensity, (int, float)) and answer_tile_intensity > 0
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "tile_intensity", answer_tile_intensity, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_roofline", 1, '''
assert isinstance(answer_attainable_tflops, (int, float)) and answer_attainable_tflops > 0
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "attainable_tflops", answer_attainable_tflops, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_scores", 1, '''
assert isinstance(answer_score_gb, (int, float)) and answer_score_gb > 0
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "score_gb", answer_score_gb, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_lse", 1, '''
assert isinstance(answer_lse_mb, (int, float)) and answer_lse_mb > 0
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "lse_mb", answer_lse_mb, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
    ]
