"""Put this folder on PYTHONPATH to simulate a kiosk where TensorFlow is not installed.

Any import of tensorflow (or keras) raises ImportError, exactly as on a device
that installed only the runtime. Each attempt is appended at once to the file
named by ``VANITY_IMPORT_REPORT`` (created empty at start-up), so tests can
assert none was made even when the process ends by a signal.
"""

import os
import sys

_BLOCKED = ("tensorflow", "keras", "tf_keras", "tensorboard")
_REPORT = os.environ.get("VANITY_IMPORT_REPORT")
if _REPORT:
    open(_REPORT, "a").close()


class _NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in _BLOCKED:
            if _REPORT:
                with open(_REPORT, "a") as f:
                    f.write(name + "\n")
            raise ImportError(f"No module named {name!r} (blocked: this device has no TensorFlow)")
        return None


sys.meta_path.insert(0, _NoTensorFlow())
