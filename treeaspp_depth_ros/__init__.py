"""Tree-shaped ASPP self-supervised monocular indoor depth for ROS 2."""

__version__ = '0.1.0'
