"""A study: the runner (an Optuna study per variant under an equal budget), workers, the budget
rules, the dry-run plan, phase-3 seed reruns, the reproducibility audit and export/import. Nothing
here is imported by reports (bench.report reads the storage and the records only)."""
