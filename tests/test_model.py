"""The MLP and its sparse first layer, checked against plain dense arithmetic."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from textclf.config import ModelConfig
from textclf.errors import ConfigError
from textclf.features import to_torch
from textclf.model import MLP, SparseLinear, split_columns

N_FEATURES, N_OUT = 50, 6


def _sparse_batch(rows: int = 8, cols: int = N_FEATURES, seed: int = 0) -> sp.csr_matrix:
    """A random CSR batch with one empty row, like a text with no known word."""
    matrix = sp.random(rows, cols, density=0.1, format="csr", dtype=np.float32, random_state=seed)
    matrix = sp.lil_matrix(matrix)
    matrix[rows // 2, :] = 0
    return sp.csr_matrix(matrix)


def _layer(seed: int = 0) -> SparseLinear:
    torch.manual_seed(seed)
    return SparseLinear(N_FEATURES, N_OUT)


def _dense_reference(layer: SparseLinear, batch: sp.csr_matrix) -> torch.Tensor:
    return torch.from_numpy(batch.toarray()) @ layer.weight.detach() + layer.bias.detach()


def test_sparse_linear_inference_path_equals_dense_matmul() -> None:
    layer, batch = _layer(), _sparse_batch()
    with torch.no_grad():
        out = layer(to_torch(batch))
    assert out.shape == (batch.shape[0], N_OUT)
    assert torch.allclose(out, _dense_reference(layer, batch), atol=1e-6)


def test_sparse_linear_inference_mode_and_frozen_weight_equal_dense_matmul() -> None:
    layer, batch = _layer(), _sparse_batch()
    expected = _dense_reference(layer, batch)
    with torch.inference_mode():
        assert torch.allclose(layer(to_torch(batch)), expected, atol=1e-6)
    layer.weight.requires_grad_(False)
    assert torch.allclose(layer(to_torch(batch)).detach(), expected, atol=1e-6)


def test_sparse_linear_training_path_equals_dense_matmul() -> None:
    layer, batch = _layer(), _sparse_batch()
    assert torch.is_grad_enabled()
    out = layer(to_torch(batch))
    assert out.requires_grad
    assert torch.allclose(out.detach(), _dense_reference(layer, batch), atol=1e-6)


def test_both_paths_agree_with_each_other() -> None:
    layer, batch = _layer(), _sparse_batch(rows=32, seed=3)
    train_out = layer(to_torch(batch)).detach()
    with torch.no_grad():
        eval_out = layer(to_torch(batch))
    assert torch.allclose(train_out, eval_out, atol=1e-6)


def test_weight_gradient_is_sparse_and_touches_only_rows_in_the_batch() -> None:
    layer, batch = _layer(), _sparse_batch()
    target = torch.randn(batch.shape[0], N_OUT, generator=torch.Generator().manual_seed(1))
    (layer(to_torch(batch)) * target).sum().backward()

    grad = layer.weight.grad
    assert grad is not None and grad.is_sparse
    grad = grad.coalesce()
    touched = set(grad.indices()[0].tolist())
    present = set(batch.indices.tolist())
    assert touched == present
    assert len(present) < N_FEATURES  # the check means something only if some rows are absent

    # Same numbers as autograd through the dense product.
    weight = layer.weight.detach().clone().requires_grad_(True)
    bias = layer.bias.detach().clone().requires_grad_(True)
    ((torch.from_numpy(batch.toarray()) @ weight + bias) * target).sum().backward()
    assert weight.grad is not None and bias.grad is not None and layer.bias.grad is not None
    assert torch.allclose(grad.to_dense(), weight.grad, atol=1e-5)
    absent = sorted(set(range(N_FEATURES)) - present)
    assert torch.count_nonzero(weight.grad[absent]) == 0
    assert torch.allclose(layer.bias.grad, bias.grad, atol=1e-5)


def test_a_batch_with_no_known_terms_trains_without_error() -> None:
    layer = _layer()
    empty = sp.csr_matrix((3, N_FEATURES), dtype=np.float32)
    out = layer(to_torch(empty))
    assert torch.allclose(out.detach(), layer.bias.detach().expand(3, -1))
    out.sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.coalesce().values().numel() == 0


def test_sparse_adam_moves_only_rows_in_the_batch() -> None:
    layer, batch = _layer(), _sparse_batch()
    before = layer.weight.detach().clone()
    optimizer = torch.optim.SparseAdam([layer.weight], lr=0.1)
    layer(to_torch(batch)).sum().backward()
    optimizer.step()
    changed = set(torch.nonzero((layer.weight.detach() != before).any(1)).flatten().tolist())
    assert changed == set(batch.indices.tolist())


def _mlp(hidden: tuple[int, ...] = (16, 8), dropout: float = 0.5, seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    return MLP(ModelConfig(n_features=N_FEATURES, n_labels=4, hidden=hidden, dropout=dropout))


@pytest.mark.parametrize("hidden", [(16,), (16, 8), (32, 16, 8)])
def test_mlp_output_shape(hidden: tuple[int, ...]) -> None:
    model = _mlp(hidden)
    assert len(model.hidden) == len(hidden) - 1
    batch = _sparse_batch(rows=5)
    assert model(to_torch(batch)).shape == (5, 4)
    with torch.no_grad():
        assert model.eval()(to_torch(batch)).shape == (5, 4)


def test_dropout_is_off_in_eval_and_on_in_train() -> None:
    model, x = _mlp(dropout=0.5), to_torch(_sparse_batch(rows=16))
    model.eval()
    with torch.no_grad():
        first, second = model(x), model(x)
    assert torch.equal(first, second)

    # Same weights, no dropout at all: eval mode must give the same numbers.
    plain = _mlp(dropout=0.0)
    plain.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.allclose(plain.eval()(x), first, atol=1e-6)

    model.train()
    torch.manual_seed(1)
    with torch.no_grad():
        noisy = model(x)
    assert not torch.allclose(noisy, first)


def test_sparse_and_dense_parameters_cover_every_parameter_once() -> None:
    model = _mlp(hidden=(16, 8))
    sparse, dense = model.sparse_parameters(), model.dense_parameters()
    ids = [id(p) for p in sparse + dense]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in model.parameters()}
    assert [id(p) for p in sparse] == [id(model.input.weight)]
    assert id(model.input.bias) in {id(p) for p in dense}


def test_wide_columns_of_the_first_layer_go_straight_to_the_logits() -> None:
    torch.manual_seed(0)
    config = ModelConfig(n_features=N_FEATURES, n_labels=4, hidden=(16, 8), dropout=0.0)
    base, wide = MLP(config).eval(), MLP(replace(config, wide=True)).eval()
    assert wide.input.weight.shape == (N_FEATURES, 16 + 4)
    nb = torch.randn(N_FEATURES, 4)
    state = base.state_dict()
    state["input.weight"] = torch.cat([state["input.weight"], nb], 1)
    state["input.bias"] = torch.cat([state["input.bias"], torch.zeros(4)])
    wide.load_state_dict(state)
    batch = _sparse_batch(rows=8)
    with torch.no_grad():
        expected = base(to_torch(batch)) + torch.from_numpy(batch.toarray()) @ nb
        assert torch.allclose(wide(to_torch(batch)), expected, atol=1e-5)
    # The training path (row-gathered product) agrees too.
    assert torch.allclose(wide(to_torch(batch)).detach(), expected, atol=1e-5)


@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("hidden", [(16,), (16, 8)])
def test_inference_path_equals_the_module_path(hidden: tuple[int, ...], wide: bool) -> None:
    """With autograd off, eval mode takes `MLP._infer` (functional ops, fused bias adds); with it
    on, the layers' own modules. Both must give the same logits, empty rows included."""
    torch.manual_seed(3)
    model = MLP(ModelConfig(n_features=N_FEATURES, n_labels=4, hidden=hidden, wide=wide)).eval()
    with torch.no_grad():  # non-zero biases everywhere, so a dropped bias add would show
        for param in model.parameters():
            param.add_(0.1 * torch.randn_like(param))
    x = to_torch(_sparse_batch(rows=9, seed=4))
    modules = model(x).detach()  # autograd on: the module path
    for no_autograd in (torch.no_grad, torch.inference_mode):
        with no_autograd():
            assert torch.allclose(model(x), modules, atol=1e-5)
    assert not torch.equal(modules[4], torch.zeros(4))  # the empty row still gets the biases


