"""ament_python package: console scripts plus launch/config data for share/."""

from glob import glob
import os

from setuptools import find_packages, setup

PACKAGE = 'treeaspp_depth_ros'
TRAINING = 'treeaspp_depth_training'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(include=[PACKAGE, PACKAGE + '.*', TRAINING, TRAINING + '.*']),
    package_data={TRAINING: ['configs/*.yaml'],
                  PACKAGE: ['default_weights.pt', 'demo/default_weights.pt']},
    data_files=[
        ('share/ament_index/resource_index/packages', [os.path.join('resource', PACKAGE)]),
        (os.path.join('share', PACKAGE), ['package.xml']),
        (os.path.join('share', PACKAGE, 'launch'), glob('launch/*.launch.py')),
        (os.path.join('share', PACKAGE, 'config'), glob('config/*.yaml')),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='treeaspp_depth_ros maintainers',
    maintainer_email='maintainers@treeaspp-depth.dev',
    description='Tree-shaped ASPP self-supervised monocular depth for ROS 2',
    license='BSD-3-Clause',
    extras_require={
        'test': ['pytest'],
        # deployment backends (README "Deployment"); torch stays the default backend
        'onnx': ['onnx>=1.16', 'onnxruntime>=1.18'],
        'openvino': ['onnx>=1.16', 'openvino>=2024.0'],
        'tensorrt': ['onnx>=1.16', 'tensorrt>=10.0'],
    },
    entry_points={
        'console_scripts': [
            'treeaspp-depth = treeaspp_depth_ros.cli:main',
            'depth_node = treeaspp_depth_ros.node.depth_node:main',
            'depth_lifecycle_node = treeaspp_depth_ros.node.depth_node:lifecycle_main',
            'depth_dds_profile = treeaspp_depth_ros.node.dds:main',
        ],
    },
)
