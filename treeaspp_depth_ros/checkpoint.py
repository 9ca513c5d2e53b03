"""
This project's checkpoint format: one `torch.save`d dict of plain types and tensors.

Loadable with ``torch.load(weights_only=True)`` (no pickled classes), written atomically so an
interrupted save never destroys the previous checkpoint.
"""

import math
from pathlib import Path
import pickle
from typing import Any, Dict, List, Optional, Tuple, Union

import torch
import yaml

from .files import atomic_write, atomic_write_text
from .model import build_depth_net, DepthNet, PoseNet, VARIANTS
from .safe_load import torch_load_reason

FORMAT = 'treeaspp_depth_ros/1'
PathLike = Union[str, Path]


class CheckpointError(Exception):
    """A checkpoint that cannot be used, with a message saying why and what to do."""


def atomic_torch_save(obj: Any, path: PathLike) -> None:
    """
    `torch.save` to `path` atomically (:func:`treeaspp_depth_ros.files.atomic_write`).

    A full disk or a read-only folder raises :class:`CheckpointError` saying so; nothing is
    left half-written and a previous file of the same name is unchanged.
    """
    path = Path(path)
    previous = 'the previous file is unchanged' if path.exists() else 'nothing was written'
    try:
        atomic_write(path, lambda handle: torch.save(obj, handle))
    except (OSError, RuntimeError) as error:
        if isinstance(error, OSError) or isinstance(error.__context__, OSError):
            # torch's writer wraps the write's OSError in a RuntimeError
            cause = error if isinstance(error, OSError) else error.__context__
            raise CheckpointError(f'cannot write checkpoint {path}: {cause.strerror or cause} '
                                  f'({previous})') from error
        raise


def _unwrap(module: torch.nn.Module) -> torch.nn.Module:
    # DDP / torch.compile wrappers keep the real module in `.module` / `._orig_mod`.
    for attribute in ('module', '_orig_mod'):
        module = getattr(module, attribute, module)
    return module


def make_checkpoint(depth_net: DepthNet, pose_net: Optional[PoseNet] = None,
                    **extra: Any) -> Dict[str, Any]:
    """Assemble the checkpoint dict (state dicts on CPU, so it loads on any machine)."""
    depth_net = _unwrap(depth_net)
    ckpt: Dict[str, Any] = {
        'format': FORMAT,
        'variant': depth_net.variant,
        'model_config': dict(depth_net.config),
        'depth_net': {k: v.detach().cpu() for k, v in depth_net.state_dict().items()},
    }
    if pose_net is not None:
        ckpt['pose_net'] = {k: v.detach().cpu() for k, v in _unwrap(pose_net).state_dict().items()}
    ckpt.update(extra)
    return ckpt


def save_checkpoint(path: PathLike, depth_net: DepthNet, pose_net: Optional[PoseNet] = None,
                    **extra: Any) -> Path:
    """Write a checkpoint atomically; `extra` (config, metrics, epoch, ...) is stored as is."""
    atomic_torch_save(make_checkpoint(depth_net, pose_net, **extra), path)
    return Path(path)


def _unreadable(path: Path, error: Exception) -> str:
    return (f'cannot read {path}: not a readable PyTorch checkpoint (truncated, corrupt or '
            f'another kind of file): {torch_load_reason(error)}')


def load_checkpoint(path: PathLike) -> Dict[str, Any]:
    """Read and validate a checkpoint of this project's format."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'weights file not found: {path}')
    if path.stat().st_size == 0:
        raise CheckpointError(f'cannot read {path}: the file is empty (0 bytes; an interrupted '
                              'copy or download?)')
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as error:
        # weights_only refused a pickled global (a class or function): code would run if it
        # were loaded; other unpickling errors are plain corruption, reported below
        found = torch_load_reason(error)
        if 'GLOBAL' not in found:
            raise CheckpointError(_unreadable(path, error)) from None
        raise CheckpointError(
            f'refused to load {path}: it contains pickled Python objects, which '
            f'torch.load(weights_only=True) rejects because loading them can run arbitrary '
            f'code ({found}). Checkpoints of this project hold only '
            'tensors and plain values; re-export the weights from a trusted source.') from None
    except Exception as error:  # noqa: B902 - torch raises many types for corrupt files
        raise CheckpointError(_unreadable(path, error)) from None
    if not isinstance(ckpt, dict) or ckpt.get('format') != FORMAT:
        hint = ''
        if isinstance(ckpt, dict) and 'state_dict' in ckpt:
            hint = (' It looks like an SC-SfMLearner / sc_depth_pl checkpoint: import it with '
                    '`treeaspp-depth convert-checkpoint --from sc-sfmlearner|sc-depth-pl IN OUT`.')
        raise CheckpointError(f'{path} is not a treeaspp_depth_ros checkpoint.{hint}')
    if ckpt.get('variant') not in VARIANTS or 'depth_net' not in ckpt:
        raise CheckpointError(f'{path}: checkpoint has no valid variant / depth_net entry')
    return ckpt


def scale_sidecar_path(weights: PathLike) -> Path:
    """`<weights>.scale.yaml`: a metric scale kept next to a checkpoint (calibrate-scale)."""
    return Path(str(weights) + '.scale.yaml')


def read_scale_sidecar(weights: PathLike) -> Optional[float]:
    """Return the sidecar's `depth_scale`, or None when there is no sidecar."""
    path = scale_sidecar_path(weights)
    if not path.is_file():
        return None
    try:
        value = float(yaml.safe_load(path.read_text())['depth_scale'])
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as error:  # garbage, not UTF-8
        raise ValueError(f'{path}: expected a YAML mapping with a numeric depth_scale '
                         f'({type(error).__name__}: {(str(error).splitlines() or [""])[0]})'
                         ) from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f'{path}: depth_scale must be a positive number, got {value} (fix or '
                         'delete the file, or run calibrate-scale again)')
    return value


