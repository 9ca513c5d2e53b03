"""The ROS 2 depth node, its parameters, QoS, DDS transport settings and launch description."""
