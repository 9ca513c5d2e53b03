"""
Training configuration: YAML files over built-in defaults, any field overridable from the CLI.

A config file may name a parent with ``base: other.yaml`` (relative to the file). Command-line
overrides use dotted keys, ``--optim.lr 2e-4 --data.root /data/nyu``; values are parsed as YAML
(``null``, ``true``, ``[1, 2]``). Unknown keys are errors, so a typo never trains silently with
a default, and so is a value outside a field's fixed choices (`CHOICES`): the config is checked
whole when it is built, before any data is read.
"""

import argparse
import copy
import difflib
from pathlib import Path
import re
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from treeaspp_depth_ros.data.synthetic import TRAJECTORIES
from treeaspp_depth_ros.metrics import CROPS
from treeaspp_depth_ros.model import UPSAMPLE_MODES, VARIANTS
from treeaspp_depth_ros.model.context import check_dilation_rates
from treeaspp_depth_ros.model.decoder import NUM_SCALES
from treeaspp_depth_ros.model.pose_net import POSE_HEAD_INITS
from treeaspp_depth_ros.sizes import check_input_size
from treeaspp_depth_ros.view_synthesis import PADDING_MODES
import yaml

from .data.scenes import FORMATS
from .data.selection import SAMPLING_METHODS
from .model import NO_PRETRAINED, PRETRAINED_WORDS

CONFIG_DIR = Path(__file__).resolve().parent / 'configs'

DEFAULTS: Dict[str, Any] = {
    'name': 'tree_aspp',
    'model': {
        'variant': 'tree_aspp',          # baseline | aspp | tree_aspp (paper Table 1 rows)
        'upsample_mode': 'nearest',      # decoder upsampling (SC-SfMLearner: nearest)
        'dilation_rates': [1, 2, 3, 4],
        'pretrained': None,              # null | auto | imagenet | path to resnet18 .pth
        'sync_bn': False,                # SyncBatchNorm across DDP ranks
        'pose_head_init': 'torch',       # torch (SC-SfMLearner) | identity (from scratch: see
                                         # treeaspp_depth_ros/model/pose_net.py)
        'init': None,                    # checkpoint to start from (fine-tuning): matching
                                         # tensors are loaded, the rest initialised as above
                                         # (train.resume then restores the run's own weights)
    },
    'data': {
        'format': 'sc_depth',            # sc_depth | pairs | video | tum | 7scenes | bag |
                                         # synthetic
        'root': None,                    # a path, or a list of them (several bags / scenes)
        'image_topic': '/camera/image_raw',  # format bag: Image or CompressedImage topic
        'camera_info_topic': None,       # format bag: null = IMAGE_NS/camera_info
        'intrinsics': None,              # format bag: fx,fy,cx,cy or a file, replaces camera_info
        'pose_topic': 'auto',            # format bag: Odometry / PoseStamped topic for sampling
                                         # pose; auto = the bag's only one; null = none
        'frames': None,                  # [start, stop]: frames start..stop-1 of every scene
                                         # (a time split of one video); null = all
        'samples': None,                 # folder of SCENE.samples.txt (select_frames --output);
                                         # null = each scene's own samples.txt, if any
        'add_synthetic': False,          # also train on the `synthetic` rooms below (real
                                         # video + procedural rooms)
        'width': 320,
        'height': 256,
        'sampling': 'stride',            # stride | pose | flow (see data/selection.py)
        'sequence_length': 3,
        'skip_frames': 1,
        'max_skip_frames': None,         # stride: every skip skip_frames..this (varied motion)
        'min_translation': 0.05,         # metres, for sampling: pose
        'max_translation': 0.3,
        'max_rotation_deg': 5.0,
        'flip': True,
        'scale_min': 1.0,                # random scale-crop range (SC-SfMLearner: 1 - 1.15)
        'scale_max': 1.15,
        'num_workers': 4,
        'verify': 'quick',               # off | quick (first/last frame per scene) | full
        'synthetic': {'sequences': 8, 'frames': 64, 'trajectory': 'forward', 'seed': 0,
                      'supersample': 1},
    },
    'val': {
        'format': 'auto',                # auto (from data) | none | test | sc_depth | 7scenes |
                                         # tum | video | bag | synthetic
        'root': None,                    # a path or a list (bags); bag: null = data.root
        'depth_topic': '/camera/depth_gt',   # format bag: ground-truth depth (make-bag's)
        'frames': None,                  # [start, stop] of every scene (held-out time range)
        'stride': 1,
        'limit': 0,                      # at most this many images (0 = all)
        'crop': 'eigen',                 # eigen | null
        'min_depth': 0.1,
        'max_depth': 10.0,
        'batch_size': 16,
        'synthetic': {'sequences': 4, 'frames': 8, 'trajectory': 'forward', 'seed': 10000},
    },
    'loss': {
        'photo': 1.0,
        'smooth': 0.1,
        'geometry': 0.5,
        'with_ssim': True,
        'with_mask': True,               # self-discovered mask
        'with_auto_mask': False,
        'padding_mode': 'zeros',
        'num_scales': 1,
        'normalize_depth': False,        # per-sample mean depth fixed in the loss (not in
                                         # SC-SfMLearner; for from-scratch runs, see losses.py)
    },
    'optim': {
        'lr': 1.0e-4,
        'betas': [0.9, 0.999],
        'weight_decay': 0.0,
        'batch_size': 16,                # per process (global batch = batch_size x world size)
        'epochs': 50,
        'epoch_size': 0,                 # steps per epoch; 0 = one pass over the data
        'lr_schedule': 'constant',       # constant (paper) | cosine (to 5% over the run)
        'grad_clip': 0.0,
        'init_warmup_steps': 0,          # with model.init: train only the tensors the checkpoint
                                         # did not give (e.g. a fresh pose net) for these steps
        'init_lr_factor': 1.0,           # with model.init: learning rate of the loaded tensors
                                         # relative to optim.lr (after the warm-up)
        'init_freeze_bn': False,         # with model.init: BatchNorm layers keep their statistics
    },
    'train': {
        'device': 'auto',                # auto | cpu | cuda | cuda:N
        'amp': 'none',                   # none | bf16 | fp16
        'channels_last': False,
        'seed': 0,
        'output_dir': None,              # default runs/<name>
        'resume': None,                  # checkpoint to continue from (usually <output>/last.pth)
        'log_every': 20,
        'image_every': 500,
        'checkpoint_every': 500,         # steps between `last.pth` writes (and every epoch end)
        'resumable': True,               # last.pth with optimiser/AMP/RNG state (3x the weights)
        'max_nonfinite': 20,             # consecutive NaN/inf losses tolerated before stopping
        'max_steps': 0,                  # stop after this many steps in total (0 = all epochs)
        'max_time_s': 0.0,               # stop after this much training time (0 = no limit)
        'threads': 0,                    # torch CPU threads (0 = torch default)
        'progress': True,                # a bar on a terminal, else a line every 10 s; false:
                                         # a line a minute
        'tensorboard': True,
    },
}


