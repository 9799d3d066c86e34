"""Put this folder on PYTHONPATH to simulate a kiosk where TensorFlow is not installed.

Any import of tensorflow (or keras) raises ImportError, exactly as on a device
that installed only the runtime. At exit, the process reports whether such an
import was attempted, so tests can assert it never was.
"""

import atexit
import os
import sys

_BLOCKED = ("tensorflow", "keras", "tf_keras", "tensorboard")
_attempts = []


class _NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in _BLOCKED:
            _attempts.append(name)
            raise ImportError(f"No module named {name!r} (blocked: this device has no TensorFlow)")
        return None


sys.meta_path.insert(0, _NoTensorFlow())


def _report():
    out = os.environ.get("VANITY_IMPORT_REPORT")
    if out:
        with open(out, "w") as f:
            f.write("\n".join(sorted(set(_attempts))))


atexit.register(_report)
