"""Conditional DCGAN, projection / ACGAN / InfoGAN heads, and class-conditional samples following labels."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gfpgan.archs import build_network
from gfpgan.archs.conditional_gan_arch import ConditionalDCGANDiscriminator, ConditionalDCGANGenerator
from gfpgan.archs.dcgan_arch import DCGANDiscriminator


def test_generator_output_depends_on_the_label():
    torch.manual_seed(0)
    g = ConditionalDCGANGenerator(num_classes=3, latent_dim=8, image_size=16, base_channels=4).eval()
    z = torch.randn(2, 8)
    a, b = g(z, torch.tensor([0, 0])), g(z, torch.tensor([2, 2]))
    assert a.shape == (2, 3, 16, 16) and a.abs().max() <= 1
    assert (a - b).abs().mean() > 0.1 * a.abs().mean()  # not a negligible change
    assert torch.equal(g(z, torch.tensor([0, 0])), a)
    assert g.latent_dim == 8 and g.embed.weight.shape == (3, 3)  # embed_dim defaults to num_classes


def test_label_errors_name_the_problem():
    g = ConditionalDCGANGenerator(num_classes=2, latent_dim=4, image_size=16, base_channels=2)
    with pytest.raises(ValueError, match='call it with labels'):
        g(torch.randn(1, 4))
    with pytest.raises(ValueError, match=r'labels must lie in \[0, 2\), got 0..5'):
        g(torch.randn(2, 4), torch.tensor([0, 5]))
    with pytest.raises(ValueError, match='integer tensor of shape'):
        g(torch.randn(2, 4), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match='latents of shape'):
        g(torch.randn(2, 6), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match='need num_classes'):
        ConditionalDCGANDiscriminator(image_size=16, base_channels=2)


def test_projection_discriminator_is_psi_plus_inner_product():
    torch.manual_seed(0)
    d = ConditionalDCGANDiscriminator(image_size=16, base_channels=4, num_classes=3, use_bn=False)
    torch.nn.init.normal_(d.embed.weight)
    x, y = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 1])
    phi = d.features(x).sum((2, 3))
    psi = d.body[-1](d.features(x)).flatten(1)
    expected = psi + (d.embed.weight[y] * phi).sum(1, keepdim=True)
    assert torch.allclose(d(x, y), expected, atol=1e-5)
    assert not torch.allclose(d(x, y), d(x, torch.tensor([2, 2, 0, 0])))
    # the unconditional part is exactly the plain DCGAN discriminator's output
    plain = DCGANDiscriminator(image_size=16, base_channels=4, use_bn=False)
    plain.load_state_dict({k: v for k, v in d.state_dict().items() if k.startswith('body.')})
    assert torch.allclose(plain(x), psi, atol=1e-6)


def test_heads_shapes_and_registry():
    d = build_network(dict(type='ConditionalDCGANDiscriminator', image_size=16, base_channels=4, num_classes=5,
                           projection=False, class_head=True, info_cat_dims=[3, 2], info_cont_dim=2))
    assert d.heads == ('class_logits', 'code_logits', 'code_mu', 'code_logvar') and not d.takes_labels
    logits, heads = d(torch.randn(2, 3, 16, 16), return_heads=True)
    assert logits.shape == (2, 1)
    assert {k: tuple(v.shape) for k, v in heads.items()} == {
        'class_logits': (2, 5), 'code_logits': (2, 5), 'code_mu': (2, 2), 'code_logvar': (2, 2)}
    info_only = ConditionalDCGANDiscriminator(image_size=16, base_channels=4, projection=False, info_cont_dim=1)
    assert info_only.heads == ('code_mu', 'code_logvar')
    g = build_network(dict(type='ConditionalDCGANGenerator', num_classes=5, latent_dim=4, image_size=16,
                           base_channels=2, embed_dim=7))
    assert g(torch.randn(1, 4), torch.tensor([4])).shape == (1, 3, 16, 16)


def _two_class_batch(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Class 0: dark images, class 1: bright images (in [-1, 1]), with noise."""
    y = torch.randint(2, (n,), generator=gen)
    level = torch.where(y == 1, 0.6, -0.6)[:, None, None, None]
    x = (level + 0.15 * torch.randn(n, 1, 16, 16, generator=gen)).clamp(-1, 1).expand(-1, 3, -1, -1)
    return x.contiguous(), y


