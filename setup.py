"""The packages of the wheel (everything else about the distribution is in pyproject.toml).

``support`` and ``lab`` are packaged where they are; the behave step modules (``steps/``) and the schemas and
configurations (``config/``) stay where a checkout has them and are packaged as ``failover_tester_steps`` and
``failover_tester_config``, so that an installed tool carries them (see :mod:`support.packaged`).
"""

from setuptools import find_namespace_packages, setup

MAPPED = {"failover_tester_steps": "steps", "failover_tester_config": "config"}

setup(
    packages=[*find_namespace_packages(include=["support", "support.*", "lab", "lab.*"]), *MAPPED],
    package_dir=MAPPED,
)
