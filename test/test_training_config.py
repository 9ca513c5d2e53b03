"""Config files reproduce the paper's setup; every field is a documented CLI override."""

from pathlib import Path
import subprocess
import sys

import pytest

from treeaspp_depth_ros.data.synthetic import TRAJECTORIES
from treeaspp_depth_ros.model import build_depth_net, UPSAMPLE_MODES, VARIANTS
from treeaspp_depth_ros.model.pose_net import POSE_HEAD_INITS
from treeaspp_depth_ros.sizes import check_input_size
from treeaspp_depth_ros.view_synthesis import PADDING_MODES
from treeaspp_depth_training.config import (AMP_MODES, CHOICES, CONFIG_DIR, ConfigError, DEFAULTS,
                                            DEVICES,
                                            flatten, load_config, LR_SCHEDULES,
                                            overrides_from_args, VAL_FORMATS, VERIFY_MODES)
from treeaspp_depth_training.data.scenes import FORMATS, LOADERS
from treeaspp_depth_training.data.selection import SAMPLING_METHODS
from treeaspp_depth_training.train import build_parser, main


@pytest.mark.parametrize('variant', ['baseline', 'aspp', 'tree_aspp'])
def test_table1_configs_use_the_papers_training_parameters(variant):
    config = load_config(variant)
    assert config['name'] == variant and config['model']['variant'] == variant
    assert (config['data']['width'], config['data']['height']) == (320, 256)
    assert config['optim']['batch_size'] == 16 and config['optim']['epochs'] == 50
    assert config['optim']['lr'] == pytest.approx(1e-4)
    assert config['optim']['betas'] == [0.9, 0.999]
    loss = config['loss']
    assert (loss['photo'], loss['smooth'], loss['geometry']) == (1.0, 0.1, 0.5)
    assert loss['with_ssim'] and loss['with_mask']
    assert config['model']['pretrained'] == 'imagenet'
    assert (config['data']['scale_min'], config['data']['scale_max']) == (1.0, 1.15)
    assert config['data']['flip'] and config['val']['crop'] == 'eigen'


def test_overrides_parse_as_yaml_and_unknown_keys_fail():
    args = build_parser().parse_args(['--config', 'tree_aspp', '--optim.lr', '2e-4',
                                      '--data.root', '/data/nyu', '--train.amp', 'bf16',
                                      '--model.dilation_rates', '[1, 2, 4, 8]'])
    config = load_config(args.config, overrides_from_args(args))
    assert config['optim']['lr'] == pytest.approx(2e-4)
    assert isinstance(config['optim']['lr'], float)
    assert config['data']['root'] == '/data/nyu' and config['train']['amp'] == 'bf16'
    assert config['model']['dilation_rates'] == [1, 2, 4, 8]
    with pytest.raises(ConfigError, match='optim.lrr'):
        load_config('tree_aspp', {'optim.lrr': 1.0})
    with pytest.raises(ConfigError, match='multiples of 32'):
        load_config('demo', {'data.width': 100})
    with pytest.raises(ConfigError, match='optim.lr must be a number'):
        load_config('demo', {'optim.lr': 'fast'})


def test_help_lists_every_option():
    text = build_parser().format_help()
    missing = [key for key, _ in flatten(DEFAULTS) if f'--{key}' not in text]
    assert not missing


def test_print_config_and_clear_errors(capsys, tmp_path):
    assert main(['--config', 'aspp', '--print-config', '--optim.epochs', '3']) == 0
    assert 'epochs: 3' in capsys.readouterr().out
    assert main(['--config', str(tmp_path / 'nope.yaml')]) == 1
    assert 'config not found' in capsys.readouterr().err
    # training on a folder that is not a dataset stops before any work, naming the folder
    assert main(['--config', 'baseline', '--model.pretrained', 'null', '--data.root',
                 str(tmp_path), '--train.output_dir', str(tmp_path / 'run')]) == 1
    err = capsys.readouterr().err
    assert 'train.txt' in err and str(tmp_path) in err
    assert not (tmp_path / 'run' / 'last.pth').exists()


def test_help_shows_the_values_of_the_named_config(capsys):
    with pytest.raises(SystemExit):
        main(['--config', 'tree_aspp', '--help'])
    text = ' '.join(capsys.readouterr().out.split())
    assert "values of config 'tree_aspp'" in text
    assert '--model.pretrained V imagenet' in text and '--data.num_workers V 8' in text


def test_unknown_pose_head_init_is_a_config_error():
    with pytest.raises(ConfigError, match='pose_head_init'):
        load_config('demo', {'model.pose_head_init': 'zeros'})


