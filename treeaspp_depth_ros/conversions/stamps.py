"""
Header stamps <-> integer nanoseconds, the one form in which stamps are compared and stored.

builtin_interfaces/Time splits a stamp into ``sec`` and ``nanosec``, rosbag2 stores integer
nanoseconds, and a float of seconds at today's epoch cannot hold every nanosecond; so the node,
the bag tools and the demo key and match frames by integer nanoseconds and convert only here.
Readers accept rclpy and rosbags messages alike (only field names are used).
"""

import struct
from typing import Any, Tuple

from builtin_interfaces.msg import Time
from std_msgs.msg import Header

NS_PER_S = 1_000_000_000


def stamp_to_ns(stamp: Any) -> int:
    """Nanoseconds of a builtin_interfaces/Time."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def header_stamp_ns(msg: Any) -> int:
    """Nanoseconds of a message's header stamp."""
    return stamp_to_ns(msg.header.stamp)


def cdr_header_stamp_ns(data: bytes) -> int:
    """
    Nanoseconds of the header stamp of a serialised message whose first field is a Header.

    Why: a subscriber that only needs the stamp (counting, latency) can take the raw CDR bytes
    and skip deserialising megabytes of pixels or points in Python.
    """
    if len(data) < 12:
        raise ValueError(f'{len(data)} bytes are too few for a CDR message with a header')
    # encapsulation: 0x0000/0x0002 big endian, 0x0001/0x0003 little endian
    order = '<' if data[1] & 1 else '>'
    sec, nanosec = struct.unpack_from(order + 'iI', data, 4)
    return sec * NS_PER_S + nanosec


def split_ns(stamp_ns: int) -> Tuple[int, int]:
    """``(sec, nanosec)`` as builtin_interfaces/Time holds them (for rosbags' Time as well)."""
    sec, nanosec = divmod(int(stamp_ns), NS_PER_S)
    return sec, nanosec


def ns_to_stamp(stamp_ns: int) -> Time:
    """Return an rclpy builtin_interfaces/Time."""
    sec, nanosec = split_ns(stamp_ns)
    return Time(sec=sec, nanosec=nanosec)


def make_header(stamp_ns: int, frame_id: str) -> Header:
    """Return an rclpy std_msgs/Header."""
    return Header(stamp=ns_to_stamp(stamp_ns), frame_id=str(frame_id))


def seconds_to_ns(seconds: float) -> int:
    """Nanoseconds of a time given in seconds (rounded, not truncated)."""
    return int(round(seconds * NS_PER_S))
