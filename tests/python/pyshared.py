"""Shared data of the Python tests (a plain module: `from conftest import` is ambiguous
when several suites with a conftest.py run in one pytest). They run against the installed package
(python/build.sh builds and installs it)."""

import importlib.util
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[2]

# The first example of nmstate's MPTCP page: 'subflow' and 'signal' on every address of
# eth1.
SEED_YAML = (REPO / "tests" / "fixtures" / "seed.yml").read_text()

# The same state as a dict, flags in canonical (kernel) order.
SEED_DICT = {
    "interfaces": [
        {
            "name": "eth1",
            "type": "ethernet",
            "state": "up",
            "mptcp": {"address-flags": ["signal", "subflow"]},
            "ipv4": {
                "enabled": True,
                "dhcp": False,
                "address": [{"ip": "192.0.2.2", "prefix-length": 24}],
            },
        }
    ]
}


def link_local_state(name="eth1"):
    """A state whose only flagged address is link-local: flags ignored, with a
    warning."""
    return {
        "interfaces": [
            {
                "name": name,
                "mptcp": {"address-flags": ["subflow"]},
                "ipv6": {
                    "enabled": True,
                    "address": [{"ip": "fe80::1", "prefix-length": 64}],
                },
            }
        ]
    }


def load_module(path, name):
    """Imports a module from a file of the repository (not a package)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
