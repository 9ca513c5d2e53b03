"""
QoS of the depth node's topics and the overrides users can set as parameters.

Inputs default to the sensor-data profile (best effort, as camera drivers publish) because a
late camera frame is worth nothing to a depth estimator that keeps only the newest one.
Outputs default to reliable so that both reliable consumers (RTAB-Map, rosbag2, most C++
nodes) and best-effort consumers (RViz, nvblox) connect. Every topic's history, depth and
reliability can be overridden with rclpy's standard
``qos_overrides.<resolved topic>.<publisher|subscription>.<policy>`` parameters.
"""

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)
from rclpy.qos_overriding_options import QoSOverridingOptions


def input_qos() -> QoSProfile:
    """
    Camera image / camera_info subscriptions (the policies of qos_profile_sensor_data).

    A new profile per call: rclpy writes parameter overrides into the profile it is given.
    """
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                      reliability=ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.VOLATILE)


def output_qos() -> QoSProfile:
    """Depth image, camera_info, colour-mapped depth, diagnostics."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


def points_qos() -> QoSProfile:
    """Point clouds are up to ~10 MB each: a short reliable history bounds their memory."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=2,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


def overrides() -> QoSOverridingOptions:
    """Allow history, depth and reliability to be overridden by parameters."""
    return QoSOverridingOptions.with_default_policies()
