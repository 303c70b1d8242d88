"""The declared option blocks: what an option file may hold, with types and defaults, checked by pydantic.

Blocks whose keys are a component's constructor arguments (`network_*`, loss `*_opt` blocks, optimizers,
schedulers, metrics) are not declared here: `option_components` derives them from the signature of the
registered class, so each component declares its options once. Models declare their `train:` keys as a
subclass of `TrainOptionsBase` (class attribute `train_options`), datasets theirs as a subclass of
`DatasetOptions` (class attribute `options`), and both read their values from those models, so a declared
key that nothing reads cannot exist.

Every block refuses unknown keys (`extra='forbid'`). A key that upstream GFPGAN/BasicSR files carry but
nothing reads is declared with `upstream_only(...)`: accepted, with a one-line notice that it has no effect.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    'OptionsModel', 'upstream_only', 'ComponentBlock', 'ArchBlock', 'LossBlock', 'OptimizerBlock', 'SchedulerBlock',
    'MetricBlock', 'IOBackendBlock', 'TrainOptionsBase', 'DatasetOptions', 'ImageFilesOptions', 'PathOptionsBase',
    'ValOptions', 'GANValOptions', 'LoggerOptions', 'WandbOptions', 'DistParams', 'TopLevelOptions', 'NO_EFFECT',
    'ModelTopLevelOptions', 'METRIC_BETTER_KEY',
]  # fmt: skip

NO_EFFECT = 'x-no-effect'  # JSON-schema key marking an upstream key that is accepted and ignored


class OptionsModel(BaseModel):
    """Base of every option block: unknown keys are errors; values keep their YAML types where possible."""

    model_config = ConfigDict(extra='forbid', arbitrary_types_allowed=True, protected_namespaces=())


def upstream_only(reason: str, default: Any = None) -> Any:
    """A key upstream option files carry that nothing here reads: accepted (with a notice), never used."""
    return Field(default, description=f'Upstream key, no effect here: {reason}', json_schema_extra={NO_EFFECT: reason})


class ComponentBlock:
    """Marks a dict-valued option as `{type: <registered name>, **constructor arguments}` of one registry.

    `kind` is one of 'arch', 'loss', 'optimizer', 'scheduler', 'metric'; option_components checks the
    block's keys against the signature of what `type` names.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f'ComponentBlock({self.kind!r})'


ArchBlock = Annotated[Optional[dict[str, Any]], ComponentBlock('arch')]
LossBlock = Annotated[Optional[dict[str, Any]], ComponentBlock('loss')]
OptimizerBlock = Annotated[Optional[dict[str, Any]], ComponentBlock('optimizer')]
SchedulerBlock = Annotated[Optional[dict[str, Any]], ComponentBlock('scheduler')]
MetricBlock = Annotated[dict[str, Any], ComponentBlock('metric')]
IOBackendBlock = Annotated[Optional[dict[str, Any]], ComponentBlock('io_backend')]


# ----------------------------------------------------------------------------------------------- train
class TrainOptionsBase(OptionsModel):
    """The `train:` keys every model reads (BaseModel and the training loop).

    A model subclasses it with its recipe keys: loss blocks typed `LossBlock`, further optimizers typed
    `OptimizerBlock` (named `optim_<net>`), weights and counts as plain fields. `scheduler_keys` names
    keys of the `scheduler` block that the model itself reads (not passed to the scheduler): BaseModel
    steps ReduceLROnPlateau on `monitor`, averaged over `step_every` iterations.
    """

    scheduler_keys: ClassVar[tuple[str, ...]] = ('monitor', 'step_every')

    total_iter: Union[int, None] = Field(
        None, ge=1, description='number of training iterations (to train: this or epochs)')
    epochs: Union[int, None] = Field(
        None, ge=1, description='passes over the train set instead of total_iter (train.py converts: len x '
        'dataset_enlarge_ratio / (batch_size_per_gpu x world size) iterations per epoch)')
    warmup_iter: int = Field(-1, description='linear learning-rate warm-up over this many iterations; -1: none')
    optim_g: OptimizerBlock = Field(None, description='generator optimizer: {type: Adam, lr: 2e-3, ...}')
    scheduler: SchedulerBlock = Field(None, description='learning-rate scheduler, one per optimizer')
    ema_decay: Union[float, None] = Field(
        None, description="decay of the generator's exponential moving average; 0 or none: the recipe's default"
    )

    @model_validator(mode='after')
    def _total_iter_or_epochs(self) -> TrainOptionsBase:
        if self.total_iter is not None and self.epochs is not None:
            raise ValueError('epochs: give total_iter or epochs, not both')
        return self


