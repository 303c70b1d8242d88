"""BEGAN: the autoencoder discriminator, its generator, and the equilibrium loss with a resumable k_t."""
from __future__ import annotations

import pytest
import torch

from gfpgan.archs import build_network
from gfpgan.archs.began_arch import BEGANDiscriminator, BEGANGenerator
from gfpgan.losses import build_loss
from gfpgan.losses.began_loss import BEGANLoss


@pytest.mark.parametrize('size', [16, 32])
def test_began_networks_shapes_and_paper_layout(size):
    g = BEGANGenerator(latent_dim=8, image_size=size, base_channels=4, out_channels=1)
    d = BEGANDiscriminator(image_size=size, hidden_dim=8, base_channels=4, in_channels=1)
    img = g(torch.randn(2, 8))
    assert img.shape == (2, 1, size, size)
    assert d(img).shape == img.shape and d.is_autoencoder
    strided = [m for m in d.encoder if isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2)]
    assert [m.out_channels for m in strided] == [4 * (i + 2) for i in range(len(strided))]  # n, 2n, 3n, ...
    assert len(strided) == {16: 1, 32: 2}[size]  # down to 8x8
    assert not any(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.Tanh)) for m in [*g.modules(), *d.modules()])


def test_began_errors_and_registry():
    with pytest.raises(ValueError, match='power of two >= 16'):
        BEGANGenerator(image_size=8)
    with pytest.raises(ValueError, match='built for 16px'):
        BEGANDiscriminator(image_size=16, base_channels=2)(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match='latents of shape'):
        BEGANGenerator(latent_dim=4, image_size=16, base_channels=2)(torch.randn(1, 5))
    assert isinstance(build_network(dict(type='BEGANDiscriminator', image_size=16, base_channels=2)),
                      BEGANDiscriminator)
    with pytest.raises(ValueError, match='gamma'):
        BEGANLoss(gamma=0)


def test_began_loss_matches_the_formulas():
    loss = build_loss(dict(type='BEGANLoss', gamma=0.5, lambda_k=0.1, k_init=0.2))
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    real_recon = torch.tensor([[1.5, 2.0], [2.0, 4.0]])  # |diff| = .5, 0, 1, 0 -> L(x) = 0.375
    fake = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    fake_recon = torch.tensor([[0.2, -0.2], [0.2, 0.6]])  # |diff| = .2, .2, .2, .6 -> L(G(z)) = 0.3
    terms = loss(real, real_recon, fake, fake_recon)
    assert terms.l_real.item() == pytest.approx(0.375)
    assert terms.l_fake.item() == pytest.approx(0.3)
    assert terms.l_d.item() == pytest.approx(0.375 - 0.2 * 0.3)
    assert loss.g_loss(fake, fake_recon).item() == pytest.approx(0.3)
    m = loss.update(terms.l_real, terms.l_fake)
    # k = clip(0.2 + 0.1 * (0.5 * 0.375 - 0.3), 0, 1) = 0.18875; M = 0.375 + |0.1875 - 0.3| = 0.4875
    assert loss.k.item() == pytest.approx(0.18875)
    assert m == pytest.approx(0.4875)
    sq = BEGANLoss(eta=2)
    assert sq.recon_error(real, real_recon).item() == pytest.approx((0.25 + 1.0) / 4)


def test_k_is_clipped_to_0_1():
    loss = BEGANLoss(gamma=1.0, lambda_k=1.0, k_init=0.9)
    loss.update(1.0, 0.0)  # 0.9 + 1.0 -> 1
    assert loss.k.item() == 1.0
    loss.update(0.0, 5.0)  # 1 - 5 -> 0
    assert loss.k.item() == 0.0


