"""``edgekit export``'s detector options: NMS in the artifact or not, and its settings.

A Keras detector saved with decoding and NMS (every ``edgekit train detector`` run) exports with
them by default; ``--nms off`` exports the model before NMS (``boxes (n, A, 4)`` in 0..1 and
``scores (n, A, C)``: the app keeps each box's best class and runs NMS itself); ``--max-detections``,
``--iou`` and ``--score`` replace the NMS settings; ``--nms on`` puts decoding and NMS on a user's
detector that has none (a grid head ``(n, rows, cols, 4 + classes)``, or ``boxes`` and ``scores``).

Example:
    >>> source = with_nms_options(load_source("runs/detector"), ExportOptions(score=0.4))   # doctest: +SKIP
"""

from __future__ import annotations

from edgekit.errors import UsageError


def with_nms_options(source, options):
    """``source`` with its NMS as ``options`` ask (the same source when they ask nothing of it)."""
    given = {k: v for k, v in (("max_detections", options.max_detections), ("iou", options.iou),
                               ("score", options.score)) if v is not None}
    if options.nms == "auto" and not given:
        return source
    flags = ", ".join(f"--{k.replace('_', '-')}" for k in given) or f"--nms {options.nms}"
    if source.framework != "keras3" or source.keras_model is None:
        raise UsageError(f"{flags} needs a Keras 3 detector; {source.path} is a {source.framework} model")
    from edgekit.detection.postprocess import DEFAULTS, settings_of, with_postprocess, without_nms
    from edgekit.model_loading import keras3_source

    model = source.keras_model
    current = settings_of(model)
    if options.nms == "off":
        if current is None:
            raise UsageError(f"--nms off: {source.path} has no NMS to leave out")
        if given:
            raise UsageError(f"{flags} set the NMS that --nms off leaves out: pass one or the other")
        model = without_nms(model)
    else:
        if current is None and options.nms != "on":
            raise UsageError(f"{flags}: {source.path} has no NMS to set", hint="pass --nms on to add decoding and NMS to a detector")
        try:
            model = with_postprocess(model, **{**DEFAULTS, **(current or {}), **given})
        except ValueError as e:
            raise UsageError(f"--nms on: {source.path} is not a detector edgekit can decode: {e}",
                             hint="or give it two outputs: boxes (n, A, 4) in 0..1 and scores (n, A, classes)") from None
    return keras3_source(source, model)
