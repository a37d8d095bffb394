"""Breaking-change detection for ``feature-check --base``: rules, the diff of two contract sets, the base from git."""

from pipelines.feature_check.compat.diff import ContractChange, compare_contract, compare_sets, declared_bump
from pipelines.feature_check.compat.rules import COMPAT_RULES, CompatRule, grade

__all__ = ["COMPAT_RULES", "CompatRule", "ContractChange", "compare_contract", "compare_sets", "declared_bump", "grade"]
