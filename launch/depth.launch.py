r"""
Start the treeaspp_depth_ros depth node: ``ros2 launch treeaspp_depth_ros depth.launch.py``.

Examples (one command each; test/test_readme_commands.py runs them as written)::

    ros2 launch treeaspp_depth_ros depth.launch.py \
        image_topic:=/camera/color/image_raw camera_info_topic:=/camera/color/camera_info
    ros2 launch treeaspp_depth_ros depth.launch.py weights:=/path/model.pt  # your own
    ros2 launch treeaspp_depth_ros depth.launch.py namespace:=front weights:=/path/model.pt \
        lifecycle:=true

What is started (name, namespace, parameters, remappings, Fast DDS profile) is decided by
``treeaspp_depth_ros.node.description.describe_depth_node``, which the tests check without
launch_ros; this file only declares the arguments and hands their values over.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

from treeaspp_depth_ros.node.description import describe_depth_node, LAUNCH_ARGUMENTS


def _depth_node(context, *args, **kwargs):
    values = {name: LaunchConfiguration(name).perform(context) for name in LAUNCH_ARGUMENTS}
    description = describe_depth_node(**values)
    node_class = LifecycleNode if description.lifecycle else Node
    return [node_class(
        package=description.package,
        executable=description.executable,
        name=description.name,
        namespace=description.namespace,
        parameters=description.parameters,
        remappings=description.remappings,
        additional_env=description.env,
        output='screen',
    )]


def generate_launch_description():
    arguments = [DeclareLaunchArgument(name, default_value=default, description=text)
                 for name, (default, text) in LAUNCH_ARGUMENTS.items()]
    return LaunchDescription(arguments + [OpaqueFunction(function=_depth_node)])
