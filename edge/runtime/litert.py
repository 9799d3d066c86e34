"""LiteRT (``ai-edge-litert``): the preferred runtime; int8 runs through XNNPACK."""


def interpreter_class():
    """The Interpreter class of this backend."""
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter
