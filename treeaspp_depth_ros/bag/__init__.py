"""
Rosbag tools: build bags from datasets, evaluate depth on bags, calibrate the metric scale.

Everything here reads and writes rosbag2 (sqlite3 and mcap) with the pure-Python ``rosbags``
library, because ``rosbag2_py`` is not pip-installable and most users look at results on
machines without a ROS install or a GPU.
"""
