"""How every model builds, loads, wraps, averages and saves its networks (one rule for all of them).

- `build_net('network_x')`: build the arch, load `path.pretrain_network_x`, move to the device
  (channels_last if asked), wrap in DDP when training distributed, and `torch.compile` it with `compile: true`.
- Loading is strict unless `path.strict_load_x` is exactly `false` (upstream files write `strict_load_g: ~`;
  a silent non-strict load would leave random weights in place).
- The EMA generator `net_g_ema` exists only when the recipe uses one: without EMA the attribute is absent
  (as upstream), and `eval_generator()` falls back to `net_g`.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Iterable, Sequence

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gfpgan.utils.checkpoint_io import load_weights, save_checkpoint
from gfpgan.utils.dist import get_dist_info
from gfpgan.utils.memory_format import to_channels_last


def set_requires_grad(nets: nn.Module | Iterable[nn.Module], flag: bool) -> None:
    """Freeze (False) or unfreeze (True) every parameter of the given networks."""
    for net in [nets] if isinstance(nets, nn.Module) else nets:
        for p in net.parameters():
            p.requires_grad_(flag)


class NetworkMixin:
    """Network lifecycle of BaseModel; expects `opt`, `device`, `is_train`, `logger`."""

    def build_net(self, key: str, trainable: bool = True, default_param_key: str | None = 'params') -> nn.Module:
        """`opt[key]` built, loaded, on the device; wrapped (DDP, compile) when it is trained here."""
        from gfpgan.archs import build_network

        if key[len('network_'):] not in type(self).networks:
            raise RuntimeError(f'{type(self).__name__} builds {key} but does not declare it in `networks` '
                               f'{type(self).networks}: the option validator would refuse the block.')
        net = build_network(self.opt[key], key)
        self.load_pretrained(net, key[len('network_'):], default_param_key)
        net = self.model_to_device(net, wrap=trainable and self.is_train)
        self.print_network(net)
        return net

    def model_to_device(self, net: nn.Module, wrap: bool = True) -> nn.Module:
        """Move to the device (channels_last if asked); with `wrap`, DDP when distributed and torch.compile
        with `compile: true`. Evaluation never wraps: every rank runs its own shard forward-only."""
        net = net.to(self.device)
        if self.opt.get('channels_last'):
            to_channels_last(net)
        if not wrap:
            return net
        if self.opt.get('dist') and any(p.requires_grad for p in net.parameters()):
            device_ids = [self.device.index] if self.device.type == 'cuda' else None
            net = DistributedDataParallel(
                net, device_ids=device_ids, find_unused_parameters=self.opt.get('find_unused_parameters', False)
            )
        if self.opt.get('compile'):
            net = torch.compile(net)
        return net

    @staticmethod
    def get_bare_model(net: nn.Module) -> nn.Module:
        """The network itself, without DDP/DataParallel or torch.compile wrappers."""
        while True:
            if isinstance(net, (DistributedDataParallel, nn.DataParallel)):
                net = net.module
            elif hasattr(net, '_orig_mod'):  # torch.compile's OptimizedModule
                net = net._orig_mod
            else:
                return net

    def print_network(self, net: nn.Module) -> None:
        bare = self.get_bare_model(net)
        n_params = sum(p.numel() for p in bare.parameters())
        self.logger.info(f'Network: {type(bare).__name__}, with parameters: {n_params:,d}')

    # ------------------------------------------------------------------ weights
    def strict_load(self, name: str) -> bool:
        """The one strictness rule: strict unless `path.strict_load_<name>` is exactly false."""
        return (self.opt.get('path') or {}).get(f'strict_load_{name}') is not False

    def load_pretrained(self, net: nn.Module, name: str, default_param_key: str | None = 'params') -> bool:
        """Load `path.pretrain_network_<name>` (key `param_key_<name>`); False when none is given.

        Resuming loads the trained weights (`params`) of the generator whatever `param_key_g` says for a
        fresh start (often `params_ema`, as upstream's fine-tuning files)."""
        path = self.opt.get('path') or {}
        file = path.get(f'pretrain_network_{name}')
        if not file:
            return False
        key = path.get(f'param_key_{name}', default_param_key)
        if self.is_train and path.get('resume_state') and name == 'g':
            key = 'params'
        self.load_network(net, file, self.strict_load(name), key)
        return True

    def load_network(self, net: nn.Module, load_path: str, strict: bool = True,
                     param_key: str | None = 'params') -> None:
        self.logger.info(f'Loading {type(self.get_bare_model(net)).__name__} from {load_path} [{param_key}].')
        load_weights(self.get_bare_model(net), load_path, param_key=param_key, strict=strict)

    def save_network(self, net: nn.Module | Sequence[nn.Module], net_label: str, current_iter: int | str,
                     param_key: str | Sequence[str] = 'params') -> str:
        """Write `models/<net_label>_<iter>.pth` = {param_key: CPU state dict, ...} atomically (rank 0)."""
        nets = net if isinstance(net, (list, tuple)) else [net]
        keys = param_key if isinstance(param_key, (list, tuple)) else [param_key]
        if len(nets) != len(keys):
            raise ValueError('save_network: give one param_key per network.')
        tag = 'latest' if current_iter == -1 else current_iter
        path = os.path.join(self.opt['path']['models'], f'{net_label}_{tag}.pth')
        if get_dist_info()[0] == 0:
            ckpt = {
                key: OrderedDict((k, v.detach().cpu().clone()) for k, v in self.get_bare_model(n).state_dict().items())
                for n, key in zip(nets, keys)
            }
            save_checkpoint(ckpt, path)
        return path

    def save_generator(self, current_iter: int | str) -> str:
        """`net_g_<iter>.pth` = {'params'} plus {'params_ema'} when there is an EMA generator (release layout)."""
        if hasattr(self, 'net_g_ema'):
            return self.save_network([self.net_g, self.net_g_ema], 'net_g', current_iter, ['params', 'params_ema'])
        return self.save_network(self.net_g, 'net_g', current_iter)

    # ------------------------------------------------------------------ EMA generator
    def setup_ema(self, decay: float) -> None:
        """Build `net_g_ema` (frozen, eval mode) when `decay > 0`, else make sure there is none.

        From `pretrain_network_g`'s `params_ema` (fine-tuning a release file, or resuming) under the same
        strictness rule as `net_g`; otherwise a copy of `net_g`."""
        self.ema_decay = float(decay)
        if self.ema_decay <= 0:
            self.__dict__.pop('net_g_ema', None)
            return
        from gfpgan.archs import build_network

        ema = self.model_to_device(build_network(self.opt['network_g'], 'network_g'), wrap=False)
        file = (self.opt.get('path') or {}).get('pretrain_network_g')
        self.net_g_ema = ema
        if file:
            self.load_network(ema, file, self.strict_load('g'), 'params_ema')
        else:
            self.model_ema(0)
        ema.eval()
        set_requires_grad(ema, False)

    @torch.no_grad()
    def model_ema(self, decay: float = 0.999) -> None:
        """net_g_ema <- decay * net_g_ema + (1 - decay) * net_g for parameters; buffers are copied.

        Buffers (e.g. BatchNorm statistics, fixed noise) are state, not weights: averaging them would
        give an EMA model whose statistics never match its weights.
        """
        net_g = self.get_bare_model(self.net_g)
        ema = self.get_bare_model(self.net_g_ema)
        ema_params = dict(ema.named_parameters())
        for name, param in net_g.named_parameters():
            ema_params[name].lerp_(param.detach().to(ema_params[name].dtype), 1 - decay)
        ema_buffers = dict(ema.named_buffers())
        for name, buf in net_g.named_buffers():
            ema_buffers[name].copy_(buf)

    def eval_generator(self) -> nn.Module:
        """The generator that evaluation uses: the EMA one if there is one, else the trained one."""
        return self.net_g_ema if hasattr(self, 'net_g_ema') else self.get_bare_model(self.net_g)
