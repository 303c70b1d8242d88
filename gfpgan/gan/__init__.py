"""The GAN toolkit's one-command use (`gfpgan-gan`, `python -m gfpgan.gan`); see `gfpgan.gan.cli`."""
