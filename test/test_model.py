"""Network structure: variants, shapes, parameter equality of the two pools, gradient flow."""

import pytest
import torch

from treeaspp_depth_ros.model import ASPP, DepthNet, PoseNet, TreeASPP, VARIANTS
from treeaspp_depth_ros.model.context import DEFAULT_DILATION_RATES


def _count(module):
    return sum(p.numel() for p in module.parameters())


def test_aspp_and_tree_aspp_have_identical_parameter_count_but_differ_in_output():
    torch.manual_seed(0)
    aspp = ASPP(64, DEFAULT_DILATION_RATES).eval()
    tree = TreeASPP(64, DEFAULT_DILATION_RATES).eval()
    assert _count(aspp) == _count(tree) > 0
    tree.load_state_dict(aspp.state_dict())  # same modules, so weights are interchangeable
    x = torch.randn(2, 64, 8, 10)
    with torch.no_grad():
        assert not torch.allclose(aspp(x), tree(x))  # different wiring
    assert _count(DepthNet('aspp')) == _count(DepthNet('tree_aspp')) > _count(DepthNet('baseline'))


def test_tree_aspp_cascades_each_step_into_the_next():
    tree = TreeASPP(8, (1, 2, 3, 4)).eval()
    seen = []
    for block in tree.blocks:
        block.register_forward_hook(lambda m, inp, out: seen.append((inp[0], out)))
    with torch.no_grad():
        tree(torch.randn(1, 8, 8, 10))
    for (_, previous_out), (next_in, _) in zip(seen, seen[1:]):
        assert next_in is previous_out


def test_dilation_rates_are_configurable_and_validated():
    net = DepthNet('tree_aspp', dilation_rates=(1, 2, 4, 6))
    assert [b.conv.dilation[0] for b in net.context.blocks] == [1, 2, 4, 6]
    with pytest.raises(ValueError):
        DepthNet('aspp', dilation_rates=(1, 2, 3))
    with pytest.raises(ValueError, match='unknown DepthNet variant'):
        DepthNet('deeplab')


@pytest.mark.parametrize('variant', VARIANTS)
def test_depth_net_outputs_four_scales_in_training_and_one_in_eval(variant):
    net = DepthNet(variant)
    x = torch.randn(2, 3, 64, 96)
    outputs = net.train()(x)
    assert [tuple(o.shape) for o in outputs] == [(2, 1, 64 // 2 ** s, 96 // 2 ** s)
                                                 for s in range(4)]
    with torch.no_grad():
        disp = net.eval()(x)
    assert disp.shape == (2, 1, 64, 96)
    assert float(disp.min()) >= 0.01 and float(disp.max()) <= 10.01  # 10*sigmoid + 0.01


def test_pose_net_outputs_six_dof_and_pretrained_conv1_is_duplicated_and_halved(tmp_path):
    import torchvision
    weights = torchvision.models.resnet18(weights=None).state_dict()
    path = tmp_path / 'resnet18.pth'
    torch.save(weights, path)
    net = PoseNet(pretrained=path)
    conv1 = net.encoder.encoder.conv1.weight
    assert conv1.shape == (64, 6, 7, 7)
    assert torch.allclose(conv1[:, :3], weights['conv1.weight'] / 2)
    assert torch.allclose(conv1[:, 3:], weights['conv1.weight'] / 2)
    pose = net(torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64))
    assert pose.shape == (2, 6)


def test_missing_local_imagenet_weights_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='ImageNet weights file not found'):
        DepthNet('baseline', pretrained=tmp_path / 'nope.pth')


@pytest.mark.parametrize('variant', VARIANTS)
def test_gradients_reach_every_parameter(variant):
    torch.manual_seed(0)
    depth_net, pose_net = DepthNet(variant).train(), PoseNet().train()
    x = torch.randn(2, 3, 64, 64)
    loss = sum(d.mean() for d in depth_net(x)) + pose_net(x, x.flip(0)).abs().sum()
    loss.backward()
    for name, p in list(depth_net.named_parameters()) + list(pose_net.named_parameters()):
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_identity_pose_head_starts_at_no_motion_and_keeps_feature_magnitude():
    torch.manual_seed(0)
    frames = torch.rand(4, 3, 64, 64), torch.rand(4, 3, 64, 64)
    inputs = {}

    def features_into_output_layer(head_init: str) -> torch.Tensor:
        torch.manual_seed(1)  # the same encoder for both
        net = PoseNet(head_init=head_init)
        hook = net.decoder.net[-1].register_forward_hook(
            lambda module, args, out: inputs.update({head_init: args[0]}))
        pose = net(*frames)
        hook.remove()
        return pose
    assert torch.equal(features_into_output_layer('identity'), torch.zeros(4, 6))
    assert features_into_output_layer('torch').abs().max() > 0
    # PyTorch's default init shrinks activations layer by layer; He init keeps them
    assert inputs['identity'].abs().mean() > 5 * inputs['torch'].abs().mean()
    with pytest.raises(ValueError, match='pose head init'):
        PoseNet(head_init='zeros')


def test_an_unreadable_imagenet_file_is_refused_without_unsafe_advice(tmp_path):
    """``--model.pretrained FILE`` with a text file: the reason, never weights_only=False."""
    from treeaspp_depth_ros.model.encoder import load_resnet18
    text = tmp_path / 'resnet18.pth'
    text.write_text('not weights\n')
    with pytest.raises(ValueError) as caught:
        load_resnet18(text)
    assert str(text) in str(caught.value) and 'weights_only' not in str(caught.value)