#: the values of fields that only the config names (the others come from the modules that
#: interpret them); ``cuda:N`` stands for any GPU index
AMP_MODES = ('none', 'bf16', 'fp16')
LR_SCHEDULES = ('constant', 'cosine')
VERIFY_MODES = ('off', 'quick', 'full')
DEVICES = ('auto', 'cpu', 'cuda', 'cuda:N')
VAL_FORMATS = ('auto', 'none', 'test', *FORMATS)

#: every field with a fixed set of values, checked by `validate` (booleans: true or false)
CHOICES: Dict[str, Tuple[Any, ...]] = {
    'model.variant': VARIANTS,
    'model.upsample_mode': UPSAMPLE_MODES,
    'model.pose_head_init': POSE_HEAD_INITS,
    'data.format': FORMATS,
    'data.sampling': SAMPLING_METHODS,
    'data.verify': VERIFY_MODES,
    'data.synthetic.trajectory': TRAJECTORIES,
    'val.format': VAL_FORMATS,
    'val.crop': CROPS,
    'val.synthetic.trajectory': TRAJECTORIES,
    'loss.padding_mode': PADDING_MODES,
    'loss.num_scales': tuple(range(1, NUM_SCALES + 1)),
    'optim.lr_schedule': LR_SCHEDULES,
    'train.amp': AMP_MODES,
    'train.device': DEVICES,
}


class ConfigError(ValueError):
    """A config file or override that cannot be used."""


def _read_yaml(path: Path) -> Dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f'config file not found: {path}')
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f'{path}: invalid YAML: {error}') from None
    if not isinstance(data, dict):
        raise ConfigError(f'{path}: a config must be a mapping of sections')
    base = data.pop('base', None)
    if base is None:
        return data
    parent = _read_yaml(resolve_config_path(base, path.parent))
    return merge(parent, data, str(path), strict=False)


def bundled_configs() -> List[str]:
    """Name the configs shipped in configs/ (what --config accepts by name), from the folder."""
    return sorted(p.stem for p in CONFIG_DIR.glob('*.yaml'))


def resolve_config_path(name: Union[str, Path], relative_to: Optional[Path] = None) -> Path:
    """Find a config file by path or bundled name (``tree_aspp`` -> configs/tree_aspp.yaml)."""
    path = Path(name)
    candidates = [path]
    if relative_to is not None and not path.is_absolute():
        candidates.insert(0, relative_to / path)
    candidates.append(CONFIG_DIR / path)
    candidates.append(CONFIG_DIR / f'{path}.yaml')
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConfigError(f'config not found: {name} (bundled: {", ".join(bundled_configs())})')


