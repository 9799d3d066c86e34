"""Take the training loss's class weighting back out of a model's softmax."""

from __future__ import annotations

from typing import Any

import numpy as np


def fold_prior_correction(model: Any, weights: list[float], alpha: float) -> None:
    """Divide the parts softmax by ``weights ** alpha``: ``alpha * log(w)`` off the classifier's bias, in place.

    Class-weighted cross-entropy trains the softmax towards ``weight * posterior``, so
    at a part's edge the argmax favours the up-weighted small classes (lips, eyes,
    brows come out a pixel fat against the teacher). ``alpha = 1`` restores the plain
    posterior; folding it into the bias keeps the bundle's contract and costs nothing
    on the device.

    Raises:
        ValueError: the model has no ``classifier`` layer with a bias of one entry per class.
    """
    try:
        layer = model.get_layer("classifier")
    except ValueError as e:
        raise ValueError("prior correction needs the model's 'classifier' layer") from e
    kernel, bias = layer.get_weights()
    w = np.asarray(weights, np.float32)
    if bias.shape != w.shape or not (w > 0).all():
        raise ValueError(f"prior correction: {len(w)} positive class weights needed for a bias of shape {bias.shape}")
    layer.set_weights([kernel, bias - np.float32(alpha) * np.log(w)])
