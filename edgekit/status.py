"""The status words edgekit writes, in one place, by what they describe. Reports, the gate and
tests read these strings from manifest.json, bench.json, the gate's JUnit and tune.json, so they
never change; code compares against these names, not against literals.

Example:
    >>> from edgekit import status
    >>> status.ARTIFACT, status.GATE
    (('ok', 'export_failed', 'validation_failed'), ('pass', 'fail', 'new', 'missing'))
"""

OK = "ok"

# an artifact in manifest.json
EXPORT_FAILED = "export_failed"  # no file: the converter failed (or crashed)
VALIDATION_FAILED = "validation_failed"  # a file that does not run, or fails parity with its source (kept, for inspection)
ARTIFACT = (OK, EXPORT_FAILED, VALIDATION_FAILED)

# a bench row
FAILED = "failed"  # the artifact did not load or run on its runtime; the row says why
ROW = (OK, FAILED)

# a gate row (edgekit check)
PASS, FAIL = "pass", "fail"
NEW = "new"  # in the report, not in the baseline: checked without a baseline
MISSING = "missing"  # in the baseline, not in the report: fails
GATE = (PASS, FAIL, NEW, MISSING)

# a tune trial
COMPLETE = "complete"  # ran to its objectives and met the profiles' constraints
INFEASIBLE = "infeasible"  # ran, but breaks a profile's constraint
PRUNED = "pruned"  # stopped early: it did not learn
INTERRUPTED = "interrupted"  # its worker died; run again with the same parameters
RUNNING = "running"
TRIAL = (COMPLETE, INFEASIBLE, PRUNED, FAILED, INTERRUPTED, RUNNING)
