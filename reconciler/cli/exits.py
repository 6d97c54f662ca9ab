"""Exit codes: Terraform's rule (an error always wins), plus what `status` and an interrupted
`apply` say. The README's table and the man page are made from `TABLE`."""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_NOT_RUNNING = 3
EXIT_INTERRUPTED = 130

TABLE: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "success: everything asked was done, or there was nothing to do"),
    (EXIT_ERROR, "an error, whatever else happened: a spec that failed to load, a spec path "
                 "that does not exist, an object or a removal the plan refused, a step that "
                 "failed, a saved plan refused, a bad option; `status`: the agent's last "
                 "pass or its git source is unhealthy; `reconcile`: the pass failed or no "
                 "agent answered"),
    (EXIT_CHANGES, "`plan --detailed-exitcode` only: changes are planned and nothing is in "
                   "error"),
    (EXIT_NOT_RUNNING, "`status`: no agent runs on this state directory"),
    (EXIT_INTERRUPTED, "`apply` stopped by Ctrl-C (the journal records `apply.interrupted`)"),
)