#: a scale with no record of where it came from (checkpoints made before scales recorded it)
UNRECORDED_ORIGIN = 'not recorded in the checkpoint'
_METHOD_TEXT = {'ground-truth': 'ground-truth depth', 'camera-height': 'the floor and the '
                'camera height', 'odometry': 'odometry against the pose network'}


def calibration_is_synthetic(info: Dict[str, Any]) -> bool:
    """Whether a calibration record says its frames were procedural (synthetic) rooms."""
    flag = info.get('synthetic')
    if isinstance(flag, bool):
        return flag
    # make_demo_weights names its frames 'synthetic rooms, seeds ...'
    return str(info.get('source') or '').lower().startswith('synthetic')


def describe_calibration(info: Dict[str, Any]) -> str:
    """
    Say which data and method a calibration record (calibrate-scale, make_*_weights) used.

    A scale from procedural rooms always reads "calibrated on synthetic rooms", so that no
    log, diagnostics or report can pass it off as metric for a real camera.
    """
    if not info.get('source') and not info.get('method'):
        return 'calibration not recorded'  # e.g. a sidecar written by hand
    method = str(info.get('method') or 'ground-truth')  # the shipped files' method
    count = (f'{info["pairs"]} frame pairs' if info.get('pairs') else
             f'{info["frames"]} frames' if info.get('frames') else '')
    detail = ', '.join(x for x in (count, _METHOD_TEXT.get(method, method)) if x)
    source = str(info.get('source') or 'data not recorded')
    if calibration_is_synthetic(info) and 'synthetic rooms' not in source:
        source = f'synthetic rooms ({source})'
    return f'calibrated on {source} ({detail})'


def scale_provenance(ckpt: Dict[str, Any]) -> Tuple[str, bool]:
    """
    Return where a checkpoint's `depth_scale` came from, and whether from synthetic rooms.

    `depth_scale_origin` / `depth_scale_synthetic` where written (calibrate-scale, the training
    scripts, fine-tuning's inherited scale); else derived from `depth_scale_calibration`, which
    the shipped files (made before the origin was recorded) carry. ('', False): no scale.
    """
    if ckpt.get('depth_scale') is None:
        return '', False
    origin, synthetic = ckpt.get('depth_scale_origin'), ckpt.get('depth_scale_synthetic')
    info = ckpt.get('depth_scale_calibration')
    if isinstance(info, dict):
        origin = origin or describe_calibration(info)
        synthetic = synthetic if isinstance(synthetic, bool) else calibration_is_synthetic(info)
    return str(origin or UNRECORDED_ORIGIN), bool(synthetic)


def scale_origin_entries(info: Dict[str, Any]) -> Dict[str, Any]:
    """Return the checkpoint keys that record a new calibration's origin (beside the scale)."""
    return {'depth_scale_origin': describe_calibration(info),
            'depth_scale_synthetic': calibration_is_synthetic(info)}


def sidecar_provenance(weights: PathLike) -> Tuple[str, bool]:
    """Where the `<weights>.scale.yaml` scale came from (read after `read_scale_sidecar`)."""
    path = scale_sidecar_path(weights)
    info = yaml.safe_load(path.read_text())
    origin = str(info.get('origin') or describe_calibration(info))
    return f'sidecar {path.name}: {origin}', calibration_is_synthetic(info)


def write_scale_sidecar(weights: PathLike, info: Dict[str, Any]) -> Path:
    """Write `info` (`depth_scale` and how it was found) as the sidecar, atomically."""
    return atomic_write_text(yaml.safe_dump(info, sort_keys=False), scale_sidecar_path(weights))


def training_input_size(ckpt: Dict[str, Any]) -> Optional[Tuple[int, int]]:
    """(width, height) the network was trained at, from the stored training config; else None."""
    data = (ckpt.get('config') or {}).get('data') or {}
    try:
        return int(data['width']), int(data['height'])
    except (KeyError, TypeError, ValueError):
        return None


