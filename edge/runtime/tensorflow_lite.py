"""``tensorflow.lite``: last resort on a workstation; never installed on the kiosk."""


def interpreter_class():
    """The Interpreter class of this backend."""
    import tensorflow as tf

    return tf.lite.Interpreter