def test_split_columns_gives_the_two_column_ranges() -> None:
    batch = _sparse_batch(rows=7, cols=30, seed=2)
    left, right = split_columns(to_torch(batch), 18)
    assert left.shape == (7, 18) and right.shape == (7, 12)
    assert torch.equal(left.to_dense(), torch.from_numpy(batch[:, :18].toarray()))
    assert torch.equal(right.to_dense(), torch.from_numpy(batch[:, 18:].toarray()))


@pytest.mark.parametrize("wide", [False, True])
def test_word_pair_columns_reach_only_their_naive_bayes_term(wide: bool) -> None:
    """The last `n_bigrams` columns add `pairs @ bigrams` to the logits; the first layer reads
    the others, in training mode, in eval mode and on the inference path alike."""
    torch.manual_seed(0)
    words = ModelConfig(n_features=N_FEATURES, n_labels=4, hidden=(16,), dropout=0.0, wide=wide)
    base = MLP(words).eval()
    model = MLP(replace(words, n_features=N_FEATURES + 12, n_bigrams=12)).eval()
    state = base.state_dict()
    state["bigrams"] = torch.randn(12, 4)
    model.load_state_dict(state)
    assert model.input.weight.shape[0] == N_FEATURES
    assert "bigrams" in dict(model.named_buffers())  # saved, never trained
    assert all(p is not model.bigrams for p in model.parameters())
    batch = _sparse_batch(rows=8, cols=N_FEATURES + 12, seed=6)
    expected = base(to_torch(batch[:, :N_FEATURES])).detach()
    expected += torch.from_numpy(batch[:, N_FEATURES:].toarray()) @ state["bigrams"]
    assert torch.allclose(model(to_torch(batch)).detach(), expected, atol=1e-5)
    with torch.inference_mode():
        assert torch.allclose(model(to_torch(batch)), expected, atol=1e-5)


