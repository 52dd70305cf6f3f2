"""The failover tester's steps, loaded from where the tool is installed (nothing copied: upgrades bring new steps).

Steps of this project's own go in other modules of this folder.
"""

from support.packaged import load_steps

load_steps()
