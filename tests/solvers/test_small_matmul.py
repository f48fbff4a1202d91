"""Small products as fused loops in odeflow's compiles: the decomposition equals the product (and
its gradients), applies only where it should, and the patch never outlives the block."""

import pytest
import torch

from odeflow.solvers import small_matmul as sm

aten = torch.ops.aten
D = torch.float64


@pytest.mark.parametrize("seed", range(4))
def test_decomposed_products_equal_aten_values_and_gradients(seed):
    g = torch.Generator().manual_seed(seed)
    m, k, n = (int(v) for v in torch.randint(1, 9, (3,), generator=g))
    a = torch.randn(m, k, dtype=D, generator=g, requires_grad=True)
    b = torch.randn(k, n, dtype=D, generator=g, requires_grad=True)
    bias = torch.randn(n, dtype=D, generator=g, requires_grad=True)
    beta, alpha = 0.5 + seed, -1.5 + seed
    ours = sm._addmm(None, 10**6, bias, a, b, beta=beta, alpha=alpha)
    ref = torch.addmm(bias, a, b, beta=beta, alpha=alpha)
    torch.testing.assert_close(ours, ref, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(sm._mm(None, 10**6, a, b), a @ b, rtol=1e-13, atol=1e-13)
    w = torch.randn(m, n, dtype=D, generator=g)
    grads = torch.autograd.grad((ours * w).sum(), (bias, a, b))
    grads_ref = torch.autograd.grad((ref * w).sum(), (bias, a, b))
    for x, y in zip(grads, grads_ref):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)


def test_only_small_float_cpu_products_are_decomposed():
    a, b = torch.ones(4, 8, dtype=D), torch.ones(8, 16, dtype=D)
    assert sm.is_small(a, b, 4 * 8 * 16)
    assert not sm.is_small(a, b, 4 * 8 * 16 - 1)
    assert not sm.is_small(a.float(), b, 10**6)  # mixed dtypes
    assert not sm.is_small(a.to(torch.bfloat16), b.to(torch.bfloat16), 10**6)  # low precision sums
    assert not sm.is_small(a.to(torch.int64), b.to(torch.int64), 10**6)
    assert not sm.is_small(a[None], b, 10**6)
    # a large product goes to the fallback (Inductor's own rule, NotImplemented = "leave to ATen")
    assert sm._mm(None, 10, a, b) is NotImplemented
    assert sm._mm(lambda x, y: "fallback", 10, a, b) == "fallback"
    assert sm._addmm(None, 10**6, torch.ones(16, dtype=torch.float32), a, b) is NotImplemented


def test_the_patch_is_scoped_to_the_block_even_on_errors():
    from torch._inductor.decomposition import select_decomp_table

    table = select_decomp_table()
    before = {op: table.get(op) for op in (aten.mm.default, aten.addmm.default)}
    with pytest.raises(RuntimeError, match="inside"):
        with sm.fused_small_matmuls(limit=123):
            inside = select_decomp_table()[aten.mm.default]
            assert inside is not before[aten.mm.default] and inside.args[1] == 123
            raise RuntimeError("inside")
    assert {op: table.get(op) for op in before} == before