def merge(base: Dict[str, Any], update: Dict[str, Any], source: str, strict: bool = True,
          prefix: str = '') -> Dict[str, Any]:
    """Recursive update; with `strict`, keys must exist in `base`."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        dotted = f'{prefix}{key}'
        if strict and key not in out:
            raise ConfigError(f'{source}: unknown config key {dotted!r}')
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value, source, strict, dotted + '.')
        else:
            out[key] = copy.deepcopy(value)
    return out


def flatten(config: Dict[str, Any], prefix: str = '') -> Iterator[Tuple[str, Any]]:
    for key, value in config.items():
        if isinstance(value, dict):
            yield from flatten(value, f'{prefix}{key}.')
        else:
            yield f'{prefix}{key}', value


def set_dotted(config: Dict[str, Any], key: str, value: Any) -> None:
    node = config
    parts = key.split('.')
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            raise ConfigError(f'unknown config key {key!r}')
        node = node[part]
    if parts[-1] not in node:
        raise ConfigError(f'unknown config key {key!r}')
    node[parts[-1]] = value


def load_config(config: Union[str, Path, Dict[str, Any], None] = None,
                overrides: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Defaults <- config file (or dict) <- overrides (dotted keys or nested dicts)."""
    result = copy.deepcopy(DEFAULTS)
    if isinstance(config, dict):
        result = merge(result, config, 'config dict')
    elif config is not None:
        path = resolve_config_path(config)
        result = merge(result, _read_yaml(path), str(path))
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and '.' not in key and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value, 'overrides', prefix=key + '.')
        else:
            set_dotted(result, key, value)
    validate(result)
    return result


def validate(config: Dict[str, Any]) -> None:
    """Reject values that would only fail later (or silently misbehave)."""
    _coerce_numbers(config, DEFAULTS)
    _check_types(config, DEFAULTS)
    values = dict(flatten(config))
    for key, choices in CHOICES.items():
        _check_choice(key, values[key], choices)
    _check_pretrained(config['model'])
    try:
        check_dilation_rates(config['model']['dilation_rates'])
    except ValueError as error:
        raise ConfigError(f'model.dilation_rates: {error}') from None
    data, optim = config['data'], config['optim']
    size = (data['width'], data['height'])
    if not all(type(v) is int for v in size):
        raise ConfigError(f'data.width/height must be whole numbers, got {size[0]!r} and '
                          f'{size[1]!r}')
    try:
        check_input_size(size)
    except ValueError as error:
        raise ConfigError(f'data.width/height: {error}') from None
    if optim['batch_size'] < 1 or optim['epochs'] < 1:
        raise ConfigError('optim.batch_size and optim.epochs must be >= 1')
    skips = (data['skip_frames'], data['max_skip_frames'])
    if not (isinstance(skips[0], int) and skips[0] >= 1 and (skips[1] is None or (
            isinstance(skips[1], int) and skips[1] >= skips[0]))):
        raise ConfigError(f'need whole numbers 1 <= data.skip_frames <= data.max_skip_frames '
                          f'(or max_skip_frames null), got {skips[0]!r} and {skips[1]!r}')
    if skips[1] is not None and data['sampling'] != 'stride':
        raise ConfigError(f'data.max_skip_frames applies to data.sampling stride only (pose and '
                          f'flow choose their own references), got sampling '
                          f'{data["sampling"]!r}; set max_skip_frames null or sampling stride')
    if not 1.0 <= data['scale_min'] <= data['scale_max']:
        raise ConfigError('need 1 <= data.scale_min <= data.scale_max')
    for section in ('data', 'val'):
        root = config[section]['root']
        if not (root is None or isinstance(root, str) or (
                isinstance(root, list) and root and all(isinstance(r, str) for r in root))):
            raise ConfigError(f'{section}.root must be a path or a list of paths, got {root!r}')
    if not (data['samples'] is None or isinstance(data['samples'], str)):
        raise ConfigError(f'data.samples must be null or a folder path, got {data["samples"]!r}')
    for section in ('data', 'val'):
        frames = config[section]['frames']
        if not (frames is None or (isinstance(frames, list) and len(frames) == 2 and all(
                isinstance(v, int) and not isinstance(v, bool) for v in frames)
                and 0 <= frames[0] < frames[1])):
            raise ConfigError(f'{section}.frames must be null or [start, stop] with '
                              f'0 <= start < stop, got {frames!r}')


def _shown(value: Any) -> str:
    """Write a value as YAML and the command line do (None -> null)."""
    return yaml.safe_dump(value, default_flow_style=True).replace('\n...', '').strip()


