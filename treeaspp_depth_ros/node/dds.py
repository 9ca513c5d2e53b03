"""
Fast DDS transport settings that let full-size camera frames through best effort.

Measured on the development machine (Fast DDS 3.2, two processes on one host, 640x480 rgb8 =
921 KB, best effort): with the default transports only 0-6 of 100-150 frames arrive, because
a sample larger than the sender's 512 KB shared-memory segment is fragmented and the fragments
are lost. ``FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA`` did not fix it there (1-4 of 150). What
does fix it (150 of 150) is a larger shared-memory segment on the *sending* side, which this
module provides as an XML profile that keeps UDPv4 for other hosts, so it only adds to the
default behaviour. The depth node sends large samples (depth images, ~10 MB point clouds), so
it uses the profile unless the user has configured Fast DDS themselves; camera drivers (the
senders of images) need it too: see the README's troubleshooting section.
"""

import os
from pathlib import Path
from typing import Dict, List, Mapping, Optional

from ..backends import cache_root
from ..files import atomic_write_text

#: shared-memory segment per participant; 32 MB holds a few 640x480 xyzrgb clouds (9.8 MB)
#: and stays below Docker's default 64 MB /dev/shm.
SEGMENT_BYTES = 32 * 1024 * 1024

PROFILE_XML = f"""<?xml version="1.0" encoding="UTF-8" ?>
<!-- treeaspp_depth_ros: Fast DDS default profile with a large shared-memory segment, so
     multi-megabyte images and point clouds are delivered best effort between processes on
     one host. UDPv4 stays enabled for other hosts. -->
<dds xmlns="http://www.eprosima.com">
  <profiles>
    <transport_descriptors>
      <transport_descriptor>
        <transport_id>treeaspp_large_shm</transport_id>
        <type>SHM</type>
        <segment_size>{SEGMENT_BYTES}</segment_size>
        <maxMessageSize>{SEGMENT_BYTES // 2}</maxMessageSize>
      </transport_descriptor>
      <transport_descriptor>
        <transport_id>treeaspp_udp</transport_id>
        <type>UDPv4</type>
      </transport_descriptor>
    </transport_descriptors>
    <participant profile_name="treeaspp_large_shm" is_default_profile="true">
      <rtps>
        <userTransports>
          <transport_id>treeaspp_large_shm</transport_id>
          <transport_id>treeaspp_udp</transport_id>
        </userTransports>
        <useBuiltinTransports>false</useBuiltinTransports>
      </rtps>
    </participant>
  </profiles>
</dds>
"""

#: environment variables that mean "the user configured Fast DDS already"
USER_SETTINGS = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE',
                 'FASTDDS_BUILTIN_TRANSPORTS', 'RMW_FASTRTPS_USE_QOS_FROM_XML')
#: set to 0 to keep Fast DDS defaults in the depth node
OPT_OUT = 'TREEASPP_DEPTH_LARGE_DATA'


def profile_path() -> Path:
    """Where the profile is written: the package's cache folder, like the ONNX exports."""
    return cache_root() / 'fastdds_large_shm.xml'


def write_profile(path: Optional[Path] = None) -> Path:
    """Write the profile (atomically, only when missing or different) and return its path."""
    path = Path(path) if path is not None else profile_path()
    if not path.is_file() or path.read_text() != PROFILE_XML:
        atomic_write_text(PROFILE_XML, path)
    return path


def large_data_env(base: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """
    Return ``base`` (default: os.environ) plus the profile, unless Fast DDS is configured.

    Use it for every process of a camera -> node -> consumer pipeline on one host.
    """
    env = dict(os.environ if base is None else base)
    if env.get(OPT_OUT, '1') == '0' or any(env.get(name) for name in USER_SETTINGS):
        return env
    env['FASTDDS_DEFAULT_PROFILES_FILE'] = str(write_profile())
    return env


def apply_to_this_process() -> Optional[str]:
    """
    Set the profile in ``os.environ`` before rclpy creates the DDS participant.

    Returns the profile path when it was applied, None when the user's settings were kept.
    """
    env = large_data_env()
    path = env.get('FASTDDS_DEFAULT_PROFILES_FILE')
    if path and os.environ.get('FASTDDS_DEFAULT_PROFILES_FILE') != path:
        os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = path
        return path
    return None


def main(argv: Optional[List[str]] = None) -> int:
    """Print the shell line that gives a camera driver the profile (``depth_dds_profile``)."""
    import argparse
    parser = argparse.ArgumentParser(
        prog='depth_dds_profile',
        description='Write the Fast DDS profile with a large shared-memory segment (32 MB) '
                    'and print the shell line that gives it to a process, e.g. a camera '
                    'driver: eval "$(depth_dds_profile)". The depth node applies it by '
                    f'itself ({OPT_OUT}=0 opts out).',
        epilog=f'The profile is written to {profile_path()} ($TREEASPP_DEPTH_CACHE, else '
               '$XDG_CACHE_HOME/treeaspp_depth_ros, else ~/.cache/treeaspp_depth_ros).')
    parser.parse_args(argv)
    print(f'export FASTDDS_DEFAULT_PROFILES_FILE={write_profile()}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
