"""``tflite_runtime``: the legacy standalone interpreter (slower on int8, numpy<2)."""


def interpreter_class():
    """The Interpreter class of this backend."""
    from tflite_runtime.interpreter import Interpreter

    return Interpreter
