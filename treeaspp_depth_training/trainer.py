"""The training loop: one CPU process or many GPUs under torchrun, resumable to the step."""

import json
import math
import os
from pathlib import Path
import time
from typing import Any, Dict, Iterable, List, Optional

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from treeaspp_depth_ros.checkpoint import (describe_init, init_from_checkpoint, load_checkpoint,
                                           read_scale_sidecar, save_checkpoint,
                                           scale_provenance, sidecar_provenance)
from treeaspp_depth_ros.compute import resolve_device, torch_dtype
from treeaspp_depth_ros.inference import DepthEstimator
from treeaspp_depth_ros.losses import LossWeights, SelfSupervisedLoss
from treeaspp_depth_ros.model.decoder import initial_depth
from treeaspp_depth_ros.progress import Progress
from treeaspp_depth_ros.view_synthesis import normalize_image

from .config import dump, output_dir
from .data.builders import build_train_dataset, build_val_set
from .distributed import all_true, barrier, cleanup, init_distributed, ResumableSampler
from .model import build_networks, SfMModel
from .validation import evaluate_depth
from .visualize import training_grid


class TrainingError(RuntimeError):
    """Training cannot continue (diverged, bad resume file); the message says what to do."""


class Trainer:
    """Builds data, networks and optimiser from a config and runs the epochs."""

    def __init__(self, config: Dict[str, Any]) -> None:
        self.config = config
        train = config['train']
        if train['threads']:
            torch.set_num_threads(int(train['threads']))
        self.device = resolve_device(train['device'], _local_rank(), 'train.device')
        self.dist = init_distributed(self.device)
        self.out = output_dir(config)
        torch.manual_seed(train['seed'])
        self.dataset = build_train_dataset(config)
        self.val_set = build_val_set(config) if self.dist.is_main else None
        depth_net, pose_net = build_networks(config['model'])
        self.init_summary: Optional[Dict[str, Any]] = None
        #: the model.init checkpoint's depth scale, carried into best.pth and last.pth
        self.inherited_scale: Dict[str, Any] = {}
        if config['model']['init']:
            init = load_checkpoint(config['model']['init'])
            self.init_summary = init_from_checkpoint(
                init, {'depth_net': depth_net, 'pose_net': pose_net})
            self.inherited_scale = inherit_depth_scale(init, config['model']['init'])
            if self.dist.is_main:
                print(f'model.init {config["model"]["init"]}:\n'
                      f'{describe_init(self.init_summary)}')
                if self.inherited_scale:
                    print(f'depth_scale {self.inherited_scale["depth_scale"]:.6g} '
                          f'{self.inherited_scale["depth_scale_origin"]}')
        model: nn.Module = SfMModel(depth_net, pose_net, train['channels_last'])
        if config['model']['sync_bn'] and self.dist.enabled:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = model.to(self.device)
        if train['channels_last']:
            model = model.to(memory_format=torch.channels_last)
        self.net = model
        self.model = model
        if self.dist.enabled:
            # scales the loss does not use still produce (unused) decoder outputs
            unused = config['loss']['num_scales'] < 4
            self.model = DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == 'cuda' else None,
                find_unused_parameters=unused)
        optim = config['optim']
        loaded = {f'{net}.{key}' for net, parts in (self.init_summary or {}).items()
                  for key in parts['loaded']}
        self.loaded_params = [p for name, p in model.named_parameters() if name in loaded]
        fresh = [p for name, p in model.named_parameters() if name not in loaded]
        # with model.init, the loaded tensors learn at optim.init_lr_factor x the rate
        groups = [{'params': fresh, 'lr_factor': 1.0}] + (
            [{'params': self.loaded_params, 'lr_factor': optim['init_lr_factor']}]
            if self.loaded_params else [])
        self.optimizer = torch.optim.Adam(groups, lr=optim['lr'], betas=tuple(optim['betas']),
                                          weight_decay=optim['weight_decay'])
        self.amp_dtype = None if train['amp'] == 'none' else torch_dtype(train['amp'])
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=train['amp'] == 'fp16')
        loss = config['loss']
        self.loss_fn = SelfSupervisedLoss(
            LossWeights(loss['photo'], loss['smooth'], loss['geometry']),
            with_ssim=loss['with_ssim'], with_mask=loss['with_mask'],
            with_auto_mask=loss['with_auto_mask'], padding_mode=loss['padding_mode'],
            max_scales=loss['num_scales'], normalize_depth=loss['normalize_depth'],
            reference_depth=initial_depth())
        self.sampler = ResumableSampler(self.dataset, self.dist, shuffle=True, seed=train['seed'])
        workers = config['data']['num_workers']
        self.loader = DataLoader(self.dataset, batch_size=optim['batch_size'],
                                 sampler=self.sampler, num_workers=workers, drop_last=True,
                                 pin_memory=self.device.type == 'cuda',
                                 persistent_workers=workers > 0)
        full_epoch = len(self.dataset) // (optim['batch_size'] * self.dist.world_size)
        if full_epoch < 1:
            raise TrainingError(f'{len(self.dataset)} training samples are fewer than one batch '
                                f'of {optim["batch_size"]} x {self.dist.world_size} processes')
        self.steps_per_epoch = min(full_epoch, optim['epoch_size'] or full_epoch)
        self.epoch = 0
        self.step_in_epoch = 0
        self.global_step = 0
        self.best_abs_rel = math.inf
        self.best_metrics: Dict[str, Any] = {}  # the validation best.pth was saved at
        self.init_metrics: Optional[Dict[str, Any]] = None  # validation of the init weights
        self.train_time_s = 0.0
        self.nonfinite_total = 0
        self.nonfinite_streak = 0
        self.history: List[Dict[str, float]] = []
        self.metrics: Dict[str, Any] = {}
        #: every validation of the run (step, metrics): the trajectory summary.json shows
        self.val_history: List[Dict[str, Any]] = []
        self.writer = None
        if train['resume']:
            self.resume(train['resume'])

    # --- state -------------------------------------------------------------------------------

    def state(self) -> Dict[str, Any]:
        """Everything besides the weights that `resume` needs to continue exactly."""
        rng = {'torch': torch.get_rng_state()}
        if torch.cuda.is_available():
            rng['cuda'] = torch.cuda.get_rng_state_all()
        return {'config': self.config, 'epoch': self.epoch, 'step_in_epoch': self.step_in_epoch,
                'step': self.global_step, 'optimizer': self.optimizer.state_dict(),
                'scaler': self.scaler.state_dict(), 'rng': rng,
                'best_abs_rel': self.best_abs_rel, 'train_time_s': self.train_time_s,
                'nonfinite_steps': self.nonfinite_total, 'metrics': self.metrics,
                'val_history': self.val_history, 'world_size': self.dist.world_size,
                'best_metrics': self.best_metrics, 'init_metrics': self.init_metrics,
                **self.inherited_scale}

    def save(self, name: str, resumable: Optional[bool] = None) -> Path:
        """
        Write ``<output>/<name>.pth``; optimiser state only if `resumable` (default: config).

        The optimiser's moments double the file again; runs nobody resumes (tiny CPU runs) can
        leave them out with ``train.resumable: false``.
        """
        if resumable is None:
            resumable = self.config['train']['resumable']
        path = self.out / f'{name}.pth'
        if self.dist.is_main:
            state = self.state()
            if not resumable:
                for key in ('optimizer', 'scaler', 'rng'):
                    state.pop(key)
            save_checkpoint(path, self.net.depth_net, self.net.pose_net, **state)
        return path

    def resume(self, path: str) -> None:
        ckpt = load_checkpoint(path)
        if 'optimizer' not in ckpt or 'pose_net' not in ckpt:
            raise TrainingError(f'{path} is not a training checkpoint (no optimiser / pose '
                                f'network state); start a new run with --model.pretrained')
        if ckpt['variant'] != self.net.depth_net.variant:
            raise TrainingError(f'{path} holds a {ckpt["variant"]!r} network but the config '
                                f'trains {self.net.depth_net.variant!r}')
        self.net.depth_net.load_state_dict(ckpt['depth_net'])
        self.net.pose_net.load_state_dict(ckpt['pose_net'])
        self.optimizer.load_state_dict(ckpt['optimizer'])
        self.scaler.load_state_dict(ckpt['scaler'])
        torch.set_rng_state(ckpt['rng']['torch'])
        if 'cuda' in ckpt['rng'] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ckpt['rng']['cuda'])
        self.epoch, self.step_in_epoch = ckpt['epoch'], ckpt['step_in_epoch']
        self.global_step = ckpt['step']
        self.best_abs_rel = ckpt.get('best_abs_rel', math.inf)
        self.train_time_s = ckpt.get('train_time_s', 0.0)
        self.nonfinite_total = ckpt.get('nonfinite_steps', 0)
        self.metrics = ckpt.get('metrics', {})
        self.val_history = list(ckpt.get('val_history', []))
        self.best_metrics = dict(ckpt.get('best_metrics') or {})
        self.init_metrics = ckpt.get('init_metrics')
        if ckpt.get('world_size', 1) != self.dist.world_size and self.step_in_epoch:
            # the per-rank sample order depends on the world size: restart the epoch
            self.step_in_epoch = 0

    # --- one step ----------------------------------------------------------------------------

    def forward_loss(self, batch: Dict[str, torch.Tensor]):
        """Loss of one batch and the pieces the TensorBoard image grid shows."""
        tgt = normalize_image(batch['tgt'].to(self.device, non_blocking=True))
        refs = normalize_image(batch['refs'].to(self.device, non_blocking=True))
        K = batch['K'].to(self.device, non_blocking=True)
        b, r = refs.shape[:2]
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):
            disparities, poses = self.model(tgt, refs)
        scales = self.config['loss']['num_scales']
        depths = [1.0 / d.float() for d in disparities[:scales]]
        poses = poses.float()
        tgt_depths = [d[:b] for d in depths]
        ref_depths = [[d[(i + 1) * b:(i + 2) * b] for d in depths] for i in range(r)]
        ref_imgs = [refs[:, i] for i in range(r)]
        forward = [poses[i * b:(i + 1) * b] for i in range(r)]
        backward = [poses[(r + i) * b:(r + i + 1) * b] for i in range(r)]
        total, parts = self.loss_fn(tgt, ref_imgs, K, tgt_depths, ref_depths, forward, backward)
        pieces = {'tgt': tgt, 'ref': ref_imgs[0], 'K': K, 'tgt_depth': tgt_depths[0],
                  'ref_depth': ref_depths[0][0], 'pose': forward[0]}
        return total, parts, pieces

    @torch.no_grad()
    def evaluate_loss(self, batches: Iterable[Dict[str, torch.Tensor]]) -> Dict[str, float]:
        """Mean loss terms of fixed batches with frozen BatchNorm statistics (no update)."""
        self.net.eval()
        try:
            rows = [self.forward_loss(batch)[1] for batch in batches]
        finally:
            self.net.train()
        return {key: float(np.mean([float(row[key]) for row in rows])) for key in rows[0]}

    def train_step(self, batch: Dict[str, torch.Tensor]) -> Dict[str, float]:
        """One optimiser step; a non-finite loss (on any rank) skips the update on all ranks."""
        self.model.train()
        warming_up = self.global_step < self.config['optim']['init_warmup_steps']
        if not self.dist.enabled:
            # no gradients for the waiting tensors: the warm-up steps cost less (DDP needs them)
            for param in self.loaded_params:
                param.requires_grad_(not warming_up)
        if self.init_summary is not None and self.config['optim']['init_freeze_bn']:
            # keep the loaded BatchNorm statistics: a few frames of one room are a poor estimate
            for module in self.net.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        total, parts, pieces = self.forward_loss(batch)
        finite = all_true(bool(torch.isfinite(total)), self.dist, self.device)
        self.optimizer.zero_grad(set_to_none=True)
        if not finite:
            self.nonfinite_total += 1
            self.nonfinite_streak += 1
            limit = self.config['train']['max_nonfinite']
            if self.nonfinite_streak > limit:
                raise TrainingError(
                    f'loss was NaN/inf for {self.nonfinite_streak} consecutive steps (step '
                    f'{self.global_step}); training diverged. Lower optim.lr, use train.amp '
                    f'bf16/none instead of fp16, or check the data for broken frames.')
            return {'loss': float('nan'), 'skipped': 1.0}
        self.nonfinite_streak = 0
        self._set_learning_rate()
        self.scaler.scale(total).backward()
        if warming_up:
            # warm-up after model.init: the loaded tensors wait (Adam skips a None gradient)
            for param in self.loaded_params:
                param.grad = None
        if self.config['optim']['grad_clip'] > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.net.parameters(), self.config['optim']['grad_clip'])
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self._last_pieces = {key: value.detach() for key, value in pieces.items()}
        return {'loss': float(total.detach()), **{k: float(v) for k, v in parts.items()},
                'lr': self.optimizer.param_groups[0]['lr']}

    @property
    def total_steps(self) -> int:
        planned = self.config['optim']['epochs'] * self.steps_per_epoch
        return min(planned, self.config['train']['max_steps'] or planned)

    def _set_learning_rate(self) -> None:
        # a function of the step alone, so a resumed run continues the same schedule
        optim = self.config['optim']
        factor = 1.0
        if optim['lr_schedule'] == 'cosine':
            progress = min(1.0, self.global_step / max(1, self.total_steps))
            factor = 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))
        for group in self.optimizer.param_groups:
            group['lr'] = optim['lr'] * factor * group.get('lr_factor', 1.0)

    # --- epochs ------------------------------------------------------------------------------

    def validate(self) -> Optional[Dict[str, Any]]:
        """Median-scaled depth metrics on the validation set (main process only)."""
        if self.val_set is None:
            return None
        val, data = self.config['val'], self.config['data']
        estimator = DepthEstimator(self.net.depth_net, device=str(self.device),
                                   input_size=(data['width'], data['height']))
        try:
            result = evaluate_depth(estimator, self.val_set, val['min_depth'], val['max_depth'],
                                    val['crop'], global_scale=False,
                                    batch_size=val['batch_size'])
        finally:
            self.net.depth_net.train()
        return result

    def fit(self) -> Path:
        """Train until the configured epochs / steps / time; return the best checkpoint."""
        train = self.config['train']
        total_epochs = self.config['optim']['epochs']
        max_steps = self.total_steps
        self.out.mkdir(parents=True, exist_ok=True)
        if self.dist.is_main:
            (self.out / 'config.yaml').write_text(dump(self.config))
            print(f'writing the run to {self.out.resolve()}', flush=True)
            if self.init_summary is not None and self.global_step == 0:
                self._validate_init_weights()
            if train['tensorboard']:
                from torch.utils.tensorboard import SummaryWriter
                self.writer = SummaryWriter(str(self.out / 'tensorboard'))
                if self.init_summary is not None:
                    text = describe_init(self.init_summary).replace('\n', '  \n')
                    self.writer.add_text('model/init', f'{self.config["model"]["init"]}  \n'
                                         f'{text}', self.global_step)
        # train.progress false still prints a line now and then: a silent run looks hung
        bar = Progress(max_steps, 'training', 'steps', initial=self.global_step,
                       bar=None if train['progress'] else False,
                       interval_s=10.0 if train['progress'] else 60.0,
                       enabled=self.dist.is_main)
        images_per_step = self.config['optim']['batch_size'] * self.dist.world_size
        stop = self.global_step >= max_steps
        try:
            while self.epoch < total_epochs and not stop:
                stop = self._run_epoch(bar, images_per_step, max_steps)
                if self.step_in_epoch >= self.steps_per_epoch:
                    self.epoch += 1
                    self.step_in_epoch = 0
                self._end_of_epoch()
        except KeyboardInterrupt:
            self.save('last')
            bar.close()
            if not train['resumable']:
                raise TrainingError(f'interrupted at step {self.global_step} (train.resumable '
                                    'is false: weights saved, no state to resume)') from None
            raise TrainingError(f'interrupted at step {self.global_step}; continue with '
                                f'--train.resume {self.out / "last.pth"}') from None
        finally:
            bar.close()
            if self.writer is not None:
                self.writer.close()
        barrier(self.dist)
        if self.dist.is_main:
            print(self.validation_summary(), flush=True)
        best = self.out / 'best.pth'
        return best if best.is_file() else self.out / 'last.pth'

    def _validate_init_weights(self) -> None:
        """Score model.init's weights before the first step: what fine-tuning must beat."""
        result = self.validate()
        if result is None:
            return
        self.init_metrics = dict(result['median'], num_images=result['num_images'])
        print(f'validation before training (model.init weights): AbsRel '
              f'{self.init_metrics["abs_rel"]:.4f}, d1 {self.init_metrics["a1"]:.4f} on '
              f'{result["num_images"]} images', flush=True)

    def validation_summary(self) -> str:
        """One console line: validation AbsRel before (model.init) and after (best.pth)."""
        if self.val_set is None:
            return ('no validation set (val.format none): best.pth is the last step; score it '
                    'with `treeaspp-depth bag-eval` on a recording with depth')
        if not self.best_metrics:
            return 'no validation ran (training ended before the first epoch did)'
        after = (f'AbsRel {self.best_metrics["abs_rel"]:.4f}, d1 {self.best_metrics["a1"]:.4f} '
                 f'(best.pth, step {self.best_metrics["step"]})')
        if self.init_metrics is None:
            return f'validation: {after}'
        return (f'validation: AbsRel {self.init_metrics["abs_rel"]:.4f}, d1 '
                f'{self.init_metrics["a1"]:.4f} before (model.init) -> {after}')

    def _run_epoch(self, bar: Progress, images_per_step: int, max_steps: int) -> bool:
        train = self.config['train']
        self.sampler.set_position(self.epoch, self.step_in_epoch * self.loader.batch_size)
        rate = None
        tick = time.perf_counter()
        for batch in self.loader:
            if self.step_in_epoch >= self.steps_per_epoch:
                break
            logs = self.train_step(batch)
            self.step_in_epoch += 1
            self.global_step += 1
            now = time.perf_counter()
            self.train_time_s += now - tick
            speed = images_per_step / max(now - tick, 1e-9)
            rate = speed if rate is None else 0.9 * rate + 0.1 * speed
            tick = now
            self.history.append(dict(logs, step=self.global_step))
            bar.update(1)
            bar.set_postfix(epoch=self.epoch, loss=f'{logs["loss"]:.4f}', img_s=f'{rate:.1f}')
            self._log(logs, rate)
            if self.global_step % train['checkpoint_every'] == 0:
                self.save('last')
            if self.global_step >= max_steps or (
                    train['max_time_s'] and self.train_time_s >= train['max_time_s']):
                return True
        return False

    def _log(self, logs: Dict[str, float], rate: float) -> None:
        if self.writer is None:
            return
        train = self.config['train']
        if self.global_step % train['log_every'] == 0 or self.global_step == 1:
            for key, value in logs.items():
                self.writer.add_scalar(f'train/{key}', value, self.global_step)
            self.writer.add_scalar('train/images_per_s', rate, self.global_step)
            self.writer.add_scalar('train/nonfinite_steps', self.nonfinite_total,
                                   self.global_step)
        if self.global_step % train['image_every'] == 0 and hasattr(self, '_last_pieces'):
            self.writer.add_image('train/rgb_depth_mask_warped',
                                  training_grid(self._last_pieces), self.global_step,
                                  dataformats='HWC')

    def _end_of_epoch(self) -> None:
        result = self.validate() if self.dist.is_main else None
        if result is not None:
            self.metrics = dict(result['median'], num_images=result['num_images'],
                                epoch=self.epoch, step=self.global_step)
            self.val_history.append(dict(self.metrics, train_time_s=self.train_time_s))
            if self.writer is not None:
                for key, value in result['median'].items():
                    self.writer.add_scalar(f'val/{key}', value, self.global_step)
            if self.metrics['abs_rel'] < self.best_abs_rel:
                self.best_abs_rel = self.metrics['abs_rel']
                self.best_metrics = dict(self.metrics)
                self.save('best', resumable=False)
        self.save('last')
        if self.dist.is_main:
            summary = {'step': self.global_step, 'epoch': self.epoch,
                       'train_time_s': self.train_time_s, 'best_abs_rel': self.best_abs_rel,
                       'last_metrics': self.metrics, 'nonfinite_steps': self.nonfinite_total,
                       'val_history': self.val_history, 'best_metrics': self.best_metrics,
                       'init_metrics': self.init_metrics}
            if self.init_summary is not None:
                summary['init'] = {'checkpoint': str(self.config['model']['init']), **{
                    net: {what: len(keys) for what, keys in parts.items()}
                    for net, parts in self.init_summary.items()}}
            (self.out / 'summary.json').write_text(json.dumps(summary, indent=2))
        barrier(self.dist)

    def close(self) -> None:
        cleanup(self.dist)


def inherit_depth_scale(init: Dict[str, Any], path: Any) -> Dict[str, Any]:
    """
    Carry model.init's depth scale (its sidecar first) into the run, marked as inherited.

    Fine-tuning on the same camera keeps the scale only approximately, so the origin says so;
    a scale from synthetic rooms stays not metric. {} when the init weights have none.
    """
    scale = read_scale_sidecar(path)
    if scale is not None:
        origin, synthetic = sidecar_provenance(path)
    elif init.get('depth_scale') is not None:
        scale = float(init['depth_scale'])
        origin, synthetic = scale_provenance(init)
    else:
        return {}
    return {'depth_scale': scale, 'depth_scale_synthetic': synthetic,
            'depth_scale_origin': f'inherited from {path} ({origin}); fine-tuning keeps it '
                                  'only approximately: recalibrate when the camera changes',
            'depth_scale_inherited': True}


def _local_rank() -> int:
    return int(os.environ.get('LOCAL_RANK', '0'))