def test_dropout_generator_makes_masks_reproducible() -> None:
    model, x = _mlp(dropout=0.5).train(), to_torch(_sparse_batch(rows=16))
    outs = []
    for _ in range(2):
        model.generator = torch.Generator().manual_seed(7)
        torch.manual_seed(len(outs))  # the global generator must not matter
        outs.append(model(x).detach())
    assert torch.equal(outs[0], outs[1])


def test_one_training_step_updates_every_layer() -> None:
    model, batch = _mlp(dropout=0.0), _sparse_batch(rows=16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizers = [
        torch.optim.SparseAdam(model.sparse_parameters(), lr=0.01),
        torch.optim.Adam(model.dense_parameters(), lr=0.01),
    ]
    loss = torch.nn.functional.cross_entropy(model(to_torch(batch)), torch.arange(16) % 4)
    loss.backward()
    for optimizer in optimizers:
        optimizer.step()
    for name, value in model.state_dict().items():
        assert not torch.equal(value, before[name]), name


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n_features": 0}, "at least one feature"),
        ({"n_labels": 1}, "two labels"),
        ({"hidden": ()}, "hidden sizes"),
        ({"hidden": (16, 0)}, "hidden sizes"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"n_bigrams": 10}, "n_bigrams"),
        ({"n_bigrams": -1}, "n_bigrams"),
    ],
)
def test_model_config_rejects_bad_values(changes: dict[str, Any], message: str) -> None:
    raw: dict[str, Any] = {"n_features": 10, "n_labels": 3, **changes}
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**raw)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    model, batch = _mlp(hidden=(16, 8)).eval(), _sparse_batch(rows=32, seed=5)
    wide = MLP(replace(model.config, wide=True)).eval()
    with torch.no_grad():
        wide_on_cpu = wide(to_torch(batch))
        wide_on_gpu = wide.to("cuda")(to_torch(batch, "cuda"))
    assert torch.allclose(wide_on_gpu.cpu(), wide_on_cpu, atol=1e-5)
    with torch.no_grad():
        on_cpu = model(to_torch(batch))
        on_gpu = model.to("cuda")(to_torch(batch, "cuda"))
    assert on_gpu.device.type == "cuda"
    assert torch.allclose(on_gpu.cpu(), on_cpu, atol=1e-5)

    # The training path too: sparse gradient rows on the GPU equal those on the CPU.
    layer = _layer()
    layer(to_torch(batch)).sum().backward()
    layer_gpu = _layer().to("cuda")
    layer_gpu(to_torch(batch, "cuda")).sum().backward()
    assert layer.weight.grad is not None and layer_gpu.weight.grad is not None
    assert torch.allclose(
        layer_gpu.weight.grad.to_dense().cpu(), layer.weight.grad.to_dense(), atol=1e-5
    )
