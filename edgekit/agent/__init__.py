"""``edgekit agent``: edgekit's measurement worker, served to the network from the device itself.

A board (a Raspberry Pi) runs ``edgekit agent``; a developer's machine runs ``edgekit bench
ARTIFACTS --device URL``, and the rows come back measured on the board by the same worker that
isolates every local measurement. The agent needs no TensorFlow: only the runtimes it runs
(ai-edge-litert, onnxruntime), NumPy and its HTTP server (waitress, Werkzeug).

- :mod:`edgekit.agent.token`: the shared secret every request carries.
- :mod:`edgekit.agent.store`: the content-addressed cache of artifacts and inputs, checked on arrival.
- :mod:`edgekit.agent.server`: the HTTP API (``/v1/info``, ``/v1/artifacts/SHA``, ``/v1/inputs/SHA``,
  ``/v1/measure``), one measurement at a time.
- :mod:`edgekit.agent.client`: what ``bench --device`` uses: a :class:`RemoteDevice` whose ``run`` has
  the signature and result of :func:`edgekit.runtimes.isolated.run_isolated`.
"""
