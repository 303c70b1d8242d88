"""BaseModel: what every training recipe shares (devices, DDP, optimizers, schedulers, EMA, checkpoints,
resume, loss reduction, and sharded validation). A recipe subclasses it and fills in the hooks
`feed_data`, `optimize_parameters`, `test`, `get_current_visuals`, `save`."""

from __future__ import annotations

import math
import os
import time
from collections import OrderedDict
from typing import Any, Sequence

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gfpgan.models.lr_scheduler import build_scheduler
from gfpgan.utils.checkpoint_io import load_weights, save_checkpoint
from gfpgan.utils.dist import all_reduce_sum, get_dist_info
from gfpgan.utils.logger import get_root_logger
from gfpgan.utils.memory_format import to_channels_last

OPTIMIZERS = {'Adam': torch.optim.Adam, 'AdamW': torch.optim.AdamW, 'SGD': torch.optim.SGD}


class BaseModel:
    """Shared machinery of training recipes; see the module docstring."""

    def __init__(self, opt: dict) -> None:
        self.opt = opt
        self.device = torch.device('cuda' if opt.get('num_gpu', 0) != 0 and torch.cuda.is_available() else 'cpu')
        if self.device.type == 'cuda':
            self.device = torch.device('cuda', torch.cuda.current_device())
        self.is_train = opt.get('is_train', False)
        self.optimizers: list[torch.optim.Optimizer] = []
        self.schedulers: list[Any] = []
        self.log_dict: OrderedDict[str, float] = OrderedDict()
        self.best_metric_results: dict[str, dict[str, dict[str, float]]] = {}
        self.logger = get_root_logger()

    # ------------------------------------------------------------------ recipe hooks
    def feed_data(self, data: dict) -> None:
        raise NotImplementedError

    def optimize_parameters(self, current_iter: int) -> None:
        raise NotImplementedError

    def test(self) -> None:
        raise NotImplementedError

    def get_current_visuals(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def save(self, epoch: int, current_iter: int) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ networks
    def model_to_device(self, net: nn.Module) -> nn.Module:
        """Move to the device (channels_last if asked) and wrap in DDP when training distributed.

        Evaluation never wraps: every rank runs its own shard forward-only.
        """
        net = net.to(self.device)
        if self.opt.get('channels_last'):
            to_channels_last(net)
        if self.is_train and self.opt.get('dist') and any(p.requires_grad for p in net.parameters()):
            device_ids = [self.device.index] if self.device.type == 'cuda' else None
            net = DistributedDataParallel(
                net, device_ids=device_ids, find_unused_parameters=self.opt.get('find_unused_parameters', False)
            )
        return net

    @staticmethod
    def get_bare_model(net: nn.Module) -> nn.Module:
        return net.module if isinstance(net, (DistributedDataParallel, nn.DataParallel)) else net

    def print_network(self, net: nn.Module) -> None:
        bare = self.get_bare_model(net)
        n_params = sum(p.numel() for p in bare.parameters())
        self.logger.info(f'Network: {type(bare).__name__}, with parameters: {n_params:,d}')

    def load_network(
        self, net: nn.Module, load_path: str, strict: bool = True, param_key: str | None = 'params'
    ) -> None:
        self.logger.info(f'Loading {type(self.get_bare_model(net)).__name__} from {load_path} [{param_key}].')
        load_weights(self.get_bare_model(net), load_path, param_key=param_key, strict=strict)

    def save_network(
        self,
        net: nn.Module | Sequence[nn.Module],
        net_label: str,
        current_iter: int | str,
        param_key: str | Sequence[str] = 'params',
    ) -> str:
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

    # ------------------------------------------------------------------ optimisation
    def get_optimizer(self, optim_type: str, params: Any, lr: float, **kwargs: Any) -> torch.optim.Optimizer:
        if optim_type not in OPTIMIZERS:
            raise ValueError(f'train.optim_*.type: unknown optimizer {optim_type!r}; choices: {", ".join(OPTIMIZERS)}.')
        if 'betas' in kwargs:
            kwargs['betas'] = tuple(kwargs['betas'])
        return OPTIMIZERS[optim_type](params, lr=lr, **kwargs)

    def setup_schedulers(self) -> None:
        opt = (self.opt.get('train') or {}).get('scheduler')
        if not opt:
            return
        self.schedulers = [build_scheduler(o, dict(opt)) for o in self.optimizers]

    def _initial_lrs(self) -> list[list[float]]:
        return [[g['initial_lr'] if 'initial_lr' in g else g['lr'] for g in o.param_groups] for o in self.optimizers]

    def update_learning_rate(self, current_iter: int, warmup_iter: int = -1) -> None:
        """Step schedulers (not ReduceLROnPlateau: it is stepped with a value) and apply linear warm-up."""
        if current_iter > 1:
            for s in self.schedulers:
                if not isinstance(s, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    s.step()
        if current_iter < warmup_iter:
            for optimizer, lrs in zip(self.optimizers, self._initial_lrs()):
                for group, lr in zip(optimizer.param_groups, lrs):
                    group['lr'] = lr / warmup_iter * current_iter

    def get_current_learning_rate(self) -> list[float]:
        return [group['lr'] for group in self.optimizers[0].param_groups] if self.optimizers else []

    # ------------------------------------------------------------------ training state
    def save_training_state(self, epoch: int, current_iter: int, extra: dict | None = None) -> str | None:
        """Write `training_states/<iter>.state` atomically: optimizers, schedulers, counters, RNGs, extras."""
        if current_iter == -1 or get_dist_info()[0] != 0:
            return None
        from gfpgan.utils.rng_state import get_rng_state

        state = {
            'epoch': epoch,
            'iter': current_iter,
            'optimizers': [o.state_dict() for o in self.optimizers],
            'schedulers': [s.state_dict() for s in self.schedulers],
            'rng': get_rng_state(),
            'best_metric_results': self.best_metric_results,
        }
        state.update(extra or {})
        path = os.path.join(self.opt['path']['training_states'], f'{current_iter}.state')
        save_checkpoint(state, path)
        return path

    def resume_training(self, resume_state: dict) -> None:
        """Restore optimizers and schedulers (networks were loaded from `pretrain_network_*` already)."""
        if len(resume_state['optimizers']) != len(self.optimizers):
            raise ValueError('Resume state has a different number of optimizers than this model builds.')
        for o, s in zip(self.optimizers, resume_state['optimizers']):
            o.load_state_dict(s)
        for sch, s in zip(self.schedulers, resume_state['schedulers']):
            sch.load_state_dict(s)
        self.best_metric_results = resume_state.get('best_metric_results', {}) or {}

    # ------------------------------------------------------------------ logging
    def reduce_loss_dict(self, loss_dict: dict[str, torch.Tensor]) -> OrderedDict[str, float]:
        """Average each loss over ranks and return plain floats (one collective for all of them)."""
        names = list(loss_dict)
        if not names:
            return OrderedDict()
        values = torch.stack([torch.as_tensor(loss_dict[k]).detach().float().mean().to(self.device) for k in names])
        world = get_dist_info()[1]
        if world > 1:
            all_reduce_sum(values)
            values /= world
        return OrderedDict(zip(names, values.cpu().tolist()))

    def get_current_log(self) -> OrderedDict[str, float]:
        return self.log_dict

    # ------------------------------------------------------------------ validation
    def validation(self, dataloader: Any, current_iter: int, tb_logger: Any, save_img: bool = False) -> dict:
        """Validate on the loader's shard of the data; metrics are reduced over ranks."""
        if self.opt.get('dist'):
            return self.dist_validation(dataloader, current_iter, tb_logger, save_img)
        return self.nondist_validation(dataloader, current_iter, tb_logger, save_img)

    def dist_validation(self, dataloader: Any, current_iter: int, tb_logger: Any, save_img: bool) -> dict:
        return self._validate(dataloader, current_iter, tb_logger, save_img)

    def nondist_validation(self, dataloader: Any, current_iter: int, tb_logger: Any, save_img: bool) -> dict:
        return self._validate(dataloader, current_iter, tb_logger, save_img)

    def _validate(self, dataloader: Any, current_iter: int, tb_logger: Any, save_img: bool) -> dict:
        """Restore every sample of this rank's shard, accumulate metrics (sum, count), reduce, log on rank 0.

        Works unchanged in one process (the shard is everything) and over N ranks, with equal results.
        """
        from gfpgan.metrics import calculate_metric
        from gfpgan.utils.image_io import imwrite, tensor2img

        val_opt = self.opt.get('val') or {}
        metrics_opt = val_opt.get('metrics') or {}
        dataset_name = dataloader.dataset.opt.get('name', 'val') if hasattr(dataloader.dataset, 'opt') else 'val'
        names = list(metrics_opt)
        sums = torch.zeros(len(names) + 1, dtype=torch.float64)
        rank = get_dist_info()[0]
        start = time.time()
        for data in self.validation_progress(dataloader, dataset_name):
            self.feed_data(data)
            self.test()
            visuals = self.get_current_visuals()
            result = visuals['result']
            for i in range(result.shape[0]):
                sr_img = tensor2img(result[i : i + 1], min_max=self.output_range)
                metric_data = {'img': sr_img}
                if 'gt' in visuals:
                    metric_data['img2'] = tensor2img(visuals['gt'][i : i + 1], min_max=self.output_range)
                for j, name in enumerate(names):
                    sums[j] += float(calculate_metric(metric_data, metrics_opt[name]))
                sums[-1] += 1
                if save_img:
                    path = data.get('lq_path', data.get('gt_path', [f'{rank}_{i}']))[i]
                    stem = os.path.splitext(os.path.basename(str(path)))[0]
                    suffix = val_opt.get('suffix') or (current_iter if self.is_train else self.opt['name'])
                    folder = self.opt['path']['visualization']
                    out = (
                        os.path.join(folder, stem, f'{stem}_{suffix}.png')
                        if self.is_train
                        else os.path.join(folder, dataset_name, f'{stem}_{suffix}.png')
                    )
                    imwrite(sr_img, out)
        all_reduce_sum(sums)
        count = int(sums[-1].item())
        results = {name: (sums[j].item() / count if count else float('nan')) for j, name in enumerate(names)}
        results['_count'] = count
        self._log_validation_metric_values(current_iter, dataset_name, results, tb_logger, time.time() - start)
        return results

    output_range: tuple[float, float] = (0, 1)

    def validation_progress(self, dataloader: Any, dataset_name: str) -> Any:
        """The loader, wrapped in a tqdm bar on rank 0 when `val.pbar` is on (upstream's option)."""
        if not (self.opt.get('val') or {}).get('pbar') or get_dist_info()[0] != 0:
            return dataloader
        from tqdm import tqdm

        return tqdm(dataloader, desc=f'Validate {dataset_name}', unit='batch', leave=False)

    def _update_best_metric_result(self, dataset_name: str, metric: str, value: float, current_iter: int) -> bool:
        """Track the best value of each metric (lower is better for names in `lower_better`); True if improved."""
        lower_better = metric.lower().startswith(('fid', 'lpips', 'niqe', 'deg', 'identity', 'l1', 'mse'))
        best = self.best_metric_results.setdefault(dataset_name, {}).get(metric)
        if math.isnan(value):
            return False
        if best is None or (value < best['val'] if lower_better else value > best['val']):
            self.best_metric_results[dataset_name][metric] = {'val': value, 'iter': current_iter}
            return True
        return False

    def _log_validation_metric_values(
        self, current_iter: int, dataset_name: str, results: dict, tb_logger: Any, seconds: float
    ) -> None:
        self.improved_metrics = set()
        lines = [f'Validation {dataset_name} ({results["_count"]} images, {seconds:.1f}s)']
        for name, value in results.items():
            if name.startswith('_'):
                continue
            if self._update_best_metric_result(dataset_name, name, value, current_iter):
                self.improved_metrics.add(name)
            best = self.best_metric_results[dataset_name].get(name)
            best_txt = f'\tBest: {best["val"]:.4f} @ {best["iter"]} iter' if best else ''
            lines.append(f'\t # {name}: {value:.4f}{best_txt}')
            if tb_logger is not None:
                tb_logger.add_scalar(f'metrics/{dataset_name}/{name}', value, current_iter)
        self.logger.info('\n'.join(lines))
