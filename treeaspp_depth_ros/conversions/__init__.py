"""
Conversions between ROS 2 messages and numpy arrays, without cv_bridge or sensor_msgs_py.

cv_bridge and sensor_msgs_py are not pip-installable, and the node, the bag tools and the demo
all need the same conversions, so they live here as plain numpy code. Every function accepts
rclpy messages and rosbags-deserialised messages alike (only field names are used).
"""

from treeaspp_depth_ros.conversions.camera_info import (
    camera_info_to_K,
    CameraInfoError,
    make_camera_info,
    scale_camera_info,
)
from treeaspp_depth_ros.conversions.colormap import colorize_depth
from treeaspp_depth_ros.conversions.image import (
    compressed_msg_to_rgb,
    depth_image_msg_to_array,
    depth_to_image_msg,
    float_image_msg_to_array,
    float_to_image_msg,
    image_msg_to_rgb,
    ImageConversionError,
    rgb_to_image_msg,
    SUPPORTED_ENCODINGS,
)
from treeaspp_depth_ros.conversions.pointcloud import (
    depth_to_pointcloud2,
    pointcloud2_to_array,
    PointCloudBuilder,
)

__all__ = [
    'camera_info_to_K', 'CameraInfoError', 'colorize_depth', 'compressed_msg_to_rgb',
    'depth_image_msg_to_array', 'depth_to_image_msg', 'depth_to_pointcloud2',
    'float_image_msg_to_array', 'float_to_image_msg',
    'image_msg_to_rgb', 'ImageConversionError', 'make_camera_info', 'PointCloudBuilder',
    'pointcloud2_to_array', 'rgb_to_image_msg', 'scale_camera_info', 'SUPPORTED_ENCODINGS',
]