@pytest.mark.parametrize('kind', ['projection', 'acgan'])
def test_class_conditional_samples_follow_their_labels(kind):
    """A tiny conditional GAN on two visibly different classes; a fixed classifier (mean brightness) tells
    its class-0 and class-1 samples apart far above chance."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    g = ConditionalDCGANGenerator(num_classes=2, latent_dim=8, image_size=16, base_channels=8)
    acgan = kind == 'acgan'
    d = ConditionalDCGANDiscriminator(image_size=16, base_channels=8, num_classes=2, projection=not acgan,
                                      class_head=acgan)
    from gfpgan.losses.conditional_gan_loss import ACGANLoss
    from gfpgan.losses.gan_loss import GANLoss

    adv = GANLoss('hinge')
    ac = ACGANLoss('hinge', class_weight=1.0)
    opt_g = torch.optim.Adam(g.parameters(), 2e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-3, betas=(0.5, 0.999))

    def judge(x, y):
        if acgan:
            return d(x, return_heads=True)
        return d(x, y), None

    for _ in range(150):
        real, y = _two_class_batch(16, gen)
        y_fake = torch.randint(2, (16,), generator=gen)
        fake = g(torch.randn(16, 8, generator=gen), y_fake)
        (pr, hr), (pf, hf) = judge(real, y), judge(fake.detach(), y_fake)
        if acgan:
            l_d = ac(pr, hr['class_logits'], y, True, True) + ac(pf, hf['class_logits'], y_fake, False, True)
        else:
            l_d = adv(pr, True, True) + adv(pf, False, True)
        opt_d.zero_grad()
        l_d.backward()
        opt_d.step()
        pf, hf = judge(fake, y_fake)
        l_g = ac(pf, hf['class_logits'], y_fake, True) if acgan else adv(pf, True)
        opt_g.zero_grad()
        l_g.backward()
        opt_g.step()

    g.eval()
    with torch.no_grad():
        z = torch.randn(64, 8, generator=gen)
        labels = torch.arange(64) % 2
        brightness = g(z, labels).mean((1, 2, 3))
    accuracy = ((brightness > 0).long() == labels).float().mean().item()
    assert accuracy >= 0.9, f'{kind}: classifier accuracy on samples {accuracy:.2f}'


def test_infogan_codes_drive_the_generator_input():
    from gfpgan.archs.dcgan_arch import DCGANGenerator
    from gfpgan.losses.mutual_info_loss import sample_latent_codes

    g_in, cat, cont = sample_latent_codes(6, [3, 2], 2, generator=torch.Generator().manual_seed(0))
    assert g_in.shape == (6, 7) and cat.shape == (6, 2) and cont.shape == (6, 2)
    assert torch.equal(g_in[:, :3].argmax(1), cat[:, 0]) and torch.equal(g_in[:, 3:5].argmax(1), cat[:, 1])
    assert torch.equal(g_in[:, 5:], cont) and cont.abs().max() <= 1
    g = DCGANGenerator(latent_dim=4 + 7, image_size=16, base_channels=2)
    assert g(torch.cat([torch.randn(6, 4), g_in], 1)).shape == (6, 3, 16, 16)
    assert F.one_hot(cat[:, 0], 3).sum() == 6


def test_infogan_q_head_learns_to_recover_the_codes():
    """Minimising the mutual-information loss over G and Q makes the categorical code readable from G's image."""
    from gfpgan.archs.dcgan_arch import DCGANGenerator
    from gfpgan.losses.mutual_info_loss import MutualInformationLoss, sample_latent_codes

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    g = DCGANGenerator(latent_dim=4 + 3 + 1, image_size=16, base_channels=4)
    d = ConditionalDCGANDiscriminator(image_size=16, base_channels=4, projection=False, info_cat_dims=[3],
                                      info_cont_dim=1)
    mi = MutualInformationLoss(cat_dims=[3], cont_dim=1)
    opt = torch.optim.Adam([*g.parameters(), *d.parameters()], 2e-3)

    def step(n: int):
        g_in, cat, cont = sample_latent_codes(n, [3], 1, generator=gen)
        _, heads = d(g(torch.cat([torch.randn(n, 4, generator=gen), g_in], 1)), return_heads=True)
        return mi(cat, heads['code_logits'], cont, heads['code_mu'], heads['code_logvar']), heads, cat

    first = step(32)[0].item()
    for _ in range(60):
        loss = step(32)[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
    g.eval()
    d.eval()
    with torch.no_grad():
        last, heads, cat = step(90)
    accuracy = (heads['code_logits'].argmax(1) == cat[:, 0]).float().mean().item()
    assert last.item() < first and accuracy > 0.8, (first, last.item(), accuracy)