# ----------------------------------------------------------------------------------------------- datasets
class DatasetOptions(OptionsModel):
    """The keys every dataset block takes (the data loader's), besides the dataset type's own options.

    `phase` is not written in files: it is the dataset key's text before the first `_` (train, val, test).
    """

    type: Union[str, None] = Field(None, description='registered dataset class (required in option files)')
    name: Union[str, None] = Field(None, description='shown in logs, validation tables and image folders')
    phase: Literal['train', 'val', 'test'] = Field('train', description='set from the key (train, val_2, ...)')
    batch_size_per_gpu: Union[int, None] = Field(None, ge=1, description='batch per process (required to train)')
    num_worker_per_gpu: int = Field(0, ge=0, description='dataloader worker processes per process')
    dataset_enlarge_ratio: int = Field(1, ge=1, description='each epoch walks the dataset this many times')
    prefetch_mode: Union[Literal['cpu', 'cuda'], None] = Field(None, description='cuda: copy batches ahead on a stream')
    pin_memory: Union[bool, None] = Field(None, description='page-locked batches; default: when CUDA is available')
    persistent_workers: bool = Field(False, description='keep workers alive between epochs')
    prefetch_factor: int = Field(2, ge=1, description='batches each worker loads ahead')
    use_shuffle: Union[bool, None] = upstream_only('the train sampler always shuffles, seeded and resumable')

    train_only: ClassVar[tuple[str, ...]] = ('dataset_enlarge_ratio', 'prefetch_mode', 'use_shuffle')

    @model_validator(mode='after')
    def _train_only_keys(self) -> DatasetOptions:
        for key in self.train_only:
            if key in self.model_fields_set and self.phase != 'train':
                raise ValueError(f'{key}: unknown key for a {self.phase} dataset (only the train loader reads it)')
        return self

    @classmethod
    def parse(cls, opt: dict, owner: str) -> DatasetOptions:
        """The dataset's options from its whole block, or an OptionError naming the dataset and the key."""
        from gfpgan.utils.option_validation import check_block

        return check_block(cls, opt, f'datasets.{opt.get("name") or opt.get("phase", "train")}', owner)


class ImageFilesOptions(DatasetOptions):
    """Keys of every dataset that reads image files (from a folder or an lmdb database)."""

    io_backend: IOBackendBlock = Field(None, description='{type: disk} (default) or {type: lmdb}')
    mean: Union[list[float], None] = Field(None, description='per-channel mean subtracted (with std; none: [0, 1])')
    std: Union[list[float], None] = Field(None, description='per-channel std divided by')
    skip_bad_images: bool = Field(False, description='skip unreadable files with a warning instead of stopping')


# ----------------------------------------------------------------------------------------------- path
class PathOptionsBase(OptionsModel):
    """`path:` keys; `pretrain_network_<x>`, `param_key_<x>`, `strict_load_<x>` are added for each `network_<x>`."""

    resume_state: Union[str, None] = Field(None, description='training state to resume from')
    ignore_resume_networks: Union[list[str], None] = Field(
        None, description='networks (network_<x> or net_<x>) that --auto_resume leaves at their pretrained weights'
    )
    experiments_root: Union[str, None] = Field(None, description='training output folder (default experiments/<name>)')
    results_root: Union[str, None] = Field(None, description='test output folder (default results/<name>)')


def network_path_fields(network: str) -> dict[str, tuple[Any, Any]]:
    """The `path:` fields of one declared network (`g` for `network_g`), for pydantic.create_model."""
    return {
        f'pretrain_network_{network}': (Optional[str], Field(None, description=f'weights file for network_{network}')),
        f'param_key_{network}': (
            Optional[str],
            Field(None, description='state dict key inside the file (params, params_ema); none: the file itself'),
        ),
        f'strict_load_{network}': (
            Optional[bool],
            Field(None, description='false: load matching keys only; true or none: every key must match'),
        ),
    }


# ----------------------------------------------------------------------------------------------- val
class KeepBestOptions(OptionsModel):
    metric: Union[str, None] = Field(None, description='metric name under val.metrics (GANModel: fid)')
    dataset: Union[str, None] = Field(None, description='validation dataset name (default: the first)')


class GridOptions(OptionsModel):
    freq: int = Field(0, ge=0, description='write a sample grid every this many iterations; 0: never')
    num: int = Field(16, ge=1, description='samples per grid (fixed latents)')
    nrow: int = Field(0, ge=0, description='images per grid row; 0: square')


class FIDOptions(OptionsModel):
    source: str = Field('auto', description="feature network: auto (bundled Inception), inception, or random")
    weights_path: Union[str, None] = Field(None, description='Inception weights file')
    num_samples: Union[int, None] = Field(None, ge=1, description='generated samples (default: as many as real)')
    batch_size: int = Field(64, ge=1, description='generation batch')
    seed: int = Field(0, description='latent seed and random-feature-net seed')
    width: int = Field(64, ge=1, description='width of the random feature network')
    input_size: int = Field(64, ge=1, description='input size of the random feature network')
    cache_dir: Union[str, None] = Field(None, description='real statistics cache (default <experiment>/fid_cache)')