def _invalid_choice(key: str, value: Any, choices: Sequence[str], more: str = ''
                    ) -> ConfigError:
    """Make argparse's ``invalid choice`` for a config field, with the nearest choice."""
    close = difflib.get_close_matches(str(value), choices, n=1)
    hint = f'; did you mean {close[0]}?' if close else ''
    given = repr(value) if isinstance(value, str) else _shown(value)
    return ConfigError(f'{key}: invalid choice {given} (choose from {", ".join(choices)}'
                       f'{more}){hint}')


def _check_choice(key: str, value: Any, choices: Tuple[Any, ...]) -> None:
    # exact types: True is not the scale 1, 2.0 not the scale 2
    if any(type(value) is type(choice) and value == choice for choice in choices):
        return
    if 'cuda:N' in choices and isinstance(value, str) and re.fullmatch(r'cuda:\d+', value):
        return
    raise _invalid_choice(key, value, [_shown(choice) for choice in choices])


def _check_types(config: Dict[str, Any], defaults: Dict[str, Any], prefix: str = '') -> None:
    """Keep sections mappings and true/false fields true or false (``ture`` is no yes)."""
    for key, default in defaults.items():
        value = config.get(key)
        if isinstance(default, dict):
            if not isinstance(value, dict):
                raise ConfigError(f'{prefix}{key} is a section: give its fields (e.g. '
                                  f'--{prefix}{key}.{next(iter(default))}), got {value!r}')
            _check_types(value, default, f'{prefix}{key}.')
        elif isinstance(default, bool) and not isinstance(value, bool):
            raise _invalid_choice(f'{prefix}{key}', value, ['true', 'false'])


def _check_pretrained(model: Dict[str, Any]) -> None:
    """Check ``model.pretrained``: one of its words (any case, stored lower-case) or a file."""
    value = model['pretrained']
    if value is None:
        return
    word = str(value).lower()
    if isinstance(value, str) and word in NO_PRETRAINED:
        model['pretrained'] = None
    elif isinstance(value, str) and word in PRETRAINED_WORDS:
        model['pretrained'] = word
    elif not (isinstance(value, str) and Path(value).is_file()):
        words = ['null', *[w for w in PRETRAINED_WORDS if w not in NO_PRETRAINED]]
        raise _invalid_choice('model.pretrained', value, words,
                              ' or the path of an existing resnet18 .pth file')


def output_dir(config: Dict[str, Any]) -> Path:
    return Path(config['train']['output_dir'] or Path('runs') / config['name'])


#: fields that take several values on the command line (``--data.root a.bag b.bag``)
MULTI_VALUE_KEYS = ('data.root', 'val.root')


def add_override_arguments(parser: argparse.ArgumentParser,
                           config: Optional[Dict[str, Any]] = None) -> None:
    """
    One ``--section.key`` option per config field, so ``--help`` lists them all.

    The help shows each field's value in `config` (the one ``--config`` names) when given,
    else the built-in default.
    """
    title = 'config overrides (values are YAML; shown: ' + (
        f'the values of config {config["name"]!r})' if config else 'built-in defaults)')
    group = parser.add_argument_group(title)
    values = dict(flatten(config)) if config else {}
    for key, default in flatten(DEFAULTS):
        shown = _shown(values.get(key, default))
        if key in CHOICES:
            shown += f' (choices: {", ".join(_shown(c) for c in CHOICES[key])})'
        group.add_argument(f'--{key}', dest=f'override:{key}', metavar='V', default=None,
                           nargs='+' if key in MULTI_VALUE_KEYS else None,
                           help=shown.replace('%', '%%'))


def overrides_from_args(args: argparse.Namespace) -> Dict[str, Any]:
    out = {}
    for dest, raw in vars(args).items():
        if dest.startswith('override:') and raw is not None:
            if isinstance(raw, list) and len(raw) > 1:
                out[dest[len('override:'):]] = [str(value) for value in raw]
                continue
            raw = raw[0] if isinstance(raw, list) else raw
            try:
                out[dest[len('override:'):]] = yaml.safe_load(raw)
            except yaml.YAMLError as error:
                raise ConfigError(f'--{dest[9:]}: cannot parse {raw!r}: {error}') from None
    return out


def _coerce_numbers(config: Dict[str, Any], defaults: Dict[str, Any], prefix: str = '') -> None:
    """YAML reads ``1e-4`` as a string and ``1`` as an int: follow the defaults' float type."""
    for key, default in defaults.items():
        value = config.get(key)
        if isinstance(default, dict) and isinstance(value, dict):
            _coerce_numbers(value, default, f'{prefix}{key}.')
        elif isinstance(default, float) and not isinstance(value, bool):
            try:
                config[key] = float(value)
            except (TypeError, ValueError):
                raise ConfigError(f'{prefix}{key} must be a number, got {value!r}') from None


def dump(config: Dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False)
