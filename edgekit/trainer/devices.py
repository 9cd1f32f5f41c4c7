"""Which device training runs on, and the distribution strategy.

Example:
    >>> strategy, info = choose_strategy("default")   # doctest: +SKIP
    >>> info["device"]                                 # doctest: +SKIP
    'CPU (x86_64)'
"""

from __future__ import annotations

import os
import platform

from edgekit.errors import UsageError, suggest

STRATEGIES = ("default", "mirrored")


def configure_logical_cpus() -> None:
    """Split the CPU into N logical devices when EDGEKIT_LOGICAL_CPUS=N (testing MirroredStrategy)."""
    n = int(os.environ.get("EDGEKIT_LOGICAL_CPUS", "0") or 0)
    if n < 2:
        return
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)


def choose_strategy(name: str):
    """Return (tf.distribute strategy, facts about the devices) for ``--strategy``."""
    if name not in STRATEGIES:
        raise UsageError(f"Unknown strategy '{name}'.{suggest(name, STRATEGIES)} Choose from: {', '.join(STRATEGIES)}")
    import tensorflow as tf

    configure_logical_cpus()
    gpus = tf.config.list_physical_devices("GPU")
    info = {"gpus": [g.name for g in gpus], "strategy": name}
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        info["device"] = f"GPU: {details.get('device_name', gpus[0].name)}" + (f" (x{len(gpus)})" if len(gpus) > 1 else "")
    else:
        info["device"] = f"CPU ({platform.machine()})"
    if name == "default":
        return tf.distribute.get_strategy(), info
    if gpus:
        strategy = tf.distribute.MirroredStrategy()
    else:
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices=cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())
    info["replicas"] = strategy.num_replicas_in_sync
    info["device"] += f", mirrored over {strategy.num_replicas_in_sync} replica(s)"
    return strategy, info