class ValOptions(OptionsModel):
    """`val:` keys every model reads (the validation loop); a model may extend them as its `val_options`."""

    val_freq: Union[int, None] = Field(None, ge=0, description='validate every this many iterations; 0 or none: never')
    save_img: bool = Field(False, description='write restored validation images')
    suffix: Union[str, None] = Field(None, description='file-name suffix of saved images (default: iteration or name)')
    pbar: bool = Field(False, description='show a progress bar while validating')
    metrics: Union[dict[str, MetricBlock], None] = Field(None, description='{name: {type: calculate_psnr, ...}}')
    keep_best: Union[bool, str, KeepBestOptions, None] = Field(
        None, description='keep models/net_g_best.pth: {metric, dataset}, a metric name, or true (GANModel: fid)'
    )


class GANValOptions(ValOptions):
    """`val:` of GANModel: also sample grids and the FID of generated samples."""

    grids: Union[GridOptions, None] = Field(None, description='sample grids from fixed latents')
    fid: Union[FIDOptions, None] = Field(None, description='FID of generated samples against the val set')


# ----------------------------------------------------------------------------------------------- logger, dist
class WandbOptions(OptionsModel):
    project: Union[str, None] = Field(None, description='wandb project; none: no wandb')
    resume_id: Union[str, None] = Field(None, description='wandb run id to continue')


class LoggerOptions(OptionsModel):
    print_freq: int = Field(100, ge=1, description='log losses every this many iterations')
    save_checkpoint_freq: int = Field(5000, ge=1, description='save networks and state every this many iterations')
    use_tb_logger: bool = Field(False, description='write tensorboard curves to tb_logger/<name>')
    wandb: Union[WandbOptions, None] = Field(None, description='mirror tensorboard to wandb (when installed)')
    keep_last_checkpoints: Union[int, None] = Field(None, ge=1, description='delete all but the newest N checkpoints')


class DistParams(OptionsModel):
    backend: Union[Literal['nccl', 'gloo', 'mpi'], None] = Field(None, description='default: nccl on CUDA, gloo on CPU')
    port: Union[int, None] = upstream_only('torchrun sets the port, --master_port')


# ----------------------------------------------------------------------------------------------- top level
METRIC_BETTER_KEY = 'better'  # BasicSR's direction in a metric block: accepted when it agrees with the metric's


class ModelTopLevelOptions(OptionsModel):
    """Base of the top-level keys a model reads itself (class attribute `top_level_options`).

    Real-ESRGAN's files keep the model's degradation settings at the top level, not under `train:`; the
    model declares them here, reads its values from this model, and the validator checks them with it.
    """

    @classmethod
    def of(cls, opt: dict) -> ModelTopLevelOptions:
        """The declared keys of the whole option tree `opt`, validated (defaults for those left out)."""
        return cls.model_validate({k: opt[k] for k in cls.model_fields if k in opt})


class TopLevelOptions(OptionsModel):
    """The top level of an option file; `network_<x>` blocks are added per file (constructor arguments)."""

    name: str = Field(description='experiment name: folder under experiments/ (or results/) and tb_logger/')
    model_type: str = Field(description='registered model (training recipe)')
    num_gpu: Union[Literal['auto'], Annotated[int, Field(ge=0)]] = Field(
        'auto', description='auto: every visible CUDA device; 0: CPU'
    )
    manual_seed: Union[int, None] = Field(None, description='base seed; rank r uses manual_seed + r (none: random)')
    imports: Union[list[str], None] = Field(None, description='modules or .py files that register your components')
    scale: Union[int, None] = Field(None, ge=1, description="upstream: copied into each dataset that takes 'scale'")
    datasets: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description='train, val, val_2, test, ...: the phase is the text before the first _'
    )
    path: Union[dict[str, Any], None] = Field(None, description='weights to load, resume state, output folders')
    train: Union[dict[str, Any], None] = Field(None, description="training settings; keys depend on model_type")
    val: Union[dict[str, Any], None] = Field(None, description="validation and test settings; keys: see val below")
    logger: Union[LoggerOptions, None] = Field(None, description='log, tensorboard, checkpoint frequencies')
    dist_params: Union[DistParams, None] = Field(None, description='torch.distributed settings')
    find_unused_parameters: bool = Field(False, description='passed to DistributedDataParallel')
    cudnn_benchmark: bool = Field(True, description='torch.backends.cudnn.benchmark')
    amp: Union[Literal['bf16', 'fp16'], Literal[False], None] = Field(
        None, description='mixed precision of the training networks: bf16, fp16, or none / false (float32)'
    )
    channels_last: bool = Field(False, description='channels_last memory format for networks and batches')
    compile: bool = Field(False, description='torch.compile the training networks (same losses as eager)')

    @model_validator(mode='before')
    @classmethod
    def _amp_names_precision(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get('amp') is True:
            raise ValueError('amp: true does not say which precision; write bf16 or fp16')
        return data
