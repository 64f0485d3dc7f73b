"""The perceptual losses against direct NumPy computations of their formulas (Johnson et al., 2016)."""

import numpy as np
import pytest
import torch

from fastnst.losses import feature_loss, gram_matrix, style_loss, total_variation

RNG = np.random.default_rng(0)


def _features(*shape):
    return RNG.normal(size=shape).astype(np.float32)


def np_gram(phi):
    """G[b, c, c'] = sum_{h,w} phi[b,c,h,w] phi[b,c',h,w] / (C H W), with explicit loops over channels."""
    b, c, h, w = phi.shape
    g = np.zeros((b, c, c), dtype=np.float64)
    for n in range(b):
        for i in range(c):
            for j in range(c):
                g[n, i, j] = np.sum(phi[n, i].astype(np.float64) * phi[n, j]) / (c * h * w)
    return g


@pytest.mark.parametrize("shape", [(1, 3, 4, 5), (2, 6, 7, 3), (3, 1, 1, 1)])
def test_gram_matrix(shape):
    phi = _features(*shape)
    g = gram_matrix(torch.from_numpy(phi))
    assert g.shape == (shape[0], shape[1], shape[1])
    np.testing.assert_allclose(g.numpy(), np_gram(phi), rtol=1e-5, atol=1e-6)
    assert torch.allclose(g, g.transpose(1, 2))  # symmetric


def test_gram_matrix_is_float32_under_half_precision():
    phi = _features(1, 4, 6, 6)
    g = gram_matrix(torch.from_numpy(phi).half())
    assert g.dtype == torch.float32
    np.testing.assert_allclose(g.numpy(), np_gram(phi.astype(np.float16).astype(np.float32)), rtol=1e-4, atol=1e-5)


def test_feature_loss():
    y, yc = _features(2, 5, 4, 3), _features(2, 5, 4, 3)
    b, c, h, w = y.shape
    # ||phi(y) - phi(y_c)||^2 / (C H W), averaged over the batch
    expected = np.mean([np.sum((y[n].astype(np.float64) - yc[n]) ** 2) / (c * h * w) for n in range(b)])
    assert feature_loss(torch.from_numpy(y), torch.from_numpy(yc)).item() == pytest.approx(expected, rel=1e-5)
    assert feature_loss(torch.from_numpy(y), torch.from_numpy(y)).item() == 0.0


def test_style_loss_sums_layers_and_averages_the_batch():
    layers = {"relu1_2": (3, 4, 5, 6), "relu2_2": (3, 7, 3, 2)}
    out = {k: _features(*s) for k, s in layers.items()}
    target = {k: _features(1, *s[1:]) for k, s in layers.items()}  # one style image, broadcast over the batch
    expected = 0.0
    for k in layers:
        go, gt = np_gram(out[k]), np_gram(target[k])[0]
        expected += np.mean([np.sum((go[n] - gt) ** 2) for n in range(go.shape[0])])  # squared Frobenius norm
    got = style_loss({k: gram_matrix(torch.from_numpy(v)) for k, v in out.items()},
                     {k: gram_matrix(torch.from_numpy(v)) for k, v in target.items()})
    assert got.shape == ()
    assert got.item() == pytest.approx(expected, rel=1e-5)
    same = {k: gram_matrix(torch.from_numpy(v)) for k, v in out.items()}
    assert style_loss(same, same).item() == 0.0


def test_style_loss_with_per_image_targets():
    out, target = _features(2, 3, 4, 4), _features(2, 3, 4, 4)
    go, gt = np_gram(out), np_gram(target)
    expected = np.mean([np.sum((go[n] - gt[n]) ** 2) for n in range(2)])
    got = style_loss({"a": gram_matrix(torch.from_numpy(out))}, {"a": gram_matrix(torch.from_numpy(target))})
    assert got.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("shape", [(1, 3, 5, 7), (2, 3, 2, 9)])
def test_total_variation(shape):
    img = RNG.uniform(size=shape).astype(np.float32)
    b, c, h, w = shape
    dh = [(img[n, k, i + 1, j] - img[n, k, i, j]) ** 2 for n in range(b) for k in range(c)
          for i in range(h - 1) for j in range(w)]
    dw = [(img[n, k, i, j + 1] - img[n, k, i, j]) ** 2 for n in range(b) for k in range(c)
          for i in range(h) for j in range(w - 1)]
    expected = np.mean(np.float64(dh)) + np.mean(np.float64(dw))
    assert total_variation(torch.from_numpy(img)).item() == pytest.approx(expected, rel=1e-5)
    assert total_variation(torch.full(shape, 0.3)).item() == 0.0


def test_losses_give_gradients():
    y = torch.rand(1, 3, 8, 8, requires_grad=True)
    feats = y * 2.0
    loss = (feature_loss(feats, torch.zeros_like(feats)) + total_variation(y)
            + style_loss({"a": gram_matrix(feats)}, {"a": torch.zeros(1, 3, 3)}))
    loss.backward()
    assert y.grad is not None and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0