#: one typo per field with a fixed set of values, and the choices its owner lists
TYPOS = [
    ('model.variant', 'treeaspp', VARIANTS),
    ('model.upsample_mode', 'bilinar', UPSAMPLE_MODES),
    ('model.pose_head_init', 'zeros', POSE_HEAD_INITS),
    ('model.pretrained', 'imagenett', ('null', 'auto', 'imagenet', '.pth file')),
    ('data.format', 'sc-depth', (*LOADERS, 'synthetic')),
    ('data.sampling', 'poses', SAMPLING_METHODS),
    ('data.verify', 'fast', VERIFY_MODES),
    ('data.synthetic.trajectory', 'rotating', TRAJECTORIES),
    ('val.format', 'nyu', VAL_FORMATS),
    ('val.crop', 'eigen_crop', ('null', 'eigen')),
    ('val.synthetic.trajectory', 'fwd', TRAJECTORIES),
    ('loss.padding_mode', 'zero', PADDING_MODES),
    ('loss.num_scales', 5, ('1', '2', '3', '4')),
    ('optim.lr_schedule', 'cos', LR_SCHEDULES),
    ('train.amp', 'bfloat16', AMP_MODES),
    ('train.device', 'gpu', DEVICES),
    ('train.tensorboard', 'ture', ('true', 'false')),
]


@pytest.mark.parametrize('key, typo, choices', TYPOS, ids=[t[0] for t in TYPOS])
def test_a_value_outside_a_fields_choices_is_a_config_error_naming_them(key, typo, choices):
    """Argparse's ``invalid choice``, raised by load_config: before any data is read."""
    with pytest.raises(ConfigError) as error:
        load_config('demo', {key: typo})
    message = str(error.value)
    assert message.startswith(f'{key}: invalid choice') and str(typo) in message
    assert all(str(choice) in message for choice in choices), message


def test_every_choice_list_is_a_field_and_the_defaults_pass():
    values = dict(flatten(DEFAULTS))
    assert set(CHOICES) <= set(values)
    assert FORMATS == (*LOADERS, 'synthetic') and set(FORMATS) < set(VAL_FORMATS)
    load_config(None)
    for key, choices in CHOICES.items():
        for choice in choices:
            if choice != 'cuda:N':
                load_config('demo', {key: choice})


def test_close_spellings_say_what_was_meant_and_words_are_normalised():
    with pytest.raises(ConfigError, match='did you mean sc_depth'):
        load_config('demo', {'data.format': 'sc-depth'})
    assert load_config('demo', {'train.device': 'cuda:1'})['train']['device'] == 'cuda:1'
    assert load_config('demo', {'model.pretrained': 'ImageNet'})['model']['pretrained'] == \
        'imagenet'
    assert load_config('demo', {'model.pretrained': 'none'})['model']['pretrained'] is None
    with pytest.raises(ConfigError, match='is a section'):
        load_config('demo', {'data.synthetic': 5})
    with pytest.raises(ConfigError, match='model.dilation_rates: need four'):
        load_config('demo', {'model.dilation_rates': [1, 2]})


def test_one_input_size_rule_for_training_and_inference():
    """Multiples of 32, each side >= 64: at 32 px the network cannot run at all."""
    assert check_input_size((64, 64)) == (64, 64)
    for size in ((32, 64), (64, 32), (96, 80)):
        with pytest.raises(ValueError) as rule:
            check_input_size(size)
        with pytest.raises(ConfigError) as config:
            load_config('demo', {'data.width': size[0], 'data.height': size[1]})
        assert str(rule.value) in str(config.value)


def test_train_cli_refuses_a_typo_with_the_choices_and_no_traceback():
    result = subprocess.run(
        [sys.executable, '-m', 'treeaspp_depth_training.train', '--config', 'demo',
         '--model.variant', 'treeaspp'], capture_output=True, text=True, timeout=120,
        cwd=Path(__file__).resolve().parents[1])
    assert result.returncode != 0
    assert "model.variant: invalid choice 'treeaspp' (choose from baseline, aspp, tree_aspp)" \
        in result.stderr
    assert 'Traceback' not in result.stderr


def test_build_depth_net_refuses_an_unknown_argument():
    """Like torchvision's builders: a misspelt setting is an error, never silently dropped."""
    with pytest.raises(ValueError, match="unknown DepthNet argument.*'upsample'"):
        build_depth_net({'variant': 'baseline', 'upsample': 'bilinear'})
    net = build_depth_net({'variant': 'baseline', 'upsample_mode': 'bilinear'})
    assert net.config['upsample_mode'] == 'bilinear'


def test_train_help_lists_every_bundled_config_without_importing_torchvision():
    """--help is read before anything is built: no torchvision (seconds), every config named."""
    code = ('import sys\nfrom treeaspp_depth_training.train import main\ntry:\n'
            "    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('torchvision loaded:', 'torchvision' in sys.modules)")
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.rstrip().endswith('torchvision loaded: False')
    listed = ' '.join(result.stdout.split())
    for config in sorted(CONFIG_DIR.glob('*.yaml')):
        assert config.stem in listed, config.stem
    assert 'demo_odometry' in listed
