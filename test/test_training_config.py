"""Config files reproduce the paper's setup; every field is a documented CLI override."""

import pytest

from treeaspp_depth_training.config import (ConfigError, DEFAULTS, flatten, load_config,
                                            overrides_from_args)
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