def _load_state(net: torch.nn.Module, state: Dict[str, torch.Tensor], what: str) -> None:
    result = net.load_state_dict(state, strict=False)
    problems = []
    if result.missing_keys:
        problems.append(f'missing keys {_abbreviate(result.missing_keys)}')
    if result.unexpected_keys:
        problems.append(f'unexpected keys {_abbreviate(result.unexpected_keys)}')
    if problems:
        raise CheckpointError(f'{what} weights do not fit the network: ' + '; '.join(problems))


def init_from_checkpoint(ckpt: Dict[str, Any], nets: Dict[str, torch.nn.Module]
                         ) -> Dict[str, Dict[str, List[str]]]:
    """
    Load every tensor of `ckpt` whose name and shape fit `nets` ({'depth_net': ..., ...}).

    Fine-tuning starts from any checkpoint of this package, whatever it was trained as: a
    baseline gives an aspp/tree_aspp network everything but the context pool, which keeps its
    fresh initialisation, and an inference-only checkpoint leaves the pose network fresh.
    Returns, per network, the tensor names ``loaded``, ``initialised`` (kept as they were) and
    ``ignored`` (in the checkpoint, but absent from or shaped differently in the network).
    """
    summary = {}
    for name, net in nets.items():
        own = net.state_dict()
        given = ckpt.get(name) or {}
        fits = {k: v for k, v in given.items() if k in own and tuple(v.shape) == own[k].shape}
        net.load_state_dict(fits, strict=False)
        summary[name] = {
            'loaded': sorted(fits),
            'initialised': sorted(k for k in own if k not in fits),
            'ignored': sorted(k for k in given if k not in fits)}
    return summary


def describe_init(summary: Dict[str, Dict[str, List[str]]]) -> str:
    """Say per network how many tensors were loaded, and which modules were not (by prefix)."""
    lines = []
    for name, parts in summary.items():
        counts = ', '.join(f'{len(keys)} {what}' for what, keys in parts.items())
        lines.append(f'{name}: {counts}')
        for what in ('initialised', 'ignored'):
            if parts[what]:
                lines.append(f'  {what}: {_modules(parts[what])}')
    return '\n'.join(lines)


def _modules(keys: List[str]) -> str:
    """Group tensor names by their first two name parts, e.g. ``context.blocks (12)``."""
    groups: Dict[str, int] = {}
    for key in keys:
        prefix = '.'.join(key.split('.')[:2])
        groups[prefix] = groups.get(prefix, 0) + 1
    return ', '.join(f'{prefix} ({count})' for prefix, count in groups.items())


def _abbreviate(keys: Any, limit: int = 4) -> str:
    keys = list(keys)
    more = f' (+{len(keys) - limit} more)' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more


def depth_net_from_checkpoint(ckpt: Dict[str, Any], variant: Optional[str] = None,
                              upsample_mode: Optional[str] = None) -> DepthNet:
    """Build the network described by a checkpoint dict and load its weights."""
    if variant is not None and variant != ckpt['variant']:
        raise CheckpointError(
            f'wrong variant: the checkpoint holds a {ckpt["variant"]!r} network but '
            f'{variant!r} was requested')
    config = dict(ckpt.get('model_config', {'variant': ckpt['variant']}))
    if upsample_mode is not None:
        config['upsample_mode'] = upsample_mode
    try:
        net = build_depth_net(config)
    except ValueError as error:
        raise CheckpointError(f'invalid model_config in checkpoint: {error}') from None
    try:
        _load_state(net, ckpt['depth_net'], f'{ckpt["variant"]} depth-net')
    except RuntimeError as error:  # shape mismatches
        raise CheckpointError(f'depth-net weights do not fit the {ckpt["variant"]} network: '
                              f'{str(error).splitlines()[-1].strip()}') from None
    return net.eval()


def load_depth_net(path: PathLike, device: Union[str, torch.device] = 'cpu',
                   variant: Optional[str] = None) -> Tuple[DepthNet, Dict[str, Any]]:
    """Load a checkpoint's depth network in eval mode on `device`."""
    ckpt = load_checkpoint(path)
    try:
        net = depth_net_from_checkpoint(ckpt, variant)
    except CheckpointError as error:
        raise CheckpointError(f'{path}: {error}') from None
    return net.to(device), ckpt


def load_pose_net(ckpt: Dict[str, Any]) -> PoseNet:
    """Pose network stored in a checkpoint dict (training checkpoints have one)."""
    if 'pose_net' not in ckpt:
        raise CheckpointError('checkpoint has no pose_net weights (inference-only checkpoint)')
    net = PoseNet()
    _load_state(net, ckpt['pose_net'], 'pose-net')
    return net