def test_k_is_saved_and_resumed_with_the_state_dict(tmp_path):
    loss = BEGANLoss(lambda_k=0.01)
    for _ in range(3):
        loss.update(1.0, 0.1)
    assert list(loss.state_dict()) == ['k']
    torch.save(loss.state_dict(), tmp_path / 'cri.pth')
    resumed = BEGANLoss(lambda_k=0.01)
    resumed.load_state_dict(torch.load(tmp_path / 'cri.pth'))
    assert resumed.k.item() == pytest.approx(loss.k.item()) and resumed.k.item() == pytest.approx(3 * 0.01 * 0.4)
    assert resumed(torch.ones(1, 2), torch.zeros(1, 2), torch.ones(1, 2), torch.ones(1, 2) * 0.5).l_d.item() == \
        pytest.approx(1.0 - resumed.k.item() * 0.5)


@pytest.mark.parametrize('k_init', [0.0, 0.9])
def test_k_settles_where_gamma_l_real_equals_l_fake(k_init):
    """Closed loop on a controlled toy: the more D weighs the fakes (k), the worse it reconstructs them,
    L(G(z)) = 0.1 + 0.8 k, with L(x) = 0.6 fixed. The equilibrium gamma L(x) = L(G(z)) is at
    k* = (0.5 * 0.6 - 0.1) / 0.8 = 0.25; k must approach it from either side, and M must tend to L(x)."""
    gamma, lambda_k, l_real = 0.5, 0.5, 0.6
    k_star = (gamma * l_real - 0.1) / 0.8
    loss = BEGANLoss(gamma=gamma, lambda_k=lambda_k, k_init=k_init)
    ks, ms = [k_init], []
    for _ in range(60):
        l_fake = 0.1 + 0.8 * ks[-1]
        ms.append(loss.update(torch.tensor(l_real), torch.tensor(l_fake)))
        ks.append(loss.k.item())
        assert ks[-1] == pytest.approx(min(max(ks[-2] + lambda_k * (gamma * l_real - l_fake), 0.0), 1.0))
        assert ms[-1] == pytest.approx(l_real + abs(gamma * l_real - l_fake))
    distances = [abs(k - k_star) for k in ks]
    assert all(b < a for a, b in zip(distances[:20], distances[1:21]))  # every step closer
    assert ks[-1] == pytest.approx(k_star, abs=1e-6) and ms[-1] == pytest.approx(l_real, abs=1e-6)


def test_a_short_began_run_balances_with_k_in_range():
    """D learns to reconstruct reals; k follows the control loop on the run's own losses and stays in [0, 1]."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    g = BEGANGenerator(latent_dim=8, image_size=16, base_channels=8)
    d = BEGANDiscriminator(image_size=16, hidden_dim=8, base_channels=8)
    loss = BEGANLoss(gamma=0.5, lambda_k=0.05)
    opt_g = torch.optim.Adam(g.parameters(), 1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 1e-3, betas=(0.5, 0.999))
    ramp = torch.linspace(-0.8, 0.8, 16)[None, None, None, :]  # smooth images: a fit for an 8-d code
    real = (ramp * torch.where(torch.arange(8) % 2 == 0, 1.0, -1.0)[:, None, None, None]).expand(-1, 3, 16, -1)
    first = None
    ks, losses = [loss.k.item()], []
    for _ in range(40):
        fake = g(torch.randn(8, 8, generator=gen))
        terms = loss(real, d(real), fake.detach(), d(fake.detach()))
        opt_d.zero_grad()
        terms.l_d.backward()
        opt_d.step()
        d.requires_grad_(False)
        l_g = loss.g_loss(fake, d(fake))
        opt_g.zero_grad()
        l_g.backward()
        opt_g.step()
        d.requires_grad_(True)
        loss.update(terms.l_real, terms.l_fake)
        ks.append(loss.k.item())
        losses.append((terms.l_real.item(), terms.l_fake.item()))
        first = first if first is not None else terms.l_real.item()
    assert terms.l_real.item() < 0.8 * first
    replay = [0.0]  # k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1) on the recorded losses
    for l_real, l_fake in losses:
        replay.append(min(max(replay[-1] + 0.05 * (0.5 * l_real - l_fake), 0.0), 1.0))
    assert ks == pytest.approx(replay, abs=1e-5)
    assert all(0.0 <= k <= 1.0 for k in ks) and max(ks) > 0
