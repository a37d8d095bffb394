"""The rollout's Prometheus metrics (the dashboard imports this module; keep the names exact).

* ``fp_rollout_weight{contract}``: percent of entities the candidate serves now.
* ``fp_rollout_gate_value{contract,gate}`` / ``fp_rollout_gate_limit{contract,gate}``: the last evaluation.
* ``fp_rollout_transitions_total{contract,kind}``: start, step, promote, abort.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

WEIGHT = Gauge("fp_rollout_weight", "Percent of entities the candidate major serves.", ["contract"])
GATE_VALUE = Gauge("fp_rollout_gate_value", "Value of a rollout gate at the last evaluation.", ["contract", "gate"])
GATE_LIMIT = Gauge("fp_rollout_gate_limit", "Limit of a rollout gate.", ["contract", "gate"])
TRANSITIONS = Counter("fp_rollout_transitions", "Rollout transitions, by kind.", ["contract", "kind"])
